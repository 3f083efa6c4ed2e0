"""What a shard tells the dashboard: a coalesced fleet delta a few times a second.

Stations report every event; sending each one over the channel layer would cost Redis and
the browsers far more than the simulation itself. The publisher keeps the latest merged
view of each station and, every `interval` seconds, sends the stations that changed in at
most a few bounded messages. OCPP frames go only to stations someone is watching; the
frame log of every station is the Recorder's business, kept in the database, not here.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable
from functools import lru_cache

from .summary import fleet_totals

LOGGER = logging.getLogger(__name__)

Send = Callable[[str, dict], Awaitable[None]]

DASHBOARD_GROUP = "dashboard"
# Each shard's totals alone, a few hundred bytes: what a web process's fleet chart needs,
# without decoding every station of every delta a second time.
TOTALS_GROUP = "dashboard.totals"
FRAME_TYPES = {2: "CALL", 3: "CALLRESULT", 4: "CALLERROR"}
WARN_EVERY_S = 30.0
# A quiet shard still sends its totals this often, so fleet counts and rates stay fresh.
TOTALS_EVERY_S = 2.0
_SAFE = re.compile(r"[A-Za-z0-9_.-]+")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


@lru_cache(maxsize=16384)
def station_group(station_id: str) -> str:
    """The channel-layer group of one station's frames; valid for any station id."""
    name = "station." + station_id
    if len(name) < 100 and _SAFE.fullmatch(station_id):
        return name
    # "station-" never starts a plain name, so an escaped id cannot meet a real one.
    digest = hashlib.blake2b(station_id.encode(), digest_size=10).hexdigest()
    return f"station-{_UNSAFE.sub('_', station_id)[:40]}.{digest}"


class _View:
    """What the dashboard knows of one station. A shard holds thousands: slots, and the
    EVSE snapshots exactly as the engine made them (the Recorder holds the same ones)."""

    __slots__ = ("online", "connected", "boot_status", "error", "evses", "connectors",
                 "updated", "changed_at")

    def __init__(self) -> None:
        self.online = self.connected = False
        self.boot_status: str | None = None
        self.error: str | None = None
        self.evses: dict[int, dict] = {}  # evse id -> the engine's latest snapshot
        self.connectors: dict[str, str] = {}  # "evse/connector" -> last status sent
        self.updated: float | None = None
        # When the oldest change not yet sent happened; None once sent.
        self.changed_at: float | None = None

    def as_dict(self, station_id: str) -> dict:
        # msgpack (the Redis channel layer) refuses int map keys: the wire uses strings.
        evses = {str(evse_id): {**e, "connectors": {str(c): s for c, s in
                                                    e.get("connectors", {}).items()}}
                 for evse_id, e in self.evses.items()}
        return {"station_id": station_id, "online": self.online, "connected": self.connected,
                "boot_status": self.boot_status, "error": self.error, "evses": evses,
                "connectors": dict(self.connectors), "updated": self.updated,
                "changed_at": self.changed_at}


class FrameIds:
    """Identities for OCPP frames: microseconds since the epoch when a frame was seen, made
    strictly increasing, so two frames of one microsecond (or a CSMS sending the same
    message twice) still differ.

    The identity is also the frame's time. The live copy of a frame (to the station's
    page) and its logged copy (read back from the database) carry the same one, and that
    is how the page shows each frame once. A JavaScript number holds it exactly (it stays
    below 2**53 until the year 2255).
    """

    __slots__ = ("_clock", "_last")

    def __init__(self, clock: Callable[[], float] = time.time):
        self._clock = clock
        self._last = 0

    def __call__(self) -> int:
        self._last = max(self._last + 1, int(self._clock() * 1_000_000))
        return self._last


def frame_dict(frame: tuple) -> dict:
    """A frame as the dashboard shows it, from (id, direction, type, unique id, action,
    payload, latency_ms)."""
    frame_id, direction, type_id, unique_id, action, payload, latency = frame
    return {"id": frame_id, "at": frame_id / 1e6, "direction": direction,
            "type": FRAME_TYPES.get(type_id, str(type_id)), "unique_id": unique_id,
            "action": action, "payload": payload,
            "latency_ms": None if latency is None else round(latency, 1)}


