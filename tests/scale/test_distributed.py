"""The scale-out fleet for real: 50 stations on 2 shards in Celery worker processes.

One scenario, in order, because its parts build on each other and the set-up (workers,
PostgreSQL, Redis) is what costs time: boot, commands and their outcomes, a worker child
killed with SIGKILL during a CSMS outage, a second copy of a shard, Redis restarted under
the fleet while a shard's holder stalls, and a SIGTERM that hands transactions over.
"""

import asyncio
import json
import os
import signal
import time

import pytest
import pytest_asyncio
from ocpp.v201.call import GetLocalListVersion, SendLocalList

from stations.sandbox import Policy
from tests.waiting import eventually

from .cluster import Cluster, WatchfulCsms, seq_no_report

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.slow]

STATIONS = 50


def booted(csms) -> set[str]:
    return {r.station_id for r in csms.received if r.action == "BootNotification"}


def tx_events(csms, tx_id):
    return [p for p in csms.messages(action="TransactionEvent")
            if p["transactionInfo"]["transactionId"] == tx_id]


async def command(cluster, station_id, name, **args) -> dict:
    out = await cluster.python(
        "import json; from stations.services import send_command; "
        f"print('OUTCOME', json.dumps(send_command({station_id!r}, {name!r}, **{args!r})))"
    )
    return json.loads(out.split("OUTCOME ", 1)[1])


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def fleet(tmp_path_factory):
    csms = WatchfulCsms(Policy(rejected_tokens={"0BADC0DE"}))
    url = csms.url = await csms.start()
    cluster = Cluster(tmp_path_factory.mktemp("cluster"))
    cluster.start_redis()
    await asyncio.to_thread(cluster.create_database)
    await cluster.python(f"""
from stations.models import StationTemplate
from stations.services import assign_shards
t = StationTemplate.objects.create(name="dist", id_pattern="DIST-{{n:02d}}", csms_url={url!r},
                                   evse_count=1, connectors_per_evse=1, max_power_kw=22)
t.create_stations({STATIONS})
print(sorted(assign_shards()))
""")
    cluster.start_worker("control", queue="control", concurrency=1, beat=True)
    cluster.start_worker("w1", concurrency=3)
    cluster.start_worker("w2", concurrency=3)
    try:
        yield cluster, csms
    finally:
        await asyncio.to_thread(cluster.close)
        await csms.stop()
    assert csms.violations == [], "\n".join(csms.violations[:20])


async def test_all_stations_boot_on_two_shards(fleet):
    cluster, csms = fleet
    await eventually(lambda: len(booted(csms)) == STATIONS, 60, "all stations booted")
    holders = {cluster.lease_holder(0), cluster.lease_holder(1)}
    assert None not in holders and len(holders) == 2, "two shards, two holders"


async def test_a_command_reaches_its_station_and_the_outcome_comes_back(fleet):
    cluster, csms = fleet
    outcome = await command(cluster, "DIST-07", "plug_in", evse_id=1)
    assert outcome == {"ok": True, "status": "Accepted", "detail": ""}
    occupied = await csms.wait_for(
        "StatusNotification", "DIST-07", where=lambda s: s["connectorStatus"] == "Occupied")
    assert occupied
    rejected = await command(cluster, "DIST-07", "present_id_token", evse_id=1,
                             id_token="0BADC0DE")
    assert rejected["ok"] is False and rejected["status"] == "Invalid"
    missing = await command(cluster, "DIST-07", "plug_in", evse_id=9)
    assert missing["ok"] is False and "no EVSE 9" in missing["detail"]


async def test_new_stations_join_a_running_fleet_without_restarting_it(fleet):
    cluster, csms = fleet
    connects = len(csms.connects)
    await cluster.python("""
from stations.models import StationTemplate
from stations.services import stations_changed
StationTemplate.objects.get(name="dist").create_stations(5, start=51)
print(stations_changed())
""")
    await eventually(lambda: {f"DIST-{n}" for n in range(51, 56)} <= booted(csms), 30,
                     "the new stations booted")
    assert sorted(csms.connects[connects:]) == [f"DIST-{n}" for n in range(51, 56)], (
        "nobody else reconnected")
    assert cluster.lease_holder(2) is not None, "they got a shard of their own"


