"""`manage.py loadtest` against an `ocpp`-library CSMS: the report matches what it received."""

import asyncio
import json
import os
import sys
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
id_tokens = { pool = 20, prefix = "LT-", pick = "zipf" }
meter_interval_s = 1
"""


async def loadtest(tmp_path, csms_url, stations, *extra):
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'lt.sqlite3'}",
           "FLEET_VAR_DIR": str(tmp_path)}
    env.pop("REDIS_URL", None)
    migrate = await asyncio.create_subprocess_exec(
        sys.executable, "manage.py", "migrate", "--noinput", cwd=ROOT, env=env,
        stdout=asyncio.subprocess.DEVNULL)
    assert await migrate.wait() == 0
    scenario = tmp_path / "scenario.toml"
    scenario.write_text(SCENARIO)
    report_path = tmp_path / "report.json"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "manage.py", "loadtest", "--csms-url", csms_url, "--stations",
        str(stations), "--ramp", "100", "--scenario", str(scenario), "--quiet",
        "--json", str(report_path), "--html", str(tmp_path / "report.html"), *extra,
        cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(process.communicate(), 120)
    return process.returncode, out.decode(), report_path


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
        # A call still in flight when the run ended is answered too late to count; at
        # most one per station can be.
        unanswered = row["requests"] - row["responses"] - row["timeouts"]
        assert 0 <= unanswered <= 200 and row["responses"] >= counted[action] - unanswered
    assert counted["TransactionEvent"] > 100, "sessions ran"
    assert summary["connections"]["succeeded"] == 200
    assert summary["boot"] == {"Accepted": 200}
    started = sum(1 for r in csms.received if r.action == "TransactionEvent"
                  and r.payload["eventType"] == "Started")
    assert summary["transactions"]["started"] == started
    latency = summary["actions"]["BootNotification"]["latency_ms"]
    assert 0 < latency["p50"] <= latency["p99"] <= latency["max"]
    assert report["run"]["seed"] == 7 and report["run"]["status"] == "completed"
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
    actions = json.loads(path.read_text())["summary"]["actions"]
    counted = received(csms)
    authorize, status = actions["Authorize"], actions["StatusNotification"]
    assert authorize["requests"] == counted["Authorize"] > 0
    assert set(authorize["errors"]) == {"InternalError"} and authorize["responses"] == 0
    # Calls still waiting when the run ended were neither answered nor timed out.
    assert 0 < authorize["errors"]["InternalError"] <= authorize["requests"]
    assert status["requests"] == counted["StatusNotification"]
    assert status["responses"] == 0 and 0 < status["timeouts"] <= status["requests"]


@pytest.mark.parametrize("args, message", [
    (["--stations", "0"], "at least 1"),
    (["--stations", "5", "--ramp", "-1"], "positive"),
    (["--stations", "5", "--csms-url", "ws://127.0.0.1:1"], "cannot reach"),
])
async def test_bad_parameters_are_refused_before_anything_starts(tmp_path, args, message):
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'lt.sqlite3'}",
           "FLEET_VAR_DIR": str(tmp_path)}
    scenario = tmp_path / "s.toml"
    scenario.write_text(SCENARIO)
    base = ["--csms-url", "ws://127.0.0.1:9", "--scenario", str(scenario)]
    process = await asyncio.create_subprocess_exec(
        sys.executable, "manage.py", "loadtest", *base, *args, cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode != 0
    assert message in out.decode()


async def test_a_scenario_that_does_not_parse_is_refused(tmp_path):
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'lt.sqlite3'}",
           "FLEET_VAR_DIR": str(tmp_path)}
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\nduration_s = -5\n')
    process = await asyncio.create_subprocess_exec(
        sys.executable, "manage.py", "loadtest", "--csms-url", "ws://127.0.0.1:9",
        "--stations", "5", "--scenario", str(bad), cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode != 0 and "duration_s" in out.decode()
