"""A small OCPP 2.0.1 CSMS, for demos and as the peer in tests.

Built on the `ocpp` library, it validates every frame a station sends against the 2.0.1
schemas and records what it received, so a test can check both what a station did and
that it did it in valid OCPP. Like strict CSMSs (CitrineOS) it also refuses an idToken
whose value does not fit its type, with a CALLERROR. Its answers follow a `Policy` a test
or demo can change: boot status, idTokens to reject, actions to answer with a CALLERROR or
not at all.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import http
import itertools
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ocpp.charge_point import (
    camel_to_snake_case,
    remove_nones,
    serialize_as_dict,
    snake_to_camel_case,
)
from ocpp.messages import MessageType
from ocpp.routing import on
from ocpp.v201 import ChargePoint, call_result
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from stations.engine import id_tokens
from stations.engine.protocol import schema_violation

LOGGER = logging.getLogger(__name__)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass
class Policy:
    """How the CSMS answers. Change it at any time; it is read per message."""

    # Boot answers consumed in order, then `boot_status` for every later boot.
    boot_statuses: list[str] = field(default_factory=list)
    boot_status: str = "Accepted"
    boot_interval: int = 300
    # idTokens answered Invalid by Authorize and by TransactionEvent.
    rejected_tokens: set[str] = field(default_factory=set)
    # The idTokenInfo (camelCase, as OCPP spells it) answered for an idToken, e.g. with a
    # groupIdToken or cacheExpiryDateTime; it wins over rejected_tokens.
    token_infos: dict[str, dict] = field(default_factory=dict)
    # Authorize with a contract's certificate hash data (C07): the certificateStatus
    # answered for an eMAID; Accepted for any other.
    certificate_statuses: dict[str, str] = field(default_factory=dict)
    # Actions answered with a CALLERROR of this code, or not answered at all.
    call_errors: dict[str, str] = field(default_factory=dict)
    silent_actions: set[str] = field(default_factory=set)
    # Basic-auth passwords by station id; None accepts any station.
    passwords: dict[str, str] | None = None


@dataclass
class Received:
    station_id: str
    action: str
    payload: dict
    at: float


class CsmsSession(ChargePoint):
    """The CSMS side of one station's connection."""

    def __init__(self, station_id: str, connection, csms: SandboxCsms):
        super().__init__(station_id, connection, response_timeout=30)
        self.csms = csms
        self.policy = csms.policy

    async def route_message(self, raw):
        self.csms.frames.append((self.id, "in", raw))
        try:
            frame = json.loads(raw)
        except ValueError:
            self.csms.violations.append(f"{self.id}: frame is not JSON: {raw[:200]}")
            return
        if isinstance(frame, list) and frame and frame[0] == MessageType.Call:
            action, payload = frame[2], frame[3]
            problem = schema_violation(MessageType.Call, action, payload)
            if problem:
                self.csms.violations.append(f"{self.id}: {action} request: {problem}")
            self.csms.record(self.id, action, payload)
            if action in self.policy.silent_actions:
                return
            token_problem = not problem and _id_token_problem(payload)
            if token_problem:
                # As CitrineOS answers an Authorize for an ISO14443 token that is no UID.
                self.csms.violations.append(f"{self.id}: {action} request: {token_problem}")
                error = [4, frame[1], "PropertyConstraintViolation", token_problem, {}]
                await self._send(json.dumps(error))
                return
            if action in self.policy.call_errors:
                code = self.policy.call_errors[action]
                error = [4, frame[1], code, "Sandbox CSMS refuses this action", {}]
                await self._send(json.dumps(error))
                return
        await super().route_message(raw)

    async def _send(self, message):
        self.csms.frames.append((self.id, "out", message))
        await self._connection.send(message)

    async def call_action(self, action: str, payload: dict) -> dict:
        """Send a CALL and return the station's CALLRESULT payload, checking its schema."""
        problem = schema_violation(MessageType.Call, action, payload)
        if problem:
            raise problem
        unique_id = f"csms-{next(self.csms.ids)}"
        async with self._call_lock:
            await self._send(json.dumps([2, unique_id, action, payload]))
            response = await self._get_specific_response(unique_id, self._response_timeout)
        if response.message_type_id == MessageType.CallError:
            raise response.to_exception()
        problem = schema_violation(MessageType.CallResult, action, response.payload)
        if problem:
            self.csms.violations.append(f"{self.id}: {action} response: {problem}")
        return response.payload

    # -- what stations send --------------------------------------------------------------

    @on("BootNotification")
    def on_boot_notification(self, charging_station, reason, **_):
        statuses = self.policy.boot_statuses
        status = statuses.pop(0) if statuses else self.policy.boot_status
        return call_result.BootNotification(_now(), self.policy.boot_interval, status)

    @on("Heartbeat")
    def on_heartbeat(self, **_):
        return call_result.Heartbeat(_now())

    @on("StatusNotification")
    def on_status_notification(self, **_):
        return call_result.StatusNotification()

    def _id_token_info(self, id_token: dict) -> dict:
        info = self.policy.token_infos.get(id_token["id_token"])
        if info is not None:
            return camel_to_snake_case(info)
        # idTokens are case-insensitive (IdTokenType).
        rejected = id_token["id_token"].casefold() in {
            t.casefold() for t in self.policy.rejected_tokens}
        return {"status": "Invalid" if rejected else "Accepted"}

    @on("Authorize")
    def on_authorize(self, id_token, iso15118_certificate_hash_data=None, **_):
        certificate = None
        if iso15118_certificate_hash_data:
            certificate = self.policy.certificate_statuses.get(id_token["id_token"], "Accepted")
        return call_result.Authorize(id_token_info=self._id_token_info(id_token),
                                     certificate_status=certificate)

    @on("TransactionEvent")
    def on_transaction_event(self, id_token=None, **_):
        if id_token is None:
            return call_result.TransactionEvent()
        return call_result.TransactionEvent(id_token_info=self._id_token_info(id_token))

    @on("MeterValues")
    def on_meter_values(self, **_):
        return call_result.MeterValues()

    @on("NotifyReport")
    def on_notify_report(self, **_):
        return call_result.NotifyReport()

    @on("NotifyEvent")
    def on_notify_event(self, **_):
        return call_result.NotifyEvent()

    @on("FirmwareStatusNotification")
    def on_firmware_status(self, **_):
        return call_result.FirmwareStatusNotification()

    @on("LogStatusNotification")
    def on_log_status(self, **_):
        return call_result.LogStatusNotification()

    @on("SecurityEventNotification")
    def on_security_event(self, **_):
        return call_result.SecurityEventNotification()


