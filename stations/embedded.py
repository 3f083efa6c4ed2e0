"""The embedded mode: web, engine and sandbox CSMS in one process, on one event loop.

Daphne runs Twisted on the asyncio reactor; its ready callback runs on that loop, so the
engine (one ShardHost for every station) and the sandbox CSMS run beside the web server
and the in-memory channel layer connects them all.
"""

from __future__ import annotations

import asyncio
import logging

from django.conf import settings
from ocpp.v201 import call, call_result

from .engine import id_tokens
from .sandbox import Policy, SandboxCsms

LOGGER = logging.getLogger(__name__)

_runtime: dict = {}


def sandbox() -> SandboxCsms | None:
    return _runtime.get("sandbox")


async def start_sandbox(host: str, port: int) -> SandboxCsms:
    csms = SandboxCsms(Policy(rejected_tokens=set(settings.FLEET_SANDBOX_REJECTED_TOKENS)))
    csms.url = await csms.start(host, port)
    _runtime["sandbox"] = csms
    return csms


async def stop_sandbox() -> None:
    csms = _runtime.pop("sandbox", None)
    if csms is not None:
        await csms.stop()


async def _request(csms: SandboxCsms, station_id: str, action: str, data: dict):
    """The request the sandbox sends for `action`, or the outcome refusing a bad one."""
    if action == "remote-start":
        # A CSMS starts with an idToken of its own (Central) unless told which card.
        token = str(data.get("id_token") or "SANDBOX-CSMS").strip()
        token_type = str(data.get("token_type") or "Central")
        problem = id_tokens.problem(token_type, token)
        if problem:
            return {"ok": False, "status": "Rejected", "detail": problem, "field": "id_token"}
        return call.RequestStartTransaction(
            id_token={"id_token": token, "type": token_type},
            remote_start_id=next(csms.ids), evse_id=data.get("evse_id"),
        )
    if action == "remote-stop":
        return call.RequestStopTransaction(transaction_id=str(data.get("transaction_id", "")))
    # The station page's authorization panel: what a CSMS does to the cache and the list.
    if action == "send-local-list":
        # The demo's idTokens as the next version of a Full list, the rejected one Blocked.
        current = await csms.call(station_id, call.GetLocalListVersion())
        rejected = set(settings.FLEET_SANDBOX_REJECTED_TOKENS)
        items = [{"id_token": {"id_token": token, "type": "ISO14443"},
                  "id_token_info": {"status": "Blocked" if token in rejected else "Accepted"}}
                 for token in settings.FLEET_DEMO_ID_TOKENS]
        return call.SendLocalList(version_number=current.version_number + 1,
                                  update_type="Full", local_authorization_list=items or None)
    if action == "clear-cache":
        return call.ClearCache()
    if action == "enable-cache":
        return call.SetVariables(set_variable_data=[{
            "component": {"name": "AuthCacheCtrlr"}, "variable": {"name": "Enabled"},
            "attribute_value": "true"}])
    raise LookupError(f"unknown sandbox action {action!r}")


SANDBOX_ACTIONS = ("remote-start", "remote-stop", "send-local-list", "clear-cache",
                   "enable-cache")


async def remote_control(action: str, data: dict) -> dict:
    """The sandbox CSMS sends RequestStart/RequestStopTransaction, or changes the
    station's local list or cache, as the dashboard asks."""
    csms = sandbox()
    if csms is None:
        raise LookupError("the sandbox CSMS does not run in this process")
    if action not in SANDBOX_ACTIONS:
        raise LookupError(f"unknown sandbox action {action!r}")
    station_id = str(data.get("station_id", ""))
    if station_id not in csms.sessions:
        return {"ok": False, "status": "Offline", "detail": f"{station_id} is not connected"}
    try:
        async with asyncio.timeout(10):
            request = await _request(csms, station_id, action, data)
            if isinstance(request, dict):
                return request  # refused before anything was sent
            response = await csms.call(station_id, request)
    except Exception as exc:  # noqa: BLE001 - shown to the user as the outcome
        return {"ok": False, "status": "Error", "detail": str(exc)}
    if isinstance(response, call_result.SetVariables):
        status = response.set_variable_result[0]["attribute_status"]
        return {"ok": status == "Accepted", "status": status, "detail": ""}
    detail = ""
    if response.status_info:
        detail = response.status_info.get("reason_code", "")
    return {"ok": response.status == "Accepted", "status": response.status, "detail": detail}


