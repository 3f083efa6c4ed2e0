"""Load-test a CSMS: ramp up stations, play a scenario, report what the CSMS did."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

from asgiref.sync import sync_to_async
from django.core.management.base import BaseCommand, CommandError
from rich.console import Console
from rich.live import Live
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from stations import loadtest, reports
from stations.engine.metrics import RunMetrics

REFRESH_S = 0.5
TABLE_EVERY_S = 5.0


def _read(path: str | None) -> str:
    return Path(path).read_text() if path else ""


class Command(BaseCommand):
    help = "Load-test a CSMS with simulated stations and write a report."

    def add_arguments(self, parser):
        parser.add_argument("--csms-url", required=True)
        parser.add_argument("--stations", type=int, required=True)
        parser.add_argument("--scenario", required=True,
                            help="a scenario name from the database, or a .toml/.json file")
        parser.add_argument("--ramp", type=float, help="stations per second (default: scenario)")
        parser.add_argument("--duration", type=float, help="seconds (default: scenario)")
        parser.add_argument("--seed", type=int, help="default: the scenario's seed")
        parser.add_argument("--security-profile", type=int, default=0, choices=[0, 1, 2, 3])
        parser.add_argument("--password", default="")
        parser.add_argument("--ca-cert", help="PEM file")
        parser.add_argument("--client-cert", help="PEM file")
        parser.add_argument("--client-key", help="PEM file")
        parser.add_argument("--keep", action="store_true", help="keep the stations afterwards")
        parser.add_argument("--template", default="",
                            help="make the stations from this station template "
                                 "(EVSEs, connectors, vendor, model)")
        parser.add_argument("--response-timeout", type=float, default=30.0,
                            help="seconds a station waits for the CSMS to answer a CALL")
        parser.add_argument("--no-validation", action="store_true",
                            help="skip schema validation of our own frames (saves CPU)")
        parser.add_argument("--json", dest="json_path", help="also write the report here")
        parser.add_argument("--csv", dest="csv_path")
        parser.add_argument("--html", dest="html_path")
        parser.add_argument("--quiet", action="store_true", help="no live progress")
        parser.add_argument("--workers", type=int, default=0,
                            help="spread the run over this many engine worker processes "
                                 "(Celery, scale-out mode); 0 runs it in this process")
        parser.add_argument("--metrics-port", type=int,
                            help="serve Prometheus metrics of this run on this port")

    def handle(self, *args, **options):
        try:
            loadtest.check_parameters(stations=options["stations"],
                                      ramp_per_second=options["ramp"],
                                      duration_s=options["duration"])
            source = loadtest.resolve_scenario(options["scenario"])
            asyncio.run(loadtest.check_reachable(options["csms_url"]))
            run = loadtest.create_run(
                csms_url=options["csms_url"], stations=options["stations"],
                ramp_per_second=options["ramp"], duration_s=options["duration"],
                source=source, seed=options["seed"], keep_stations=options["keep"],
                template=options["template"],
                security_profile=options["security_profile"], password=options["password"],
                ca_cert=_read(options["ca_cert"]), client_cert=_read(options["client_cert"]),
                client_key=_read(options["client_key"]),
            )
        except loadtest.LoadTestError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"Run {run.pk}: {run.station_count} stations at "
                          f"{run.ramp_per_second:g}/s, scenario {run.scenario_name!r}, "
                          f"seed {run.seed}, {run.duration_s:g} s. Ctrl-C stops it.")
        report = asyncio.run(self.run_load(run, options))
        for key, writer in (("json_path", reports.to_json), ("csv_path", reports.to_csv),
                            ("html_path", reports.to_html)):
            if options[key]:
                Path(options[key]).write_text(writer(report))
                self.stdout.write(f"Wrote {options[key]}")
        self.stdout.write(reports.to_text(report))

    async def run_load(self, run, options) -> dict:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        if options["workers"]:
            return await self.run_distributed(run, options, stop)
        metrics = RunMetrics()
        if options["metrics_port"]:
            from prometheus_client import start_http_server

            from stations.prometheus import RunCollector

            start_http_server(options["metrics_port"],
                              registry=RunCollector.registry({run.pk: metrics}))
        task = asyncio.ensure_future(loadtest.execute(
            run, stop, validate=not options["no_validation"], metrics=metrics,
            response_timeout=options["response_timeout"]))
        if options["quiet"]:
            return await task
        console = Console(file=self.stdout._out, force_terminal=None)
        progress = Progress(TextColumn("{task.description}"), BarColumn(),
                            TextColumn("{task.completed:.0f}/{task.total:.0f}"),
                            TimeElapsedColumn(), console=console)
        connected = progress.add_task("connected", total=run.station_count)
        elapsed = progress.add_task("duration ", total=run.duration_s)
        began = loop.time()
        actions, actions_at = None, -TABLE_EVERY_S
        with Live(console=console, refresh_per_second=1 / REFRESH_S) as live:
            while not task.done():
                live_figures = metrics.live()
                progress.update(connected, completed=live_figures["connected"])
                progress.update(elapsed, completed=min(loop.time() - began, run.duration_s))
                # The per-action table reads every histogram: not twice a second.
                if loop.time() - actions_at >= TABLE_EVERY_S:
                    actions, actions_at = live_table(metrics), loop.time()
                table = Table.grid()
                table.add_row(progress)
                table.add_row(actions)
                live.update(table)
                await asyncio.wait({task}, timeout=REFRESH_S)
        await sync_to_async(run.refresh_from_db)()
        return task.result()

    async def run_distributed(self, run, options, stop) -> dict:
        import redis.asyncio as aioredis
        from django.conf import settings

        if not settings.REDIS_URL:
            raise CommandError("--workers needs the scale-out mode: set REDIS_URL")
        client = aioredis.from_url(settings.REDIS_URL)
        console = Console(file=self.stdout._out)
        try:
            if options["quiet"]:
                return await loadtest.execute_distributed(run, options["workers"], stop, client)
            with Live(console=console, refresh_per_second=2) as live:
                def show(merged):
                    live.update(summary_table(RunMetrics.summary(merged)))
                return await loadtest.execute_distributed(run, options["workers"], stop,
                                                          client, on_progress=show)
        finally:
            await client.aclose()


def live_table(metrics: RunMetrics) -> Table:
    return summary_table(RunMetrics.summary(metrics.snapshot()), metrics.live())


def summary_table(summary: dict, live: dict | None = None) -> Table:
    messages = summary["messages"]
    title = (f"{live['msgs_in_per_s']:.0f} msgs/s in, {live['msgs_out_per_s']:.0f} out · "
             f"errors {live['errors']} · timeouts {live['timeouts']}") if live else \
        f"{messages['in']} messages in, {messages['out']} out"
    table = Table(title=title)
    for column in ("action", "requests", "responses", "errors", "timeouts", "p50 ms",
                   "p95 ms", "p99 ms"):
        table.add_column(column, justify="right" if column != "action" else "left")
    for action, row in sorted(summary["actions"].items()):
        latency = row["latency_ms"]
        table.add_row(action, str(row["requests"]), str(row["responses"]),
                      str(sum(row["errors"].values())), str(row["timeouts"]),
                      *(f"{latency[p]:.1f}" if latency[p] is not None else "—"
                        for p in ("p50", "p95", "p99")))
    return table

