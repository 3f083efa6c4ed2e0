"""Many stations in one asyncio loop: started at a bounded rate, stopped together."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import Callable, Iterable

from .config import StationConfig
from .station import EventSink, StateNote, StateStore, Station

LOGGER = logging.getLogger(__name__)

GC_THRESHOLDS = (50_000, 20, 100)
# Seconds between live kW/kWh reports of charging EVSEs (to the sink, not the CSMS).
LIVE_METER_S = 2.0
# Seconds between checkpoints of stations with a running transaction: the most charged
# energy a power loss (a process killed) forgets, whether the EV charged online or not.
METER_CHECKPOINT_S = 10.0
# How a station resumes from a state that no clean stop wrote (its process was killed):
# "power-loss" boots (PowerUp) and ends the cut sessions (PowerLoss); "connection-loss"
# goes on with them, as after a lost connection (E11).
CRASH_RECOVERY = ("power-loss", "connection-loss")


class Shard:
    def __init__(
        self,
        sink: EventSink | None = None,
        *,
        ramp_per_second: float = 50.0,
        state_store: StateStore | None = None,
        state_note: StateNote | None = None,
        crash_recovery: str = "power-loss",
        frame_hook=None,
        tune_gc: bool = True,
    ):
        if crash_recovery not in CRASH_RECOVERY:
            raise ValueError(f"crash_recovery must be one of {', '.join(CRASH_RECOVERY)}")
        self.tune_gc = tune_gc
        self.sink = sink
        # Saves a state durably (awaited); notes one to save within a few ms (not awaited).
        self.state_store = state_store
        self.state_note = state_note
        self.crash_recovery = crash_recovery
        # Called as frame_hook(station_id, direction, type_id, unique_id, action, payload,
        # latency_ms) for every frame of every station; None costs nothing.
        self.frame_hook = frame_hook
        # Opening thousands of connections at once looks like an attack to a CSMS; a real
        # fleet comes back after a power cut at some rate too.
        self.ramp_per_second = ramp_per_second
        self.stations: dict[str, Station] = {}
        self._tasks: dict[str, asyncio.Task] = {}
        self._live_meter: asyncio.Task | None = None

    async def report_charging(self, every: float = LIVE_METER_S,
                              checkpoint_every: float = METER_CHECKPOINT_S) -> None:
        """Keep watchers' kW and kWh moving between OCPP meter values, and checkpoint the
        meters of running transactions every `checkpoint_every` seconds."""
        loop = asyncio.get_running_loop()
        checkpoint_due = loop.time() + checkpoint_every
        while True:
            await asyncio.sleep(every)
            checkpoint = self.state_note is not None and loop.time() >= checkpoint_due
            if checkpoint:
                checkpoint_due = loop.time() + checkpoint_every
            for station in self.stations.values():
                charging = False
                for evse in station.evses.values():
                    if evse.transaction is not None:
                        station.report_evse(evse)
                        charging = True
                if charging and checkpoint:
                    station.checkpoint_soon()

    async def start(
        self, configs: Iterable[StationConfig], prepare: Callable[[Station], None] | None = None,
        states: dict[str, dict] | None = None,
    ) -> None:
        """Start stations, spacing them out at `ramp_per_second`.

        `states` holds saved engine states to resume from; `prepare` sets a new station up
        (desired EV, faults, offline) before it first connects.
        """
        if self._live_meter is None:
            self._live_meter = asyncio.ensure_future(self.report_charging())
        if self.tune_gc:
            # Each station holds thousands of objects for hours; with the default
            # thresholds full collections of millions of them take most of the CPU.
            gc.set_threshold(*GC_THRESHOLDS)
        loop = asyncio.get_running_loop()
        began = loop.time()
        for index, config in enumerate(configs):
            if self.ramp_per_second > 0:
                due = began + index / self.ramp_per_second
                delay = due - loop.time()
                # Behind schedule, still yield so the connections already opening progress.
                await asyncio.sleep(max(delay, 0))
            if config.station_id in self.stations:
                continue
            station = self.add(config, (states or {}).get(config.station_id), run=False)
            if prepare is not None:
                prepare(station)
            self._launch(station)
        if self.tune_gc:
            # Stations live for the whole run: keep the collector from rescanning them.
            # Collect first: garbage cycles of the boot (validators, exceptions) would
            # otherwise be frozen with them, for good.
            gc.collect()
            gc.freeze()

    def add(self, config: StationConfig, state: dict | None = None, run: bool = True) -> Station:
        if config.station_id in self.stations:
            raise ValueError(f"{config.station_id} already runs in this shard")
        resume = bool(state) and (state.get("handover", False)
                                  or self.crash_recovery == "connection-loss")
        station = Station(config, self.sink, state=state, state_store=self.state_store,
                          resume=resume)
        station.frame_hook = self.frame_hook
        station.state_note = self.state_note
        if state:
            # The saved state is spent: a crash from here on must not resume from it again.
            station.checkpoint_soon()
        self.stations[config.station_id] = station
        if run:
            self._launch(station)
        return station

    def _launch(self, station: Station) -> None:
        # The station's own coroutine, not a wrapper: one frame less per station.
        task = asyncio.get_running_loop().create_task(station.run(), name=station.id)
        task.add_done_callback(_report_crash)
        self._tasks[station.id] = task

    async def remove(self, station_id: str, timeout: float = 5.0) -> None:
        station = self.stations.pop(station_id)
        task = self._tasks.pop(station_id)
        await station.stop()
        await _finish(task, timeout)

    def fence(self) -> None:
        """Stop sending at once: every connection is cut from its station (the next frame
        raises ConnectionError and stays queued); stop() closes them."""
        for station in self.stations.values():
            station.halt()
            station.detach()

    async def stop(self, timeout: float = 10.0, *, handover: bool = False,
                   drain: float = 0.0) -> None:
        """Close every station's connection; give up on stragglers after `timeout`.

        `drain`: seconds to let CALLs in flight get their answers first. `handover`: save
        every station's state marked so the next process resumes its transactions as after
        a lost connection, not a power loss."""
        if self._live_meter is not None:
            self._live_meter.cancel()
            self._live_meter = None
        if drain > 0 and self.stations:
            holds = [asyncio.ensure_future(s.hold_calls()) for s in self.stations.values()]
            _, late = await asyncio.wait(holds, timeout=drain)
            for hold in late:
                hold.cancel()
        for station in self.stations.values():
            await station.stop()
        tasks = list(self._tasks.values())
        if tasks:
            done, pending = await asyncio.wait(tasks, timeout=timeout)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if handover and self.state_store is not None and self.stations:
            saves = [asyncio.ensure_future(s.save_state(handover=True))
                     for s in self.stations.values()]
            _, late = await asyncio.wait(saves, timeout=timeout)
            if late:
                LOGGER.error("%d station states not saved within %.0f s", len(late), timeout)
            for save in late:
                save.cancel()
        self.stations.clear()
        self._tasks.clear()

    def online_count(self) -> int:
        return sum(1 for station in self.stations.values() if station.online)


def _report_crash(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        LOGGER.error("%s: station stopped on an error", task.get_name(),
                     exc_info=task.exception())


async def _finish(task: asyncio.Task, timeout: float) -> None:
    done, _ = await asyncio.wait({task}, timeout=timeout)
    if not done:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