def _id_token_problem(payload: dict) -> str | None:
    """Why the idToken a station sent does not fit its type, if it does not."""
    token = payload.get("idToken")
    if not isinstance(token, dict):
        return None
    found = id_tokens.problem(str(token.get("type")), str(token.get("idToken", "")))
    return f"idToken: {found}" if found else None


class SandboxCsms:
    """A websocket server that speaks OCPP 2.0.1 to any number of stations."""

    def __init__(self, policy: Policy | None = None):
        self.policy = policy or Policy()
        self.received: list[Received] = []
        self.frames: list[tuple[str, str, str]] = []
        self.violations: list[str] = []
        self.sessions: dict[str, CsmsSession] = {}
        self.connects: list[str] = []
        self.ids = itertools.count(1)
        self._server: Server | None = None
        self._changed = asyncio.Condition()
        self._listeners: list[Callable[[Received], None]] = []

    # -- running -----------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0, ssl=None) -> str:
        self._server = await serve(
            self._handle,
            host,
            port,
            subprotocols=["ocpp2.0.1"],
            process_request=self._check_request,
            ssl=ssl,
            ping_interval=None,
            compression=None,
        )
        port = self._server.sockets[0].getsockname()[1]
        scheme = "wss" if ssl else "ws"
        return f"{scheme}://{host}:{port}"

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def _check_request(self, connection: ServerConnection, request):
        station_id = request.path.rstrip("/").rsplit("/", 1)[-1]
        if self.policy.passwords is None:
            return None
        expected = self.policy.passwords.get(station_id)
        header = request.headers.get("Authorization", "")
        given = None
        if header.startswith("Basic "):
            with contextlib.suppress(ValueError):
                given = base64.b64decode(header[6:]).decode()
        if expected is None or given != f"{station_id}:{expected}":
            return connection.respond(http.HTTPStatus.UNAUTHORIZED, "Unauthorized\n")
        return None

    async def _handle(self, ws: ServerConnection) -> None:
        if ws.subprotocol != "ocpp2.0.1":
            await ws.close(1002, "ocpp2.0.1 required")
            return
        station_id = ws.request.path.rstrip("/").rsplit("/", 1)[-1]
        session = CsmsSession(station_id, ws, self)
        self.sessions[station_id] = session
        self.connects.append(station_id)
        try:
            await session.start()
        except ConnectionClosed:
            pass
        finally:
            if self.sessions.get(station_id) is session:
                del self.sessions[station_id]

    # -- what a test or the demo looks at -----------------------------------------------

    def record(self, station_id: str, action: str, payload: dict) -> None:
        item = Received(station_id, action, payload, time.monotonic())
        self.received.append(item)
        for listener in self._listeners:
            listener(item)

    def messages(self, station_id: str | None = None, action: str | None = None) -> list[dict]:
        return [
            r.payload
            for r in self.received
            if (station_id is None or r.station_id == station_id)
            and (action is None or r.action == action)
        ]

    async def wait_for(
        self,
        action: str,
        station_id: str | None = None,
        where: Callable[[dict], bool] = lambda payload: True,
        timeout: float = 10.0,
        count: int = 1,
    ) -> list[dict]:
        """Wait until `count` matching messages arrived; return them all."""
        deadline = time.monotonic() + timeout
        while True:
            found = [p for p in self.messages(station_id, action) if where(p)]
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{count} x {action} from {station_id or 'any station'} not seen in "
                    f"{timeout}s; got {len(found)}"
                )
            await asyncio.sleep(0.02)

    async def wait_connected(self, station_id: str, timeout: float = 10.0) -> CsmsSession:
        deadline = time.monotonic() + timeout
        while station_id not in self.sessions:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{station_id} did not connect in {timeout}s")
            await asyncio.sleep(0.02)
        return self.sessions[station_id]

    async def call(self, station_id: str, request) -> Any:
        """Send a request dataclass (ocpp.v201.call.*) to a station; return its answer."""
        session = await self.wait_connected(station_id)
        action = type(request).__name__
        payload = remove_nones(snake_to_camel_case(serialize_as_dict(request)))
        response = await session.call_action(action, payload)
        return getattr(call_result, action)(**camel_to_snake_case(response))

    async def send_raw(self, station_id: str, text: str) -> None:
        session = await self.wait_connected(station_id)
        await session._send(text)

    async def disconnect(self, station_id: str) -> None:
        session = self.sessions.get(station_id)
        if session is not None:
            await session._connection.close()


__all__ = ["Policy", "Received", "SandboxCsms"]
