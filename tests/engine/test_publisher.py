"""The publisher coalesces station events into a few bounded channel-layer messages."""

import asyncio
import contextlib
import math
import uuid

import msgpack
import pytest
from channels.layers import BaseChannelLayer

from stations.engine.publisher import Publisher, station_group


class Clock:
    def __init__(self, now=1000.0):
        self.now = now

    def __call__(self):
        return self.now


class Sent:
    """A channel layer's group_send that records, and fails while `down` is set."""

    def __init__(self):
        self.messages: list[tuple[str, dict]] = []
        self.down = False

    async def __call__(self, group, message):
        if self.down:
            raise ConnectionError("redis is down")
        # What a real layer would carry: a later change must not alter a sent message.
        self.messages.append((group, msgpack.unpackb(msgpack.packb(message))))

    def deltas(self):
        return [m for g, m in self.messages if g == "dashboard"]


def snapshot(evse_id=1, power=0.0, state="Idle", tx=None):
    return {"evse_id": evse_id, "connectors": {1: "Available"}, "charging_state": state,
            "power_w": power, "energy_wh": 10.0, "soc": None, "id_token": None,
            "transaction_id": tx, "tx_energy_wh": None}


def tx_event(seq, event_type="Updated"):
    return {"evse_id": 1, "eventType": event_type, "timestamp": "2025-01-01T00:00:00Z",
            "triggerReason": "MeterValuePeriodic", "seqNo": seq,
            "transactionInfo": {"transactionId": "tx-1", "chargingState": "Charging"},
            "evse": {"id": 1, "connectorId": 1}}


@pytest.fixture
def sent():
    return Sent()


@pytest.fixture
def clock():
    return Clock()


async def test_many_changes_coalesce_into_one_delta_with_the_final_state(sent, clock):
    pub = Publisher(sent, shard="s1", clock=clock)
    for step in range(100):
        for sid in ("CS-1", "CS-2", "CS-3"):
            pub.record(sid, "evse", snapshot(power=float(step)))
            pub.record(sid, "status", {"evse_id": 1, "connector_id": 1,
                                       "status": "Occupied" if step % 2 else "Available"})
    pub.record("CS-1", "transaction", tx_event(7))
    await pub.flush()

    [delta] = sent.deltas()
    assert delta["type"] == "fleet.delta" and delta["shard"] == "s1"
    assert set(delta["stations"]) == {"CS-1", "CS-2", "CS-3"}
    for view in delta["stations"].values():
        assert view["evses"]["1"]["power_w"] == 99.0
        assert view["evses"]["1"]["connectors"] == {"1": "Available"}
        assert view["connectors"] == {"1/1": "Occupied"}
        assert view["changed_at"] == clock.now
    assert delta["transactions"] == [{
        "station_id": "CS-1", "evse_id": 1, "eventType": "Updated",
        "triggerReason": "MeterValuePeriodic", "seqNo": 7, "transactionId": "tx-1",
        "chargingState": "Charging", "offline": False, "timestamp": "2025-01-01T00:00:00Z",
        "idToken": None, "stoppedReason": None, "energy_wh": None}]

    [(group, totals)] = [(g, m) for g, m in sent.messages if g != "dashboard"]
    assert (group, totals["type"], totals["shard"]) == ("dashboard.totals", "fleet.totals", "s1")
    assert totals["totals"] == delta["stats"]["totals"], "the totals alone, for the chart"

    await pub.flush()
    assert len(sent.messages) == 2, "nothing changed, nothing sent"
    assert pub.state("CS-1")["changed_at"] is None


async def test_the_view_merges_connection_boot_and_online(sent):
    pub = Publisher(sent)
    pub.record("CS-1", "connection", {"online": False, "error": "refused",
                                      "detail": "connection refused", "status": None})
    assert pub.state("CS-1")["error"] == "connection refused"
    pub.record("CS-1", "connection", {"online": True})
    pub.record("CS-1", "boot", {"status": "Pending", "interval": 5})
    view = pub.state("CS-1")
    assert (view["connected"], view["online"], view["error"]) == (True, False, None)
    assert view["boot_status"] == "Pending"
    pub.record("CS-1", "online", {"boot_status": "Accepted"})
    assert pub.state("CS-1")["online"] and pub.state("CS-1")["boot_status"] == "Accepted"
    pub.record("CS-1", "connection", {"online": False})
    assert not pub.state("CS-1")["online"]
    assert pub.state("nobody") is None and set(pub.states()) == {"CS-1"}


