"""/metrics: latency histograms and fleet counters from the stations' own traffic.

Counted where the stations run: this process in embedded mode, engine worker processes
(through Redis) in scale-out mode.
"""

import asyncio
import json
import subprocess
import sys
import textwrap

import pytest
from channels.layers import get_channel_layer
from django.contrib.auth import get_user_model
from django.test import AsyncClient
from hdrh.histogram import HdrHistogram
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from stations import fleet_metrics
from stations.engine.metrics import RunMetrics
from stations.fleet_metrics import FleetMetrics
from stations.prometheus import RunCollector, cumulative_buckets
from stations.sandbox import Policy, SandboxCsms
from stations.shard_host import ShardHost
from tests.scale.cluster import ROOT, Cluster
from tests.waiting import eventually

LATENCIES_MS = [0.5, 3, 3, 40, 2000, 70_000]
# Cumulative counts at 1 ms, 2.5 ms, 5 ms, 10 ms, 25 ms, 50 ms … 60 s, +Inf.
EXPECTED_BUCKETS = {"0.001": 1, "0.0025": 1, "0.005": 3, "0.01": 3, "0.05": 4, "2.5": 5,
                    "60.0": 5, "+Inf": 6}


def samples(text: str) -> list:
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


def value(text: str, name: str, **labels) -> float:
    """The sum of the samples called `name` whose labels include `labels` (0 if none)."""
    return sum(s.value for s in samples(text)
               if s.name == name and labels.items() <= s.labels.items())


def test_latency_is_a_histogram_with_ocpp_buckets_per_action():
    metrics = FleetMetrics()
    for latency in LATENCIES_MS:
        metrics.frame("CS-1", "out", 2, "u", "BootNotification", {}, None)
        metrics.frame("CS-1", "in", 3, "u", "BootNotification", {}, latency)
    metrics.frame("CS-1", "in", 3, "v", "Heartbeat", {}, 1.0)
    text = generate_latest(metrics.registry).decode()
    for bound, count in EXPECTED_BUCKETS.items():
        assert value(text, "fleet_ocpp_latency_seconds_bucket", action="BootNotification",
                     le=bound) == count, bound
    assert value(text, "fleet_ocpp_latency_seconds_count", action="BootNotification") == 6
    assert value(text, "fleet_ocpp_latency_seconds_sum", action="BootNotification") == \
        pytest.approx(sum(LATENCIES_MS) / 1000)
    assert value(text, "fleet_ocpp_latency_seconds_count", action="Heartbeat") == 1
    assert value(text, "fleet_ocpp_messages_total", direction="out", type="CALL",
                 action="BootNotification") == 6


def test_labels_stay_bounded_whatever_a_csms_sends():
    metrics = FleetMetrics()
    metrics.frame("CS-1", "in", 2, "a", "NoSuchAction-1", {}, None)
    metrics.frame("CS-1", "in", 2, "b", "NoSuchAction-2", {}, None)
    metrics.frame("CS-1", "out", 4, "b", None, ["NotImplemented", "no", {}], None)
    metrics.frame("CS-1", "in", 4, "c", "Authorize", [["a", "list"], "odd", {}], 4.0)
    metrics.frame("CS-1", "in", 4, "d", "Authorize", ["MadeUpCode", "odd", {}], 4.0)
    metrics.frame("CS-1", "in", 4, "e", "Authorize", ["SecurityError", "no", {}], 4.0)
    text = generate_latest(metrics.registry).decode()
    assert value(text, "fleet_ocpp_messages_total", direction="in", type="CALL",
                 action="unknown") == 2
    assert value(text, "fleet_ocpp_call_errors_total", direction="out", action="unknown",
                 code="NotImplemented") == 1
    assert value(text, "fleet_ocpp_call_errors_total", action="Authorize", code="other") == 2
    assert value(text, "fleet_ocpp_call_errors_total", action="Authorize",
                 code="SecurityError") == 1
    assert value(text, "fleet_ocpp_latency_seconds_count", action="Authorize") == 3
    actions = {s.labels.get("action") for s in samples(text)}
    assert not {"NoSuchAction-1", "NoSuchAction-2"} & actions


