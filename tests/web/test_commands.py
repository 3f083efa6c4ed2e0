"""Dashboard controls through the JSON API, against a running embedded engine and CSMS."""

import asyncio

import pytest
from channels.layers import get_channel_layer
from django.contrib.auth import get_user_model
from django.test import AsyncClient

from stations.sandbox import Policy, SandboxCsms
from stations.shard_host import ShardHost
from tests.waiting import eventually

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
async def engine(make_station, settings):
    # Stations that do not close in time are cut off after this, so teardown stays short.
    settings.FLEET_STOP_TIMEOUT = 3
    csms = SandboxCsms(Policy(rejected_tokens={"0BADC0DE"}))
    url = await csms.start()
    for station_id in ("CS-1", "CS-2"):
        await asyncio.to_thread(make_station, station_id, csms_url=url)
    stop = asyncio.Event()
    host = ShardHost(None, layer=get_channel_layer())
    task = asyncio.create_task(host.run(stop))
    await eventually(lambda: len(csms.sessions) == 2, 10)
    await eventually(lambda: all(s.online for s in host.engine.stations.values()), 10)
    yield csms, host
    stop.set()
    await asyncio.wait_for(task, 40)
    await csms.stop()
    assert csms.violations == []


@pytest.fixture
async def client(db):
    user = await asyncio.to_thread(get_user_model().objects.create_user, "op", password="x" * 20)
    client = AsyncClient()
    await client.aforce_login(user)
    return client


async def command(client, station_id, **body):
    response = await client.post(f"/api/stations/{station_id}/command/", body,
                                 content_type="application/json")
    return response.status_code, response.json()


async def test_start_and_stop_from_the_dashboard_reach_the_csms(engine, client):
    csms, _ = engine
    status, outcome = await command(client, "CS-1", command="start_charging", evse_id=1,
                                    id_token="04A1B2C3")
    assert (status, outcome["ok"], outcome["status"]) == (200, True, "Accepted")
    started = await csms.wait_for("TransactionEvent", "CS-1")
    assert started[0]["eventType"] == "Started"
    status, outcome = await command(client, "CS-1", command="stop_charging", evse_id=1)
    assert outcome["ok"]
    ended = await csms.wait_for("TransactionEvent", "CS-1", count=2)
    assert ended[1]["eventType"] == "Ended"


async def test_a_token_the_csms_rejects_shows_as_rejected(engine, client):
    _, outcome = await command(client, "CS-1", command="start_charging", evse_id=1,
                               id_token="0BADC0DE")
    assert outcome == {"ok": False, "status": "Invalid", "detail": "idToken not accepted"}


async def test_a_token_of_the_wrong_format_gets_a_field_error_and_reaches_no_one(engine, client):
    csms, _ = engine
    status, outcome = await command(client, "CS-1", command="start_charging", evse_id=1,
                                    id_token="TOKEN-001")
    assert status == 400 and outcome["field"] == "id_token"
    assert outcome["detail"].startswith("ISO14443 idTokens are 4- or 7-byte RFID UIDs")
    status, outcome = await command(client, "CS-1", command="present_id_token", evse_id=1,
                                    id_token="04A1B2C3", token_type="ISO15693")
    assert status == 400 and "16 hexadecimal" in outcome["detail"]
    assert csms.messages("CS-1", "Authorize") == []
    # The same value as the type it is, and a type the page offers.
    status, outcome = await command(client, "CS-1", command="start_charging", evse_id=1,
                                    id_token="TOKEN-001", token_type="Central")
    assert (status, outcome["ok"]) == (200, True)
    authorize = (await csms.wait_for("Authorize", "CS-1"))[0]
    assert authorize["idToken"] == {"idToken": "TOKEN-001", "type": "Central"}


async def test_a_command_to_an_offline_station_says_so(engine, client):
    csms, host = engine
    _, outcome = await command(client, "CS-2", command="disconnect")
    assert outcome["ok"]
    await eventually(lambda: "CS-2" not in csms.sessions, 10)
    _, outcome = await command(client, "CS-2", command="start_charging", evse_id=1,
                               id_token="04A1B2C3")
    assert outcome["ok"] is False and outcome["status"] == "Offline"