def _summary(station_id: str, event: dict) -> dict:
    """A TransactionEvent as a station's page lists it: who, when, why it stopped, kWh."""
    info = event.get("transactionInfo", {})
    energy = event.get("tx_energy_wh")
    return {"station_id": station_id, "evse_id": event.get("evse_id"),
            "eventType": event.get("eventType"), "triggerReason": event.get("triggerReason"),
            "seqNo": event.get("seqNo"), "transactionId": info.get("transactionId"),
            "chargingState": info.get("chargingState"), "offline": bool(event.get("offline")),
            "timestamp": event.get("timestamp"),
            "idToken": (event.get("idToken") or {}).get("idToken"),
            "stoppedReason": info.get("stoppedReason"),
            "energy_wh": None if energy is None else round(energy, 1)}


class Publisher:
    def __init__(self, send: Send, *, interval: float = 0.3, shard: str = "",
                 frame_backlog: int = 100, max_stations: int = 2000, max_transactions: int = 500,
                 send_timeout: float = 5.0, clock: Callable[[], float] = time.time):
        self._send = send
        self.interval = interval
        self.shard = shard
        self.frame_backlog = frame_backlog
        self.max_stations = max_stations
        self.send_timeout = send_timeout
        self._clock = clock
        self._views: dict[str, _View] = {}
        self._dirty: dict[str, None] = {}  # ordered set: changed since the last flush
        self._transactions: deque = deque(maxlen=max_transactions)
        # Frames of watched stations not yet sent, as tuples (dicts only when sent), at most
        # frame_backlog per station: a long outage of the channel layer drops the oldest.
        self._unsent: dict[str, list[tuple]] = {}
        self._watches: dict[str, float] = {}
        self._frame_ids = FrameIds(clock)
        self._lock = asyncio.Lock()
        self._rate_mark = (clock(), 0)
        self._last_delta_at = clock()
        self._last_warning = float("-inf")
        self._failures = 0
        self.counters = {"frames_in": 0, "frames_out": 0, "events": 0, "deltas_sent": 0,
                         "totals_sent": 0,
                         "frame_messages_sent": 0, "send_errors": 0, "msgs_per_s": 0.0}

    # -- collecting (on the event loop, for every event: keep it cheap) -------------------

    def record(self, station_id: str, kind: str, data: dict) -> None:
        self.counters["events"] += 1
        view = self._views.get(station_id)
        if view is None:
            view = self._views[station_id] = _View()
        if kind == "evse":
            # Snapshots are made anew for every report and never changed: kept, not copied.
            view.evses[data["evse_id"]] = data
        elif kind == "status":
            view.connectors[f"{data['evse_id']}/{data['connector_id']}"] = data["status"]
        elif kind == "connection":
            view.connected = online = bool(data.get("online"))
            view.online = view.online and online
            if online or data.get("error"):
                view.error = data.get("detail") or data.get("error") or None
        elif kind == "online":
            view.online = view.connected = True
            view.boot_status = data.get("boot_status")
            view.error = None
        elif kind == "boot" and data.get("status") in ("Accepted", "Pending", "Rejected"):
            view.boot_status = data["status"]
        elif kind == "transaction":
            self._transactions.append((station_id, data))
            return
        else:
            return
        now = self._clock()
        view.updated = now
        if view.changed_at is None:
            view.changed_at = now
        self._dirty[station_id] = None

    def frame(self, station_id: str, direction: str, message_type_id: int, unique_id: str,
              action: str | None, payload, latency_ms: float | None,
              frame_id: int | None = None) -> None:
        """One OCPP frame; `frame_id` is the identity its logged copy has too (FrameIds)."""
        self.counters["frames_in" if direction == "in" else "frames_out"] += 1
        if station_id in self._watches:
            unsent = self._unsent.setdefault(station_id, [])
            unsent.append((frame_id or self._frame_ids(), direction, message_type_id,
                           unique_id, action, payload, latency_ms))
            if len(unsent) > self.frame_backlog:
                del unsent[0]

    def watch(self, station_id: str, ttl: float = 30.0) -> None:
        if station_id not in self._watches:
            # A new watcher loaded its page from the database, which may lag: resend.
            self.touch([station_id])
        self._watches[station_id] = self._clock() + ttl

    def touch(self, station_ids) -> None:
        """Send these stations' views with the next flush, changed or not."""
        for station_id in station_ids:
            if station_id in self._views:
                self._dirty[station_id] = None

    def unwatch(self, station_id: str) -> None:
        self._watches.pop(station_id, None)
        self._unsent.pop(station_id, None)

    def forget(self, station_id: str) -> None:
        """The station left this shard: its view must not linger in snapshots."""
        for table in (self._views, self._dirty):
            table.pop(station_id, None)
        self.unwatch(station_id)

    # -- reading ------------------------------------------------------------------------

    def state(self, station_id: str) -> dict | None:
        view = self._views.get(station_id)
        return None if view is None else view.as_dict(station_id)

    def states(self) -> dict[str, dict]:
        return {sid: view.as_dict(sid) for sid, view in self._views.items()}

    # -- sending ------------------------------------------------------------------------

    async def run(self) -> None:
        try:
            while True:
                await asyncio.sleep(self.interval)
                await self.flush()
        finally:
            await self.flush()

    async def flush(self) -> None:
        async with self._lock:
            now = self._clock()
            self._update_rate(now)
            for sid, until in list(self._watches.items()):
                if until <= now:
                    self.unwatch(sid)
            parts = self._deltas(now) + self._frame_messages()
            sent = 0
            try:
                for group, message, counter, _restore in parts:
                    # asyncio.timeout, not wait_for: in Python 3.11 wait_for drops a
                    # cancellation that arrives as the send completes, and run() then
                    # never stops.
                    async with asyncio.timeout(self.send_timeout):
                        await self._send(group, message)
                    sent += 1
                    self.counters[counter] += 1
            except Exception as exc:
                self._warn(now, exc)
            finally:
                # Unsent parts (failure or cancellation) go out with the next flush.
                for *_, restore in reversed(parts[sent:]):
                    restore()

    def _deltas(self, now: float) -> list[tuple]:
        dirty, self._dirty = self._dirty, {}
        txs, self._transactions = self._transactions, deque(maxlen=self._transactions.maxlen)
        views = []
        for sid in dirty:
            live = self._views.get(sid)
            if live is not None:
                views.append(live.as_dict(sid))
                live.changed_at = None
        quiet_for = now - self._last_delta_at
        if not views and not txs and quiet_for < TOTALS_EVERY_S:
            return []
        self._last_delta_at = now
        totals = fleet_totals((v.online, v.evses) for v in self._views.values())
        totals["msgs_per_s"] = self.counters["msgs_per_s"]
        stats = {"frames_in": self.counters["frames_in"],
                 "frames_out": self.counters["frames_out"],
                 "msgs_per_s": self.counters["msgs_per_s"], "totals": totals}
        parts = []
        for start in range(0, max(len(views), 1), self.max_stations):
            chunk = views[start:start + self.max_stations]
            own = txs if start == 0 else ()
            message = {"type": "fleet.delta", "shard": self.shard, "sent_at": now,
                       "stations": {v["station_id"]: v for v in chunk},
                       "transactions": [_summary(s, e) for s, e in own], "stats": stats}
            parts.append((DASHBOARD_GROUP, message, "deltas_sent",
                          lambda chunk=chunk, own=own: self._restore(chunk, own)))
        # After the deltas: they are what a watching page waits for.
        parts.append((TOTALS_GROUP, {"type": "fleet.totals", "shard": self.shard,
                                     "sent_at": now, "totals": totals}, "totals_sent",
                      lambda: None))
        return parts

    def _restore(self, views: list[dict], txs) -> None:
        for sent in views:
            live = self._views.get(sent["station_id"])
            if live is not None:
                live.changed_at = sent["changed_at"]
        self._dirty = {**dict.fromkeys(v["station_id"] for v in views), **self._dirty}
        if txs:
            newer, self._transactions = self._transactions, deque(txs, maxlen=txs.maxlen)
            self._transactions.extend(newer)

    def _frame_messages(self) -> list[tuple]:
        unsent, self._unsent = self._unsent, {}
        parts = []
        for sid, frames in unsent.items():
            message = {"type": "station.frames", "station_id": sid,
                       "frames": [frame_dict(f) for f in frames]}
            parts.append((station_group(sid), message, "frame_messages_sent",
                          lambda sid=sid, frames=frames: self._restore_frames(sid, frames)))
        return parts

    def _restore_frames(self, station_id: str, frames: list[tuple]) -> None:
        if station_id in self._watches:
            self._unsent[station_id] = (frames + self._unsent.get(station_id, []))[
                -self.frame_backlog:]

    def _update_rate(self, now: float) -> None:
        mark_at, mark_total = self._rate_mark
        total = self.counters["frames_in"] + self.counters["frames_out"]
        if now - mark_at >= 1.0:
            self.counters["msgs_per_s"] = round((total - mark_total) / (now - mark_at), 1)
            self._rate_mark = (now, total)

    def _warn(self, now: float, exc: Exception) -> None:
        self.counters["send_errors"] += 1
        self._failures += 1
        # Redis down means a failure every flush; one line per WARN_EVERY_S is enough.
        if now - self._last_warning >= WARN_EVERY_S:
            LOGGER.warning("cannot publish to the channel layer (%d failures): %r",
                           self._failures, exc)
            self._last_warning = now
            self._failures = 0
