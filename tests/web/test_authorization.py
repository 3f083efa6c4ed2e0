"""Authorization through the dashboard API and the REST API, against a running embedded
engine; the cache and the local list kept in the database across a restart of the engine."""

import asyncio

import pytest
from channels.layers import get_channel_layer
from django.contrib.auth import get_user_model
from django.test import AsyncClient
from ocpp.v201 import call

from stations.sandbox import Policy, SandboxCsms
from stations.shard_host import ShardHost
from tests.waiting import eventually

pytestmark = pytest.mark.django_db(transaction=True)

CARD = "04A1B2C3"
VICINITY_CARD = "E004015012345678"  # ISO15693: an 8-byte UID


async def start_host():
    host = ShardHost(None, layer=get_channel_layer())
    stop = asyncio.Event()
    task = asyncio.create_task(host.run(stop))
    await eventually(lambda: "CS-1" in host.engine.stations
                     and host.engine.stations["CS-1"].online, 10, "CS-1 online")
    return host, stop, task


@pytest.fixture
async def csms(make_station, settings):
    settings.FLEET_STOP_TIMEOUT = 3
    server = SandboxCsms(Policy(rejected_tokens={"9999"}))
    url = await server.start()
    await asyncio.to_thread(make_station, "CS-1", csms_url=url)
    yield server
    await server.stop()
    assert server.violations == []


@pytest.fixture
async def client(db):
    user = await asyncio.to_thread(get_user_model().objects.create_user, "op", password="x" * 20)
    client = AsyncClient()
    await client.aforce_login(user)
    return client


async def command(client, **body):
    response = await client.post("/api/stations/CS-1/command/", body,
                                 content_type="application/json")
    return response.status_code, response.json()


async def panel(client):
    return (await client.get("/api/stations/CS-1/authorization/")).json()


async def test_the_panel_shows_the_cache_and_the_list_and_its_controls_reach_the_station(
    csms, client
):
    host, stop, task = await start_host()
    try:
        response = await csms.call("CS-1", call.SetVariables(set_variable_data=[{
            "component": {"name": "AuthCacheCtrlr"}, "variable": {"name": "Enabled"},
            "attribute_value": "true"}]))
        assert response.set_variable_result[0]["attribute_status"] == "Accepted"
        status, outcome = await command(client, command="present_id_token", evse_id=1,
                                        id_token=VICINITY_CARD, token_type="ISO15693")
        assert (status, outcome["ok"]) == (200, True)
        assert csms.messages("CS-1", "Authorize")[0]["idToken"]["type"] == "ISO15693"
        await csms.call("CS-1", call.SendLocalList(
            version_number=3, update_type="Full", local_authorization_list=[
                {"id_token": {"id_token": "04D5E6F7", "type": "ISO14443"},
                 "id_token_info": {"status": "Blocked"}}]))
        data = await panel(client)
        assert data["ok"] and data["evses"] == [1]
        assert [(e["id_token"], e["status"]) for e in data["cache"]["entries"]] == [
            (VICINITY_CARD, "Accepted")]
        assert data["local_list"]["version"] == 3
        assert data["local_list"]["entries"][0]["status"] == "Blocked"

        _, outcome = await command(client, command="enter_pin", evse_id=1, pin="4321")
        assert (outcome["ok"], outcome["status"]) == (False, "Rejected"), "EVSE 1 is in use"
        await command(client, command="present_id_token", evse_id=1, id_token=VICINITY_CARD,
                      token_type="ISO15693")
        _, outcome = await command(client, command="enter_pin", evse_id=1, pin="9999")
        assert (outcome["ok"], outcome["status"]) == (False, "Invalid")
        _, outcome = await command(client, command="present_contract", evse_id=1,
                                   emaid="DE8AAC12345678")
        assert outcome["ok"], outcome
        assert "iso15118CertificateHashData" in csms.messages("CS-1", "Authorize")[-1]
        _, outcome = await command(client, command="press_start_button", evse_id=1)
        assert not outcome["ok"] and "AuthCtrlr.Enabled" in outcome["detail"]
        status, outcome = await command(client, command="enter_pin", evse_id=1)
        assert status == 400 and "pin" in outcome["detail"]
        status, outcome = await command(client, command="present_id_token", evse_id=1,
                                        id_token=CARD, token_type="Barcode")
        assert status == 400 and "not an idToken type" in outcome["detail"]
        status, outcome = await command(client, command="present_contract", evse_id=1,
                                        emaid="DE-8AA-C12345678-9")
        assert status == 400 and "check digit" in outcome["detail"]
    finally:
        stop.set()
        await asyncio.wait_for(task, 40)


async def test_the_cache_and_the_list_survive_a_restart_of_the_engine(csms, client):
    host, stop, task = await start_host()
    await csms.call("CS-1", call.SetVariables(set_variable_data=[{
        "component": {"name": "AuthCacheCtrlr"}, "variable": {"name": "Enabled"},
        "attribute_value": "true"}]))
    await command(client, command="present_id_token", evse_id=1, id_token=CARD)
    await csms.call("CS-1", call.SendLocalList(
        version_number=8, update_type="Full", local_authorization_list=[
            {"id_token": {"id_token": "04D5E6F7", "type": "ISO14443"},
             "id_token_info": {"status": "Accepted"}}]))
    await asyncio.sleep(1.5)  # the recorder writes the state and the variable
    stop.set()
    await asyncio.wait_for(task, 40)
    await eventually(lambda: "CS-1" not in csms.sessions, 10, "CS-1 gone")

    host, stop, task = await start_host()
    try:
        version = await csms.call("CS-1", call.GetLocalListVersion())
        assert version.version_number == 8
        data = await panel(client)
        assert [e["id_token"] for e in data["cache"]["entries"]] == [CARD]
        assert [e["id_token"] for e in data["local_list"]["entries"]] == ["04D5E6F7"]
    finally:
        stop.set()
        await asyncio.wait_for(task, 40)


async def test_the_rest_api_reads_the_authorization_of_a_running_station(csms, settings):
    from stations.api.models import ApiToken

    user = await asyncio.to_thread(get_user_model().objects.create_user, "api",
                                   password="x" * 20)
    token = (await asyncio.to_thread(ApiToken.create_for, user, "CI"))[1]
    headers = {"Authorization": f"Bearer {token}"}
    client = AsyncClient()
    host, stop, task = await start_host()
    try:
        response = await client.post("/api/v1/stations/CS-1/commands/",
                                     {"command": "enter_pin", "evse_id": 1, "pin": "4321"},
                                     content_type="application/json", headers=headers)
        assert response.status_code == 200, response.json()
        response = await client.post("/api/v1/stations/CS-1/commands/",
                                     {"command": "present_contract", "evse_id": 1},
                                     content_type="application/json", headers=headers)
        assert response.status_code == 400 and "emaid" in response.json()
        response = await client.get("/api/v1/stations/CS-1/authorization/", headers=headers)
        data = response.json()
        assert response.status_code == 200 and data["ok"]
        assert data["local_list"] == {"enabled": True, "version": 0, "entries": [],
                                      "max_entries": 1000}
        assert data["cache"]["enabled"] is False
    finally:
        stop.set()
        await asyncio.wait_for(task, 40)
