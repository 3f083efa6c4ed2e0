"""Dashboard websockets: login required; a snapshot first, then throttled deltas."""

import asyncio

import pytest
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.test import Client

from fleet.asgi import application
from stations.engine.publisher import DASHBOARD_GROUP, TOTALS_GROUP, station_group

pytestmark = pytest.mark.django_db(transaction=True)


def session_headers(user=None):
    headers = [(b"origin", b"http://localhost"), (b"host", b"localhost")]
    if user is not None:
        client = Client()
        client.force_login(user)
        cookie = f"sessionid={client.cookies['sessionid'].value}"
        headers.append((b"cookie", cookie.encode()))
    return headers


@pytest.fixture
def user(db):
    return get_user_model().objects.create_user("operator", password="x" * 20)


def view(station_id, status="Charging", power=7400.0):
    return {"station_id": station_id, "online": True, "boot_status": "Accepted", "error": None,
            "evses": {"1": {"evse_id": 1, "connectors": {"1": "Occupied"},
                            "charging_state": status, "power_w": power, "energy_wh": 1200.0,
                            "soc": 40.0, "id_token": "T", "transaction_id": "tx",
                            "tx_energy_wh": 100.0}},
            "connectors": {}}


async def delta(stations, totals=None, shard="0"):
    """What a shard's Publisher sends: the delta, then its totals on their own."""
    totals = totals or {"stations": len(stations), "charging": len(stations)}
    await get_channel_layer().group_send(DASHBOARD_GROUP, {
        "type": "fleet.delta", "shard": shard, "sent_at": 0,
        "stations": {v["station_id"]: v for v in stations}, "transactions": [],
        "stats": {"totals": totals},
    })
    await get_channel_layer().group_send(TOTALS_GROUP, {
        "type": "fleet.totals", "shard": shard, "sent_at": 0, "totals": totals})


@pytest.mark.parametrize("path", ["/ws/fleet/", "/ws/stations/CS-1/"])
async def test_an_anonymous_socket_is_refused(path):
    communicator = WebsocketCommunicator(application, path, headers=session_headers())
    connected, _ = await communicator.connect()
    assert not connected


async def test_a_logged_in_socket_gets_a_snapshot_then_only_its_stations(user, make_station):
    await asyncio.to_thread(make_station, "CS-1")
    communicator = WebsocketCommunicator(application, "/ws/fleet/",
                                         headers=await asyncio.to_thread(session_headers, user))
    connected, _ = await communicator.connect()
    assert connected
    snapshot = await communicator.receive_json_from()
    assert snapshot["type"] == "snapshot"
    assert snapshot["totals"]["stations"] == 1 and snapshot["totals"]["offline"] == 1

    await communicator.send_json_to({"type": "subscribe", "stations": ["CS-1"]})
    await asyncio.sleep(0.05)
    await delta([view("CS-1"), view("CS-2")], totals={"stations": 2, "charging": 2,
                                                     "power_kw": 14.8})
    update = await communicator.receive_json_from(timeout=2)
    assert update["type"] == "update"
    assert list(update["stations"]) == ["CS-1"], "only what the page shows"
    row = update["stations"]["CS-1"]
    assert row["status"] == "Charging" and row["evses"][0]["power_w"] == 7400.0
    assert update["totals"]["charging"] == 2 and update["totals"]["power_kw"] == 14.8
    await communicator.disconnect()


async def test_a_burst_of_deltas_reaches_the_browser_as_a_few_messages(user):
    communicator = WebsocketCommunicator(application, "/ws/fleet/",
                                         headers=await asyncio.to_thread(session_headers, user))
    await communicator.connect()
    await communicator.receive_json_from()
    await communicator.send_json_to({"type": "subscribe", "stations": ["CS-1"]})
    await asyncio.sleep(0.05)
    for n in range(100):
        await delta([view("CS-1", power=float(n))])
    await asyncio.sleep(1.2)
    messages = []
    while not await communicator.receive_nothing(timeout=0.1):
        messages.append(await communicator.receive_json_from())
    assert 1 <= len(messages) <= 4
    # The last one may carry only the chart's point of the second.
    last = [m for m in messages if m["stations"]][-1]
    assert last["stations"]["CS-1"]["evses"][0]["power_w"] == 99.0, "the final state"
    await communicator.disconnect()


async def test_the_station_socket_streams_frames_and_state(user, make_station):
    await asyncio.to_thread(make_station, "CS-1")
    communicator = WebsocketCommunicator(application, "/ws/stations/CS-1/",
                                         headers=await asyncio.to_thread(session_headers, user))
    connected, _ = await communicator.connect()
    assert connected
    snapshot = await communicator.receive_json_from()
    assert snapshot["type"] == "snapshot" and snapshot["station"]["station_id"] == "CS-1"
    frame = {"at": 1.0, "direction": "out", "type": "CALL", "unique_id": "1",
             "action": "Heartbeat", "payload": {}, "latency_ms": None}
    await get_channel_layer().group_send(station_group("CS-1"), {
        "type": "station.frames", "station_id": "CS-1", "frames": [frame]})
    frames = await communicator.receive_json_from(timeout=2)
    assert frames == {"type": "frames", "frames": [frame]}
    await delta([view("CS-1", status="SuspendedEV", power=0.0)])
    update = await communicator.receive_json_from(timeout=2)
    assert update["type"] == "station"
    assert update["station"]["evses"][0]["charging_state"] == "SuspendedEV"
    await communicator.disconnect()