async def outbox_length(cluster, station_id) -> int:
    """How many messages the database holds queued for a station (its checkpoint)."""
    out = await cluster.python(f"""
import time
from stations.models import StationLive
deadline = time.monotonic() + 10
while True:
    state = StationLive.objects.get(station__station_id={station_id!r}).engine_state or {{}}
    if len(state.get("outbox", [])) >= 2 or time.monotonic() > deadline:
        break
    time.sleep(0.1)
print("QUEUED", len(state.get("outbox", [])))
""")
    return int(out.split("QUEUED ", 1)[1].split()[0])


async def stale_seen(cluster, shard: int) -> bool:
    """Whether the dashboard's view of the shards says `shard` runs nowhere, within 15 s."""
    out = await cluster.python(f"""
import time
from stations.shard_status import shard_states
deadline = time.monotonic() + 15
while time.monotonic() < deadline:
    states = shard_states()
    if states and not states[{shard}]["running"]:
        print("STALE", states[{shard}]["stations"])
        break
    time.sleep(0.2)
""", timeout=40)
    return "STALE 25" in out


async def test_a_worker_child_killed_during_a_csms_outage_loses_no_offline_event(fleet):
    cluster, csms = fleet
    # A station on shard 0 charges; the CSMS goes away; the driver stops the session while
    # the station is offline; then its worker child dies.
    station = "DIST-02"
    # Its local list is saved with its state (D01): the worker that takes over has it.
    await csms.call(station, SendLocalList(version_number=5, update_type="Full",
                                           local_authorization_list=[{
                                               "id_token": {"id_token": "04A1B2C3",
                                                            "type": "ISO14443"},
                                               "id_token_info": {"status": "Accepted"}}]))
    outcome = await command(cluster, station, "start_charging", evse_id=1, id_token="04A1B2C9")
    assert outcome["ok"], outcome
    started = (await csms.wait_for("TransactionEvent", station))[0]
    tx_id = started["transactionInfo"]["transactionId"]
    await csms.stop()
    assert (await command(cluster, station, "set_ev_drawing", evse_id=1, drawing=False))["ok"]
    assert (await command(cluster, station, "stop_charging", evse_id=1))["ok"]
    assert await outbox_length(cluster, station) == 2, "both offline events checkpointed"
    host, pid = cluster.lease_holder(0)
    boots_before = len(csms.messages(station, "BootNotification"))
    os.kill(pid, signal.SIGKILL)
    killed_at = time.monotonic()
    assert await stale_seen(cluster, 0), "its 25 stations shown stale while nobody runs them"
    await csms.start(port=int(csms.url.rsplit(":", 1)[1]))

    await eventually(
        lambda: len(csms.messages(station, "BootNotification")) > boots_before, 30,
        "the station rebooted on another worker child")
    await eventually(lambda: any(e["eventType"] == "Ended" for e in tx_events(csms, tx_id)), 30,
                     "the offline Ended arrived")
    recovered = time.monotonic() - killed_at
    events = tx_events(csms, tx_id)
    assert [e["seqNo"] for e in events] == list(range(len(events))), "no gap, no seqNo twice"
    updated, ended = events[-2:]
    assert updated["eventType"] == "Updated" and updated["offline"] is True
    assert updated["transactionInfo"]["chargingState"] == "SuspendedEV"
    assert ended["eventType"] == "Ended" and ended["offline"] is True
    assert ended["transactionInfo"]["stoppedReason"] == "Local", "the driver's stop, delivered"
    assert cluster.lease_holder(0)[1] != pid
    assert recovered < 25, f"recovered in {recovered:.1f} s"
    assert (await csms.call(station, GetLocalListVersion())).version_number == 5
    # Every station is back (the others reconnect to the CSMS with their backoff).
    await eventually(lambda: len(csms.sessions) == STATIONS + 5, 40, "all stations connected")
    # The database recorded the transaction as the CSMS saw it.
    await asyncio.sleep(1.5)
    row = await cluster.python(f"""
from stations.models import Transaction
t = Transaction.objects.get(transaction_id={tx_id!r})
print("ROW", t.station.station_id, t.stopped_reason, t.last_seq_no, t.ended_at is not None)
""")
    assert f"ROW {station} Local {len(events) - 1} True" in row


