"""Stations through the API: create, list, command a running station, delete; validation."""

import asyncio
import json

import pytest

from stations.models import Connector, Evse, Station, StationTemplate
from tests.waiting import eventually

from .conftest import Api, make_user

pytestmark = pytest.mark.django_db(transaction=True)

PEM_KEY_MARK = "PRIVATE KEY"


def station_body(station_id="API-1", url="ws://csms.example:9000/ocpp", **fields) -> dict:
    return {"station_id": station_id, "csms_url": url,
            "evses": [{"evse_id": 1, "max_power_kw": 11,
                       "connectors": [{"connector_id": 1, "connector_type": "cCCS2"}]}],
            **fields}


async def test_a_station_created_through_the_api_runs_obeys_commands_and_goes(api, engine):
    csms, host, url = engine
    response = await api.post("/stations/", station_body(url=url))
    assert response.status_code == 201, response.json()
    created = response.json()
    assert created["evses"][0]["connectors"] == [
        {"connector_id": 1, "connector_type": "cCCS2", "max_power_kw": None}]

    await csms.wait_connected("API-1", 10)
    await eventually(lambda: host.engine.stations["API-1"].online, 10, "API-1 booted")

    listed = (await api.get("/stations/", q="api-")).json()
    assert listed["count"] == 1 and listed["results"][0]["station_id"] == "API-1"

    response = await api.post("/stations/API-1/commands/", {
        "command": "start_charging", "evse_id": 1, "id_token": "04A1B2C3"})
    assert (response.status_code, response.json()) == (
        200, {"ok": True, "status": "Accepted", "detail": ""})
    started = await csms.wait_for("TransactionEvent", "API-1")
    assert started[0]["eventType"] == "Started"

    # The engine's state shows up once the recorder has written it (about a second).
    async def charging():
        detail = (await api.get("/stations/API-1/")).json()
        return detail["evses"][0]["live"]["transaction_id"] is not None
    await eventually(charging, 10, "the transaction in the station's live state", every=0.2)

    response = await api.post("/stations/API-1/commands/", {"command": "stop_charging",
                                                              "evse_id": 1})
    assert response.json()["ok"]
    ended = await csms.wait_for("TransactionEvent", "API-1", count=2)
    assert ended[1]["eventType"] == "Ended"

    response = await api.delete("/stations/API-1/")
    assert response.status_code == 204
    await eventually(lambda: "API-1" not in host.engine.stations, 10, "API-1 stopped")
    await eventually(lambda: "API-1" not in csms.sessions, 10, "API-1 disconnected")
    assert (await api.get("/stations/API-1/")).status_code == 404


async def test_command_outcomes_carry_their_http_status(api, engine):
    csms, host, url = engine
    assert (await api.post("/stations/", station_body(url=url))).status_code == 201
    await eventually(lambda: "API-1" in host.engine.stations
                     and host.engine.stations["API-1"].online, 10, "API-1 online")

    rejected = await api.post("/stations/API-1/commands/", {
        "command": "start_charging", "evse_id": 1, "id_token": "0BADC0DE"})
    assert (rejected.status_code, rejected.json()) == (
        409, {"ok": False, "status": "Invalid", "detail": "idToken not accepted"})

    asked = len(csms.messages("API-1", "Authorize"))
    bad_uid = await api.post("/stations/API-1/commands/", {
        "command": "start_charging", "evse_id": 1, "id_token": "TOKEN-001"})
    assert bad_uid.status_code == 400
    assert bad_uid.json()["id_token"][0].startswith("ISO14443 idTokens are 4- or 7-byte")
    bad_type = await api.post("/stations/API-1/commands/", {
        "command": "present_id_token", "evse_id": 1, "id_token": "x", "token_type": "RFID"})
    assert bad_type.status_code == 400 and "token_type" in bad_type.json()
    not_empty = await api.post("/stations/API-1/commands/", {
        "command": "present_id_token", "evse_id": 1, "id_token": "04A1B2C3",
        "token_type": "NoAuthorization"})
    assert not_empty.json() == {"id_token": ["NoAuthorization idTokens are empty."]}
    assert len(csms.messages("API-1", "Authorize")) == asked, "nothing reached the CSMS"
    emaid = await api.post("/stations/API-1/commands/", {
        "command": "start_charging", "evse_id": 1, "id_token": "DE-8AA-C12345678-D",
        "token_type": "eMAID"})
    assert emaid.status_code == 200, emaid.json()
    authorize = (await csms.wait_for("Authorize", "API-1", count=asked + 1))[-1]
    assert authorize["idToken"] == {"idToken": "DE-8AA-C12345678-D", "type": "eMAID"}

    no_evse = await api.post("/stations/API-1/commands/", {"command": "plug_in", "evse_id": 7})
    assert no_evse.status_code == 409 and "no EVSE 7" in no_evse.json()["detail"]

    await Station.objects.acreate(station_id="IDLE-1", csms_url=url, enabled=False)
    not_running = await api.post("/stations/IDLE-1/commands/", {"command": "reboot"})
    assert not_running.status_code == 503 and not_running.json()["status"] == "Unknown"

    missing = await api.post("/stations/NOPE/commands/", {"command": "reboot"})
    assert missing.status_code == 404


