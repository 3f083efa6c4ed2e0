"""Chart history kept on the server: the fleet's last 10 minutes and each transaction's curve.

A reload, a second web process or a restarted one shows what the page showed before.
"""

import asyncio
import json
import uuid

import pytest
from django.test import Client

from stations.engine.publisher import Publisher
from stations.models import FleetSample, Station, Transaction, TransactionPoint
from stations.recorder import Recorder
from stations.series import TX_MAX_POINTS, TX_STEP_S, FleetSeries, transaction_series
from tests.waiting import eventually

pytestmark = pytest.mark.django_db

T0 = 1_767_225_600  # 2026-01-01T00:00:00Z, a whole minute


def totals(connected=0, charging=0, power_kw=0.0, msgs_per_s=0.0):
    return {"stations": connected, "connected": connected, "charging": charging,
            "power_kw": power_kw, "msgs_per_s": msgs_per_s}


def test_the_fleet_series_adds_up_the_shards_once_a_second_for_ten_minutes():
    series = FleetSeries(window=600)
    for second in range(700):
        now = T0 + second
        series.add_totals("0", totals(3, 1, 7.5, 2.0), now=now)
        series.add_totals("1", totals(2, 2, 14.0, 1.5), now=now)
        series.sample(now=now + 0.4)
    points = series.points()
    assert len(points) == 600, "ten minutes, bounded"
    assert points[0][0] == T0 + 100 and points[-1][0] == T0 + 699
    assert points[-1] == [T0 + 699, 5, 3, 21.5, 3.5]


def test_a_second_sampled_twice_keeps_one_point():
    series = FleetSeries()
    series.add_totals("0", totals(1), now=T0)
    series.sample(now=T0 + 0.1)
    series.add_totals("0", totals(2), now=T0 + 0.5)
    series.sample(now=T0 + 0.9)
    assert series.points() == [[T0, 2, 0, 0.0, 0.0]]


def test_a_shard_that_went_quiet_drops_out_of_the_sum():
    # A killed worker's stations come back in another shard: counting both would count twice.
    series = FleetSeries(stale_after=10)
    series.add_totals("0", totals(4), now=T0)
    series.add_totals("1", totals(6), now=T0 + 8)
    series.sample(now=T0 + 9)
    series.sample(now=T0 + 15)
    assert [p[1] for p in series.points()] == [10, 6]
    assert series.totals(now=T0 + 15)["connected"] == 6


def test_no_shard_reporting_leaves_a_gap_not_a_zero():
    series = FleetSeries()
    series.sample(now=T0)
    assert series.points() == [[T0, None, None, None, None]]
    assert series.totals(now=T0) is None


def test_a_restarted_web_process_reads_the_history_back_from_a_bounded_table():
    first = FleetSeries(window=60)
    for second in range(90):
        first.add_totals("0", totals(second), now=T0 + second)
        first.sample(now=T0 + second)
        if second % 5 == 4:
            first.save()
    assert FleetSample.objects.count() == 60, "a ring of one row per second of the window"

    second = FleetSeries(window=60, clock=lambda: T0 + 89.5)
    second.load()
    assert second.points() == first.points()
    assert second.points()[0] == [T0 + 30, 30, 0, 0.0, 0.0]


def test_history_older_than_the_window_is_not_read_back():
    first = FleetSeries(window=60)
    first.add_totals("0", totals(1), now=T0)
    first.sample(now=T0)
    first.save()
    later = FleetSeries(window=60, clock=lambda: T0 + 61)
    later.load()
    assert later.points() == []


# -- a transaction's power and energy --------------------------------------------------------


class Clock:
    def __init__(self, now):
        self.now = now

    def __call__(self):
        return self.now


def charging(recorder, station_id, tx_id, seconds, clock, power_w=11000.0, every=2.0):
    """An EVSE reporting kW and kWh every `every` seconds, as a shard does for charging ones."""
    steps = int(seconds / every)
    for _ in range(steps):
        recorder(station_id, "evse", {
            "evse_id": 1, "connectors": {1: "Occupied"}, "charging_state": "Charging",
            "power_w": power_w, "energy_wh": 0.0, "transaction_id": tx_id,
            "tx_energy_wh": round(power_w * (clock.now - T0) / 3600, 1)})
        clock.now += every
        if int(clock.now) % 10 == 0:
            recorder.flush()
    recorder.flush()


def started(recorder, station_id, tx_id):
    recorder(station_id, "transaction", {
        "eventType": "Started", "seqNo": 0, "triggerReason": "Authorized", "evse_id": 1,
        "timestamp": "2026-01-01T00:00:00Z", "tx_energy_wh": 0.0,
        "transactionInfo": {"transactionId": tx_id, "chargingState": "Charging"}})


def test_a_transaction_keeps_a_point_every_few_seconds(make_station):
    make_station("CS-1")
    clock = Clock(T0)
    recorder = Recorder(clock=clock)
    started(recorder, "CS-1", "tx-1")
    charging(recorder, "CS-1", "tx-1", 60, clock)
    [points] = transaction_series(["tx-1"]).values()
    times = [p[0] for p in points]
    assert times == [T0 + n * TX_STEP_S for n in range(len(times))], "one point per step"
    assert len(times) == 60 // TX_STEP_S
    assert points[-1][1] == 11000.0 and points[-1][2] > points[1][2] > 0


