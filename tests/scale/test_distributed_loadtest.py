"""A load test spread over two engine worker processes reports the sum of its parts."""

import asyncio
import json

import pytest

from stations.sandbox import Policy, SandboxCsms
from tests.loadtest.test_loadtest_command import SCENARIO

from .cluster import Cluster

pytestmark = pytest.mark.slow


async def test_two_workers_report_merged_metrics_equal_to_the_sum_of_their_parts(tmp_path):
    csms = SandboxCsms(Policy())
    url = await csms.start()
    cluster = Cluster(tmp_path)
    cluster.start_redis()
    try:
        await asyncio.to_thread(cluster.create_database)
        cluster.start_worker("w1", concurrency=1)
        cluster.start_worker("w2", concurrency=1)
        # Scenarios come from the library or the database.
        await cluster.python("from stations.models import Scenario; "
                             f"Scenario.objects.create(name='short-mix', definition={SCENARIO!r})")
        report_path = tmp_path / "report.json"
        await asyncio.to_thread(
            cluster.manage, "loadtest", "--csms-url", url, "--stations", "40", "--ramp", "80",
            "--scenario", "short-mix", "--workers", "2", "--quiet", "--json",
            str(report_path), timeout=120)
        report = json.loads(report_path.read_text())
        logs = cluster.log("w1") + "\n" + cluster.log("w2")
    finally:
        await asyncio.to_thread(cluster.close)
        await csms.stop()

    summary = report["summary"]
    parts = report["parts"]
    assert len(parts) == 2 and all(p["out"] > 0 for p in parts)
    assert summary["messages"]["in"] == sum(p["in"] for p in parts)
    assert summary["messages"]["out"] == sum(p["out"] for p in parts)
    assert summary["boot"] == {"Accepted": 40}
    counted = {}
    for r in csms.received:
        counted[r.action] = counted.get(r.action, 0) + 1
    for action in ("BootNotification", "StatusNotification", "TransactionEvent"):
        assert summary["actions"][action]["requests"] == counted[action], action
    timings = report["run"]["timings"]
    assert timings["end_reason"] == "duration" and timings["stations"] == 40
    assert logs.count("stations.run_load_part") >= 2
    assert "w1@" in logs and "w2@" in logs
    assert csms.violations == []