async def test_every_dashboard_command_reaches_the_station(api, engine):
    csms, host, url = engine
    assert (await api.post("/stations/", station_body(url=url))).status_code == 201
    await eventually(lambda: "API-1" in host.engine.stations
                     and host.engine.stations["API-1"].online, 10, "API-1 online")
    station = host.engine.stations["API-1"]
    evse = station.evses[1]

    async def send(command, **args):
        response = await api.post("/stations/API-1/commands/", {"command": command, **args})
        assert response.status_code == 200, (command, response.json())

    await send("plug_in", evse_id=1)
    assert evse.plugged_connector is not None
    await send("present_id_token", evse_id=1, id_token="E004015012345678", token_type="ISO15693")
    assert evse.id_token == {"idToken": "E004015012345678", "type": "ISO15693"}
    await send("set_ev_drawing", evse_id=1, drawing=False)
    assert evse.ev is not None and not evse.ev.drawing
    await send("present_id_token", evse_id=1, id_token="E004015012345678",
               token_type="ISO15693")  # the same card stops
    await send("unplug", evse_id=1)
    assert evse.plugged_connector is None
    await send("set_fault", evse_id=1)
    assert evse.faulted
    await send("clear_fault", evse_id=1)
    assert not evse.faulted
    await send("disconnect")
    await eventually(lambda: "API-1" not in csms.sessions, 10, "disconnected")
    await send("connect")
    await csms.wait_connected("API-1", 10)
    boots = len(csms.messages("API-1", "BootNotification"))
    await eventually(lambda: station.online, 10, "back online")
    await send("reboot")
    await eventually(lambda: len(csms.messages("API-1", "BootNotification")) > boots, 15,
                     "a new BootNotification after the reboot")


async def test_the_fleet_connects_and_disconnects_and_reports_totals(api, engine):
    csms, host, url = engine
    for n in (1, 2):
        assert (await api.post("/stations/", station_body(f"API-{n}", url))).status_code == 201
    await eventually(lambda: len(csms.sessions) == 2, 15, "both connected")
    response = await api.post("/fleet/commands/", {"command": "disconnect_all"})
    assert response.json() == {"ok": True, "count": 2}
    await eventually(lambda: not csms.sessions, 10, "both disconnected")

    async def totals_say(**expected):
        totals = (await api.get("/fleet/")).json()
        return all(totals[k] == v for k, v in expected.items())
    await eventually(lambda: totals_say(stations=2, offline=2, connected=0), 10,
                     "the totals after disconnecting", every=0.2)
    await api.post("/fleet/commands/", {"command": "connect_all"})
    await eventually(lambda: len(csms.sessions) == 2, 15, "both back")
    await eventually(lambda: totals_say(connected=2, available=2), 10,
                     "the totals after connecting", every=0.2)
    bad = await api.post("/fleet/commands/", {"command": "explode_all"})
    assert bad.status_code == 400 and "command" in bad.json()


