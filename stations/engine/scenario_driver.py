"""Performing a scenario's plan on the stations of one shard, on time, each station's steps
in turn; a failing step is logged and the plan goes on."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping

from .driver import Outcome
from .scenario import Scenario, Step, effective_seed, plan

LOGGER = logging.getLogger(__name__)

ACTIONS = {
    "start_charging": lambda st, evse_id, id_token, token_type: st.start_charging(
        evse_id, id_token, token_type),
    "present_token": lambda st, evse_id, id_token, token_type: st.present_id_token(
        evse_id, id_token, token_type),
    "plug_in": lambda st, evse_id: st.plug_in(evse_id),
    "stop_charging": lambda st, evse_id: st.stop_charging(evse_id),
    "unplug": lambda st, evse_id: st.unplug(evse_id),
    "set_fault": lambda st, evse_id: st.set_fault(evse_id, True),
    "clear_fault": lambda st, evse_id: st.set_fault(evse_id, False),
    "disconnect": lambda st: st.go_offline(),
    "connect": lambda st: st.go_online(),
}


class ScenarioDriver:
    """Performs a scenario on the stations of one shard (a Shard or a dict of Stations).

    Start it once the stations exist (after `Shard.start` returned): the plan covers the
    stations present when `run` begins.
    """

    def __init__(self, scenario: Scenario, seed: int | None, stations, *,
                 clock: Callable[[], float] | None = None,
                 on_step: Callable[[Step, Outcome], None] | None = None,
                 plan_key: Callable[[str], str] | None = None):
        self.scenario = scenario
        self.seed = effective_seed(scenario, seed)
        self.stations: Mapping = getattr(stations, "stations", stations)
        self.clock = clock
        self.on_step = on_step
        # What seeds a station's plan, when not its id (see scenario.station_plan).
        self.plan_key = plan_key
        self.steps: list[Step] = []
        self.log: list[tuple[Step, str]] = []
        # How late a step was dispatched at worst: the sign of an overloaded loop.
        self.max_lag_s = 0.0

    async def run(self) -> None:
        clock = self.clock or asyncio.get_running_loop().time
        evses = {sid: sorted(station.evses) for sid, station in self.stations.items()}
        self.steps = plan(self.scenario, self.seed, evses, self.plan_key)
        pending: set[asyncio.Task] = set()
        last: dict[str, asyncio.Task] = {}
        began = clock()
        try:
            for step in self.steps:
                delay = step.at_s - (clock() - began)
                self.max_lag_s = max(self.max_lag_s, -delay)
                # Sleeping even when late lets the actions already under way progress.
                await asyncio.sleep(max(delay, 0))
                # Actions wait for the CSMS (Authorize): each runs in its own task, so one
                # slow answer does not hold up the schedule of every other station.
                task = asyncio.ensure_future(self._perform(step, last.get(step.station_id)))
                last[step.station_id] = task
                pending.add(task)
                task.add_done_callback(pending.discard)
            await asyncio.sleep(max(self.scenario.duration_s - (clock() - began), 0))
        finally:
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def _perform(self, step: Step, before: asyncio.Task | None) -> None:
        # A driver does not unplug while the card reader still waits for the CSMS.
        if before is not None and not before.done():
            await asyncio.wait({before})
        station = self.stations.get(step.station_id)
        try:
            if station is None:
                outcome = Outcome(False, "Missing", "the station is not running")
            else:
                outcome = await ACTIONS[step.action](station, **step.kwargs)
        except Exception as exc:
            LOGGER.warning("%s: %s failed: %r", step.station_id, step.action, exc)
            outcome = Outcome(False, "Error", f"{type(exc).__name__}: {exc}")
        self.log.append((step, outcome.status))
        if self.on_step is not None:
            try:
                self.on_step(step, outcome)
            except Exception:
                LOGGER.exception("on_step failed for %s", step)
