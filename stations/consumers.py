"""Dashboard websockets: a snapshot on connect, then throttled, filtered deltas.

Shards send `fleet.delta` for every station that changed; a browser only gets the
stations it shows (its current table page) and the fleet totals, at most twice a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.db.models import Count

from . import services
from .engine.publisher import DASHBOARD_GROUP, station_group
from .engine.summary import add_totals, fleet_totals
from .models import Connector, Frame, Station, StationLive
from .rows import row_from_db, row_from_view
from .series import SHARD_STALE_S, fleet_series
from .shard_status import cached_shard_states, stale_summary

FLEET_SEND_EVERY_S = 0.5
STATION_SEND_EVERY_S = 0.25
WATCH_RENEW_S = 10.0
SHARDS_EVERY_S = 2.0
MAX_SUBSCRIBED = 200


def database_totals() -> dict:
    """The fleet totals from what the database last heard, counted as the shards count
    them and as the table shows the rows (for a page opened before any shard reported).

    Plain values, not model instances: 10,000 stations with their EVSEs and connectors
    took 2 s as rows (the web process's event loop felt it), this takes a fraction."""
    online = dict(Station.objects.filter(enabled=True).values_list("pk", "online"))
    evses: dict[int, dict] = {pk: {} for pk in online}
    for pk, live in StationLive.objects.filter(station__enabled=True).values_list(
            "station_id", "evses"):
        evses[pk] = dict(live or {})
    # EVSEs the engine has not reported yet: their connectors show as Unavailable.
    connectors = (Connector.objects.filter(evse__station__enabled=True)
                  .values_list("evse__station_id", "evse__evse_id").annotate(n=Count("pk")))
    for pk, evse_id, n in connectors:
        evses[pk].setdefault(str(evse_id), {"connectors": dict.fromkeys(range(n), "Unavailable")})
    return fleet_totals((online[pk], station_evses) for pk, station_evses in evses.items())


def station_rows(station_ids) -> dict[str, dict]:
    stations = Station.objects.filter(station_id__in=station_ids).prefetch_related(
        "evses__connectors")
    live = dict(StationLive.objects.filter(station__station_id__in=station_ids)
                .values_list("station__station_id", "evses"))
    return {s.station_id: row_from_db(s, live.get(s.station_id)) for s in stations}


def shards_of(station_ids) -> dict:
    shards: dict = {}
    rows = Station.objects.filter(station_id__in=station_ids).values_list("station_id", "shard")
    for station_id, shard in rows:
        shards.setdefault(None if services.embedded() else shard, []).append(station_id)
    return shards


class DashboardConsumer(AsyncJsonWebsocketConsumer):
    """Shared by both sockets: login required, throttled sending of what changed."""

    send_every = FLEET_SEND_EVERY_S

    async def connect(self):
        if not self.scope["user"].is_authenticated:
            await self.close()
            return
        self.pending: dict[str, dict] = {}
        self.changed = asyncio.Event()
        await self.channel_layer.group_add(DASHBOARD_GROUP, self.channel_name)
        await self.accept()
        await self.send_snapshot()
        self.sender = asyncio.ensure_future(self._send_loop())

    async def disconnect(self, code):
        sender = getattr(self, "sender", None)
        if sender is not None:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
        await self.channel_layer.group_discard(DASHBOARD_GROUP, self.channel_name)

    async def _send_loop(self):
        while True:
            await self.changed.wait()
            self.changed.clear()
            await self.send_pending()
            await asyncio.sleep(self.send_every)


class FleetConsumer(DashboardConsumer):
    async def send_snapshot(self):
        self.subscribed: set[str] = set()
        self.oldest_change: float | None = None
        self.shard_totals: dict[str, tuple[float, dict]] = {}
        self.new_points: list[list] = []
        self.series = await fleet_series()
        self.series.listen(self._new_point)
        self.totals = self.series.totals()
        if self.totals is None:
            self.totals = await database_sync_to_async(database_totals)()
        self.shards = stale_summary(await database_sync_to_async(cached_shard_states)())
        self.totals = self._with_stale(self.totals)
        await self.send_json({"type": "snapshot", "totals": self.totals,
                              "series": self.series.points(), "shards": self.shards})
        self.shard_watch = asyncio.ensure_future(self._watch_shards())

    async def _watch_shards(self):
        """Stations of a shard no copy runs are stale: not counted as connected, and the
        page says which shards wait for a free engine worker slot."""
        while True:
            await asyncio.sleep(SHARDS_EVERY_S)
            shards = stale_summary(await database_sync_to_async(cached_shard_states)())
            if shards != self.shards:
                self.shards = shards
                self.shards_changed = True
                self.changed.set()

    def _with_stale(self, totals: dict) -> dict:
        if not self.shards["stale"]:
            return {**totals, "stale": 0}
        stale = {str(s) for s in self.shards["stale"]}
        now = time.time()
        fresh = [t for shard, (at, t) in self.shard_totals.items()
                 if now - at <= SHARD_STALE_S and shard not in stale]
        if self.shard_totals:
            live = add_totals(fresh)
        else:  # before the first shard reported to this socket: the stale were counted
            live = {**totals, "connected": max(0, totals.get("connected", 0)
                                               - self.shards["stale_stations"])}
        return {**live, "stale": self.shards["stale_stations"]}

    def _new_point(self, point: list) -> None:
        self.new_points.append(point)
        self.changed.set()

    async def disconnect(self, code):
        series = getattr(self, "series", None)
        if series is not None:
            series.unlisten(self._new_point)
        watch = getattr(self, "shard_watch", None)
        if watch is not None:
            watch.cancel()
        await super().disconnect(code)

    async def receive_json(self, content, **kwargs):
        if content.get("type") == "subscribe":
            self.subscribed = {str(s) for s in content.get("stations", [])[:MAX_SUBSCRIBED]}
            # The page came from the database, up to a second behind: ask for live views.
            shards = await database_sync_to_async(shards_of)(self.subscribed)
            for shard, station_ids in shards.items():
                await services.anotify_shard(shard, "refresh", station_ids=station_ids)

    async def fleet_delta(self, event):
        for station_id, view in event["stations"].items():
            if station_id in self.subscribed:
                self.pending[station_id] = row_from_view(view, event.get("shard"))
                changed_at = view.get("changed_at")
                if changed_at is not None:
                    # The oldest change in the next message: how late the page is.
                    self.oldest_change = min(self.oldest_change or changed_at, changed_at)
        totals = event.get("stats", {}).get("totals")
        if totals is not None:
            now = time.time()
            self.shard_totals[event.get("shard", "")] = (now, totals)
            # A shard gone quiet is gone: its stations may be counted by another by now.
            self.totals = self._with_stale(add_totals(
                t for at, t in self.shard_totals.values() if now - at <= SHARD_STALE_S))
        self.changed.set()

    async def send_pending(self):
        stations, self.pending = self.pending, {}
        changed_at, self.oldest_change = self.oldest_change, None
        message = {"type": "update", "totals": self.totals, "stations": stations,
                   "changed_at": changed_at}
        if getattr(self, "shards_changed", False):
            self.shards_changed = False
            self.totals = message["totals"] = self._with_stale(self.totals)
            message["shards"] = self.shards
        if self.new_points:
            message["series"], self.new_points = self.new_points, []
        await self.send_json(message)


class StationConsumer(DashboardConsumer):
    send_every = STATION_SEND_EVERY_S

    async def send_snapshot(self):
        self.station_id = self.scope["url_route"]["kwargs"]["station_id"]
        station, frames = await database_sync_to_async(self._load)()
        self.shard = station["shard"] if station else None
        await self.channel_layer.group_add(station_group(self.station_id), self.channel_name)
        await self.send_json({"type": "snapshot", "station": station, "frames": frames})
        self.watcher = asyncio.ensure_future(self._keep_watching())

    def _load(self):
        rows = station_rows([self.station_id])
        return rows.get(self.station_id), Frame.log_of(self.station_id)

    async def _keep_watching(self):
        # The shard forgets a watch after 30 s unless it is renewed.
        while True:
            await services.anotify_shard(self.shard, "watch", station_id=self.station_id)
            await asyncio.sleep(WATCH_RENEW_S)

    async def disconnect(self, code):
        watcher = getattr(self, "watcher", None)
        if watcher is not None:
            watcher.cancel()
            with contextlib.suppress(Exception):
                await services.anotify_shard(self.shard, "unwatch", station_id=self.station_id)
            await self.channel_layer.group_discard(station_group(self.station_id),
                                                   self.channel_name)
        await super().disconnect(code)

    async def fleet_delta(self, event):
        view = event["stations"].get(self.station_id)
        if view is not None:
            row = row_from_view(view, event.get("shard"))
            # When the engine saw this state: the page charts it on the server's clock.
            row["updated"] = view.get("updated")
            self.pending["station"] = row
        mine = [t for t in event.get("transactions", ()) if t.get("station_id") == self.station_id]
        if mine:
            self.pending.setdefault("transactions", []).extend(mine)
        if view is not None or mine:
            self.changed.set()

    async def station_frames(self, event):
        await self.send_json({"type": "frames", "frames": event["frames"]})

    async def send_pending(self):
        pending, self.pending = self.pending, {}
        if pending:
            await self.send_json({"type": "station", **pending})
