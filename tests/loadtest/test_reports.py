"""Reports read as text in every form (terminal, HTML, CSV, JUnit, compare), and say what ran."""

import csv
import io
import xml.etree.ElementTree as ET

import pytest

from stations import reports
from stations.engine.metrics import RunMetrics
from stations.engine.verdict import verdict


def report(*, boots=("Accepted",) * 200 + ("Pending",) * 3, failures=(), status="completed",
           thresholds=None, error=""):
    m = RunMetrics()
    for n, status_ in enumerate(boots):
        m.frame(f"CS-{n}", "out", 2, f"b{n}", "BootNotification", {}, None)
        m.frame(f"CS-{n}", "in", 3, f"b{n}", "BootNotification", {}, 12.5)
        m.event(f"CS-{n}", "boot", {"status": status_})
    for reason, http in failures:
        m.event("CS-x", "connection", {"online": False, "error": reason, "status": http})
    summary = RunMetrics.summary(m.snapshot())
    thresholds = thresholds or {}
    return {
        "run": {"id": 7, "csms_url": "ws://csms:9000", "stations": len(boots), "seed": 1,
                "scenario": "mixed", "status": status, "version": "0.1.0", "duration_s": 60,
                "error": error, "timings": {
                    "phase": "done", "stations": len(boots), "stations_started": len(boots),
                    "duration_s": 60, "drain_limit_s": 30, "elapsed_s": 60.4, "ramp_s": 2.0,
                    "scenario_s": 58.0, "drain_s": 0.4, "end_reason": "duration",
                    "unanswered": 0}},
        "summary": summary,
        "verdict": verdict(summary, thresholds, len(boots)),
    }


def every_text(r) -> list[str]:
    page = reports.to_html(r)
    # The page's own words: uPlot's inlined code and style have braces of their own.
    page = page[page.index("<h1>"):page.index("<h2>Over time")]
    return [reports.to_text(r), page, reports.to_csv(r), reports.to_junit(r),
            " ".join(value for _label, value in reports.headline(r))]


def test_counts_read_as_words_not_python_dicts():
    r = report()
    facts = dict(reports.headline(r))
    assert facts["BootNotification"] == "Accepted 200, Pending 3"
    assert facts["connections"] == "0 attempts, 0 succeeded, failed: none"
    for text in every_text(r):
        assert "{'" not in text and "{}" not in text


def test_connection_failures_and_refusals_read_as_text():
    r = report(failures=[("refused", None), ("http_status", 401), ("http_status", 401),
                         ("http_status", 503)])
    assert dict(reports.headline(r))["connections"] == (
        "4 attempts, 0 succeeded, failed: http_status 3, refused 1 "
        "(HTTP statuses: 401 2, 503 1)")


def test_the_report_says_what_ran_and_why_it_ended():
    text = dict(reports.headline(report()))["ran"]
    assert text == ("60.0 s of 60 s (ramp 2.0 s, then scenario 58.0 s), then drain 0.4 s "
                    "(at most 30 s); ended because its duration was over")


def test_the_verdict_is_in_the_text_html_and_csv_reports():
    r = report(thresholds={"boot_accepted_share": 1, "p95_ms": 100})
    text = reports.to_text(r)
    assert "verdict            failed: 1 of 2 thresholds not met" in text
    assert "FAIL  boot_accepted_share: share of BootNotifications Accepted: 0.9852 < 1" in text
    assert "PASS  p95_ms: p95 latency: 12.5 ms ≤ 100 ms" in text
    assert "Verdict: failed: 1 of 2 thresholds not met" in reports.to_html(r)
    tables = reports.to_csv(r).split("\r\n\r\n")
    assert len(tables) == 2
    rows = list(csv.DictReader(io.StringIO(tables[1])))
    assert [(row["threshold"], row["passed"]) for row in rows] == [
        ("boot_accepted_share", "no"), ("p95_ms", "yes")]


def test_junit_has_a_testcase_per_threshold_and_a_failure_with_limit_and_measured():
    root = ET.fromstring(reports.to_junit(report(thresholds={"boot_accepted_share": 1,
                                                             "p95_ms": 100})))
    suite = root.find("testsuite")
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("3", "1", "0")
    assert suite.get("name") == "loadtest run 7: mixed"
    cases = {case.get("name"): case for case in suite.iter("testcase")}
    assert set(cases) == {"run", "boot_accepted_share", "p95_ms"}
    failure = cases["boot_accepted_share"].find("failure")
    assert failure.get("message").startswith("share of BootNotifications Accepted: 0.9852 < 1")
    limit, measured = (part.split("=")[1] for part in failure.text.split())
    assert float(limit) == 1 and float(measured) == pytest.approx(200 / 203, abs=1e-4)
    assert cases["p95_ms"].find("failure") is None
    assert cases["run"].find("failure") is None and cases["run"].find("error") is None


def test_junit_of_a_failed_run_is_an_error():
    root = ET.fromstring(reports.to_junit(report(status="failed", error="RuntimeError('x')")))
    error = root.find("testsuite/testcase[@name='run']/error")
    assert error is not None and "RuntimeError('x')" in error.get("message")
    assert root.get("errors") == "1"


def test_compare_shows_zero_as_zero_and_the_change_from_a_to_b():
    a, b = report(), report(boots=("Accepted",) * 150)
    rows = {row["action"]: {c["key"]: c for c in row["cells"]} for row in reports.compare(a, b)}
    boot = rows["BootNotification"]
    assert (boot["requests"]["a"], boot["requests"]["b"], boot["requests"]["delta"]) == (
        "203", "150", "−53")
    assert (boot["errors"]["a"], boot["errors"]["delta"]) == ("0", "0")
    assert boot["p95_ms"]["delta"] == "0"


def test_a_report_from_before_verdicts_still_reads():
    old = report()
    del old["verdict"]
    del old["run"]["timings"]
    assert dict(reports.headline(old))["verdict"] == "no thresholds"
    assert dict(reports.headline(old))["ran"] == "60 s planned (ramp included)"
    ET.fromstring(reports.to_junit(old))
