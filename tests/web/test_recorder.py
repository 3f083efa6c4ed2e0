"""The recorder's message log: bounded per station, oldest first, resumed after a restart."""

import pytest

from stations.models import Frame
from stations.recorder import Recorder

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
    assert answer == {"at": answer["at"], "direction": "in", "type": "CALLRESULT",
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