async def test_bad_commands_get_a_clear_answer(engine, client):
    status, outcome = await command(client, "CS-1", command="self_destruct")
    assert status == 400 and "unknown command" in outcome["detail"]
    status, outcome = await command(client, "CS-1", command="start_charging", evse_id=1)
    assert status == 400 and "idToken" in outcome["detail"]
    _, outcome = await command(client, "CS-1", command="plug_in", evse_id=7)
    assert outcome["ok"] is False and "no EVSE 7" in outcome["detail"]
    _, outcome = await command(client, "NOPE", command="reboot")
    assert outcome["status"] == "Unknown"


async def test_the_variables_of_a_running_station(engine, client):
    response = await client.get("/api/stations/CS-1/variables/")
    data = response.json()
    assert data["ok"]
    heartbeat = [v for v in data["variables"]
                 if (v["component"], v["variable"]) == ("OCPPCommCtrlr", "HeartbeatInterval")]
    assert heartbeat and heartbeat[0]["value"] == "300"


async def test_the_station_list_is_paged_filtered_and_searchable(engine, client):
    await asyncio.sleep(1.5)  # one recorder flush
    data = (await client.get("/api/stations/?size=1&page=2")).json()
    assert (data["count"], data["pages"], data["page"]) == (2, 2, 2)
    assert [s["station_id"] for s in data["stations"]] == ["CS-2"]
    assert data["stations"][0]["evses"][0]["connectors"] == {"1": "Available"}
    data = (await client.get("/api/stations/?status=Available&q=cs-1")).json()
    assert [s["station_id"] for s in data["stations"]] == ["CS-1"]
    data = (await client.get("/api/stations/?status=Faulted")).json()
    assert data["count"] == 0


async def test_pages_and_the_api_need_a_login():
    anonymous = AsyncClient()
    for path in ("/", "/stations/CS-1/", "/api/stations/"):
        response = await anonymous.get(path)
        assert response.status_code == 302 and "/login/" in response["Location"]


async def test_a_page_that_subscribes_gets_live_rows_without_waiting_for_a_change(engine):
    from channels.testing import WebsocketCommunicator

    from fleet.asgi import application

    from .test_consumers import session_headers

    user = await asyncio.to_thread(get_user_model().objects.create_user, "viewer",
                                   password="x" * 20)
    socket = WebsocketCommunicator(application, "/ws/fleet/",
                                   headers=await asyncio.to_thread(session_headers, user))
    assert (await socket.connect())[0]
    await socket.receive_json_from()
    await socket.send_json_to({"type": "subscribe", "stations": ["CS-1"]})
    update = await socket.receive_json_from(timeout=3)
    while "CS-1" not in update["stations"]:
        update = await socket.receive_json_from(timeout=3)
    row = update["stations"]["CS-1"]
    assert row["online"] and row["evses"][0]["connectors"] == {"1": "Available"}
    assert update["totals"]["connected"] == 2
    await socket.disconnect()


async def test_the_station_api_shows_the_message_log_of_its_ocpp_traffic(engine, client):
    csms, _ = engine
    await command(client, "CS-1", command="start_charging", evse_id=1, id_token="04A1B2C3")
    await csms.wait_for("TransactionEvent", "CS-1")

    frames = []

    async def answer_logged():
        frames[:] = (await client.get("/api/stations/CS-1/")).json()["frames"]
        return any(f["action"] == "TransactionEvent" and f["direction"] == "in" for f in frames)

    # The recorder writes about once a second.
    await eventually(answer_logged, 10, "the TransactionEvent answer in the log", every=0.2)
    boot = [(f["direction"], f["type"]) for f in frames if f["action"] == "BootNotification"]
    assert boot == [("out", "CALL"), ("in", "CALLRESULT")]
    assert [f["at"] for f in frames] == sorted(f["at"] for f in frames), "oldest first"
    answer = next(f for f in frames if f["action"] == "TransactionEvent" and f["direction"] == "in")
    assert answer["latency_ms"] is not None and "idTokenInfo" in answer["payload"]