async def test_many_changed_stations_are_sent_in_bounded_chunks(sent):
    pub = Publisher(sent, max_stations=10)
    for n in range(25):
        pub.record(f"CS-{n}", "evse", snapshot(power=n))
    pub.record("CS-0", "transaction", tx_event(1))
    await pub.flush()

    deltas = sent.deltas()
    assert len(deltas) == math.ceil(25 / 10)
    assert all(len(d["stations"]) <= 10 for d in deltas)
    assert set().union(*(d["stations"] for d in deltas)) == {f"CS-{n}" for n in range(25)}
    assert sum(len(d["transactions"]) for d in deltas) == 1


async def test_frames_go_to_watched_stations_only(sent, clock):
    pub = Publisher(sent, clock=clock)
    pub.watch("CS-A")
    for n in range(3):
        pub.frame("CS-A", "out", 2, f"a{n}", "Heartbeat", {}, None)
        pub.frame("CS-A", "in", 3, f"a{n}", "Heartbeat", {"currentTime": "now"}, 12.345)
        pub.frame("CS-B", "out", 2, f"b{n}", "Heartbeat", {}, None)
    await pub.flush()

    assert sent.messages[0][0] == station_group("CS-A")
    [(_group, message)] = sent.messages
    assert message["type"] == "station.frames" and message["station_id"] == "CS-A"
    assert [f["unique_id"] for f in message["frames"]] == ["a0", "a0", "a1", "a1", "a2", "a2"]
    answer = message["frames"][1]
    assert answer == {"id": answer["id"], "at": answer["id"] / 1e6, "direction": "in",
                      "type": "CALLRESULT", "unique_id": "a0", "action": "Heartbeat",
                      "payload": {"currentTime": "now"}, "latency_ms": 12.3}
    assert abs(answer["at"] - clock.now) < 0.01
    assert (pub.counters["frames_in"], pub.counters["frames_out"]) == (3, 6)

    await pub.flush()
    assert len(sent.messages) == 1


async def test_watches_expire_unless_renewed(sent, clock):
    pub = Publisher(sent, clock=clock)
    pub.watch("CS-A", ttl=30)
    pub.watch("CS-B", ttl=30)
    clock.now += 20
    pub.watch("CS-B", ttl=30)
    clock.now += 15
    pub.frame("CS-A", "out", 2, "1", "Heartbeat", {}, None)
    pub.frame("CS-B", "out", 2, "2", "Heartbeat", {}, None)
    await pub.flush()
    frames = [m for _g, m in sent.messages if m["type"] == "station.frames"]
    assert [m["station_id"] for m in frames] == ["CS-B"]

    pub.unwatch("CS-B")
    pub.frame("CS-B", "out", 2, "3", "Heartbeat", {}, None)
    await pub.flush()
    assert len([m for _g, m in sent.messages if m["type"] == "station.frames"]) == 1


async def test_a_quiet_shard_still_sends_its_totals(sent, clock):
    pub = Publisher(sent, clock=clock)
    pub.record("CS-A", "online", {"boot_status": "Accepted"})
    pub.record("CS-A", "evse", {"evse_id": 1, "connectors": {1: "Occupied"},
                                "charging_state": "Charging", "power_w": 11000.0,
                                "energy_wh": 2500.0, "transaction_id": "tx-1"})
    await pub.flush()
    clock.now += 1
    await pub.flush()
    assert len(sent.deltas()) == 1, "nothing changed, totals are fresh"
    clock.now += 2
    await pub.flush()
    assert len(sent.deltas()) == 2
    totals = sent.deltas()[-1]["stats"]["totals"]
    assert totals["stations"] == 1 and totals["charging"] == 1
    assert totals["active_transactions"] == 1
    assert totals["power_kw"] == 11.0 and totals["energy_kwh"] == 2.5


