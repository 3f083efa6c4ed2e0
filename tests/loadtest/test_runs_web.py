"""Load tests from the dashboard: start, follow, stop, download, compare, and /metrics."""

import asyncio
import html
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.test import AsyncClient

from stations.models import LoadTestRun, Station
from stations.sandbox import Policy, SandboxCsms

pytestmark = pytest.mark.django_db(transaction=True)

SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "steady.toml"


@pytest.fixture
async def client(db):
    user = await asyncio.to_thread(get_user_model().objects.create_user, "op", password="x" * 20)
    client = AsyncClient()
    await client.aforce_login(user)
    return client


async def start(client, url, **extra):
    form = {"csms_url": url, "stations": "10", "ramp": "50", "duration": "30",
            "response_timeout": "5", "scenario": "steady.toml", "seed": "3", **extra}
    return await client.post("/runs/new/", form)


def field_errors(page: str) -> dict[str, str]:
    return {name: html.unescape(text) for name, text in
            re.findall(r'data-field-error="(\w+)">([^<]*)<', page)}


async def test_bad_parameters_come_back_in_the_form_with_each_error_and_nothing_lost(client):
    response = await start(client, "ws://127.0.0.1:1", stations="0", ramp="nan",
                           duration="inf", seed="12345", scenario="/etc/passwd",
                           thresholds="p95_ms.Authorize=500\np95=3", password="s3cret-p4ssw0rd!x")
    assert response.status_code == 400
    page = response.content.decode()
    errors = field_errors(page)
    # The command line's words.
    assert errors["stations"] == "the number of stations must be at least 1"
    assert errors["ramp"] == "the ramp-up rate (stations per second) must be a positive number"
    assert errors["duration"] == "the duration (seconds) must be a positive number"
    assert errors["scenario"].startswith("Select a valid choice. /etc/passwd is not one")
    assert "'p95' is not a known threshold" in errors["thresholds"]
    assert errors["password"] == "Enter the password again: it is not kept."
    # What was typed is still there, but the password.
    assert 'value="ws://127.0.0.1:1"' in page and 'value="12345"' in page
    assert "p95_ms.Authorize=500" in page
    assert "s3cret-p4ssw0rd!x" not in page
    assert await LoadTestRun.objects.acount() == 0


async def test_an_unreachable_csms_is_an_error_on_its_field(client):
    response = await start(client, "ws://127.0.0.1:1")
    assert response.status_code == 400
    assert "cannot reach the CSMS at 127.0.0.1:1" in field_errors(response.content.decode())[
        "csms_url"]
    assert await LoadTestRun.objects.acount() == 0


async def test_the_form_offers_the_library_and_the_database_scenarios(client):
    from stations.models import Scenario

    await Scenario.objects.acreate(name="nightly", definition='name = "nightly"\n'
                                                              'duration_s = 60\n')
    page = (await client.get("/runs/")).content.decode()
    assert '<optgroup label="Library (scenarios/)">' in page
    for name in ("mixed.toml", "steady.toml", "transaction-mix.toml"):
        assert f'<option value="{name}">{name}</option>' in page
    assert '<optgroup label="Database (admin)">' in page
    assert '<option value="nightly">nightly</option>' in page
    for label in ("CSMS URL", "Stations", "Duration (s)", "Thresholds"):
        assert f">{label}</label>" in page, "every field has its own label"


async def test_compare_without_two_runs_says_to_pick_two(client):
    for query in ("", "?a=1", "?a=x&b=y", "?a=998&b=999"):
        response = await client.get(f"/runs/compare/{query}")
        assert response.status_code == 200
        assert b"Pick two runs to compare" in response.content


