"""The recorder's message log: bounded per station, oldest first, resumed after a restart."""

import asyncio

import pytest

from stations.engine.publisher import station_group
from stations.models import Frame
from stations.recorder import Recorder
from stations.shard_host import ShardHost

pytestmark = pytest.mark.django_db


def heartbeats(recorder, station_id, ids):
    for unique_id in ids:
        recorder.frame(station_id, "out", 2, unique_id, "Heartbeat", {}, None)
        recorder.frame(station_id, "in", 3, unique_id, "Heartbeat",
                       {"currentTime": "2026-01-01T00:00:00Z"}, 4.2)


def logged(station_id):
    return [(f["unique_id"], f["direction"]) for f in Frame.log_of(station_id)]


def test_each_station_keeps_its_newest_frames_oldest_first(make_station):
    make_station("CS-1")
    make_station("CS-2")
    recorder = Recorder(frame_log=4)
    heartbeats(recorder, "CS-1", ["a", "b"])
    recorder.flush()
    heartbeats(recorder, "CS-1", ["c"])
    heartbeats(recorder, "CS-2", ["x"])
    recorder.flush()

    assert logged("CS-1") == [("b", "out"), ("b", "in"), ("c", "out"), ("c", "in")]
    assert logged("CS-2") == [("x", "out"), ("x", "in")]
    assert Frame.objects.count() == 6
    [answer] = [f for f in Frame.log_of("CS-2") if f["direction"] == "in"]
    assert answer == {"id": answer["id"], "at": answer["at"], "direction": "in",
                      "type": "CALLRESULT",
                      "unique_id": "x", "action": "Heartbeat",
                      "payload": {"currentTime": "2026-01-01T00:00:00Z"}, "latency_ms": 4.2}


def test_a_burst_longer_than_the_log_keeps_its_newest_frames(make_station):
    make_station("CS-1")
    recorder = Recorder(frame_log=3)
    heartbeats(recorder, "CS-1", ["1", "2", "3", "4"])
    recorder.flush()
    assert logged("CS-1") == [("3", "in"), ("4", "out"), ("4", "in")]


def test_a_restarted_recorder_goes_on_where_the_log_ended(make_station):
    make_station("CS-1")
    first = Recorder(frame_log=4)
    heartbeats(first, "CS-1", ["a", "b", "c"])
    first.flush()
    second = Recorder(frame_log=4)  # the shard moved to another worker
    heartbeats(second, "CS-1", ["d"])
    second.flush()
    assert logged("CS-1") == [("c", "out"), ("c", "in"), ("d", "out"), ("d", "in")]


def test_a_station_deleted_meanwhile_costs_nothing_else(make_station):
    make_station("CS-1")
    recorder = Recorder(frame_log=4)
    heartbeats(recorder, "CS-1", ["a"])
    heartbeats(recorder, "GONE", ["z"])
    recorder.flush()
    assert logged("CS-1") == [("a", "out"), ("a", "in")]


def test_a_zero_log_keeps_no_frames(make_station):
    make_station("CS-1")
    recorder = Recorder(frame_log=0)
    heartbeats(recorder, "CS-1", ["a"])
    recorder.flush()
    assert Frame.objects.count() == 0


def tx_event(seq, event_type="Updated", trigger="MeterValuePeriodic", state="Charging", **extra):
    event = {"eventType": event_type, "seqNo": seq, "triggerReason": trigger, "evse_id": 1,
             "timestamp": f"2026-01-01T00:00:{seq:02d}Z",
             "transactionInfo": {"transactionId": "tx-1", "chargingState": state}}
    return event | extra


def test_a_transaction_row_follows_its_events_across_flushes(make_station):
    from stations.models import Transaction

    make_station("CS-1")
    recorder = Recorder()
    recorder("CS-1", "transaction", tx_event(0, "Started", "Authorized", "EVConnected",
                                             idToken={"idToken": "TOKEN-1", "type": "Central"}))
    recorder.flush()
    recorder("CS-1", "transaction", tx_event(1, offline=True, tx_energy_wh=120.04))
    recorder.flush()
    recorder("CS-1", "transaction", tx_event(2, tx_energy_wh=250.0))
    recorder("CS-1", "evse", {"evse_id": 1, "transaction_id": "tx-1", "tx_energy_wh": 260.0,
                              "connectors": {1: "Occupied"}, "charging_state": "Charging"})
    recorder.flush()
    tx = Transaction.objects.get(transaction_id="tx-1")
    assert (tx.id_token, tx.last_seq_no, tx.energy_wh, tx.offline) == ("TOKEN-1", 2, 250.0, True)
    assert tx.started_at.second == 0 and tx.ended_at is None

    recorder("CS-1", "evse", {"evse_id": 1, "transaction_id": "tx-1", "tx_energy_wh": 300.0,
                              "connectors": {1: "Occupied"}, "charging_state": "SuspendedEV"})
    recorder.flush()
    assert Transaction.objects.get(transaction_id="tx-1").energy_wh == 300.0, "live kWh"

    recorder("CS-1", "transaction", tx_event(3, "Ended", "StopAuthorized", "EVConnected",
                                             tx_energy_wh=310.0,
                                             transactionInfo={"transactionId": "tx-1",
                                                              "stoppedReason": "Local"}))
    recorder.flush()
    tx = Transaction.objects.get(transaction_id="tx-1")
    assert (tx.last_seq_no, tx.energy_wh, tx.stopped_reason, tx.id_token) == (
        3, 310.0, "Local", "TOKEN-1")
    assert tx.ended_at.second == 3 and tx.started_at.second == 0 and tx.offline


def test_a_logged_frame_keeps_the_identity_it_was_seen_with(make_station):
    make_station("CS-1")
    recorder = Recorder(frame_log=4)
    recorder.frame("CS-1", "out", 2, "a", "Heartbeat", {}, None,
                   frame_id=1_767_225_600_000_001)
    recorder.flush()
    [logged] = Frame.log_of("CS-1")
    assert (logged["id"], logged["at"]) == (1_767_225_600_000_001, 1_767_225_600.000001)


class RecordingLayer:
    def __init__(self):
        self.sent = []

    async def group_send(self, group, message):
        self.sent.append((group, message))


def test_a_frame_seen_live_and_read_back_from_the_log_is_the_same_frame(make_station):
    # The station page shows live frames and, after a reload or a transaction, the logged
    # ones: the same frame must be recognisable as such (it showed twice when only the
    # timestamps, taken twice, could tell).
    make_station("CS-1")
    layer = RecordingLayer()
    host = ShardHost(None, layer=layer)
    host.publisher.watch("CS-1")
    host._frame("CS-1", "out", 2, "u-1", "Heartbeat", {}, None)
    host._frame("CS-1", "in", 3, "u-1", "Heartbeat", {"currentTime": "2026-01-01T00:00:00Z"},
                3.21)
    asyncio.run(host.publisher.flush())
    host.recorder.flush()
    [live] = [m["frames"] for group, m in layer.sent if group == station_group("CS-1")]
    assert live == Frame.log_of("CS-1")
    assert live[0]["id"] < live[1]["id"]
