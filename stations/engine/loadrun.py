"""One process's part of a load test: its stations, the scenario on them, the metrics.

A run lasts its duration, counted from its start: the ramp-up, then the scenario until the
duration is over (the scenario's clock starts when the last station was started). Then it
drains: no station starts another CALL, and the calls in flight get their answer or time
out, for at most the response timeout. Only then are the connections closed, so every CALL
counted was sent, and every one sent is answered, refused, timed out or, if the drain ran
out, counted as unanswered.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from .config import StationConfig
from .metrics import RunMetrics
from .scenario import Scenario, station_variables
from .scenario_driver import ScenarioDriver
from .shard import Shard
from .station import EventSink

DEFAULT_RAMP_PER_SECOND = 50.0

PENDING, RAMP, SCENARIO, DRAIN, DONE = "pending", "ramp", "scenario", "drain", "done"


@dataclass
class RunProgress:
    """Where a run is and, once it ended, what really ran. Times are time.monotonic()."""

    stations: int
    duration_s: float
    drain_limit_s: float
    phase: str = PENDING
    began: float | None = None
    ramp_ended: float | None = None
    play_ended: float | None = None
    drain_ended: float | None = None
    stations_started: int = 0
    # "duration" (it ran its course), "stopped" (asked to), or "error".
    end_reason: str | None = None
    # Stations whose CALL was still unanswered when the drain ran out.
    unanswered: int = 0
    # Transaction messages still in the stations' outboxes at the end: never sent.
    queued: int = 0

    def _span(self, start: float | None, end: float | None) -> float:
        if start is None:
            return 0.0
        return round((end if end is not None else time.monotonic()) - start, 3)

    def elapsed_s(self) -> float:
        return self._span(self.began, self.drain_ended)

    def as_dict(self) -> dict:
        ramp_end = self.ramp_ended or self.play_ended
        return {
            "phase": self.phase, "stations": self.stations,
            "stations_started": self.stations_started,
            "duration_s": self.duration_s, "drain_limit_s": self.drain_limit_s,
            "elapsed_s": self.elapsed_s(),
            "ramp_s": self._span(self.began, ramp_end),
            "scenario_s": self._span(self.ramp_ended, self.play_ended)
            if self.ramp_ended is not None else 0.0,
            "drain_s": self._span(self.play_ended, self.drain_ended),
            "end_reason": self.end_reason, "unanswered": self.unanswered,
            "queued": self.queued,
        }


class LoadRun:
    def __init__(
        self,
        configs: Iterable[StationConfig],
        scenario: Scenario,
        seed: int | None,
        *,
        duration_s: float | None = None,
        ramp_per_second: float | None = None,
        sink: EventSink | None = None,
        metrics: RunMetrics | None = None,
        planned_ramp_s: float | None = None,
        plan_key: Callable[[str], str] | None = None,
    ):
        extra = station_variables(scenario)
        self.configs = [replace(c, variables={**c.variables, **extra}) for c in configs]
        self.scenario = scenario
        self.seed = seed
        self.metrics = metrics or RunMetrics()
        self._extra_sink = sink
        ramp = ramp_per_second or (scenario.boot.ramp_per_second if scenario.boot else None)
        self.ramp_per_second = ramp or DEFAULT_RAMP_PER_SECOND
        self.shard = Shard(self._sink, ramp_per_second=self.ramp_per_second,
                           frame_hook=self.metrics.frame)
        self.driver: ScenarioDriver | None = None
        # What seeds a station's plan instead of its id (a run's stations carry its number).
        self.plan_key = plan_key
        # How long the whole fleet's ramp is planned to take; a part of a run spread over
        # workers ramps its share at its share of the rate, in the same time.
        self.planned_ramp_s = planned_ramp_s if planned_ramp_s is not None else \
            len(self.configs) / self.ramp_per_second
        self.progress = RunProgress(
            stations=len(self.configs), duration_s=duration_s or scenario.duration_s,
            drain_limit_s=max((c.response_timeout for c in self.configs), default=0.0))

    def _sink(self, station_id: str, kind: str, data: dict) -> None:
        self.metrics.event(station_id, kind, data)
        if self._extra_sink is not None:
            self._extra_sink(station_id, kind, data)

    def _planned(self) -> Scenario | None:
        """The scenario cut to what fits after the ramp. The cut depends on the planned ramp
        time, not on how long this ramp took, so the same seed plays the same steps."""
        playing_s = self.progress.duration_s - self.planned_ramp_s
        return replace(self.scenario, duration_s=playing_s) if playing_s > 0 else None

    async def run(self, stop: asyncio.Event | None = None,
                  on_started: Callable[[], None] | None = None) -> dict:
        """Ramp up, play the scenario until the duration is over (or `stop`), drain, shut
        down. Returns the metrics snapshot; the stations' connections are closed by then."""
        stop = stop or asyncio.Event()
        progress = self.progress
        progress.began = time.monotonic()
        deadline = progress.began + progress.duration_s
        stopper = asyncio.ensure_future(stop.wait())
        held: list = []
        try:
            progress.phase = RAMP
            ramp = asyncio.ensure_future(self.shard.start(self.configs))
            await _until({ramp, stopper}, deadline)
            if ramp.done() and not stop.is_set():
                progress.ramp_ended = time.monotonic()
                progress.phase = SCENARIO
                if on_started is not None:
                    on_started()
                waiting = {stopper}
                planned = self._planned()
                if planned is not None:
                    self.driver = ScenarioDriver(planned, self.seed, self.shard,
                                                 plan_key=self.plan_key)
                    waiting.add(asyncio.ensure_future(self.driver.run()))
                # The driver is done when its plan is; the run lasts its duration.
                while stopper not in (done := await _until(waiting, deadline)) and \
                        time.monotonic() < deadline:
                    waiting -= done
                for task in waiting - {stopper}:
                    task.cancel()
                    await asyncio.gather(task, return_exceptions=True)
            ramp.cancel()
            await asyncio.gather(ramp, return_exceptions=True)
            progress.play_ended = time.monotonic()
            progress.stations_started = len(self.shard.stations)
            progress.end_reason = "stopped" if stop.is_set() else "duration"
            progress.phase = DRAIN
            held = await self._drain()
        except BaseException:
            progress.end_reason = "error"
            raise
        finally:
            stopper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await stopper
            progress.play_ended = progress.play_ended or time.monotonic()
            await self.shard.stop()
            # Calls that waited behind the hold now find no connection and are not sent.
            for station in held:
                station.release_calls()
            progress.drain_ended = progress.drain_ended or time.monotonic()
            progress.stations_started = progress.stations_started or len(self.shard.stations)
            progress.phase = DONE
        return self.metrics.snapshot()

    async def _drain(self) -> list:
        """Stop every station's CALLs once its call in flight is done, for at most the
        response timeout; returns the stations held."""
        stations = list(self.shard.stations.values())
        holds = {asyncio.ensure_future(station.hold_calls()): station for station in stations}
        pending: set = set()
        if holds:
            _, pending = await asyncio.wait(holds, timeout=self.progress.drain_limit_s)
        self.progress.drain_ended = time.monotonic()
        self.progress.unanswered = len(pending)
        self.progress.queued = sum(len(station.outbox) for station in stations)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        return [station for task, station in holds.items()
                if not task.cancelled() and task.exception() is None]


async def _until(tasks: set, deadline: float) -> set:
    """The tasks done by `deadline` (waiting for the first of them)."""
    done, _ = await asyncio.wait(tasks, timeout=max(deadline - time.monotonic(), 0),
                                 return_when=asyncio.FIRST_COMPLETED)
    return done