async def test_a_run_started_from_the_dashboard_reports_and_can_be_compared(client):
    csms = SandboxCsms(Policy())
    url = await csms.start()
    try:
        first = await start(client, url, thresholds="boot_accepted_share=1\np99_ms=0.001")
        assert first.status_code == 302, first.content.decode()
        run = await LoadTestRun.objects.alatest("created_at")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 15
        while True:
            live = (await client.get(f"/runs/{run.pk}/live.json")).json()
            if live["running"] and live["live"]["connected"] == 10:
                break
            assert loop.time() < deadline, live
            await asyncio.sleep(0.1)
        metrics = (await client.get("/metrics")).content.decode()
        assert f'loadtest_requests_total{{action="BootNotification",run="{run.pk}"}} 10.0' \
            in metrics
        assert "fleet_stations" in metrics
        await client.post(f"/runs/{run.pk}/stop/")
        while (await client.get(f"/runs/{run.pk}/live.json")).json()["running"]:
            assert loop.time() < deadline + 15
            await asyncio.sleep(0.1)
        await run.arefresh_from_db()
        assert run.status == "stopped"
        assert run.thresholds == {"boot_accepted_share": 1.0, "p99_ms": 0.001}
        assert run.report["summary"]["boot"] == {"Accepted": 10}
        checks = {c["name"]: c["passed"] for c in run.report["verdict"]["checks"]}
        assert checks == {"boot_accepted_share": True, "p99_ms": False}
        page = (await client.get(f"/runs/{run.pk}/")).content.decode()
        assert 'data-action="BootNotification"' in page
        assert 'data-check="p99_ms" class="check-fail"' in page
        assert "failed: 1 of 2 thresholds not met" in page
        # The charts' data is embedded as JSON, not as a JSON string inside JSON.
        embedded = re.search(r'<script id="report-data" type="application/json">(.*?)</script>',
                             page, re.S).group(1)
        summary = json.loads(embedded)
        assert isinstance(summary, dict) and summary["timeline"], "a timeline to draw"
        junit = (await client.get(f"/runs/{run.pk}/report.junit")).content.decode()
        suite = ET.fromstring(junit).find("testsuite")
        # The threshold missed, and the run itself: stopped before its end.
        assert suite.get("failures") == "2"
        assert suite.find("testcase[@name='run']/failure") is not None
        assert suite.find("testcase[@name='p99_ms']/failure").text.startswith("limit=0.001")
        listing = (await client.get("/runs/")).content.decode()
        row = re.search(rf'<tr data-run="{run.pk}">.*?</tr>', listing, re.S).group(0)
        assert "30 s" in row and "(ran " in row, "duration and what ran"
        assert "data-result>stopped<" in row
        assert row.count("-") >= 4, "started and ended times"
        csv = (await client.get(f"/runs/{run.pk}/report.csv")).content.decode()
        assert csv.splitlines()[0].startswith("action,requests,responses")
        html = (await client.get(f"/runs/{run.pk}/report.html")).content.decode()
        assert "uPlot" in html and "BootNotification" in html
        second = await LoadTestRun.objects.acreate(
            csms_url=url, station_count=5, ramp_per_second=5, duration_s=5,
            scenario_name="steady", scenario_text="", report=run.report, status="completed")
        compare = (await client.get(f"/runs/compare/?a={run.pk}&b={second.pk}")).content
        assert b"data-compare" in compare and b"BootNotification" in compare
        compare = compare.decode()
        # The same report on both sides: every delta is 0, and a 0 reads "0", not "—".
        assert '<td class="delta" data-cell="requests-delta">0</td>' in compare
        assert '<td data-cell="errors-a">0</td>' in compare
        assert "{'" not in compare, "no Python dicts"
    finally:
        await csms.stop()
    assert csms.violations == []
    leftover = Station.objects.filter(station_id__startswith=run.station_prefix)
    assert not await leftover.aexists(), "the run's stations were removed"


def test_a_scenario_that_does_not_parse_is_a_field_error_in_the_admin(admin_client):
    response = admin_client.post("/admin/stations/scenario/add/", {
        "name": "broken", "format": "toml", "definition": 'name = "x"\nduration_s = -1\n'})
    assert response.status_code == 200
    assert "duration_s" in str(response.context["adminform"].form.errors["definition"])
    response = admin_client.post("/admin/stations/scenario/add/", {
        "name": "ok", "format": "toml", "definition": SCENARIO.read_text()})
    assert response.status_code == 302


def test_a_run_makes_its_stations_from_a_template_and_refuses_an_unknown_one(db):
    from stations import loadtest
    from stations.models import Evse, StationTemplate

    StationTemplate.objects.create(name="dual", csms_url="ws://127.0.0.1:9", evse_count=2,
                                   connectors_per_evse=2, model="Dual")
    source = loadtest.resolve_scenario("steady")
    run = loadtest.create_run(csms_url="ws://127.0.0.1:9", stations=3, ramp_per_second=10,
                              duration_s=5, source=source, seed=1, template="dual")
    loadtest.create_stations(run)
    stations = list(loadtest.run_stations(run))
    assert len(stations) == 3 and {s.model for s in stations} == {"Dual"}
    assert not any(s.enabled for s in stations), "the fleet engine must not start them"
    assert Evse.objects.filter(station__in=stations).count() == 6
    with pytest.raises(loadtest.LoadTestError, match="no station template"):
        loadtest.create_run(csms_url="ws://127.0.0.1:9", stations=3, ramp_per_second=10,
                            duration_s=5, source=source, seed=1, template="nope")