async def test_the_variables_of_a_running_station_leave_out_write_only_values(api, engine):
    csms, host, url = engine
    await api.post("/stations/", station_body(url=url, security_profile=1,
                                              password="a-long-basic-auth-secret"))
    await eventually(lambda: "API-1" in host.engine.stations
                     and host.engine.stations["API-1"].online, 10, "API-1 online")
    response = await api.get("/stations/API-1/variables/")
    data = response.json()
    assert response.status_code == 200 and data["ok"]
    names = {(v["component"], v["variable"]): v["value"] for v in data["variables"]}
    assert names[("OCPPCommCtrlr", "HeartbeatInterval")] == "300"
    assert names[("SecurityCtrlr", "BasicAuthPassword")] is None
    assert "a-long-basic-auth-secret" not in response.content.decode()


def test_the_list_is_paged_and_filtered_like_the_dashboards(make_station, operator_token):
    for n in range(1, 6):
        make_station(f"CS-{n}")
    Station.objects.filter(station_id__in=["CS-1", "CS-2"]).update(online=True,
                                                                    status="Available")
    Station.objects.filter(station_id="CS-5").update(enabled=False)
    api = Api(operator_token)

    def get(**params):
        response = asyncio.run(api.get("/stations/", **params))
        assert response.status_code == 200, response.json()
        return response.json()
    page = get(size=2, page=2)
    assert page["count"] == 5 and [s["station_id"] for s in page["results"]] == ["CS-3", "CS-4"]
    assert page["next"] and page["previous"]
    assert [s["station_id"] for s in get(status="Available")["results"]] == ["CS-1", "CS-2"]
    assert get(status="Offline")["count"] == 3
    assert [s["station_id"] for s in get(enabled="false")["results"]] == ["CS-5"]
    assert [s["station_id"] for s in get(q="cs-4")["results"]] == ["CS-4"]
    bad = asyncio.run(api.get("/stations/", status="Sleeping"))
    assert bad.status_code == 400 and "status" in bad.json()


async def test_bad_stations_get_field_errors_and_nothing_is_created(api):
    async def errors(**body):
        response = await api.post("/stations/", body)
        assert response.status_code == 400, response.json()
        return response.json()

    assert set(await errors(**station_body(csms_url="http://nope"))) == {"csms_url"}
    assert set(await errors(**station_body("bad id"))) == {"station_id"}
    assert set(await errors(**station_body(security_profile=1))) == {"password"}
    assert set(await errors(**station_body(security_profile=2, password="x" * 16))) == \
        {"csms_url"}
    assert set(await errors(**station_body(
        url="wss://csms.example/ocpp", security_profile=3))) == {"client_cert", "client_key"}
    assert await errors(**station_body(evses=[])) == {
        "evses": ["A station needs at least one EVSE."]}
    assert await errors(**station_body(evses=[{"evse_id": 1}, {"evse_id": 1}])) == {
        "evses": ["EVSE ids must be unique within a station."]}
    nested = await errors(**station_body(evses=[{"evse_id": 0, "phases": 2}]))
    # Nested errors are keyed by the item's position.
    assert set(nested["evses"]["0"]) == {"evse_id", "phases"}
    connectors = await errors(**station_body(evses=[{"evse_id": 1, "connectors": [
        {"connector_id": 1, "connector_type": "cChaoJi"}]}]))
    assert set(connectors["evses"]["0"]["connectors"]["0"]) == {"connector_type"}
    assert set(await errors(**station_body(vendor="v" * 51))) == {"vendor"}
    not_json = await api.client.post("/api/v1/stations/", "{", content_type="application/json",
                                     headers=api.headers)
    assert not_json.status_code == 400 and "JSON" in not_json.json()["detail"]
    assert await Station.objects.acount() == 0

    await api.post("/stations/", station_body())
    assert set(await errors(**station_body())) == {"station_id"}, "taken"
    assert await Station.objects.acount() == 1