async def test_a_failing_send_keeps_changes_for_the_next_flush(sent, clock):
    pub = Publisher(sent, clock=clock, frame_backlog=5)
    pub.watch("CS-1", ttl=3600)
    sent.down = True
    pub.record("CS-1", "evse", snapshot(power=1.0))
    pub.record("CS-1", "transaction", tx_event(1))
    first_change = clock.now
    for n in range(8):
        pub.frame("CS-1", "out", 2, str(n), "Heartbeat", {}, None)
    await pub.flush()
    clock.now += 1
    pub.record("CS-1", "evse", snapshot(power=2.0))
    pub.record("CS-2", "status", {"evse_id": 1, "connector_id": 1, "status": "Faulted"})
    pub.record("CS-1", "transaction", tx_event(2))
    pub.frame("CS-1", "out", 2, "8", "Heartbeat", {}, None)
    await pub.flush()
    assert sent.messages == [] and pub.counters["send_errors"] == 2

    sent.down = False
    await pub.flush()
    [delta] = sent.deltas()
    assert delta["stations"]["CS-1"]["evses"]["1"]["power_w"] == 2.0
    assert delta["stations"]["CS-1"]["changed_at"] == first_change
    assert delta["stations"]["CS-2"]["connectors"] == {"1/1": "Faulted"}
    assert [t["seqNo"] for t in delta["transactions"]] == [1, 2]
    [frames] = [m for g, m in sent.messages if g == station_group("CS-1")]
    assert [f["unique_id"] for f in frames["frames"]] == ["4", "5", "6", "7", "8"]


async def test_run_flushes_once_more_when_cancelled(sent):
    pub = Publisher(sent, interval=60)
    task = asyncio.create_task(pub.run())
    await asyncio.sleep(0)
    pub.record("CS-1", "evse", snapshot(power=5.0))
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert len(sent.deltas()) == 1


async def test_run_stops_when_cancelled_just_as_a_send_completes():
    # A shard's shutdown cancels the publisher; that cancellation must not be lost when
    # it meets a send finishing in the same turn of the loop (it used to be, and the
    # shard never stopped).
    release = asyncio.Event()

    async def send(group, message):
        await release.wait()

    pub = Publisher(send, interval=0.01)
    pub.record("CS-1", "online", {"boot_status": "Accepted"})
    task = asyncio.create_task(pub.run())
    for _ in range(5):
        await asyncio.sleep(0.01)  # the first flush is now waiting in send()
    release.set()
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=2)
    assert done, "the publisher went on running after it was cancelled"


@pytest.mark.parametrize("station_id", [
    "CS-1", "cs_1.a", "Station 7", "CS/1#ä", "x" * 95, "*", "station:1",
])
def test_station_group_is_a_valid_unique_group_name(station_id):
    name = station_group(station_id)
    assert len(name) < BaseChannelLayer.MAX_NAME_LENGTH
    assert BaseChannelLayer.group_name_regex.match(name)
    assert name != station_group(station_id + "?")


def test_plain_station_ids_keep_a_readable_group_name():
    assert station_group("CS-0001") == "station.CS-0001"
    assert station_group("a b") != station_group("a_b")


# -- through a real channel layer over Redis ----------------------------------------------


@pytest.fixture
async def layer():
    redis = pytest.importorskip("redis.asyncio")
    client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    try:
        await client.ping()
    except OSError as exc:
        pytest.skip(f"no Redis at 127.0.0.1:6379: {exc}")
    finally:
        await client.aclose()
    from channels_redis.pubsub import RedisPubSubChannelLayer

    layer = RedisPubSubChannelLayer(hosts=["redis://127.0.0.1:6379/0"])
    yield layer
    await layer.flush()


async def test_a_busy_second_reaches_the_dashboard_in_a_few_messages(layer):
    channel = await layer.new_channel()
    await layer.group_add("dashboard", channel)
    # Other test runs may share this Redis and group; only this shard's messages count.
    shard = f"test-{uuid.uuid4().hex[:8]}"
    pub = Publisher(layer.group_send, interval=0.25, shard=shard)
    runner = asyncio.create_task(pub.run())

    stations = [f"CS-{n:03d}" for n in range(200)]
    expected: dict[str, tuple[float, str]] = {}
    for batch in range(20):
        for n in range(50):
            change = batch * 50 + n
            sid = stations[change % 200]
            power = float(change)
            status = ("Available", "Occupied", "Charging")[change % 3]
            pub.record(sid, "evse", snapshot(power=power))
            pub.record(sid, "status", {"evse_id": 1, "connector_id": 1, "status": status})
            expected[sid] = (power, status)
        await asyncio.sleep(0.05)
    runner.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await runner

    deltas, sizes = [], []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    # Bounded: whatever else publishes to the group, the loop ends.
    while loop.time() < deadline:
        try:
            message = await asyncio.wait_for(layer.receive(channel), timeout=1.5)
        except TimeoutError:
            break
        if message.get("shard") == shard:
            deltas.append(message)
            sizes.append(len(layer.serialize(message)))
    print(f"\n{len(deltas)} fleet.delta messages, bytes {sizes}, "
          f"stations per message {[len(d['stations']) for d in deltas]}")

    assert 1 <= len(deltas) <= 6
    final: dict[str, dict] = {}
    for delta in deltas:
        final.update(delta["stations"])
    assert set(final) == set(stations)
    for sid, (power, status) in expected.items():
        assert final[sid]["evses"]["1"]["power_w"] == power
        assert final[sid]["connectors"]["1/1"] == status
    assert pub.counters["send_errors"] == 0


