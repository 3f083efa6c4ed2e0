"""Chart history kept on the server, so a reload, a second web process or a restarted one
shows what the page showed before.

The fleet chart ("last 10 minutes") is built in each web process, from the totals each
shard sends with every delta (`fleet.totals`, a group of its own so that the web process
does not decode every station of every delta twice), one point a second; this works the
same whether the shards run in this process (embedded) or in Celery workers elsewhere,
since it uses only the channel layer. Its points go to a ring table of one row a second,
from which a restarted or another web process reads the history back.

A transaction's power and energy chart is sampled by the Recorder of the shard that runs
the station: it sees every EVSE report whether anyone watches or not, is the one writer
for its stations, and already writes to the database once a second. One point per
TX_STEP_S on a grid aligned to the epoch (so the page, drawing live points on the same
grid, has the very points a reload reads back), thinned out by halves as the session
grows so that a transaction keeps at most TX_MAX_POINTS.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable

from asgiref.sync import sync_to_async

from .engine.publisher import TOTALS_GROUP
from .engine.summary import add_totals
from .series_models import FleetSample, TransactionPoint

LOGGER = logging.getLogger(__name__)

FLEET_WINDOW_S = 600
# A shard that sent no totals for this long is gone (its stations may be counted by the
# shard that took them over); quiet shards send theirs every 2 s.
SHARD_STALE_S = 10.0
FLEET_SAVE_EVERY_S = 5.0
SAVE_WARN_EVERY_S = 60.0

TX_STEP_S = 5
TX_MAX_POINTS = 240  # 20 minutes at 5 s; a 10-hour session has a point every 160 s


def tx_level(first_cell: int, cell: int) -> int:
    """How far a transaction's series is thinned once it reaches `cell`: its points are
    2**level cells apart, so that no more than TX_MAX_POINTS span the session."""
    level = 0
    while cell - first_cell >= TX_MAX_POINTS << level:
        level += 1
    return level


def transaction_series(transaction_ids: Iterable[str]) -> dict[str, list[list]]:
    """[time, power W, energy Wh] of each transaction, oldest first."""
    series: dict[str, list[list]] = {}
    rows = (TransactionPoint.objects.filter(transaction_id__in=list(transaction_ids))
            .order_by("transaction_id", "cell")
            .values_list("transaction_id", "cell", "power_w", "energy_wh"))
    for tx_id, cell, power_w, energy_wh in rows:
        series.setdefault(tx_id, []).append([cell * TX_STEP_S, power_w, energy_wh])
    return series


class FleetSeries:
    """The fleet's totals over the last `window` seconds: [second, connected, charging,
    kW, msgs/s] a second, summed over the shards that reported recently."""

    def __init__(self, *, window: int = FLEET_WINDOW_S, stale_after: float = SHARD_STALE_S,
                 clock: Callable[[], float] = time.time):
        self.window = window
        self.stale_after = stale_after
        self._clock = clock
        self._shards: dict[str, tuple[float, dict]] = {}  # shard -> (received at, totals)
        self._points: deque[list] = deque()
        self._unsaved: dict[int, list] = {}
        self._listeners: set[Callable[[list], None]] = set()
        self._task: asyncio.Task | None = None
        self._loaded: asyncio.Future | None = None
        self._last_warning = float("-inf")

    # -- building --------------------------------------------------------------------------

    def add_totals(self, shard: str, totals: dict, now: float | None = None) -> None:
        self._shards[shard] = (self._clock() if now is None else now, totals)

    def totals(self, now: float | None = None) -> dict | None:
        """The fleet's totals from the shards heard from recently; None if there are none."""
        now = self._clock() if now is None else now
        fresh = [t for at, t in self._shards.values() if now - at <= self.stale_after]
        return add_totals(fresh) if fresh else None

    def sample(self, now: float | None = None) -> list:
        """Take this second's point (again, if it has one: the later one wins)."""
        now = self._clock() if now is None else now
        second = int(now)
        totals = self.totals(now)
        point = [second, None, None, None, None] if totals is None else [
            second, totals["connected"], totals["charging"], totals["power_kw"],
            totals["msgs_per_s"]]
        points = self._points
        if points and points[-1][0] == second:
            points[-1] = point
        elif points and points[-1][0] > second:
            return point  # the clock went back: keep the history in order
        else:
            points.append(point)
        while points[0][0] <= second - self.window:
            points.popleft()
        self._unsaved[second] = point
        for listener in list(self._listeners):
            listener(point)
        return point

    def points(self) -> list[list]:
        return [list(p) for p in self._points]

    def listen(self, callback: Callable[[list], None]) -> None:
        """Call `callback(point)` with every new point (a socket sends them on)."""
        self._listeners.add(callback)

    def unlisten(self, callback: Callable[[list], None]) -> None:
        self._listeners.discard(callback)

    # -- storing (in Django's sync thread) -------------------------------------------------

    def save(self) -> None:
        unsaved, self._unsaved = self._unsaved, {}
        if not unsaved:
            return
        FleetSample.objects.bulk_create(
            [FleetSample(slot=at % self.window, at=at, connected=p[1], charging=p[2],
                         power_kw=p[3], msgs_per_s=p[4]) for at, p in unsaved.items()],
            update_conflicts=True, unique_fields=["slot"],
            update_fields=["at", "connected", "charging", "power_kw", "msgs_per_s"])

    def load(self) -> None:
        """Read back what this or another web process sampled within the window."""
        since = int(self._clock()) - self.window
        rows = FleetSample.objects.filter(at__gt=since).order_by("at").values_list(
            "at", "connected", "charging", "power_kw", "msgs_per_s")
        known = {p[0]: p for p in self._points}
        for row in rows:
            known.setdefault(row[0], list(row))
        self._points = deque(known[at] for at in sorted(known))

    # -- running (on the web process's event loop) -----------------------------------------

    async def run(self, layer) -> None:
        """Listen to every fleet.delta and take a point each second, until cancelled."""
        channel = await layer.new_channel()
        await layer.group_add(TOTALS_GROUP, channel)
        receiver = asyncio.ensure_future(self._receive(layer, channel))
        saved_at = self._clock()
        try:
            while True:
                # Just after each whole second: one point per second of the clock.
                await asyncio.sleep(1.05 - self._clock() % 1.0)
                self.sample()
                if self._clock() - saved_at >= FLEET_SAVE_EVERY_S:
                    saved_at = self._clock()
                    await self._save_safely()
        finally:
            receiver.cancel()
            with contextlib.suppress(Exception):
                await layer.group_discard(TOTALS_GROUP, channel)

    async def _receive(self, layer, channel: str) -> None:
        while True:
            message = await layer.receive(channel)
            if message.get("type") == "fleet.totals":
                self.add_totals(str(message.get("shard", "")), message["totals"])

    async def _save_safely(self) -> None:
        try:
            await sync_to_async(self.save)()
        except Exception:
            # A locked or unreachable database costs the history a few seconds, no more.
            now = self._clock()
            if now - self._last_warning >= SAVE_WARN_EVERY_S:
                self._last_warning = now
                LOGGER.exception("could not save the fleet chart's history")


# One series per web process (per event loop: tests run a loop each).
_fleet: tuple[asyncio.AbstractEventLoop, FleetSeries] | None = None


async def fleet_series() -> FleetSeries:
    """This process's fleet series, started on first use with the history read back."""
    global _fleet
    loop = asyncio.get_running_loop()
    if _fleet is None or _fleet[0] is not loop:
        from channels.layers import get_channel_layer

        series = FleetSeries()
        series._loaded = loop.create_future()
        _fleet = (loop, series)
        try:
            await sync_to_async(series.load)()
        except Exception:
            LOGGER.exception("could not read the fleet chart's history")
        series._task = asyncio.ensure_future(series.run(get_channel_layer()))
        series._loaded.set_result(None)
    series = _fleet[1]
    # A socket that arrives while the history is being read waits for it.
    await asyncio.shield(series._loaded)
    return series


def forget_fleet_series() -> None:
    """Drop this process's series (tests: each starts with an empty one)."""
    global _fleet
    if _fleet is not None:
        loop, series = _fleet
        if series._task is not None and not loop.is_closed():
            series._task.cancel()
    _fleet = None