def test_a_long_transaction_thins_its_points_out_and_stays_bounded(make_station):
    make_station("CS-1")
    clock = Clock(T0)
    recorder = Recorder(clock=clock)
    started(recorder, "CS-1", "tx-long")
    hours = 3
    charging(recorder, "CS-1", "tx-long", hours * 3600, clock, every=5.0)
    [points] = transaction_series(["tx-long"]).values()
    assert TX_MAX_POINTS // 2 <= len(points) <= TX_MAX_POINTS
    assert TransactionPoint.objects.count() == len(points)
    gaps = {b[0] - a[0] for a, b in zip(points, points[1:], strict=False)}
    assert len(gaps) == 1, f"evenly spaced, got gaps {gaps}"
    assert points[0][0] == T0, "the whole session, from its start"
    assert points[-1][0] >= T0 + hours * 3600 - 2 * gaps.pop()


def test_a_restarted_shard_goes_on_with_the_series_it_left(make_station):
    make_station("CS-1")
    clock = Clock(T0)
    first = Recorder(clock=clock)
    started(first, "CS-1", "tx-1")
    charging(first, "CS-1", "tx-1", 30, clock)
    second = Recorder(clock=clock)  # the shard moved; the transaction goes on
    charging(second, "CS-1", "tx-1", 30, clock)
    [points] = transaction_series(["tx-1"]).values()
    assert [p[0] for p in points] == [T0 + n * TX_STEP_S for n in range(60 // TX_STEP_S)]


def test_an_ended_transaction_keeps_its_last_point(make_station):
    make_station("CS-1")
    clock = Clock(T0)
    recorder = Recorder(clock=clock)
    started(recorder, "CS-1", "tx-1")
    charging(recorder, "CS-1", "tx-1", 12, clock)
    recorder("CS-1", "transaction", {
        "eventType": "Ended", "seqNo": 5, "triggerReason": "StopAuthorized", "evse_id": 1,
        "timestamp": "2026-01-01T00:00:13Z", "tx_energy_wh": 50.0,
        "transactionInfo": {"transactionId": "tx-1", "stoppedReason": "Local"}})
    recorder.flush()
    [points] = transaction_series(["tx-1"]).values()
    assert points[-1][1:] == [0.0, 50.0]


def test_the_station_api_gives_each_evse_the_chart_of_its_latest_transaction(
        make_station, django_user_model):
    make_station("CS-1", evses=2)
    clock = Clock(T0)
    recorder = Recorder(clock=clock)
    started(recorder, "CS-1", "tx-old")
    charging(recorder, "CS-1", "tx-old", 10, clock)
    started(recorder, "CS-1", "tx-new")
    charging(recorder, "CS-1", "tx-new", 10, clock)
    Transaction.objects.filter(transaction_id="tx-old").update(started_at="2025-12-31T23:00Z")
    client = Client()
    client.force_login(django_user_model.objects.create_user("op", password="x" * 20))
    data = json.loads(client.get("/api/stations/CS-1/").content)
    assert set(data["series"]) == {"tx-new"}
    assert data["series"]["tx-new"] == transaction_series(["tx-new"])["tx-new"]
    assert Station.objects.count() == 1


# -- scale-out: shards in other processes, over Redis ------------------------------------------


@pytest.fixture
async def redis_layer():
    redis = pytest.importorskip("redis.asyncio")
    client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    try:
        await client.ping()
    except OSError as exc:
        pytest.skip(f"no Redis at 127.0.0.1:6379: {exc}")
    finally:
        await client.aclose()
    from channels_redis.pubsub import RedisPubSubChannelLayer

    # A prefix of its own: other test runs may share this Redis and its "dashboard" group.
    layer = RedisPubSubChannelLayer(hosts=["redis://127.0.0.1:6379/0"],
                                    prefix=f"series-{uuid.uuid4().hex[:8]}")
    yield layer
    await layer.flush()


@pytest.mark.django_db(transaction=True)
async def test_shards_elsewhere_feed_the_fleet_chart_through_the_channel_layer(redis_layer):
    # In scale-out mode the web process sees the shards only through Redis: each shard's
    # Publisher sends its totals, the web process's series adds them up.
    series = FleetSeries()
    runner = asyncio.ensure_future(series.run(redis_layer))
    await asyncio.sleep(0.3)  # subscribed
    shards = [Publisher(redis_layer.group_send, shard=str(n)) for n in range(2)]
    for n, shard in enumerate(shards):
        for k in range(3 + n):
            sid = f"CS-{n}-{k}"
            shard.record(sid, "online", {"boot_status": "Accepted"})
            shard.record(sid, "evse", {"evse_id": 1, "connectors": {1: "Occupied"},
                                       "charging_state": "Charging", "power_w": 11000.0,
                                       "energy_wh": 0.0, "transaction_id": f"tx-{sid}"})
        await shard.flush()
    try:
        await eventually(lambda: series.points() and series.points()[-1][1] == 7,
                         timeout=5, what="a point with both shards' stations")
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
    _t, connected, charging, power_kw, _msgs = series.points()[-1]
    assert (connected, charging, power_kw) == (7, 7, 77.0)
