"""Prometheus metrics on /metrics: the fleet's state and traffic, and load tests' figures.

- `fleet_stations`, `fleet_active_transactions`: from the database (what every mode shares).
- `fleet_ocpp_*`, `fleet_connects` …: counted where the stations run (stations.fleet_metrics),
  labelled `worker`: this process in embedded mode, the engine workers through Redis in
  scale-out mode.
- `loadtest_*`: runs going on in this process (the dashboard's, or `loadtest
  --metrics-port`), labelled `run`; latency as a histogram made from the run's HDR
  histograms, so no per-frame work is added to a load test.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db.models import Count
from hdrh.histogram import HdrHistogram
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.registry import CollectorRegistry
from prometheus_client.utils import floatToGoString

from . import fleet_metrics
from .models import Station, Transaction

LOGGER = logging.getLogger(__name__)

LATENCY_BUCKETS_US = [int(bound * 1_000_000) for bound in fleet_metrics.LATENCY_BUCKETS]


class FleetCollector:
    def collect(self):
        stations = GaugeMetricFamily("fleet_stations", "Enabled stations by status",
                                     labels=["status"])
        for status, n in (Station.objects.filter(enabled=True).order_by().values("status")
                          .annotate(n=Count("pk")).values_list("status", "n")):
            stations.add_metric([status], n)
        yield stations
        yield GaugeMetricFamily("fleet_active_transactions", "Transactions not ended",
                                value=Transaction.objects.filter(ended_at__isnull=True).count())


class WorkerCollector:
    """The fleet counters of every process that runs stations."""

    def collect(self):
        local = fleet_metrics.process_metrics()
        snapshots = {}
        if local.hosting:
            snapshots[fleet_metrics.worker_name()] = local.snapshot()
        if settings.REDIS_URL:
            try:
                snapshots.update(fleet_metrics.read_published(
                    settings.REDIS_URL, skip=fleet_metrics.worker_name()))
            except Exception as exc:  # noqa: BLE001 - the rest of /metrics still answers
                LOGGER.warning("cannot read the workers' metrics from Redis: %s", exc)
        yield from fleet_metrics.families(snapshots)


def cumulative_buckets(histogram: HdrHistogram, bounds_us=LATENCY_BUCKETS_US) -> list[int]:
    """Counts at or below each bound, then +Inf.

    A value is placed by the lowest value its HDR bucket holds: one at a bound counts in
    it; one up to 0.1 % above a bound may count in it too.
    """
    counts = [0] * (len(bounds_us) + 1)
    for item in histogram.get_recorded_iterator():
        value = histogram.get_lowest_equivalent_value(item.value_iterated_to)
        count = item.count_at_value_iterated_to
        index = next((i for i, bound in enumerate(bounds_us) if value <= bound), len(bounds_us))
        counts[index] += count
    for i in range(1, len(counts)):
        counts[i] += counts[i - 1]
    return counts


class RunCollector:
    def __init__(self, active_runs):
        # {run id: RunMetrics}, or a callable returning it, for runs in this process.
        self.active_runs = active_runs

    @classmethod
    def registry(cls, active_runs) -> CollectorRegistry:
        reg = CollectorRegistry()
        reg.register(cls(active_runs))
        return reg

    def collect(self):
        runs = self.active_runs() if callable(self.active_runs) else self.active_runs
        requests = CounterMetricFamily("loadtest_requests", "CALLs sent to the CSMS",
                                       labels=["run", "action"])
        responses = CounterMetricFamily("loadtest_responses", "CALLRESULTs received",
                                        labels=["run", "action"])
        errors = CounterMetricFamily("loadtest_call_errors", "CALLERRORs received",
                                     labels=["run", "action", "code"])
        timeouts = CounterMetricFamily("loadtest_timeouts", "CALLs left unanswered",
                                       labels=["run", "action"])
        latency = HistogramMetricFamily("loadtest_latency_seconds", "Time from a CALL to the "
                                        "CSMS's answer", labels=["run", "action"])
        connected = GaugeMetricFamily("loadtest_connected", "Stations connected",
                                      labels=["run"])
        # Spelled as prometheus-client spells the fleet's buckets ("60.0"), so queries match.
        bounds = [*(floatToGoString(b) for b in fleet_metrics.LATENCY_BUCKETS), "+Inf"]
        for run_id, metrics in runs.items():
            run = str(run_id)
            snapshot = metrics.snapshot()
            counts = snapshot["counts"]
            connected.add_metric([run], counts["connections"].get("connected", 0))
            for action, row in sorted(counts["actions"].items()):
                requests.add_metric([run, action], row["requests"])
                responses.add_metric([run, action], row["responses"])
                timeouts.add_metric([run, action], row["timeouts"])
                for code, n in sorted(row["errors"].items()):
                    errors.add_metric([run, action, code], n)
                histogram = HdrHistogram.decode(snapshot["latency"][action])
                latency.add_metric([run, action],
                                   list(zip(bounds, cumulative_buckets(histogram), strict=True)),
                                   sum_value=row["latency_sum_us"] / 1_000_000)
        yield from (requests, responses, errors, timeouts, latency, connected)


def registry(active_runs) -> CollectorRegistry:
    reg = CollectorRegistry()
    reg.register(FleetCollector())
    reg.register(WorkerCollector())
    reg.register(RunCollector(active_runs))
    return reg