async def test_a_second_copy_of_a_shard_exits(fleet):
    cluster, csms = fleet
    connects = len(csms.connects)
    out = await cluster.python(
        "from stations.tasks import run_shard; print('RESULT', run_shard(1))", timeout=30)
    assert "RESULT lease-taken" in out
    assert len(csms.connects) == connects, "the copy opened no connection"


async def test_a_shard_requeued_during_a_redis_outage_never_runs_twice(fleet):
    cluster, csms = fleet
    station = "DIST-30"  # shard 1
    assert (await command(cluster, station, "start_charging", evse_id=1,
                          id_token="04A1B230"))["ok"]
    started = (await csms.wait_for("TransactionEvent", station))[0]
    tx_id = started["transactionInfo"]["transactionId"]
    boots = len(csms.messages(action="BootNotification"))
    # Shard 1's holder stalls (as a process paused or starved does) while Redis restarts
    # empty: beat queues shard 1 again and a free worker child takes its lease.
    _, stalled = cluster.lease_holder(1)
    os.kill(stalled, signal.SIGSTOP)
    try:
        cluster.stop_redis()
        await asyncio.sleep(1)
        cluster.start_redis()
        await eventually(lambda: (cluster.lease_holder(1) or (0, stalled))[1] != stalled, 30,
                         "another copy took shard 1's lease", every=0.1)
    finally:
        os.kill(stalled, signal.SIGCONT)
    # Commands flow again once workers reconnected to the broker and the channel layer.
    outcomes = []
    for _ in range(15):
        outcomes.append(await command(cluster, station, "unplug", evse_id=1))
        if outcomes[-1]["ok"]:
            break
        await asyncio.sleep(1)
    assert outcomes[-1]["ok"], outcomes
    await eventually(lambda: any(e["eventType"] == "Ended" for e in tx_events(csms, tx_id)), 20,
                     "the transaction ended")
    events = tx_events(csms, tx_id)
    assert [e["seqNo"] for e in events] == list(range(len(events)))
    assert events[-1]["transactionInfo"]["stoppedReason"] == "EVDisconnected", (
        "the session went on across the move: no PowerLoss")
    assert csms.overlapping() == [], "a station connected twice at once"
    assert seq_no_report(csms)["conflicting"] == [], "two copies made different events"
    assert len(csms.messages(action="BootNotification")) == boots, "no station rebooted"
    await eventually(lambda: cluster.lease_holder(0) and cluster.lease_holder(1), 15,
                     "both leases held again")


def parent_pid(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


async def test_sigterm_hands_transactions_over_to_another_worker(fleet):
    cluster, csms = fleet
    holders = {shard: cluster.lease_holder(shard)[1] for shard in (0, 1)}
    masters = {name: process.pid for name, process in cluster.workers.items()}
    victim, shard = next((name, shard) for name in ("w1", "w2") for shard in (0, 1)
                         if parent_pid(holders[shard]) == masters[name])
    station = {0: "DIST-05", 1: "DIST-35"}[shard]  # no transaction before
    assert (await command(cluster, station, "start_charging", evse_id=1,
                          id_token="04A1B2C5"))["ok"]
    tx_id = (await csms.wait_for("TransactionEvent", station))[0][
        "transactionInfo"]["transactionId"]
    boots = len(csms.messages(action="BootNotification"))
    took = await asyncio.to_thread(cluster.stop_worker, victim, signal.SIGTERM, 30)
    assert took < 15, f"worker took {took:.1f} s to stop"
    assert "ended: stopped" in cluster.log(victim), "its shards stopped, not killed"
    # Its shards come back on the remaining worker, their transactions going on.
    await eventually(lambda: len(csms.sessions) == STATIONS + 5, 40, "stations back elsewhere")
    assert (await command(cluster, station, "stop_charging", evse_id=1))["ok"]
    await eventually(lambda: any(e["eventType"] == "Ended" for e in tx_events(csms, tx_id)), 20,
                     "the transaction ended")
    events = tx_events(csms, tx_id)
    assert [e["seqNo"] for e in events] == list(range(len(events))), "seqNo continues"
    assert events[-1]["transactionInfo"]["stoppedReason"] == "Local", "not PowerLoss"
    assert len(csms.messages(action="BootNotification")) == boots, "a reconnect, not a reboot"
    assert csms.overlapping() == []
