"""`manage.py loadtest` against an `ocpp`-library CSMS: the report matches what it received,
the run lasts its duration, bad parameters get one clear error, verdicts set the exit code."""

import asyncio
import json
import os
import signal
import sys
import time
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import pytest

from stations.sandbox import Policy, SandboxCsms

ROOT = Path(__file__).resolve().parents[2]

SCENARIO = """
name = "short-mix"
seed = 7
duration_s = 6

[transactions]
share = 0.5
sessions = { dist = "fixed", value_s = 2 }
gaps = { dist = "uniform", min_s = 0.2, max_s = 1.5 }
id_tokens = { pool = 20, pick = "zipf" }
meter_interval_s = 1
"""

GATED = """
name = "gated"
seed = 1
duration_s = 3

[thresholds]
boot_accepted_share = 1
"p99_ms.BootNotification" = 5000
"""

# Scenarios come from the library or the database: the tests put theirs in the database.
ADD_SCENARIOS = (
    "import json, os\n"
    "from django.core.management import call_command\n"
    "from stations.models import Scenario\n"
    "call_command('migrate', verbosity=0)\n"
    "for name, text in json.loads(os.environ['TEST_SCENARIOS']).items():\n"
    "    Scenario.objects.create(name=name, definition=text)\n"
)


def environment(tmp_path) -> dict:
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'lt.sqlite3'}",
           "FLEET_VAR_DIR": str(tmp_path)}
    env.pop("REDIS_URL", None)
    return env


