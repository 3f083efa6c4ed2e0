"""Prometheus metrics on /metrics: the fleet's state and running load tests' figures."""

from __future__ import annotations

from django.db.models import Count
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import CollectorRegistry

from .engine.metrics import RunMetrics
from .models import Station, Transaction


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
        latency = GaugeMetricFamily("loadtest_latency_ms", "Response time percentiles",
                                    labels=["run", "action", "quantile"])
        connected = GaugeMetricFamily("loadtest_connected", "Stations connected",
                                      labels=["run"])
        for run_id, metrics in runs.items():
            run = str(run_id)
            summary = RunMetrics.summary(metrics.snapshot())
            connected.add_metric([run], summary["connections"].get("connected", 0))
            for action, row in summary["actions"].items():
                requests.add_metric([run, action], row["requests"])
                responses.add_metric([run, action], row["responses"])
                timeouts.add_metric([run, action], row["timeouts"])
                for code, n in row["errors"].items():
                    errors.add_metric([run, action, code], n)
                for quantile in ("p50", "p95", "p99"):
                    value = row["latency_ms"][quantile]
                    if value is not None:
                        latency.add_metric([run, action, f"0.{quantile[1:]}"], value)
        yield from (requests, responses, errors, timeouts, latency, connected)


def registry(active_runs) -> CollectorRegistry:
    reg = CollectorRegistry()
    reg.register(FleetCollector())
    reg.register(RunCollector(active_runs))
    return reg
