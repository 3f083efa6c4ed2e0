"""The scale-out fleet for real: 50 stations on 2 shards in Celery worker processes.

One scenario, in order, because its parts build on each other and the set-up (workers,
PostgreSQL, Redis) is what costs time: boot, commands and their outcomes, a worker child
killed with SIGKILL while a transaction runs, a second copy of a shard, Redis restarted
under the fleet, and a clean SIGTERM shutdown.
"""

import asyncio
import json
import os
import signal
import time

import pytest
import pytest_asyncio
from ocpp.v201.call import GetLocalListVersion, SendLocalList

from stations.sandbox import Policy, SandboxCsms
from tests.waiting import eventually

from .cluster import Cluster

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
    csms = SandboxCsms(Policy(rejected_tokens={"0BADC0DE"}))
    url = await csms.start()
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


async def test_a_killed_worker_child_loses_no_transaction(fleet):
    cluster, csms = fleet
    # A station on shard 0 charges; its worker child dies mid-transaction.
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
    host, pid = cluster.lease_holder(0)
    boots_before = len(csms.messages(station, "BootNotification"))
    os.kill(pid, signal.SIGKILL)
    killed_at = time.monotonic()

    await eventually(
        lambda: len(csms.messages(station, "BootNotification")) > boots_before, 30,
        "the station rebooted on another worker child")
    await eventually(lambda: any(e["eventType"] == "Ended" for e in tx_events(csms, tx_id)), 30,
                     "the cut transaction ended")
    recovered = time.monotonic() - killed_at
    events = tx_events(csms, tx_id)
    assert [e["eventType"] for e in events].count("Ended") == 1
    assert [e["seqNo"] for e in events] == list(range(len(events))), "no gap, no duplicate"
    assert events[-1]["transactionInfo"]["stoppedReason"] == "PowerLoss"
    assert cluster.lease_holder(0)[1] != pid
    assert recovered < 20, f"recovered in {recovered:.1f} s"
    assert (await csms.call(station, GetLocalListVersion())).version_number == 5
    # Every station of the dead child is back.
    await eventually(lambda: len(csms.sessions) == STATIONS + 5, 30, "all stations connected")
    # The database recorded the transaction as the CSMS saw it.
    await asyncio.sleep(1.5)
    row = await cluster.python(f"""
from stations.models import Transaction
t = Transaction.objects.get(transaction_id={tx_id!r})
print("ROW", t.station.station_id, t.stopped_reason, t.last_seq_no, t.ended_at is not None)
""")
    assert f"ROW {station} PowerLoss {len(events) - 1} True" in row


async def test_a_second_copy_of_a_shard_exits(fleet):
    cluster, csms = fleet
    connects = len(csms.connects)
    out = await cluster.python(
        "from stations.tasks import run_shard; print('RESULT', run_shard(1))", timeout=30)
    assert "RESULT lease-taken" in out
    assert len(csms.connects) == connects, "the copy opened no connection"


async def test_the_fleet_survives_a_redis_restart(fleet):
    cluster, csms = fleet
    station = "DIST-30"
    assert (await command(cluster, station, "start_charging", evse_id=1,
                          id_token="04A1B230"))["ok"]
    started = (await csms.wait_for("TransactionEvent", station))[0]
    tx_id = started["transactionInfo"]["transactionId"]
    boots = len(csms.messages(action="BootNotification"))

    cluster.stop_redis()
    await asyncio.sleep(3)
    cluster.start_redis()
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
    assert len(csms.messages(action="BootNotification")) == boots, "no station rebooted"
    await eventually(lambda: cluster.lease_holder(0) and cluster.lease_holder(1), 15,
                     "both leases held again")


def parent_pid(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


async def test_sigterm_closes_connections_and_releases_leases(fleet):
    cluster, csms = fleet
    holders = {shard: cluster.lease_holder(shard)[1] for shard in (0, 1)}
    masters = {name: process.pid for name, process in cluster.workers.items()}
    victim = next(name for name in ("w1", "w2")
                  if any(parent_pid(pid) == masters[name] for pid in holders.values()))
    took = await asyncio.to_thread(cluster.stop_worker, victim, signal.SIGTERM, 30)
    assert took < 15, f"worker took {took:.1f} s to stop"
    assert "ended: stopped" in cluster.log(victim), "its shards stopped, not killed"
    # Its shards come back on the remaining worker.
    await eventually(lambda: len(csms.sessions) == STATIONS + 5, 40, "stations back elsewhere")
