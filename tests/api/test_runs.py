"""Load-test runs through the API, as a CI job drives them: a token, a fleet from a template,
a run with thresholds followed to its verdict, its reports; stop; bad input; 401s."""

import asyncio
import csv
import io
import json
import xml.etree.ElementTree as ET

import pytest
from django.core.management import call_command

from stations.models import LoadTestRun, Scenario, Station, StationTemplate
from stations.run_forms import RunForm
from stations.sandbox import Policy, SandboxCsms
from tests.waiting import eventually

from .conftest import Api

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "s3cret-p4ssw0rd-of-the-run"
# A short run: three stations for about four seconds, drained within three.
RUN = {"stations": 3, "ramp": 50, "duration": 4, "response_timeout": 3,
       "scenario": "steady.toml", "seed": 7}
ENDED = ("completed", "stopped", "failed")


async def fetch(api: Api, path: str, accept: str | None = None):
    headers = {**api.headers, **({"Accept": accept} if accept else {})}
    return await api.client.get(f"/api/v1{path}", headers=headers)


async def follow(api: Api, pk: int, done, timeout: float, what: str) -> dict:
    """Poll the run, as a CI job does, until `done(run)`; returns the run's last answer."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        response = await api.get(f"/runs/{pk}/")
        assert response.status_code == 200, response.content
        run = response.json()
        if done(run):
            return run
        assert loop.time() < deadline, f"{what}: {run}"
        await asyncio.sleep(0.2)


@pytest.fixture
async def sandbox():
    csms = SandboxCsms(Policy())
    url = await csms.start()
    yield csms, url
    await csms.stop()
    assert csms.violations == []


async def test_a_ci_job_makes_a_fleet_runs_a_load_test_and_reads_its_verdict(api, engine):
    csms, host, url = engine
    template = await StationTemplate.objects.acreate(
        name="ci-fleet", id_pattern="CI-{n:03d}", csms_url=url, model="CiCharger",
        evse_count=2)

    # The fleet: stations from the template, started by the engine, booted at the CSMS.
    response = await api.post(f"/templates/{template.pk}/create-stations/", {"count": 3})
    assert response.status_code == 201, response.content
    for n in (1, 2, 3):
        await csms.wait_connected(f"CI-{n:03d}", 10)

    async def fleet_connected():
        return (await api.get("/fleet/")).json()["connected"] == 3
    await eventually(fleet_connected, 10, "three fleet stations connected", every=0.2)

    # The run: stations like the fleet's (the template), one threshold met and one not.
    response = await api.post("/runs/", {
        **RUN, "csms_url": url, "template": "ci-fleet", "security_profile": 1,
        "password": SECRET, "thresholds": {"boot_accepted_share": 1, "p99_ms": 0.001}})
    assert response.status_code == 201, response.content
    created = response.json()
    pk = created["id"]
    assert response["Location"] == f"/api/v1/runs/{pk}/"
    assert created["status"] in ("pending", "running") and created["verdict"] is None
    assert created["has_password"] is True
    assert (created["stations"], created["duration"], created["scenario"]) == (
        3, 4.0, "steady")

    running = await follow(api, pk, lambda r: (r["progress"] or {}).get("connected") == 3, 10,
                           "the run's stations connected")
    assert running["status"] == "running"
    assert running["progress"]["phase"] in ("ramp", "scenario")
    assert 0 < running["progress"]["elapsed_s"] < 5
    # A report exists only at the end.
    early = await fetch(api, f"/runs/{pk}/report/", accept="text/csv")
    assert early.status_code == 409 and early["Content-Type"] == "application/json"
    assert "has no report yet" in early.json()["detail"]

    run = await follow(api, pk, lambda r: r["status"] in ENDED, 30, "the run ended")
    assert (run["status"], run["result"], run["progress"]) == ("completed", "failed", None)
    checks = {c["name"]: c for c in run["verdict"]["checks"]}
    assert run["verdict"]["passed"] is False
    assert checks["boot_accepted_share"]["passed"] is True
    assert checks["boot_accepted_share"]["measured"] == 1.0
    assert checks["p99_ms"]["passed"] is False and checks["p99_ms"]["measured"] > 0.001
    assert run["summary"]["boot"] == {"Accepted": 3}
    assert "timeline" not in run["summary"], "the charts' series are in the report"
    # Its duration, then at most its drain (3 s), and the stations' goodbyes.
    assert 4 <= run["ran_s"] < 4 + 3 + 3

    # The run's stations were the template's: two EVSEs, its model, and the password.
    boots = [r for r in csms.received if r.action == "BootNotification"
             and r.station_id.startswith(f"LT{pk}-")]
    assert len(boots) == 3
    assert {b.payload["chargingStation"]["model"] for b in boots} == {"CiCharger"}
    evses = {r.payload["evseId"] for r in csms.received
             if r.action == "StatusNotification" and r.station_id == f"LT{pk}-00001"}
    assert evses == {1, 2}
    assert not await Station.objects.filter(station_id__startswith=f"LT{pk}-").aexists(), \
        "the run's stations are gone; the fleet's stay"
    assert await Station.objects.filter(template=template).acount() == 3

    # The report in every format, by Accept and by suffix.
    stored = (await LoadTestRun.objects.aget(pk=pk)).report
    as_json = await fetch(api, f"/runs/{pk}/report/")
    assert as_json["Content-Type"] == "application/json"
    assert as_json.json() == json.loads(json.dumps(stored))
    assert (await fetch(api, f"/runs/{pk}/report.json")).json()["verdict"] == run["verdict"]

    as_csv = await fetch(api, f"/runs/{pk}/report/", accept="text/csv")
    assert as_csv["Content-Type"].startswith("text/csv")
    table, verdict = as_csv.content.decode().split("\r\n\r\n")
    actions = {row["action"]: row for row in csv.DictReader(io.StringIO(table))}
    assert actions["BootNotification"]["responses"] == "3"
    assert {row["threshold"]: row["passed"] for row in csv.DictReader(io.StringIO(verdict))} \
        == {"boot_accepted_share": "yes", "p99_ms": "no"}

    as_html = await fetch(api, f"/runs/{pk}/report.html")
    assert as_html["Content-Type"].startswith("text/html")
    assert "uPlot" in as_html.content.decode() and "BootNotification" in as_html.content.decode()

    for junit in (await fetch(api, f"/runs/{pk}/report.junit"),
                  await fetch(api, f"/runs/{pk}/report/", accept="application/xml")):
        assert junit["Content-Type"].startswith("application/xml")
        assert junit["Content-Disposition"] == f'attachment; filename="loadtest-{pk}.junit.xml"'
        suite = ET.fromstring(junit.content).find("testsuite")
        assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("3", "1", "0")
        assert suite.find("testcase[@name='run']/failure") is None
        assert suite.find("testcase[@name='boot_accepted_share']/failure") is None
        failure = suite.find("testcase[@name='p99_ms']/failure")
        assert failure.text.startswith("limit=0.001 measured=")

    # The list, newest first, says how it went; no answer ever carries the password.
    listed = (await api.get("/runs/")).json()
    assert listed["count"] == 1
    assert (listed["results"][0]["id"], listed["results"][0]["result"]) == (pk, "failed")
    assert listed["results"][0]["verdict"] == run["verdict"]
    for path in ("/runs/", f"/runs/{pk}/", f"/runs/{pk}/report/", f"/runs/{pk}/report.csv",
                 f"/runs/{pk}/report.html", f"/runs/{pk}/report.junit"):
        assert SECRET.encode() not in (await fetch(api, path)).content, path
    assert SECRET.encode() not in response.content


async def test_a_run_stopped_through_the_api_drains_and_reports_it_was_stopped(api, sandbox):
    _csms, url = sandbox
    response = await api.post("/runs/", {**RUN, "csms_url": url, "duration": 600,
                                         "thresholds": {"boot_accepted_share": 1}})
    assert response.status_code == 201, response.content
    pk = response.json()["id"]
    await follow(api, pk, lambda r: (r["progress"] or {}).get("connected") == 3, 10,
                 "the run's stations connected")

    stopping = await api.post(f"/runs/{pk}/stop/")
    assert stopping.status_code == 202, stopping.content
    run = await follow(api, pk, lambda r: r["status"] in ENDED, 10, "the run ended")
    assert (run["status"], run["result"]) == ("stopped", "stopped")
    assert run["ran_s"] < 10, "it ended when told, not after its 600 s"
    assert run["verdict"]["passed"] is True, "what it measured still has a verdict"
    suite = ET.fromstring((await fetch(api, f"/runs/{pk}/report.junit")).content)
    assert suite.find("testsuite/testcase[@name='run']/failure").get("message") == \
        "the run stopped before its end", "a CI job does not pass a run cut short"

    again = await api.post(f"/runs/{pk}/stop/")
    assert (again.status_code, again.json()) == (409, {"detail": f"Run {pk} has ended: stopped."})


async def test_a_run_this_process_does_not_run_cannot_be_stopped_here(api):
    run = await LoadTestRun.objects.acreate(
        csms_url="ws://127.0.0.1:9", station_count=1, ramp_per_second=1, duration_s=60,
        scenario_name="steady", scenario_text="", status="running")
    response = await api.post(f"/runs/{run.pk}/stop/")
    assert response.status_code == 409
    assert "manage.py loadtest" in response.json()["detail"]
    assert (await api.get(f"/runs/{run.pk}/")).json()["progress"] is None


def form_errors(data: dict) -> dict[str, list[str]]:
    form = RunForm({key: str(value) for key, value in data.items()})
    form.is_valid()
    return {field: list(errors) for field, errors in form.errors.items()}


@pytest.mark.parametrize("bad", [
    {"stations": 0, "ramp": "nan", "duration": "inf", "response_timeout": "-1"},
    {"stations": 100_001, "ramp": 0, "duration": 8 * 86400, "response_timeout": 601},
    {"stations": 5, "ramp": -3, "duration": 0, "response_timeout": "NaN"},  # 5 is right
])
async def test_bad_numbers_get_a_400_on_their_field_in_the_forms_words(api, bad):
    body = {"csms_url": "ws://127.0.0.1:9", "scenario": "steady.toml", **bad}
    response = await api.post("/runs/", body)
    assert response.status_code == 400
    errors = response.json()
    expected = await asyncio.to_thread(form_errors, body)
    bad_fields = {field for field in bad if bad[field] != 5}
    assert set(errors) == set(expected) == bad_fields
    assert errors == expected
    assert await LoadTestRun.objects.acount() == 0


async def test_bad_choices_get_a_400_on_their_field_and_nothing_is_kept(api):
    response = await api.post("/runs/", {
        "csms_url": "ws://127.0.0.1:9", "stations": 3, "scenario": "/etc/passwd",
        "template": "nope", "thresholds": {"p95": 3, "p99_ms": 100},
        "security_profile": 1, "password": SECRET})
    assert response.status_code == 400
    errors = response.json()
    assert errors["scenario"][0].startswith(
        "no scenario named '/etc/passwd': scenarios come from the library (scenarios/: ")
    assert errors["template"] == ["no station template named 'nope'"]
    assert "'p95' is not a known threshold" in errors["thresholds"][0]
    assert SECRET.encode() not in response.content

    response = await api.post("/runs/", {**RUN, "csms_url": "http://127.0.0.1:9",
                                         "thresholds": {"timeout_rate": 2}})
    errors = response.json()
    assert errors["csms_url"][0].startswith("Enter a ws:// or wss:// URL with a host")
    assert errors["thresholds"] == ["the limit of timeout_rate must be between 0 and 1 (got 2)"]

    response = await api.post("/runs/", {**RUN, "csms_url": "ws://127.0.0.1:9",
                                         "security_profile": 1})
    assert response.json() == {"password": ["Security profile 1 uses Basic auth: set a password."]}
    assert await LoadTestRun.objects.acount() == 0


async def test_an_unreachable_csms_is_a_400_on_csms_url(api):
    response = await api.post("/runs/", {**RUN, "csms_url": "ws://127.0.0.1:1/ocpp"})
    assert response.status_code == 400
    assert list(response.json()) == ["csms_url"]
    assert response.json()["csms_url"][0].startswith("cannot reach the CSMS at 127.0.0.1:1")
    assert await LoadTestRun.objects.acount() == 0


async def test_a_database_scenario_runs_by_its_name_and_a_broken_one_is_refused(api, sandbox):
    _csms, url = sandbox
    await Scenario.objects.acreate(name="nightly", definition='name = "nightly"\n'
                                   'duration_s = 60\n[thresholds]\nconnected_share = 1\n')
    await Scenario.objects.acreate(name="broken", definition="duration_s = [")
    listed = {s["name"]: s for s in (await api.get("/scenarios/")).json()}
    assert {"mixed.toml", "steady.toml", "transaction-mix.toml", "nightly", "broken"} <= \
        set(listed)
    assert listed["steady.toml"]["source"] == "library"
    assert (listed["steady.toml"]["title"], listed["steady.toml"]["duration_s"]) == (
        "steady", 3600)
    assert listed["nightly"] | {"definition": ""} == {
        "name": "nightly", "source": "database", "format": "toml", "title": "nightly",
        "duration_s": 60, "seed": None, "ramp_per_second": None,
        "thresholds": {"connected_share": 1.0}, "error": None, "definition": ""}
    assert listed["broken"]["error"].startswith("invalid TOML")

    refused = await api.post("/runs/", {**RUN, "csms_url": url, "scenario": "broken"})
    assert refused.status_code == 400
    assert refused.json()["scenario"][0].startswith("scenario 'broken' does not parse")

    response = await api.post("/runs/", {**RUN, "csms_url": url, "scenario": "nightly",
                                         "duration": 2})
    assert response.status_code == 201, response.content
    created = response.json()
    assert created["thresholds"] == {"connected_share": 1.0}, "the scenario's thresholds"
    run = await follow(api, created["id"], lambda r: r["status"] in ENDED, 15, "the run ended")
    assert (run["status"], run["result"]) == ("completed", "passed")


async def test_an_unknown_run_is_a_404_in_json_whatever_format_was_asked(api):
    for path, accept in (("/runs/999/", None), ("/runs/999/report/", "text/csv"),
                         ("/runs/999/report.junit", None)):
        response = await fetch(api, path, accept)
        assert response.status_code == 404, path
        assert response.json() == {"detail": "No run 999."}
    assert (await api.post("/runs/999/stop/")).status_code == 404


@pytest.mark.parametrize("method,path,accept", [
    ("get", "/runs/", None), ("post", "/runs/", None), ("get", "/runs/1/", None),
    ("post", "/runs/1/stop/", None), ("get", "/runs/1/report/", None),
    ("get", "/runs/1/report/", "text/csv"), ("get", "/runs/1/report.junit", None),
    ("get", "/scenarios/", None),
])
async def test_the_run_endpoints_need_a_valid_token(method, path, accept):
    for api in (Api(None), Api("fleet_wrong")):
        headers = {**api.headers, **({"Accept": accept} if accept else {})}
        if method == "get":
            response = await api.client.get(f"/api/v1{path}", headers=headers)
        else:
            response = await api.client.post(f"/api/v1{path}", {}, headers=headers,
                                             content_type="application/json")
        assert response.status_code == 401, (path, response.content)
        assert response["Content-Type"] == "application/json"
        assert "detail" in response.json()
    assert await LoadTestRun.objects.acount() == 0


def test_the_schema_describes_runs_with_a_write_only_password(tmp_path):
    import yaml

    path = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(path))
    schema = yaml.safe_load(path.read_text())
    assert {"/api/v1/runs/", "/api/v1/runs/{id}/", "/api/v1/runs/{id}/stop/",
            "/api/v1/runs/{id}/report/", "/api/v1/runs/{id}/report{format}",
            "/api/v1/scenarios/"} <= set(schema["paths"])
    components = schema["components"]["schemas"]
    assert {"password", "client_key"} <= set(components["NewRunRequest"]["properties"])
    assert "password" not in components["RunDetail"]["properties"]
    assert "has_password" in components["RunDetail"]["properties"]
    report = schema["paths"]["/api/v1/runs/{id}/report/"]["get"]["responses"]["200"]
    assert set(report["content"]) == {"application/json", "text/csv", "text/html",
                                      "application/xml"}