async def manage(env, *args, timeout=120):
    process = await asyncio.create_subprocess_exec(
        sys.executable, "manage.py", *args, cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(process.communicate(), timeout)
    return process.returncode, out.decode()


async def prepared(tmp_path, **scenarios) -> dict:
    """A migrated database holding `scenarios` (name -> TOML)."""
    env = environment(tmp_path) | {"TEST_SCENARIOS": json.dumps(scenarios)}
    code, out = await manage(env, "shell", "-c", ADD_SCENARIOS)
    assert code == 0, out
    return env


async def loadtest(tmp_path, csms_url, stations, *extra, scenario="short-mix", env=None):
    env = env or await prepared(tmp_path, **{"short-mix": SCENARIO})
    report_path = tmp_path / "report.json"
    code, out = await manage(
        env, "loadtest", "--csms-url", csms_url, "--stations", str(stations), "--ramp", "100",
        "--scenario", scenario, "--quiet", "--json", str(report_path),
        "--html", str(tmp_path / "report.html"), *extra)
    return code, out, report_path


def received(csms) -> Counter:
    return Counter(r.action for r in csms.received)


async def test_a_200_station_run_reports_what_the_csms_received(tmp_path):
    csms = SandboxCsms(Policy())
    url = await csms.start()
    try:
        code, out, path = await loadtest(tmp_path, url, 200)
    finally:
        await csms.stop()
    assert code == 0, out
    report = json.loads(path.read_text())
    summary = report["summary"]
    counted = received(csms)
    actions = ("BootNotification", "StatusNotification", "Authorize", "TransactionEvent")
    for action in actions:
        row = summary["actions"][action]
        assert row["requests"] == counted[action], action
        # The run drained: every call sent had its answer before the stations went.
        assert row["responses"] == row["requests"] and row["timeouts"] == 0, action
    assert counted["TransactionEvent"] > 100, "sessions ran"
    assert summary["connections"]["succeeded"] == 200
    assert summary["boot"] == {"Accepted": 200}
    events = Counter(r.payload["eventType"] for r in csms.received
                     if r.action == "TransactionEvent")
    assert summary["transactions"]["started"] == events["Started"]
    assert summary["transactions"]["completed"] == events["Ended"]
    latency = summary["actions"]["BootNotification"]["latency_ms"]
    assert 0 < latency["p50"] <= latency["p99"] <= latency["max"]
    assert report["run"]["seed"] == 7 and report["run"]["status"] == "completed"
    assert report["run"]["timings"]["end_reason"] == "duration"
    assert report["verdict"] == {"passed": True, "checks": []}
    assert "uPlot" in (tmp_path / "report.html").read_text()
    assert csms.violations == []


async def test_errors_and_silence_show_as_errors_and_timeouts(tmp_path):
    csms = SandboxCsms(Policy(call_errors={"Authorize": "InternalError"},
                              silent_actions={"StatusNotification"}))
    url = await csms.start()
    try:
        code, out, path = await loadtest(tmp_path, url, 20, "--response-timeout", "1")
    finally:
        await csms.stop()
    assert code == 0, out
    report = json.loads(path.read_text())
    actions = report["summary"]["actions"]
    counted = received(csms)
    authorize, status = actions["Authorize"], actions["StatusNotification"]
    assert authorize["requests"] == counted["Authorize"] > 0
    assert authorize["errors"] == {"InternalError": authorize["requests"]}
    assert authorize["responses"] == 0
    assert status["requests"] == counted["StatusNotification"]
    assert status["responses"] == 0 and status["timeouts"] > 0
    # The drain waits one response timeout: a station with calls queued behind a silent
    # one may still have one in flight when it ends, and that one is counted as such.
    unanswered = status["requests"] - status["timeouts"]
    assert 0 <= unanswered <= 20
    assert report["run"]["timings"]["drain_s"] <= 1.5


async def test_a_run_with_duration_10_ends_within_10_s_plus_its_drain(tmp_path):
    csms = SandboxCsms(Policy())
    url = await csms.start()
    env = await prepared(tmp_path)
    try:
        began = time.monotonic()
        # transaction-mix.toml says 7,200 s; the run is told 10.
        code, out, path = await loadtest(tmp_path, url, 20, "--duration", "10",
                                         "--response-timeout", "5",
                                         scenario="transaction-mix", env=env)
        wall = time.monotonic() - began
    finally:
        await csms.stop()
    assert code == 0, out
    report = json.loads(path.read_text())
    timings = report["run"]["timings"]
    assert report["run"]["duration_s"] == 10
    assert timings["ramp_s"] + timings["scenario_s"] == pytest.approx(10, abs=0.5)
    assert timings["drain_s"] <= 5
    assert timings["end_reason"] == "duration"
    assert wall < 10 + 5 + 15, "the duration, its drain, and the command's own start"
    assert "10 s in all, ramp included" in out
    assert "ended because its duration was over" in out


async def test_thresholds_decide_the_exit_code_and_the_junit_report(tmp_path):
    csms = SandboxCsms(Policy())
    url = await csms.start()
    env = await prepared(tmp_path, gated=GATED)
    junit = tmp_path / "verdict.xml"
    try:
        passed, out_passed, _ = await loadtest(tmp_path, url, 5, "--junit", str(junit),
                                               scenario="gated", env=env)
        passing = ET.parse(junit).getroot()
        # The same scenario with a limit no CSMS meets.
        failed, out_failed, path = await loadtest(
            tmp_path, url, 5, "--junit", str(junit), "--threshold", "p99_ms=0.001",
            "--threshold", "timeout_rate=0", scenario="gated", env=env)
        failing = ET.parse(junit).getroot()
    finally:
        await csms.stop()
    assert passed == 0, out_passed
    assert "passed: all 2 thresholds met" in out_passed
    suite = passing.find("testsuite")
    assert suite.get("tests") == "3" and suite.get("failures") == "0"
    assert {case.get("name") for case in suite.iter("testcase")} == {
        "run", "boot_accepted_share", "p99_ms.BootNotification"}

    assert failed == 1, out_failed
    assert "the verdict failed: 1 of 4 thresholds not met" in out_failed
    assert "FAIL  p99_ms: p99 latency" in out_failed
    suite = failing.find("testsuite")
    assert suite.get("tests") == "5" and suite.get("failures") == "1"
    cases = {case.get("name"): case for case in suite.iter("testcase")}
    failure = cases["p99_ms"].find("failure")
    assert failure is not None and failure.get("type") == "threshold"
    assert failure.text.startswith("limit=0.001 measured=")
    assert float(failure.text.rsplit("=", 1)[1]) > 0.001
    assert cases["timeout_rate"].find("failure") is None
    verdict = json.loads(path.read_text())["verdict"]
    assert verdict["passed"] is False
    assert {c["name"]: c["passed"] for c in verdict["checks"]} == {
        "boot_accepted_share": True, "p99_ms": False, "p99_ms.BootNotification": True,
        "timeout_rate": True}


async def test_a_stopped_run_exits_3_and_still_writes_its_report(tmp_path):
    csms = SandboxCsms(Policy())
    url = await csms.start()
    env = await prepared(tmp_path)
    report_path, junit = tmp_path / "report.json", tmp_path / "verdict.xml"
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "manage.py", "loadtest", "--csms-url", url, "--stations", "5",
            "--scenario", "steady", "--quiet", "--json", str(report_path),
            "--junit", str(junit), cwd=ROOT, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while len(csms.connects) < 5:
            assert time.monotonic() < deadline, "the stations did not connect"
            await asyncio.sleep(0.1)
        process.send_signal(signal.SIGINT)
        out, _ = await asyncio.wait_for(process.communicate(), 60)
    finally:
        await csms.stop()
    assert process.returncode == 3, out.decode()
    report = json.loads(report_path.read_text())
    assert report["run"]["status"] == "stopped"
    assert report["run"]["timings"]["end_reason"] == "stopped"
    case = ET.parse(junit).getroot().find("testsuite/testcase[@name='run']")
    assert case.find("failure").get("message") == "the run stopped before its end"


async def test_a_fresh_database_is_refused_with_what_to_run(tmp_path):
    code, out = await manage(environment(tmp_path), "loadtest", "--csms-url",
                             "ws://127.0.0.1:9", "--stations", "5", "--scenario", "steady")
    assert code == 2
    assert "run `python manage.py migrate` first" in out
    assert "Traceback" not in out and "OperationalError" not in out


async def test_bad_parameters_exit_2_with_one_line_and_no_traceback(tmp_path):
    env = await prepared(tmp_path)
    for bad in (["--duration", "nan"], ["--ramp", "nan"], ["--duration", "inf"]):
        code, out = await manage(env, "loadtest", "--csms-url", "ws://127.0.0.1:9",
                                 "--stations", "5", "--scenario", "steady", *bad)
        assert code == 2, (bad, out)
        assert "Traceback" not in out and "IntegrityError" not in out, out
        assert [line for line in out.splitlines() if line.startswith("CommandError: ")] == [
            out.strip()], out
        assert "must be a positive number" in out


def test_help_says_what_every_option_is(capsys):
    from django.core.management import call_command

    with pytest.raises(SystemExit):
        call_command("loadtest", "--help")
    text = " ".join(capsys.readouterr().out.split())
    assert "--csms-url CSMS_URL the CSMS's websocket endpoint" in text
    assert "--stations STATIONS how many stations to simulate" in text
    assert "--duration DURATION seconds the run lasts, ramp-up included" in text
    assert "--threshold NAME=VALUE a limit the run must meet" in text
    assert "Exit status:" in text
