"""OCPP-J framing on top of the `ocpp` library's v201 ChargePoint.

The library holds the JSON schemas and the `@on`/`@after` decorators; a CALL goes to the
functional block that handles its action (block.py). This layer adds what a station needs
beyond that: the CALLERROR codes OCPP-J 2.0.1 prescribes for bad frames and payloads, schema
validation that a load test can switch off, one CALL in flight at a time with its latency
measured, and a hook that sees every frame.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import ocpp.messages
from jsonschema.exceptions import best_match
from ocpp.charge_point import (
    camel_to_snake_case,
    remove_nones,
    serialize_as_dict,
    snake_to_camel_case,
)
from ocpp.messages import Call, CallResult, MessageType, get_validator
from ocpp.v201 import ChargePoint
from ocpp.v201.enums import Action

from .block import Block, Route, route_map

LOGGER = logging.getLogger(__name__)

# The library validates in a thread pool by default; with thousands of stations the
# thread hop costs more than validating inline on the loop.
ocpp.messages.ASYNC_VALIDATION = False

OCPP_ACTIONS = frozenset(action.value for action in Action)

# OCPP-J: a CALLERROR for a frame whose message id cannot be read carries id "-1".
UNKNOWN_MESSAGE_ID = "-1"

# How a JSON-schema failure maps onto the OCPP-J error codes (Part 4, CallError).
_SCHEMA_ERROR_CODES = {
    "required": "OccurrenceConstraintViolation",
    "minItems": "OccurrenceConstraintViolation",
    "maxItems": "OccurrenceConstraintViolation",
    "type": "TypeConstraintViolation",
    "additionalProperties": "FormatViolation",
}

_ROUTES: dict[type, dict[str, Route]] = {}

FrameHook = Callable[[str, str, int, str, str | None, Any, float | None], None]


class CallErrorReceived(Exception):
    """The CSMS answered a CALL with a CALLERROR."""

    def __init__(self, action: str, code: str, description: str, details: Any = None):
        super().__init__(f"{action}: {code} {description}")
        self.action = action
        self.code = code
        self.description = description
        self.details = details


class ProtocolViolation(Exception):
    """A payload broke the 2.0.1 schema; `code` is the CALLERROR code that names it."""

    def __init__(self, code: str, description: str):
        super().__init__(f"{code}: {description}")
        self.code = code
        self.description = description


# What a station-initiated CALL can fail with while connected (ConnectionError aside).
CALL_FAILURES = (CallErrorReceived, ProtocolViolation, asyncio.TimeoutError)


def utc_now() -> str:
    """Now, as OCPP's date-time fields carry it: RFC 3339 in UTC, to the millisecond."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def schema_violation(message_type_id: int, action: str, payload: Any) -> ProtocolViolation | None:
    """The first schema violation of a payload, or None when it is valid."""
    try:
        validator = get_validator(message_type_id, action, "2.0.1")
    except OSError:
        return ProtocolViolation("NotImplemented", f"No schema for {action}")
    error = best_match(validator.iter_errors(payload))
    if error is None:
        return None
    code = _SCHEMA_ERROR_CODES.get(error.validator, "PropertyConstraintViolation")
    if error.validator == "type" and not error.path:
        code = "FormatViolation"
    where = "/".join(str(part) for part in error.path) or "payload"
    return ProtocolViolation(code, f"{where}: {error.message}"[:255])


def _call_error(unique_id: str, code: str, description: str) -> str:
    return json.dumps([4, unique_id, code, description[:255], {}], separators=(",", ":"))


