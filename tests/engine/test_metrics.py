"""RunMetrics: counting, percentiles, timelines, merging and snapshots, on a fake clock."""

import json
import random
import time

import pytest

from stations.engine.metrics import KEEP_S, RunMetrics


class Clock:
    def __init__(self, t: float = 1000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


def call(m, station, action, latency_ms=None, *, error=None, uid="u"):
    """One station CALL and, unless latency_ms is None, its answer."""
    m.frame(station, "out", 2, uid, action, {}, None)
    if latency_ms is None:
        return
    if error:
        m.frame(station, "in", 4, uid, action, [error, "text", {}], latency_ms)
    else:
        m.frame(station, "in", 3, uid, action, {}, latency_ms)


def test_counts_per_action_errors_timeouts_and_csms_requests():
    m = RunMetrics(clock=Clock())
    call(m, "CS-1", "Heartbeat", 10)
    call(m, "CS-1", "Heartbeat", 20)
    call(m, "CS-2", "Heartbeat", 30, error="InternalError")
    call(m, "CS-2", "Heartbeat")
    m.event("CS-2", "call_timeout", {"action": "Heartbeat"})
    call(m, "CS-1", "Authorize")
    m.event("CS-1", "call_failed", {"action": "Authorize", "reason": "connection lost"})
    # A CSMS request and the station's answers to it count as messages only.
    m.frame("CS-1", "in", 2, "c1", "Reset", {"type": "Immediate"}, None)
    m.frame("CS-1", "out", 3, "c1", "Reset", {"status": "Accepted"}, None)
    m.frame("CS-1", "in", 2, "c2", "Reset", {"type": "Immediate"}, None)
    m.frame("CS-1", "out", 4, "c2", None, ["SecurityError", "no", {}], None)
    m.frame("CS-1", "in", 2, "c3", "GetVariables", {}, None)

    report = RunMetrics.summary(m.snapshot())
    heartbeat = report["actions"]["Heartbeat"]
    assert heartbeat["requests"] == 4
    assert heartbeat["responses"] == 2
    assert heartbeat["errors"] == {"InternalError": 1}
    assert heartbeat["timeouts"] == 1
    assert heartbeat["latency_ms"]["mean"] == 20.0
    assert heartbeat["latency_ms"]["max"] == pytest.approx(30, rel=1e-3)
    assert report["actions"]["Authorize"]["errors"] == {"failed": 1}
    assert report["actions"]["Authorize"]["latency_ms"]["p50"] is None
    assert set(report["actions"]) == {"Heartbeat", "Authorize"}
    assert report["csms_requests"] == {"GetVariables": 1, "Reset": 2}
    assert report["messages"] == {"in": 6, "out": 7}
    live = m.live()
    assert (live["errors"], live["timeouts"]) == (2, 1)


def test_latency_percentiles_within_hdr_precision():
    m = RunMetrics(clock=Clock())
    for ms in range(1, 1001):
        call(m, "CS-1", "TransactionEvent", ms)
    latency = RunMetrics.summary(m.snapshot())["actions"]["TransactionEvent"]["latency_ms"]
    for key, expected in {"p50": 500, "p90": 900, "p95": 950, "p99": 990, "max": 1000}.items():
        assert latency[key] == pytest.approx(expected, rel=1e-3), key
    assert latency["mean"] == 500.5
    # Latencies outside the histogram's range are clamped, not lost.
    call(m, "CS-1", "Heartbeat", 500_000)
    call(m, "CS-1", "Heartbeat", 0.0001)
    latency = RunMetrics.summary(m.snapshot())["actions"]["Heartbeat"]["latency_ms"]
    assert latency["max"] == pytest.approx(120_000, rel=1e-3)
    assert latency["p50"] == 0


def test_connections_by_outcome():
    m = RunMetrics(clock=Clock())
    for station in ("CS-1", "CS-2", "CS-3"):
        m.event(station, "connection", {"online": True})
    m.event("CS-1", "connection", {"online": True})  # a duplicate does not double-count
    m.event("CS-3", "connection", {"online": False})
    failures = [("http_status", 401), ("http_status", 401), ("http_status", 404),
                ("subprotocol", None), ("tls", None), ("unreachable", None)]
    for reason, status in failures:
        m.event("CS-9", "connection",
                {"online": False, "error": reason, "detail": "x", "status": status})
    connections = RunMetrics.summary(m.snapshot())["connections"]
    assert connections == {
        "attempts": 10, "succeeded": 4,
        "failed": {"http_status": 3, "subprotocol": 1, "tls": 1, "unreachable": 1},
        "http_status": {"401": 2, "404": 1}, "subprotocol_refused": 1, "closed": 1,
        "connected": 2, "peak_connected": 3,
    }
    assert m.live()["connected"] == 2


def test_boot_transactions_authorizations_and_other_events():
    m = RunMetrics(clock=Clock())
    for status in ("Pending", "Accepted", "Accepted", "Rejected", "Failed"):
        m.event("CS-1", "boot", {"status": status, "interval": 60})
    for n, step in enumerate(("Started", "Updated", "Updated", "Ended", "Started")):
        m.frame("CS-1", "out", 2, f"tx{n}", "TransactionEvent", {"eventType": step}, None)
    for status in ("Accepted", "Invalid", "Blocked", "Accepted", "Unknown"):
        m.event("CS-1", "authorize", {"id_token": "T", "status": status})
    m.event("CS-1", "evse", {"id": 1})
    m.event("CS-1", "variable", {"key": "k", "value": "v"})
    report = RunMetrics.summary(m.snapshot())
    assert report["boot"] == {"Accepted": 2, "Failed": 1, "Pending": 1, "Rejected": 1}
    assert report["transactions"] == {"started": 2, "completed": 1, "rejected": 3}


def test_a_transaction_counts_as_started_when_its_transaction_event_is_sent_not_queued():
    m = RunMetrics(clock=Clock())
    # Queued in the outbox (the run may end, or the station go offline, before it leaves).
    m.event("CS-1", "transaction", {"eventType": "Started", "evse_id": 1,
                                    "transactionInfo": {"transactionId": "t1"}})
    assert RunMetrics.summary(m.snapshot())["transactions"]["started"] == 0
    m.frame("CS-1", "out", 2, "u1", "TransactionEvent", {"eventType": "Started"}, None)
    m.frame("CS-1", "out", 2, "u2", "TransactionEvent", {"eventType": "Ended"}, None)
    assert RunMetrics.summary(m.snapshot())["transactions"] == {
        "started": 1, "completed": 1, "rejected": 0}


def test_the_summary_totals_every_call_with_one_latency_over_all_actions():
    m = RunMetrics(clock=Clock())
    for ms in range(1, 101):
        call(m, "CS-1", "Heartbeat", ms)
    call(m, "CS-1", "Authorize", 1000)
    call(m, "CS-1", "Authorize", 5, error="InternalError")
    call(m, "CS-1", "Authorize")
    m.event("CS-1", "call_timeout", {"action": "Authorize"})
    calls = RunMetrics.summary(m.snapshot())["calls"]
    assert {k: calls[k] for k in ("requests", "responses", "errors", "timeouts")} == {
        "requests": 103, "responses": 101, "errors": 1, "timeouts": 1}
    assert calls["latency_ms"]["max"] == pytest.approx(1000, rel=1e-3)
    assert calls["latency_ms"]["p50"] == pytest.approx(50, abs=1)


def test_recent_gives_the_seconds_and_windows_since_a_time_for_a_live_chart():
    clock = Clock(100.0)
    m = RunMetrics(clock=clock, window_s=5)
    for t in range(100, 120):
        clock.t = t + 0.5
        call(m, "CS-1", "Heartbeat", t - 99)
    everything = m.recent()
    assert [row["t"] for row in everything["timeline"]] == list(range(100, 120))
    assert [row["t"] for row in everything["latency_timeline"]] == [100, 105, 110, 115]
    later = m.recent(since=113)
    assert [row["t"] for row in later["timeline"]] == list(range(113, 120))
    assert later["timeline"][0]["msgs_out"] == 1 and later["timeline"][0]["msgs_in"] == 1
    assert [row["t"] for row in later["latency_timeline"]] == [110, 115]
    assert later["latency_timeline"][-1]["p99"] == pytest.approx(20, rel=1e-2)
    assert m.recent(since=500)["timeline"][-1]["t"] == 119, "nothing newer: the last second"


def test_timeline_per_second_with_connected_carried_over_idle_seconds():
    clock = Clock(100.2)
    m = RunMetrics(clock=clock)
    m.event("CS-1", "connection", {"online": True})
    call(m, "CS-1", "Heartbeat", 5)
    clock.t = 100.9
    m.event("CS-2", "connection", {"online": True})
    clock.t = 101.5
    call(m, "CS-1", "Heartbeat", 5, error="NotSupported")
    m.event("CS-1", "call_timeout", {"action": "Heartbeat"})
    m.event("CS-2", "connection", {"online": False})
    clock.t = 104.1
    m.frame("CS-1", "in", 2, "c", "Reset", {}, None)
    clock.t = 105.0
    timeline = RunMetrics.summary(m.snapshot())["timeline"]
    assert timeline == [
        {"t": 100, "msgs_in": 1, "msgs_out": 1, "errors": 0, "timeouts": 0, "connected": 2},
        {"t": 101, "msgs_in": 1, "msgs_out": 1, "errors": 1, "timeouts": 1, "connected": 1},
        {"t": 102, "msgs_in": 0, "msgs_out": 0, "errors": 0, "timeouts": 0, "connected": 1},
        {"t": 103, "msgs_in": 0, "msgs_out": 0, "errors": 0, "timeouts": 0, "connected": 1},
        {"t": 104, "msgs_in": 1, "msgs_out": 0, "errors": 0, "timeouts": 0, "connected": 1},
        {"t": 105, "msgs_in": 0, "msgs_out": 0, "errors": 0, "timeouts": 0, "connected": 1},
    ]


def test_latency_timeline_by_aligned_window():
    clock = Clock(1001.0)
    m = RunMetrics(clock=clock, window_s=5)
    for ms in (10, 20, 30):
        call(m, "CS-1", "Heartbeat", ms)
    clock.t = 1007.5
    call(m, "CS-1", "Heartbeat", 200)
    clock.t = 1021.0
    call(m, "CS-1", "Heartbeat", 400)
    windows = RunMetrics.summary(m.snapshot())["latency_timeline"]
    assert [w["t"] for w in windows] == [1000, 1005, 1020]
    assert windows[0]["p50"] == pytest.approx(20, rel=1e-3)
    assert windows[0]["p99"] == pytest.approx(30, rel=1e-3)
    assert windows[1]["p95"] == pytest.approx(200, rel=1e-3)
    assert windows[2]["p50"] == pytest.approx(400, rel=1e-3)


def test_live_rates_and_recent_latency():
    clock = Clock(2000.0)
    m = RunMetrics(clock=clock, window_s=5)
    m.event("CS-1", "connection", {"online": True})
    call(m, "CS-1", "Heartbeat", 1000)  # in an earlier window: not "recent" any more
    for second in range(2010, 2020):
        clock.t = second + 0.5
        for _ in range(4):
            call(m, "CS-1", "Heartbeat", 50 if second < 2015 else 100)
    clock.t = 2020.2
    live = m.live()
    assert live["connected"] == 1
    assert live["msgs_in_per_s"] == 4.0 and live["msgs_out_per_s"] == 4.0
    assert live["latency_ms"]["p50"] == pytest.approx(100, rel=1e-3)
    assert live["latency_ms"]["p99"] == pytest.approx(100, rel=1e-3)
    assert (live["errors"], live["timeouts"]) == (0, 0)
    clock.t = 2031.0
    assert m.live()["latency_ms"] == {"p50": None, "p95": None, "p99": None}
    assert m.live()["msgs_in_per_s"] == 0


def feed(metrics, rng, clock, streams):
    """A random mix of traffic; each record goes to the metrics of its stream and to all."""
    actions = ("BootNotification", "Heartbeat", "StatusNotification", "TransactionEvent")
    for second in range(500, 540):
        for step in range(30):
            clock.t = second + step / 30
            stream = rng.choice(streams)
            targets = (metrics[stream], metrics["all"])
            station = f"{stream}-{rng.randrange(20)}"
            # Connections open during the first 20 s and close after, so the joint peak
            # falls at the end of a second, where the timeline samples it.
            if second < 520 and step % 5 == 0:
                event = ("connection", {"online": True})
            elif second >= 520 and step % 7 == 0:
                event = ("connection", {"online": False})
            else:
                event = rng.choice([
                    ("call_timeout", {"action": rng.choice(actions)}),
                    ("boot", {"status": rng.choice(["Accepted", "Pending"])}),
                    ("transaction", {"eventType": rng.choice(["Started", "Ended"])}),
                    ("connection", {"online": False, "error": "http_status", "status": 503}),
                ])
            latency = rng.lognormvariate(3, 1)
            error = rng.random() < 0.1 and rng.choice(["InternalError", "FormatViolation"])
            action = rng.choice(actions)
            for target in targets:
                target.event(station, *event)
                call(target, station, action, latency, error=error)
                target.frame(station, "in", 2, "c", "GetVariables", {}, None)


def test_merge_equals_one_collector_that_saw_both_streams():
    rng = random.Random(7)
    clock = Clock()
    metrics = {name: RunMetrics(clock=clock) for name in ("a", "b", "all")}
    feed(metrics, rng, clock, ["a", "b"])
    clock.t = 545.0
    merged = RunMetrics.merge([metrics["a"].snapshot(), metrics["b"].snapshot()])
    expected = RunMetrics.summary(metrics["all"].snapshot())
    assert RunMetrics.summary(merged) == expected
    assert expected["connections"]["peak_connected"] > 0
    assert expected["actions"]["Heartbeat"]["latency_ms"]["p99"] > 0
    assert len(expected["latency_timeline"]) == 8


def test_merge_of_shards_that_reported_at_different_times():
    clock = Clock(10.0)
    a, b = RunMetrics(clock=clock), RunMetrics(clock=clock)
    a.event("A-1", "connection", {"online": True})
    b.event("B-1", "connection", {"online": True})
    b.event("B-2", "connection", {"online": True})
    snap_a = a.snapshot()
    clock.t = 12.0
    merged = RunMetrics.summary(RunMetrics.merge([snap_a, b.snapshot()]))
    assert [row["connected"] for row in merged["timeline"]] == [3, 3, 3]
    assert merged["connections"]["peak_connected"] == 3
    assert merged["connections"]["connected"] == 3


def test_merge_rejects_different_windows_and_accepts_nothing():
    with pytest.raises(ValueError):
        RunMetrics.merge([RunMetrics(window_s=5).snapshot(), RunMetrics(window_s=1).snapshot()])
    empty = RunMetrics.summary(RunMetrics.merge([]))
    assert empty["actions"] == {} and empty["timeline"] == []


def test_snapshot_survives_json_and_a_merge_of_one():
    rng = random.Random(3)
    clock = Clock()
    metrics = {"a": RunMetrics(clock=clock), "all": RunMetrics(clock=clock)}
    feed(metrics, rng, clock, ["a"])
    snapshot = metrics["a"].snapshot()
    text = json.dumps(snapshot)
    decoded = json.loads(text)
    assert decoded == snapshot
    assert RunMetrics.summary(decoded) == RunMetrics.summary(snapshot)
    assert RunMetrics.summary(RunMetrics.merge([decoded])) == RunMetrics.summary(snapshot)
    json.dumps(RunMetrics.summary(snapshot))
    json.dumps(metrics["a"].live())


def test_timeline_and_latency_windows_are_bounded():
    clock = Clock(0.0)
    m = RunMetrics(clock=clock, window_s=5, keep_s=60)
    for second in range(600):
        clock.t = second + 0.5
        call(m, "CS-1", "Heartbeat", 1 + second)
    assert len(m._seconds) == 60 and len(m._windows) <= 12
    report = RunMetrics.summary(m.snapshot())
    assert [row["t"] for row in report["timeline"]] == list(range(540, 600))
    assert [w["t"] for w in report["latency_timeline"]][-1] == 595
    assert len(report["latency_timeline"]) <= 13
    # Totals outlive the timeline.
    assert report["messages"] == {"in": 600, "out": 600}
    assert report["actions"]["Heartbeat"]["latency_ms"]["max"] == pytest.approx(600, rel=1e-3)
    # Idle for longer than keep_s: the timeline is the last keep_s seconds, all quiet.
    clock.t = 1000.0
    timeline = RunMetrics.summary(m.snapshot())["timeline"]
    assert len(timeline) == 60 and timeline[-1]["t"] == 1000
    assert not any(row["msgs_in"] for row in timeline)


def test_default_bound_is_four_hours_of_seconds():
    clock = Clock(0.0)
    m = RunMetrics(clock=clock)
    for second in range(KEEP_S + 1000):
        clock.t = float(second)
        m.frame("CS-1", "out", 2, "u", "Heartbeat", {}, None)
    assert len(m._seconds) == KEEP_S == 4 * 3600
    assert len(m.snapshot()["timeline"]["msgs_out"]) == KEEP_S


def test_frame_and_event_cost():
    clock = Clock(0.0)
    m = RunMetrics(clock=clock)
    n = 200_000
    start = time.perf_counter()
    for i in range(n // 2):
        clock.t = i / 1000
        m.frame("CS-1", "out", 2, "u", "Heartbeat", {}, None)
        m.frame("CS-1", "in", 3, "u", "Heartbeat", {}, 12.5)
    elapsed = time.perf_counter() - start
    start = time.perf_counter()
    for i in range(n):
        m.event(f"CS-{i % 100}", "connection", {"online": i % 2 == 0})
    event_elapsed = time.perf_counter() - start
    print(f"\n{n} frame() calls: {elapsed * 1000:.0f} ms, {elapsed / n * 1e6:.2f} µs each; "
          f"{n} event() calls: {event_elapsed / n * 1e6:.2f} µs each")
    assert m.msgs_in == m.msgs_out == n // 2
