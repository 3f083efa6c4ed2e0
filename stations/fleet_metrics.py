"""The fleet's OCPP traffic as Prometheus counters and histograms, per process.

Each process that runs stations (the web process in embedded mode, every engine worker
child in scale-out mode) counts its own frames with the shard's frame hook and event sink:
O(1) per frame, a dictionary lookup and two or three increments. In scale-out mode each
process also writes its samples to Redis every FLEET_METRICS_INTERVAL seconds (key
`fleet:metrics:<host>:<pid>`, expiring when the process stops writing), and /metrics on
any web process shows them all, labelled `worker`, so Prometheus scrapes one target and
`sum without (worker)` adds the processes up (histogram buckets add too).

Label values are bounded whatever a CSMS sends: actions outside OCPP 2.0.1 count as
"unknown", CALLERROR codes outside OCPP-J's as "other".
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.metrics_core import Metric

from .engine.protocol import OCPP_ACTIONS

LOGGER = logging.getLogger(__name__)

KEY_PREFIX = "fleet:metrics:"
# Seconds, 1 ms .. 60 s: a CSMS on the same network answers in milliseconds, a loaded one in
# seconds, and OCPP's usual response timeout is 30-60 s.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                   1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
MESSAGE_TYPES = {2: "CALL", 3: "CALLRESULT", 4: "CALLERROR"}
# OCPP-J 2.0.1 section 4.3 (and FormationViolation, 1.6's spelling of FormatViolation).
ERROR_CODES = frozenset((
    "FormatViolation", "FormationViolation", "GenericError", "InternalError",
    "MessageTypeNotSupported", "NotImplemented", "NotSupported",
    "OccurrenceConstraintViolation", "PropertyConstraintViolation", "ProtocolError",
    "RpcFrameworkError", "SecurityError", "TypeConstraintViolation",
))


def _action_label(action) -> str:
    return action if action in OCPP_ACTIONS else "unknown"


def worker_name() -> str:
    # At call time: a Celery child is forked after this module may have been imported.
    return f"{socket.gethostname()}:{os.getpid()}"


class FleetMetrics:
    """Counters of the stations hosted in this process; `frame` and `event` are hooks."""

    def __init__(self):
        self.registry = CollectorRegistry(auto_describe=True)
        reg = self.registry
        self.messages = Counter("fleet_ocpp_messages", "OCPP frames sent (out) and received "
                                "(in) by the fleet's stations", ["direction", "type", "action"],
                                registry=reg)
        self.call_errors = Counter("fleet_ocpp_call_errors", "CALLERRORs received from the "
                                   "CSMS (in) or sent to it (out)",
                                   ["direction", "action", "code"], registry=reg)
        self.latency = Histogram("fleet_ocpp_latency_seconds", "Time from a station's CALL to "
                                 "the CSMS's answer (CALLRESULT or CALLERROR)", ["action"],
                                 buckets=LATENCY_BUCKETS, registry=reg)
        self.timeouts = Counter("fleet_ocpp_timeouts", "Stations' CALLs the CSMS left "
                                "unanswered", ["action"], registry=reg)
        self.connects = Counter("fleet_connects", "Websocket sessions opened to the CSMS",
                                registry=reg)
        self.disconnects = Counter("fleet_disconnects", "Websocket sessions that ended",
                                   registry=reg)
        self.connect_failures = Counter("fleet_connect_failures", "Connection attempts that "
                                        "failed, by reason", ["reason"], registry=reg)
        # Label children by the frame's own values, so a frame costs one lookup; keys are
        # bounded because the labels are.
        self._message_children: dict = {}
        self._error_children: dict = {}
        self._latency_children: dict = {}
        # Whether a shard of this process reports here (the web process of scale-out
        # mode hosts none, and shows only the workers' samples).
        self.hosting = False

    def frame(self, station_id: str, direction: str, message_type_id: int, unique_id: str,
              action, payload, latency_ms) -> None:
        if action not in OCPP_ACTIONS:
            action = "unknown"
        key = (direction, message_type_id, action)
        child = self._message_children.get(key)
        if child is None:
            child = self._message_children[key] = self.messages.labels(
                direction, MESSAGE_TYPES.get(message_type_id, "other"), action)
        child.inc()
        if message_type_id == 4:
            code = payload[0] if isinstance(payload, list) and payload else None
            # A CSMS may send anything as the code, even a list (not hashable).
            if not isinstance(code, str) or code not in ERROR_CODES:
                code = "other"
            errors = self._error_children.get((direction, action, code))
            if errors is None:
                errors = self._error_children[(direction, action, code)] = \
                    self.call_errors.labels(direction, action, code)
            errors.inc()
        if latency_ms is not None:
            latency = self._latency_children.get(action)
            if latency is None:
                latency = self._latency_children[action] = self.latency.labels(action)
            latency.observe(latency_ms / 1000)

    def event(self, station_id: str, kind: str, data: dict) -> None:
        if kind == "connection":
            if data.get("error"):
                self.connect_failures.labels(str(data["error"])[:32]).inc()
            elif data.get("online"):
                self.connects.inc()
            else:
                self.disconnects.inc()
        elif kind == "call_timeout":
            self.timeouts.labels(_action_label(data.get("action"))).inc()

    def snapshot(self) -> list:
        """The samples as JSON-ready lists: [name, help, type, [[sample, labels, value]]]."""
        return [[family.name, family.documentation, family.type,
                 [[s.name, s.labels, s.value] for s in family.samples
                  if not s.name.endswith("_created")]]
                for family in self.registry.collect()]


_process: FleetMetrics | None = None


def process_metrics() -> FleetMetrics:
    """The one FleetMetrics of this process."""
    global _process
    if _process is None:
        _process = FleetMetrics()
    return _process


def families(snapshots: dict[str, list]) -> list[Metric]:
    """Metric families from {worker: snapshot}, each sample labelled with its worker."""
    merged: dict[str, Metric] = {}
    for worker, snapshot in sorted(snapshots.items()):
        for name, documentation, kind, samples in snapshot:
            family = merged.get(name)
            if family is None:
                family = merged[name] = Metric(name, documentation, kind)
            for sample, labels, value in samples:
                family.add_sample(sample, {**labels, "worker": worker}, value)
    return list(merged.values())


def read_published(redis_url: str, skip: str | None = None) -> dict[str, list]:
    """What the worker processes last published to Redis, by worker."""
    import redis

    client = redis.Redis.from_url(redis_url, socket_timeout=2)
    try:
        keys = sorted(client.scan_iter(match=KEY_PREFIX + "*", count=500))
        values = client.mget(keys) if keys else []
    finally:
        client.close()
    published = {}
    for key, value in zip(keys, values, strict=True):
        worker = key.decode()[len(KEY_PREFIX):]
        if value is not None and worker != skip:
            published[worker] = json.loads(value)
    return published


async def publish(metrics: FleetMetrics, redis_url: str, every: float) -> None:
    """Write this process's samples to Redis every `every` seconds until cancelled."""
    import redis.asyncio as aioredis
    from redis.exceptions import RedisError

    client = aioredis.from_url(redis_url, socket_timeout=2)
    key, ttl = KEY_PREFIX + worker_name(), max(int(every * 6), 10)

    async def write():
        try:
            await client.set(key, json.dumps(metrics.snapshot(), separators=(",", ":")), ex=ttl)
        except (RedisError, OSError) as exc:
            LOGGER.debug("metrics not published: %s", exc)

    try:
        while True:
            await write()
            await asyncio.sleep(every)
    finally:
        # The last counts of a stopping shard, bounded so a dead Redis cannot hold it.
        with contextlib.suppress(Exception):
            async with asyncio.timeout(1):
                await write()
        with contextlib.suppress(Exception):
            await client.aclose()