async def test_a_sender_over_redis_stops_when_cancelled(layer):
    # Shards stop by cancelling their publisher and command tasks; a client library that
    # drops a cancellation arriving as a command completes (redis-py 8 does) leaves a
    # stopped shard running. Cancel a busy sender at many different moments.
    for attempt in range(60):
        async def sender():
            while True:
                await layer.group_send("dashboard", {"type": "noise"})

        task = asyncio.create_task(sender())
        await asyncio.sleep(0.001 * (attempt % 7))
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=2)
        assert done, f"attempt {attempt}: the sender went on after it was cancelled"


async def test_each_frame_gets_an_identity_of_its_own_even_in_the_same_microsecond(sent, clock):
    # The page de-duplicates on it: a CSMS that sends the same message twice shows twice.
    pub = Publisher(sent, clock=clock)
    pub.watch("CS-A")
    for _ in range(3):
        pub.frame("CS-A", "in", 2, "same-id", "Reset", {"type": "Immediate"}, None)
    pub.frame("CS-A", "out", 2, "given", "Heartbeat", {}, None, frame_id=4_000_000_000_000_000)
    await pub.flush()
    [(_group, message)] = sent.messages
    ids = [f["id"] for f in message["frames"]]
    assert ids[:3] == sorted(set(ids[:3])), "three distinct, increasing identities"
    assert ids[3] == 4_000_000_000_000_000 and message["frames"][3]["at"] == 4_000_000_000.0
    assert all(isinstance(i, int) and i < 2**53 for i in ids), "exact as a JavaScript number"


async def test_a_transaction_summary_says_who_started_it_why_it_stopped_and_its_energy(sent):
    pub = Publisher(sent)
    started = tx_event(0, "Started") | {"idToken": {"idToken": "TOKEN-1", "type": "Central"},
                                        "tx_energy_wh": 0.0}
    ended = tx_event(1, "Ended") | {"tx_energy_wh": 1234.5}
    ended["transactionInfo"] = {"transactionId": "tx-1", "stoppedReason": "Local"}
    pub.record("CS-1", "transaction", started)
    pub.record("CS-1", "transaction", ended)
    await pub.flush()
    [delta] = sent.deltas()
    first, last = delta["transactions"]
    assert (first["idToken"], first["eventType"], first["energy_wh"]) == ("TOKEN-1", "Started", 0.0)
    assert (last["stoppedReason"], last["energy_wh"]) == ("Local", 1234.5)


def evse_view(evse_id, *connectors, state="Idle", tx=None, power=0.0):
    return {"evse_id": evse_id, "connectors": dict(enumerate(connectors, start=1)),
            "charging_state": state, "power_w": power, "energy_wh": 0.0,
            "transaction_id": tx}


async def test_connector_totals_count_connectors_in_the_status_the_table_shows(sent):
    # The tiles and the table must agree: a charging EVSE's connector reads Occupied in the
    # table, so it counts as Occupied; Charging counts EVSEs whose state is Charging.
    pub = Publisher(sent)
    for sid in ("CS-1", "CS-2", "CS-3"):
        pub.record(sid, "online", {"boot_status": "Accepted"})
    pub.record("CS-1", "evse", evse_view(1, "Occupied", state="Charging", tx="t1", power=7e3))
    pub.record("CS-1", "evse", evse_view(2, "Occupied", state="EVConnected"))
    pub.record("CS-2", "evse", evse_view(1, "Faulted"))
    pub.record("CS-2", "evse", evse_view(2, "Available", "Unavailable"))
    pub.record("CS-3", "evse", evse_view(1, "Available"))
    pub.record("CS-4", "evse", evse_view(1, "Occupied"))  # never connected
    await pub.flush()
    totals = sent.deltas()[-1]["stats"]["totals"]
    assert (totals["stations"], totals["connected"], totals["offline"]) == (4, 3, 1)
    assert totals["occupied"] == 3, "every connector showing Occupied, the offline one too"
    assert (totals["available"], totals["faulted"], totals["unavailable"]) == (2, 1, 1)
    assert (totals["charging"], totals["active_transactions"]) == (1, 1)
