"""One process's part of a load test: its stations, the scenario on them, the metrics."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable
from dataclasses import replace

from .config import StationConfig
from .metrics import RunMetrics
from .scenario import Scenario, ScenarioDriver, station_variables
from .shard import Shard
from .station import EventSink

DEFAULT_RAMP_PER_SECOND = 50.0


class LoadRun:
    def __init__(
        self,
        configs: Iterable[StationConfig],
        scenario: Scenario,
        seed: int | None,
        *,
        ramp_per_second: float | None = None,
        sink: EventSink | None = None,
        metrics: RunMetrics | None = None,
    ):
        extra = station_variables(scenario)
        self.configs = [replace(c, variables={**c.variables, **extra}) for c in configs]
        self.scenario = scenario
        self.seed = seed
        self.metrics = metrics or RunMetrics()
        self._extra_sink = sink
        ramp = ramp_per_second or (scenario.boot.ramp_per_second if scenario.boot else None)
        self.shard = Shard(self._sink, ramp_per_second=ramp or DEFAULT_RAMP_PER_SECOND,
                           frame_hook=self.metrics.frame)
        self.driver: ScenarioDriver | None = None

    def _sink(self, station_id: str, kind: str, data: dict) -> None:
        self.metrics.event(station_id, kind, data)
        if self._extra_sink is not None:
            self._extra_sink(station_id, kind, data)

    async def run(self, stop: asyncio.Event | None = None,
                  on_started: Callable[[], None] | None = None) -> dict:
        """Ramp up, play the scenario for its duration (or until `stop`), shut down.

        Returns the metrics snapshot; the stations' connections are closed by then.
        """
        stop = stop or asyncio.Event()
        stopper = asyncio.ensure_future(stop.wait())
        try:
            ramp = asyncio.ensure_future(self.shard.start(self.configs))
            await asyncio.wait({ramp, stopper}, return_when=asyncio.FIRST_COMPLETED)
            if ramp.done():
                if on_started is not None:
                    on_started()
                self.driver = ScenarioDriver(self.scenario, self.seed, self.shard)
                playing = asyncio.ensure_future(self.driver.run())
                await asyncio.wait({playing, stopper}, return_when=asyncio.FIRST_COMPLETED)
                playing.cancel()
                await asyncio.gather(playing, return_exceptions=True)
            ramp.cancel()
            await asyncio.gather(ramp, return_exceptions=True)
        finally:
            stopper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await stopper
            await self.shard.stop()
        return self.metrics.snapshot()
