"""Load tests from the dashboard: start, follow, stop, download, compare, and /metrics."""

import asyncio
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
            "scenario": str(SCENARIO), "seed": "3", **extra}
    return await client.post("/runs/new/", form)


async def test_bad_parameters_come_back_as_a_message_and_start_nothing(client):
    response = await start(client, "ws://127.0.0.1:1")
    assert response.status_code == 302 and "cannot%20reach" in response["Location"]
    response = await start(client, "ws://127.0.0.1:1", stations="0")
    assert "at%20least%201" in response["Location"]
    assert await LoadTestRun.objects.acount() == 0
    page = await client.get("/runs/?error=the+number+of+stations+must+be+at+least+1")
    assert b"must be at least 1" in page.content


async def test_a_run_started_from_the_dashboard_reports_and_can_be_compared(client):
    csms = SandboxCsms(Policy())
    url = await csms.start()
    try:
        first = await start(client, url)
        assert first.status_code == 302
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
        assert run.report["summary"]["boot"] == {"Accepted": 10}
        page = (await client.get(f"/runs/{run.pk}/")).content.decode()
        assert 'data-action="BootNotification"' in page
        csv = (await client.get(f"/runs/{run.pk}/report.csv")).content.decode()
        assert csv.splitlines()[0].startswith("action,requests,responses")
        html = (await client.get(f"/runs/{run.pk}/report.html")).content.decode()
        assert "uPlot" in html and "BootNotification" in html
        second = await LoadTestRun.objects.acreate(
            csms_url=url, station_count=5, ramp_per_second=5, duration_s=5,
            scenario_name="steady", scenario_text="", report=run.report, status="completed")
        compare = (await client.get(f"/runs/compare/?a={run.pk}&b={second.pk}")).content
        assert b"data-compare" in compare and b"BootNotification" in compare
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
    source = loadtest.resolve_scenario(str(SCENARIO))
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
