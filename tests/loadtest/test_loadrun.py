"""One process's load run: it ends at its duration, then drains what is in flight, and says
what really ran (ramp, scenario, drain, why it ended)."""

import asyncio
import json
import time

import pytest

from stations.engine.config import ConnectorConfig, EvseConfig, StationConfig
from stations.engine.loadrun import LoadRun
from stations.engine.scenario import scenario_from_dict
from stations.sandbox import Policy, SandboxCsms
from tests.waiting import eventually

# The scenario says an hour: the run's own duration must win.
LONG = {"name": "long", "duration_s": 3600}


@pytest.fixture
async def csms():
    server = SandboxCsms(Policy())
    server.url = await server.start()
    yield server
    await server.stop()
    assert server.violations == []


def configs(csms, count=1, response_timeout=3.0):
    return [StationConfig(f"LR-{n}", csms.url,
                          evses=(EvseConfig(1, connectors=(ConnectorConfig(1),)),),
                          response_timeout=response_timeout)
            for n in range(1, count + 1)]


async def test_a_run_ends_at_its_duration_whatever_the_scenario_says(csms):
    load = LoadRun(configs(csms, 4), scenario_from_dict(LONG), 1, duration_s=2,
                   ramp_per_second=20)
    began = time.monotonic()
    snapshot = await asyncio.wait_for(load.run(), 20)
    elapsed = time.monotonic() - began
    progress = load.progress.as_dict()
    assert 2 <= elapsed < 2 + 3 + 1, "the duration, plus at most a response timeout to drain"
    assert progress["end_reason"] == "duration"
    assert progress["phase"] == "done"
    assert progress["stations_started"] == 4
    assert 0.15 <= progress["ramp_s"] < 2, "4 stations at 20/s, and a busy machine"
    assert progress["ramp_s"] + progress["scenario_s"] == pytest.approx(2, abs=0.1)
    assert 0 <= progress["drain_s"] <= 3
    assert snapshot["counts"]["boot"] == {"Accepted": 4}


async def test_a_duration_shorter_than_the_ramp_ends_the_run_during_the_ramp(csms):
    load = LoadRun(configs(csms, 10), scenario_from_dict(LONG), 1, duration_s=1,
                   ramp_per_second=4)
    await asyncio.wait_for(load.run(), 20)
    progress = load.progress.as_dict()
    assert progress["end_reason"] == "duration"
    assert 4 <= progress["stations_started"] <= 6, "about 1 s of a 4/s ramp"
    assert progress["scenario_s"] == 0


async def test_a_stopped_run_says_so(csms):
    load = LoadRun(configs(csms, 2), scenario_from_dict(LONG), 1, duration_s=60,
                   ramp_per_second=20)
    stop = asyncio.Event()
    task = asyncio.ensure_future(load.run(stop))
    await eventually(lambda: load.progress.phase == "scenario", timeout=10)
    stop.set()
    await asyncio.wait_for(task, 10)
    assert load.progress.as_dict()["end_reason"] == "stopped"


async def test_a_call_in_flight_at_the_end_is_answered_in_the_drain_and_counted(csms):
    load = LoadRun(configs(csms, 1, response_timeout=5), scenario_from_dict(LONG), 1,
                   duration_s=1.5, ramp_per_second=20)
    task = asyncio.ensure_future(load.run())
    await eventually(lambda: load.progress.phase == "scenario", timeout=10)
    station = load.shard.stations["LR-1"]
    await eventually(lambda: len(csms.messages("LR-1", "StatusNotification")) == 1)
    await asyncio.sleep(0.2)  # its answer is in
    # From now on the CSMS keeps its StatusNotification answers back.
    csms.policy.silent_actions.add("StatusNotification")
    await station.set_fault(1, True)
    await eventually(lambda: len(csms.messages("LR-1", "StatusNotification")) == 2)
    await eventually(lambda: load.progress.phase == "drain", timeout=5)
    # A change during the drain is not sent: the run has stopped making traffic.
    await station.set_fault(1, False)
    await asyncio.sleep(0.3)
    pending = [json.loads(raw) for sid, direction, raw in csms.frames
               if direction == "in" and '"StatusNotification"' in raw][-1]
    await csms.send_raw("LR-1", json.dumps([3, pending[1], {}]))
    snapshot = await asyncio.wait_for(task, 10)

    status = snapshot["counts"]["actions"]["StatusNotification"]
    assert (status["requests"], status["responses"], status["timeouts"]) == (2, 2, 0)
    assert len(csms.messages("LR-1", "StatusNotification")) == 2, "nothing after the drain"
    progress = load.progress.as_dict()
    assert 0.3 <= progress["drain_s"] < 2, "it waited for the answer, not for the timeout"
    assert progress["unanswered"] == 0


async def test_the_drain_gives_up_at_the_response_timeout_and_counts_a_timeout(csms):
    load = LoadRun(configs(csms, 1, response_timeout=1), scenario_from_dict(LONG), 1,
                   duration_s=1.5, ramp_per_second=20)
    task = asyncio.ensure_future(load.run())
    await eventually(lambda: load.progress.phase == "scenario", timeout=10)
    await eventually(lambda: len(csms.messages("LR-1", "StatusNotification")) == 1)
    await asyncio.sleep(0.2)
    csms.policy.silent_actions.add("Heartbeat")
    station = load.shard.stations["LR-1"]
    # A heartbeat sent just before the end: the CSMS never answers it.
    await eventually(lambda: load.progress.phase == "scenario" and
                     load.progress.elapsed_s() > 1.2, timeout=5)
    heartbeat = asyncio.ensure_future(station.availability.send_heartbeat())
    snapshot = await asyncio.wait_for(task, 10)
    await heartbeat
    beat = snapshot["counts"]["actions"]["Heartbeat"]
    assert (beat["requests"], beat["responses"], beat["timeouts"]) == (1, 0, 1)
    assert load.progress.as_dict()["drain_s"] == pytest.approx(0.7, abs=0.5)


async def test_transaction_messages_left_in_the_outbox_are_reported_as_never_sent(csms):
    csms.policy.silent_actions.add("TransactionEvent")
    load = LoadRun(configs(csms, 1, response_timeout=1), scenario_from_dict(LONG), 1,
                   duration_s=2, ramp_per_second=20)
    task = asyncio.ensure_future(load.run())
    await eventually(lambda: load.progress.phase == "scenario", timeout=10)
    await eventually(lambda: len(csms.messages("LR-1", "StatusNotification")) == 1)
    station = load.shard.stations["LR-1"]
    assert (await station.start_charging(1, "04A1B2C3")).ok
    await eventually(lambda: csms.messages("LR-1", "TransactionEvent"))
    # Ended joins the queue behind the Started the CSMS does not answer.
    assert (await station.stop_charging(1)).ok
    snapshot = await asyncio.wait_for(task, 10)
    events = snapshot["counts"]["actions"]["TransactionEvent"]
    assert (events["requests"], events["responses"], events["timeouts"]) == (1, 0, 1)
    assert snapshot["counts"]["transactions"] == {"started": 1, "completed": 0, "rejected": 0}
    assert load.progress.as_dict()["queued"] == 2, "Started to retry, and Ended"