async def test_an_evse_without_connectors_gets_one_as_in_the_admin(api):
    response = await api.post("/stations/", station_body(evses=[{"evse_id": 1},
                                                                {"evse_id": 2}]))
    assert response.status_code == 201
    types = [c.connector_type async for c in Connector.objects.order_by("evse__evse_id")]
    assert types == ["cType2", "cType2"]


async def test_secrets_never_appear_in_an_answer(api, pki):
    body = station_body(url="wss://csms.example/ocpp", security_profile=3,
                        ca_cert=pki.ca_cert, client_cert=pki.client_cert,
                        client_key=pki.client_key)
    response = await api.post("/stations/", body)
    assert response.status_code == 201, response.json()
    second = await api.post("/stations/", station_body("API-2", security_profile=1,
                                                       password="another-basic-secret"))
    assert second.status_code == 201
    template = await StationTemplate.objects.acreate(
        name="secret", csms_url="ws://csms.example/ocpp", security_profile=1,
        password="template-basic-secret")
    answers = [response, second, await api.get("/stations/"), await api.get("/stations/API-1/"),
               await api.get("/stations/API-2/"), await api.get("/templates/"),
               await api.get(f"/templates/{template.pk}/")]
    for answer in answers:
        text = answer.content.decode()
        assert PEM_KEY_MARK not in text and "basic-secret" not in text, answer.json()
        assert '"password"' not in text and '"client_key"' not in text
    detail = json.loads(answers[3].content)
    assert detail["has_client_key"] and detail["client_cert"].startswith("-----BEGIN")
    assert json.loads(answers[4].content)["has_password"]
    stored = await Station.objects.aget(station_id="API-1")
    assert stored.client_key.strip() == pki.client_key.strip()


async def test_creating_and_deleting_stations_needs_the_admins_permissions(make_station):
    from stations.api.models import ApiToken

    def token_of(name, **kwargs):
        return ApiToken.create_for(make_user(name, **kwargs), name)[1]
    viewer = Api(await asyncio.to_thread(token_of, "viewer"))
    clerk = Api(await asyncio.to_thread(token_of, "clerk", staff=True,
                                        permissions=("add_station",)))
    await asyncio.to_thread(make_station, "CS-1")
    assert (await viewer.get("/stations/CS-1/")).status_code == 200
    for api in (viewer, clerk):
        assert (await api.post("/stations/", station_body())).status_code == 403
        assert (await api.delete("/stations/CS-1/")).status_code == 403
    assert await Station.objects.acount() == 1


async def test_stations_are_created_from_a_template_all_or_nothing(api):
    template = await StationTemplate.objects.acreate(
        name="load", id_pattern="LD-{n:03d}", csms_url="ws://csms.example/ocpp",
        evse_count=2, connectors_per_evse=2)
    listed = (await api.get("/templates/")).json()
    assert [(t["name"], t["station_count"]) for t in listed["results"]] == [("load", 0)]

    path = f"/templates/{template.pk}/create-stations/"
    response = await api.post(path, {"count": 5, "start": 8})
    assert (response.status_code, response.json()) == (201, {
        "created": 5, "first_station_id": "LD-008", "last_station_id": "LD-012"})
    assert await Evse.objects.filter(station__template=template).acount() == 10
    assert await Connector.objects.filter(evse__station__template=template).acount() == 20

    other = await api.post(path, {"count": 3, "id_pattern": "OT-{n}"})
    assert other.json()["first_station_id"] == "OT-1"
    await template.arefresh_from_db()
    assert template.id_pattern == "LD-{n:03d}", "the override is not saved"

    taken = await api.post(path, {"count": 10, "start": 1})
    assert taken.status_code == 400 and "LD-008" in taken.json()["non_field_errors"][0]
    assert set((await api.post(path, {"count": 0})).json()) == {"count"}
    assert set((await api.post(path, {"count": 2, "id_pattern": "X-{m}"})).json()) == \
        {"id_pattern"}
    assert set((await api.post(path, {"count": 2, "id_pattern": "bad id {n}"})).json()) == \
        {"id_pattern"}
    assert await Station.objects.acount() == 8
    assert (await api.get(f"/templates/{template.pk}/")).json()["station_count"] == 8