@pytest.fixture(autouse=True)
def fresh_fleet_series():
    """Each test's fleet series starts empty (its task ends with the test's event loop)."""
    from stations import series

    series.forget_fleet_series()
    yield
    series.forget_fleet_series()


def tx_summary(station_id, event_type="Started", tx="tx-9", **extra):
    return {"station_id": station_id, "evse_id": 1, "eventType": event_type,
            "triggerReason": "Authorized", "seqNo": 0, "transactionId": tx,
            "chargingState": "Charging", "offline": False,
            "timestamp": "2026-01-01T00:00:00Z", "idToken": "TOKEN-1", "stoppedReason": None,
            "energy_wh": 0.0} | extra


async def test_the_station_socket_sends_its_transactions_as_they_happen(user, make_station):
    # A new transaction used to reach the page's recent list only when the page reloaded it
    # from the database, once, a second after the change: 65 s late in one case.
    await asyncio.to_thread(make_station, "CS-1")
    communicator = WebsocketCommunicator(application, "/ws/stations/CS-1/",
                                         headers=await asyncio.to_thread(session_headers, user))
    await communicator.connect()
    await communicator.receive_json_from()
    mine, theirs = tx_summary("CS-1"), tx_summary("CS-2", tx="tx-other")
    await get_channel_layer().group_send(DASHBOARD_GROUP, {
        "type": "fleet.delta", "shard": "0", "sent_at": 0, "stations": {},
        "transactions": [mine, theirs], "stats": {}})
    message = await communicator.receive_json_from(timeout=2)
    assert message["type"] == "station" and message["transactions"] == [mine]
    await communicator.disconnect()


async def test_the_fleet_socket_starts_with_the_chart_history_and_streams_new_points(user):
    # The chart lived in the browser only and started empty on every reload.
    headers = await asyncio.to_thread(session_headers, user)
    first = WebsocketCommunicator(application, "/ws/fleet/", headers=headers)
    await first.connect()
    assert (await first.receive_json_from())["series"] == []
    await delta([view("CS-1"), view("CS-2")], totals={"stations": 2, "connected": 2,
                                                     "charging": 2, "power_kw": 14.8})
    points = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 4
    while len(points) < 2 and loop.time() < deadline:
        # Not receive_json_from(timeout=): a timeout there ends the consumer.
        if not await first.receive_nothing(timeout=0.2):
            points += (await first.receive_json_from()).get("series", [])
    assert len(points) >= 2, "a point a second"
    t, connected, charging, power_kw, _msgs = points[-1]
    assert (connected, charging, power_kw) == (2, 2, 14.8)
    assert points[-1][0] - points[-2][0] == 1
    await first.disconnect()

    # A reload: the new page starts from what the first one saw.
    again = WebsocketCommunicator(application, "/ws/fleet/", headers=headers)
    await again.connect()
    history = (await again.receive_json_from())["series"]
    assert [p[0] for p in points] == [p[0] for p in history if p[0] <= points[-1][0]][-len(points):]
    await again.disconnect()


def test_totals_from_the_database_count_connectors_like_the_live_ones(make_station):
    from stations.consumers import database_totals, station_rows
    from stations.engine.summary import fleet_totals
    from stations.models import StationLive

    evses = {
        "CS-1": {"1": {"evse_id": 1, "connectors": {"1": "Occupied"},
                       "charging_state": "Charging", "power_w": 7000.0, "energy_wh": 500.0,
                       "transaction_id": "t1"},
                 "2": {"evse_id": 2, "connectors": {"1": "Occupied"},
                       "charging_state": "EVConnected", "power_w": 0.0, "energy_wh": 0.0,
                       "transaction_id": None}},
        "CS-2": {"1": {"evse_id": 1, "connectors": {"1": "Available"},
                       "charging_state": "Idle", "power_w": 0.0, "energy_wh": 0.0,
                       "transaction_id": None}},
    }
    for station_id, live in evses.items():
        station = make_station(station_id, evses=len(live), online=True, status="Charging")
        StationLive.objects.create(station=station, evses=live)
    make_station("CS-3", evses=2)  # never reported: the table shows Unavailable connectors
    from_db = database_totals()
    table = station_rows(["CS-1", "CS-2", "CS-3"]).values()
    shown = fleet_totals((r["online"], {str(e["evse_id"]): e for e in r["evses"]}) for r in table)
    for key in ("stations", "connected", "offline", "available", "occupied", "charging",
                "faulted", "unavailable", "active_transactions"):
        assert from_db[key] == shown[key], key
    assert (from_db["occupied"], from_db["unavailable"], from_db["offline"]) == (2, 2, 1)