def test_connections_and_timeouts_are_counted_from_the_event_sink():
    metrics = FleetMetrics()
    metrics.event("CS-1", "connection", {"online": True})
    metrics.event("CS-1", "connection", {"online": False})
    metrics.event("CS-1", "connection", {"online": False, "error": "http_status", "status": 401})
    metrics.event("CS-1", "call_timeout", {"action": "Heartbeat"})
    metrics.event("CS-1", "evse", {"evse_id": 1})
    text = generate_latest(metrics.registry).decode()
    assert value(text, "fleet_connects_total") == 1
    assert value(text, "fleet_disconnects_total") == 1
    assert value(text, "fleet_connect_failures_total", reason="http_status") == 1
    assert value(text, "fleet_ocpp_timeouts_total", action="Heartbeat") == 1


def test_a_load_tests_latency_histogram_comes_from_its_hdr_histograms():
    run = RunMetrics()
    for latency in LATENCIES_MS:
        run.frame("CS-1", "out", 2, "u", "Heartbeat", {}, None)
        run.frame("CS-1", "in", 3, "u", "Heartbeat", {}, latency)
    text = generate_latest(RunCollector.registry({7: run})).decode()
    for bound, count in EXPECTED_BUCKETS.items():
        assert value(text, "loadtest_latency_seconds_bucket", run="7", action="Heartbeat",
                     le=bound) == count, bound
    assert value(text, "loadtest_latency_seconds_count", run="7", action="Heartbeat") == 6
    assert value(text, "loadtest_latency_seconds_sum", run="7") == \
        pytest.approx(sum(LATENCIES_MS) / 1000, rel=1e-3)
    assert value(text, "loadtest_requests_total", run="7", action="Heartbeat") == 6


def test_a_latency_at_a_bucket_bound_counts_in_that_bucket():
    histogram = HdrHistogram(1, 120_000_000, 3)
    for us in (1_000, 5_000_000, 60_000_000):
        histogram.record_value(us)
    counts = cumulative_buckets(histogram, [1_000, 5_000_000, 60_000_000])
    assert counts == [1, 2, 3, 3]


@pytest.mark.django_db(transaction=True)
async def test_metrics_count_the_fleets_own_traffic(settings):
    settings.FLEET_STOP_TIMEOUT = 3
    csms = SandboxCsms(Policy(call_errors={"Authorize": "SecurityError"}))
    url = await csms.start()
    from stations.models import Connector, Evse, Station

    def make(station_id):
        station = Station.objects.create(station_id=station_id, csms_url=url)
        Connector.objects.create(evse=Evse.objects.create(station=station, evse_id=1),
                                 connector_id=1)
    for n in range(3):
        await asyncio.to_thread(make, f"PM-{n}")
    user = await asyncio.to_thread(get_user_model().objects.create_user, "m", password="x" * 20)
    client = AsyncClient()
    await client.aforce_login(user)
    me = fleet_metrics.worker_name()

    async def scrape() -> str:
        response = await client.get("/metrics")
        assert response.status_code == 200
        return response.content.decode()

    before = await scrape()
    stop = asyncio.Event()
    host = ShardHost(None, layer=get_channel_layer())
    task = asyncio.create_task(host.run(stop))
    try:
        await eventually(lambda: len(csms.sessions) == 3, 10, "3 stations connected")
        await eventually(lambda: all(s.online for s in host.engine.stations.values()), 10)
        # The CSMS refuses Authorize with a CALLERROR; a CALL the station cannot take
        # gets one back from the station.
        reply = await client.post("/api/stations/PM-0/command/",
                                  {"command": "present_id_token", "evse_id": 1,
                                   "id_token": "04A1B2C3"}, content_type="application/json")
        assert reply.json()["status"] == "Failed"
        await csms.send_raw("PM-1", json.dumps([2, "bad-1", "Reset", {}]))
        await eventually(lambda: any('"bad-1"' in raw for _s, way, raw in csms.frames
                                     if way == "in"), 5, "the station's CALLERROR")
        await host.engine.stations["PM-2"].go_offline()
        await eventually(lambda: "PM-2" not in csms.sessions, 5, "PM-2 disconnected")
        after = await scrape()
    finally:
        stop.set()
        await asyncio.wait_for(task, 40)
        await csms.stop()

    def moved(name, **labels):
        return value(after, name, worker=me, **labels) - value(before, name, worker=me,
                                                                 **labels)
    assert moved("fleet_connects_total") == 3
    assert moved("fleet_disconnects_total") == 1
    assert moved("fleet_ocpp_messages_total", direction="out", type="CALL",
                 action="BootNotification") == 3
    assert moved("fleet_ocpp_messages_total", direction="in", type="CALLRESULT",
                 action="BootNotification") == 3
    assert moved("fleet_ocpp_latency_seconds_count", action="BootNotification") == 3
    assert moved("fleet_ocpp_latency_seconds_bucket", action="BootNotification",
                 le="+Inf") == 3
    assert moved("fleet_ocpp_latency_seconds_count", action="StatusNotification") == 3
    assert moved("fleet_ocpp_call_errors_total", direction="in", action="Authorize",
                 code="SecurityError") == 1
    assert moved("fleet_ocpp_call_errors_total", direction="out", action="Reset",
                 code="OccurrenceConstraintViolation") == 1
    assert value(after, "fleet_stations") >= 3, "the database gauges are still there"