class OcppPeer(ChargePoint):
    """One end of an OCPP 2.0.1 connection that outlives any single websocket."""

    __slots__ = ("id", "_response_timeout", "_connection", "_call_lock", "validate",
                 "frame_hook", "_pending", "_after_tasks")
    logger = LOGGER  # ChargePoint's methods log through it
    # The functional blocks whose `@on`/`@after` handlers answer this peer's CALLs.
    BLOCKS: tuple[type[Block], ...] = ()

    def __init__(self, peer_id: str, *, validate: bool = True, response_timeout: float = 30.0):
        # Not ChargePoint.__init__: it builds a route map and a response queue for every
        # instance; with thousands of stations routes are shared per class and answers
        # go straight to the one pending call.
        self.id = peer_id
        # Seconds to wait for the answer to one of our CALLs.
        self._response_timeout = response_timeout
        # The websocket while connected, else None.
        self._connection = None
        # OCPP-J allows one CALL in flight per direction.
        self._call_lock = asyncio.Lock()
        # Off in load tests: validation costs CPU on every frame.
        self.validate = validate
        # Called as hook(peer_id, direction, message_type_id, unique_id, action, payload,
        # latency_ms) for every frame; None keeps the hot path free of that work.
        self.frame_hook: FrameHook | None = None
        # The one CALL awaiting its answer: (unique_id, action, future, sent_at).
        self._pending: tuple[str, str, asyncio.Future, float] | None = None
        # Tasks started by `@after` handlers, kept so they are not garbage-collected mid-way.
        self._after_tasks: set[asyncio.Task] | None = None

    @classmethod
    def routes(cls) -> dict[str, Route]:
        """The block and handlers that answer each action, found once per class."""
        routes = _ROUTES.get(cls)
        if routes is None:
            routes = _ROUTES[cls] = route_map(cls.BLOCKS)
        return routes

    # -- connection ------------------------------------------------------------------

    def attach(self, connection) -> None:
        self._connection = connection

    def detach(self) -> None:
        self._connection = None
        if self._pending and not self._pending[2].done():
            self._pending[2].set_exception(ConnectionError("connection lost"))

    @property
    def connected(self) -> bool:
        return self._connection is not None

    async def serve(self) -> None:
        """Read frames until the connection closes (the caller handles the close)."""
        async for raw in self._connection:
            await self.route_message(raw)

    async def _send(self, message: str) -> None:
        if self._connection is None:
            raise ConnectionError("not connected")
        await self._connection.send(message)

    def _emit(self, direction, type_id, unique_id, action, payload, latency=None) -> None:
        if self.frame_hook is not None:
            self.frame_hook(self.id, direction, type_id, unique_id, action, payload, latency)

    # -- outgoing CALLs --------------------------------------------------------------

    async def call(self, payload, suppress=False, unique_id=None, skip_schema_validation=False):
        """Send a request dataclass and return the response dataclass."""
        action = type(payload).__name__
        body = remove_nones(snake_to_camel_case(serialize_as_dict(payload)))
        response = await self.call_action(action, body)
        return getattr(self._call_result, action)(**camel_to_snake_case(response))

    async def call_action(self, action: str, payload: dict) -> dict:
        """Send one CALL and return its CALLRESULT payload (camelCase dict).

        Raises CallErrorReceived, asyncio.TimeoutError or ConnectionError.
        """
        if self.validate:
            problem = schema_violation(MessageType.Call, action, payload)
            if problem:
                raise problem
        unique_id = str(uuid.uuid4())
        async with self._call_lock:
            future = asyncio.get_running_loop().create_future()
            self._pending = (unique_id, action, future, time.perf_counter())
            try:
                if self._connection is None:
                    raise ConnectionError("not connected")
                # Recorded first: a caller cancelled while the frame drains still sent it.
                self._emit("out", MessageType.Call, unique_id, action, payload)
                await self._send(Call(unique_id, action, payload).to_json())
                async with asyncio.timeout(self._response_timeout):
                    return await future
            finally:
                self._pending = None

    async def hold_calls(self) -> None:
        """Once the CALL in flight (and any already waiting) is done, start no more until
        release_calls(): how a load test ends without cutting a call in half."""
        await self._call_lock.acquire()

    def release_calls(self) -> None:
        self._call_lock.release()

    def _resolve(self, frame: list) -> None:
        type_id, unique_id = frame[0], frame[1]
        pending = self._pending
        if pending is None or pending[0] != unique_id or pending[2].done():
            LOGGER.warning("%s: dropped an answer to no pending call: %.200s", self.id, frame)
            return
        _, action, future, sent_at = pending
        latency = (time.perf_counter() - sent_at) * 1000
        if type_id == MessageType.CallResult:
            payload = frame[2]
            self._emit("in", type_id, unique_id, action, payload, latency)
            problem = self.validate and schema_violation(MessageType.CallResult, action, payload)
            if problem:
                future.set_exception(problem)
            else:
                future.set_result(payload)
        else:
            code, description, details = frame[2], frame[3], frame[4]
            self._emit("in", type_id, unique_id, action, [code, description, details], latency)
            future.set_exception(CallErrorReceived(action, code, description, details))

    # -- incoming frames -------------------------------------------------------------

    async def route_message(self, raw):
        try:
            frame = json.loads(raw)
        except (ValueError, TypeError):
            await self._reply_error(UNKNOWN_MESSAGE_ID, "RpcFrameworkError", "Frame is not JSON")
            return
        if isinstance(frame, list) and frame and frame[0] in (3, 4) and len(frame) < 3:
            # Answers are never answered, not even malformed ones.
            LOGGER.warning("%s: dropped a malformed answer: %.200s", self.id, raw)
            return
        if not isinstance(frame, list) or len(frame) < 3 or not isinstance(frame[1], str):
            await self._reply_error(
                UNKNOWN_MESSAGE_ID, "RpcFrameworkError", "Frame has no readable message id"
            )
            return
        type_id, unique_id = frame[0], frame[1]
        if type_id == MessageType.Call:
            if len(frame) != 4 or not isinstance(frame[2], str) or not isinstance(frame[3], dict):
                await self._reply_error(
                    unique_id, "RpcFrameworkError", "A CALL is [2, id, action, {payload}]"
                )
                return
            await self._handle_call(Call(unique_id, frame[2], frame[3]))
        elif (type_id, len(frame)) in ((MessageType.CallResult, 3), (MessageType.CallError, 5)):
            self._resolve(frame)
        elif type_id in (MessageType.CallResult, MessageType.CallError):
            # A malformed answer cannot be answered (answers are never answered): drop it.
            LOGGER.warning("%s: dropped a malformed answer: %.200s", self.id, raw)
        else:
            await self._reply_error(
                unique_id, "MessageTypeNotSupported", f"Message type {type_id!r} is not supported"
            )

    async def _reply_error(self, unique_id: str, code: str, description: str,
                           action: str | None = None) -> None:
        # `action`: the CALL answered, when it could be read (for the log and the metrics).
        self._emit("out", MessageType.CallError, unique_id, action, [code, description, {}])
        await self._send(_call_error(unique_id, code, description))

    def refuse_calls(self) -> str | None:
        """A reason to answer every CALL with SecurityError, or None to handle them."""
        return None

    async def _handle_call(self, msg: Call):
        self._emit("in", MessageType.Call, msg.unique_id, msg.action, msg.payload)
        refusal = self.refuse_calls()
        if refusal:
            await self._reply_error(msg.unique_id, "SecurityError", refusal, msg.action)
            return
        route = self.routes().get(msg.action)
        if route is None:
            if msg.action in OCPP_ACTIONS:
                code, text = "NotSupported", f"{msg.action} is not supported by this station"
            else:
                code, text = "NotImplemented", f"{msg.action} is not a known action"
            await self._reply_error(msg.unique_id, code, text, msg.action)
            return
        if self.validate:
            problem = schema_violation(MessageType.Call, msg.action, msg.payload)
            if problem:
                await self._reply_error(msg.unique_id, problem.code, problem.description,
                                        msg.action)
                return
        kwargs = camel_to_snake_case(msg.payload)
        block = route.block.of(self)
        try:
            response = route.on(block, **kwargs)
            if inspect.isawaitable(response):
                response = await response
        except ProtocolViolation as refused:
            # A handler that refuses the request as OCPP-J prescribes (e.g. over a limit).
            await self._reply_error(msg.unique_id, refused.code, refused.description,
                                    msg.action)
            return
        except Exception:
            LOGGER.exception("%s: handler for %s failed", self.id, msg.action)
            await self._reply_error(msg.unique_id, "InternalError", "Station failed to handle it",
                                    msg.action)
            return
        payload = snake_to_camel_case(remove_nones(serialize_as_dict(response)))
        if self.validate:
            problem = schema_violation(MessageType.CallResult, msg.action, payload)
            if problem:
                LOGGER.error("%s: own %s response is invalid: %s", self.id, msg.action, problem)
                await self._reply_error(msg.unique_id, "InternalError", "Invalid response",
                                        msg.action)
                return
        self._emit("out", MessageType.CallResult, msg.unique_id, msg.action, payload)
        await self._send(CallResult(msg.unique_id, payload).to_json())
        if route.after is not None:
            result = route.after(block, **kwargs)
            if inspect.isawaitable(result):
                task = asyncio.ensure_future(result)
                if self._after_tasks is None:
                    self._after_tasks = set()
                self._after_tasks.add(task)
                task.add_done_callback(self._after_done)

    def _after_done(self, task: asyncio.Task) -> None:
        self._after_tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            LOGGER.error("%s: follow-up failed", self.id, exc_info=task.exception())
