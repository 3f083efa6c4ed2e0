"""The embedded mode: web, engine and sandbox CSMS in one process, on one event loop.

Daphne runs Twisted on the asyncio reactor; its ready callback runs on that loop, so the
engine (one ShardHost for every station) and the sandbox CSMS run beside the web server
and the in-memory channel layer connects them all.
"""

from __future__ import annotations

import asyncio
import logging

from django.conf import settings
from ocpp.v201 import call

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


async def remote_control(action: str, data: dict) -> dict:
    """The sandbox CSMS sends RequestStart/RequestStopTransaction to a station."""
    csms = sandbox()
    if csms is None:
        raise LookupError("the sandbox CSMS does not run in this process")
    station_id = str(data.get("station_id", ""))
    if station_id not in csms.sessions:
        return {"ok": False, "status": "Offline", "detail": f"{station_id} is not connected"}
    if action == "remote-start":
        # A CSMS starts with an idToken of its own (Central) unless told which card.
        token = str(data.get("id_token") or "SANDBOX-CSMS").strip()
        token_type = str(data.get("token_type") or "Central")
        problem = id_tokens.problem(token_type, token)
        if problem:
            return {"ok": False, "status": "Rejected", "detail": problem, "field": "id_token"}
        request = call.RequestStartTransaction(
            id_token={"id_token": token, "type": token_type},
            remote_start_id=next(csms.ids), evse_id=data.get("evse_id"),
        )
    elif action == "remote-stop":
        request = call.RequestStopTransaction(transaction_id=str(data.get("transaction_id", "")))
    else:
        raise LookupError(f"unknown sandbox action {action!r}")
    try:
        async with asyncio.timeout(10):
            response = await csms.call(station_id, request)
    except Exception as exc:  # noqa: BLE001 - shown to the user as the outcome
        return {"ok": False, "status": "Error", "detail": str(exc)}
    detail = ""
    if response.status_info:
        detail = response.status_info.get("reason_code", "")
    return {"ok": response.status == "Accepted", "status": response.status, "detail": detail}