PUBLISHER = textwrap.dedent("""
    import asyncio, sys
    from stations.fleet_metrics import FleetMetrics, publish, worker_name
    metrics = FleetMetrics()
    for _ in range(int(sys.argv[2])):
        metrics.frame("CS-1", "out", 2, "u", "Heartbeat", {}, None)
        metrics.frame("CS-1", "in", 3, "u", "Heartbeat", {}, 2.0)

    async def main():
        task = asyncio.ensure_future(publish(metrics, sys.argv[1], every=0.1))
        await asyncio.sleep(0.3)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    asyncio.run(main())
    print(worker_name())
""")


@pytest.mark.django_db
def test_worker_processes_counts_reach_metrics_through_redis(tmp_path, settings, client):
    cluster = Cluster(tmp_path)
    cluster.start_redis()
    try:
        url = f"redis://127.0.0.1:{cluster.redis_port}/0"
        workers = {}
        for frames in (5, 7):
            done = subprocess.run([sys.executable, "-c", PUBLISHER, url, str(frames)], cwd=ROOT,
                                  capture_output=True, text=True, timeout=30, check=True)
            workers[done.stdout.strip()] = frames
        settings.REDIS_URL = url
        text = client.get("/metrics").content.decode()
    finally:
        cluster.stop_redis()
    for worker, frames in workers.items():
        assert value(text, "fleet_ocpp_messages_total", worker=worker, direction="out",
                     action="Heartbeat") == frames
        assert value(text, "fleet_ocpp_latency_seconds_bucket", worker=worker,
                     action="Heartbeat", le="0.0025") == frames
    # What `sum without (worker)` gives Prometheus: histograms add across processes.
    assert value(text, "fleet_ocpp_latency_seconds_count", action="Heartbeat") >= 12
    assert sum(value(text, "fleet_ocpp_latency_seconds_count", worker=w, action="Heartbeat")
               for w in workers) == 12


@pytest.mark.django_db
def test_metrics_still_answer_when_redis_is_away(settings, client):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    response = client.get("/metrics")
    assert response.status_code == 200 and "fleet_stations" in response.content.decode()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
async def test_an_engine_worker_of_the_scale_out_fleet_shows_in_metrics(tmp_path, settings):
    """A real Celery worker child runs the shard; /metrics here shows what it counted."""
    csms = SandboxCsms(Policy())
    url = await csms.start()
    cluster = Cluster(tmp_path)
    cluster.env["FLEET_METRICS_INTERVAL"] = "0.5"
    try:
        cluster.start_redis()
        await asyncio.to_thread(cluster.create_database)
        await cluster.python(textwrap.dedent(f"""
            from stations.models import StationTemplate
            StationTemplate.objects.create(name="m", id_pattern="SO-{{n}}", csms_url={url!r}
                                           ).create_stations(4)
        """))
        cluster.start_worker("control", queue="control", concurrency=1, beat=True)
        cluster.start_worker("w1", concurrency=1)
        await eventually(lambda: len(csms.sessions) == 4, 60, "4 stations connected")
        host, pid = cluster.lease_holder(0)
        worker = f"{host}:{pid}"
        settings.REDIS_URL = f"redis://127.0.0.1:{cluster.redis_port}/0"
        client = AsyncClient()

        async def counted():
            text = (await client.get("/metrics")).content.decode()
            return value(text, "fleet_ocpp_latency_seconds_count", worker=worker,
                         action="BootNotification") == 4 and value(
                text, "fleet_connects_total", worker=worker) == 4
        await eventually(counted, 15, "the worker's counts in /metrics", every=0.25)
    finally:
        await asyncio.to_thread(cluster.close)
        await csms.stop()
