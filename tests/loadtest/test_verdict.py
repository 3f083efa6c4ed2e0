"""Thresholds and verdicts: each names its limit and what was measured; bad names are refused."""

import pytest

from stations.engine.metrics import RunMetrics
from stations.engine.verdict import ThresholdError, check_thresholds, parse_threshold, verdict


def summary_of_a_run():
    m = RunMetrics()
    for n, ms in enumerate(range(1, 101)):
        m.frame("CS-1", "out", 2, f"h{n}", "Heartbeat", {}, None)
        m.frame("CS-1", "in", 3, f"h{n}", "Heartbeat", {}, ms)
    for n in range(10):
        m.frame("CS-1", "out", 2, f"a{n}", "Authorize", {}, None)
        if n == 0:
            m.frame("CS-1", "in", 4, f"a{n}", "Authorize", ["InternalError", "", {}], 3)
        elif n == 1:
            m.event("CS-1", "call_timeout", {"action": "Authorize"})
        elif n != 2:  # the third is still unanswered
            m.frame("CS-1", "in", 3, f"a{n}", "Authorize", {}, 400)
    for status in ("Accepted", "Accepted", "Accepted", "Pending"):
        m.event("CS-1", "boot", {"status": status})
    m.event("CS-1", "connection", {"online": True})
    m.event("CS-2", "connection", {"online": False, "error": "refused"})
    return RunMetrics.summary(m.snapshot())


def checks_by_name(result):
    return {c["name"]: c for c in result["checks"]}


def test_a_verdict_names_each_threshold_its_limit_and_the_measured_value():
    result = verdict(summary_of_a_run(), {
        "p95_ms.Heartbeat": 100, "p99_ms.Authorize": 300, "call_error_rate.Authorize": 0.2,
        "timeout_rate": 0.001, "unanswered_calls": 1, "boot_accepted_share": 0.75,
        "connected_share": 0.9, "connection_failures": 0, "max_ms": 500,
    }, stations=2)
    checks = checks_by_name(result)
    assert result["passed"] is False
    assert checks["p95_ms.Heartbeat"]["passed"] is True
    assert checks["p95_ms.Heartbeat"]["measured"] == pytest.approx(95, rel=1e-2)
    assert checks["p99_ms.Authorize"] | {"measured": None} == {
        "name": "p99_ms.Authorize", "limit": 300.0, "measured": None, "passed": False,
        "detail": checks["p99_ms.Authorize"]["detail"]}
    assert checks["p99_ms.Authorize"]["measured"] == pytest.approx(400, rel=1e-2)
    assert "p99 latency of Authorize" in checks["p99_ms.Authorize"]["detail"]
    assert "> 300 ms" in checks["p99_ms.Authorize"]["detail"]
    assert checks["call_error_rate.Authorize"]["measured"] == pytest.approx(0.1)
    assert checks["call_error_rate.Authorize"]["passed"] is True
    assert checks["timeout_rate"]["measured"] == pytest.approx(1 / 110)
    assert checks["timeout_rate"]["passed"] is False
    assert checks["unanswered_calls"] | {"detail": ""} == {
        "name": "unanswered_calls", "limit": 1.0, "measured": 1.0, "passed": True, "detail": ""}
    assert checks["boot_accepted_share"]["measured"] == 0.75
    assert checks["boot_accepted_share"]["passed"] is True
    assert checks["connected_share"]["measured"] == 0.5
    assert "< 0.9" in checks["connected_share"]["detail"]
    assert checks["connection_failures"]["measured"] == 1
    assert checks["max_ms"]["passed"] is True
    assert [c["name"] for c in result["checks"]] == sorted(checks)


def test_a_threshold_that_cannot_be_measured_fails():
    result = verdict(summary_of_a_run(), {"p95_ms.MeterValues": 100}, stations=2)
    assert result["passed"] is False
    check = result["checks"][0]
    assert check["measured"] is None and "nothing to measure" in check["detail"]


def test_no_thresholds_pass_with_no_checks():
    assert verdict(summary_of_a_run(), {}, stations=2) == {"passed": True, "checks": []}


@pytest.mark.parametrize(("raw", "message"), [
    ({"p95": 1}, "'p95' is not a known threshold; known thresholds: p50_ms"),
    ({"boot_accepted_share.BootNotification": 1}, "takes no action"),
    ({"p95_ms.Boot": 1}, "'Boot' in 'p95_ms.Boot' is not an OCPP 2.0.1 action"),
    ({"p95_ms": -1}, "at least 0"),
    ({"timeout_rate": 2}, "between 0 and 1"),
    ({"p95_ms": float("nan")}, "must be a number"),
    ({"p95_ms": True}, "must be a number"),
])
def test_unknown_names_and_impossible_limits_are_refused(raw, message):
    with pytest.raises(ThresholdError, match=message.replace(".", r"\.")):
        check_thresholds(raw)


def test_name_equals_value_as_on_a_command_line():
    assert parse_threshold(" p95_ms.Authorize = 500 ") == ("p95_ms.Authorize", 500.0)
    for bad, message in (("p95_ms", "NAME=VALUE"), ("p95_ms=fast", "must be a number"),
                         ("p95_ms=inf", "must be a number"), ("=3", "NAME=VALUE")):
        with pytest.raises(ThresholdError, match=message):
            parse_threshold(bad)
