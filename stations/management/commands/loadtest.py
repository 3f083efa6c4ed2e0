"""Load-test a CSMS: ramp up stations, play a scenario, report what the CSMS did."""

from __future__ import annotations

import asyncio
import signal
import textwrap
from argparse import RawDescriptionHelpFormatter
from pathlib import Path

from asgiref.sync import sync_to_async
from django.core.management.base import BaseCommand, CommandError, DjangoHelpFormatter
from rich.console import Console
from rich.live import Live
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from stations import loadtest, reports
from stations.engine.metrics import RunMetrics
from stations.engine.verdict import ThresholdError, allowed, parse_threshold

REFRESH_S = 0.5
TABLE_EVERY_S = 5.0

# Exit codes, so a CI job can tell a CSMS that failed its thresholds from a run that
# could not be made.
PASSED, VERDICT_FAILED, BAD_PARAMETERS, RUN_FAILED = 0, 1, 2, 3

EPILOG = f"""\
The duration counts from the start of the run, ramp-up included: the scenario plays from
the moment the last station was started until the duration is over. Then the run drains:
no new calls, and those in flight get up to --response-timeout to be answered; then the
stations disconnect.

{textwrap.fill(
    "Thresholds come from the scenario's [thresholds] section and --threshold NAME=VALUE "
    f"(which overrides the scenario's of the same name); {allowed()}.", 88)}

Exit status:
  {PASSED}  the run completed and met every threshold (or had none)
  {VERDICT_FAILED}  it completed but failed a threshold
  {BAD_PARAMETERS}  bad parameters: nothing started
  {RUN_FAILED}  the run itself failed, or was stopped before its end
"""


class _HelpFormatter(DjangoHelpFormatter, RawDescriptionHelpFormatter):
    """Django's option order, with the epilog's paragraphs kept as written."""


def _read(path: str | None) -> str:
    if not path:
        return ""
    try:
        return Path(path).read_text()
    except OSError as exc:
        raise CommandError(f"cannot read {path}: {exc.strerror}",
                           returncode=BAD_PARAMETERS) from exc


def _bad(message: str) -> CommandError:
    return CommandError(message, returncode=BAD_PARAMETERS)


class Command(BaseCommand):
    help = "Load-test a CSMS with simulated stations, write a report and a pass/fail verdict."

    def create_parser(self, prog_name, subcommand, **kwargs):
        parser = super().create_parser(prog_name, subcommand, epilog=EPILOG, **kwargs)
        parser.formatter_class = _HelpFormatter
        return parser

    def add_arguments(self, parser):
        parser.add_argument("--csms-url", required=True,
                            help="the CSMS's websocket endpoint, ws:// or wss://; each "
                                 "station connects to <URL>/<station id>")
        parser.add_argument("--stations", type=int, required=True,
                            help="how many stations to simulate (created for the run, "
                                 f"1 to {loadtest.MAX_STATIONS:,})")
        parser.add_argument("--scenario", required=True,
                            help="a scenario of the library (scenarios/: mixed, mixed.toml) "
                                 "or of the database (admin: Scenarios), by name")
        parser.add_argument("--ramp", type=float,
                            help="stations started per second (default: the scenario's)")
        parser.add_argument("--duration", type=float,
                            help="seconds the run lasts, ramp-up included, before it drains "
                                 "(default: the scenario's duration_s)")
        parser.add_argument("--seed", type=int, help="default: the scenario's seed")
        parser.add_argument("--threshold", action="append", default=[], metavar="NAME=VALUE",
                            help="a limit the run must meet, e.g. p95_ms.Authorize=500 or "
                                 "call_error_rate=0.01 (repeatable)")
        parser.add_argument("--security-profile", type=int, default=0, choices=[0, 1, 2, 3])
        parser.add_argument("--password", default="",
                            help="Basic-auth password for security profiles 1 and 2")
        parser.add_argument("--ca-cert", help="PEM file")
        parser.add_argument("--client-cert", help="PEM file")
        parser.add_argument("--client-key", help="PEM file")
        parser.add_argument("--keep", action="store_true", help="keep the stations afterwards")
        parser.add_argument("--template", default="",
                            help="make the stations from this station template "
                                 "(EVSEs, connectors, vendor, model)")
        parser.add_argument("--response-timeout", type=float, default=30.0,
                            help="seconds a station waits for the CSMS to answer a CALL; "
                                 "also the longest the run drains at its end (default 30)")
        parser.add_argument("--no-validation", action="store_true",
                            help="skip schema validation of our own frames (saves CPU)")
        parser.add_argument("--json", dest="json_path", help="also write the report here")
        parser.add_argument("--csv", dest="csv_path")
        parser.add_argument("--html", dest="html_path")
        parser.add_argument("--junit", dest="junit_path",
                            help="write the verdict as JUnit XML here (one testcase per "
                                 "threshold), for CI systems")
        parser.add_argument("--quiet", action="store_true", help="no live progress")
        parser.add_argument("--workers", type=int, default=0,
                            help="spread the run over this many engine worker processes "
                                 "(Celery, scale-out mode); 0 runs it in this process")
        parser.add_argument("--metrics-port", type=int,
                            help="serve Prometheus metrics of this run on this port")

    def handle(self, *args, **options):
        run = self.prepare(options)
        ramp_s = run.station_count / run.ramp_per_second
        self.stdout.write(
            f"Run {run.pk}: {run.station_count} stations at {run.ramp_per_second:g}/s "
            f"(ramp about {ramp_s:.1f} s), scenario {run.scenario_name!r}, seed {run.seed}; "
            f"{run.duration_s:g} s in all, ramp included, then up to "
            f"{run.response_timeout_s:g} s to drain. Ctrl-C stops it.")
        if ramp_s >= run.duration_s:
            self.stdout.write(
                f"Note: the ramp needs {ramp_s:.1f} s, not less than the {run.duration_s:g} s "
                f"duration: about {int(run.duration_s * run.ramp_per_second)} stations will "
                "start, and the scenario will not play.")
        report = asyncio.run(self.run_load(run, options))
        for key, writer in (("json_path", reports.to_json), ("csv_path", reports.to_csv),
                            ("html_path", reports.to_html), ("junit_path", reports.to_junit)):
            if options[key]:
                Path(options[key]).write_text(writer(report))
                self.stdout.write(f"Wrote {options[key]}")
        self.stdout.write(reports.to_text(report))
        status = report["run"]["status"]
        if status != "completed":
            raise CommandError(f"the run {status}" + (f": {run.error}" if run.error else "")
                               + "; its verdict does not count", returncode=RUN_FAILED)
        if not report["verdict"]["passed"]:
            raise CommandError(f"the verdict {reports.verdict_line(report)}",
                               returncode=VERDICT_FAILED)

    def prepare(self, options):
        """The run, every parameter checked: one clear error for the first that is bad."""
        thresholds = {}
        for text in options["threshold"]:
            try:
                name, limit = parse_threshold(text)
            except ThresholdError as exc:
                raise _bad(f"--threshold: {exc}") from exc
            thresholds[name] = limit
        if options["workers"] < 0:
            raise _bad("--workers must be 0 (this process) or more")
        port = options["metrics_port"]
        if port is not None and not 0 < port < 65536:
            raise _bad("--metrics-port must be a TCP port, 1 to 65535")
        try:
            loadtest.require_database()
            loadtest.check_parameters(stations=options["stations"],
                                      ramp_per_second=options["ramp"],
                                      duration_s=options["duration"],
                                      response_timeout_s=options["response_timeout"])
            source = loadtest.resolve_scenario(options["scenario"])
            asyncio.run(loadtest.check_reachable(options["csms_url"]))
            return loadtest.create_run(
                csms_url=options["csms_url"], stations=options["stations"],
                ramp_per_second=options["ramp"], duration_s=options["duration"],
                source=source, seed=options["seed"], keep_stations=options["keep"],
                template=options["template"], thresholds=thresholds,
                response_timeout_s=options["response_timeout"],
                security_profile=options["security_profile"], password=options["password"],
                ca_cert=_read(options["ca_cert"]), client_cert=_read(options["client_cert"]),
                client_key=_read(options["client_key"]),
            )
        except loadtest.LoadTestError as exc:
            raise _bad(str(exc)) from exc

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
        loads = []
        task = asyncio.ensure_future(loadtest.execute(
            run, stop, validate=not options["no_validation"], metrics=metrics,
            on_load=loads.append))
        if options["quiet"]:
            return await task
        console = Console(file=self.stdout._out, force_terminal=None)
        progress = Progress(TextColumn("{task.description}"), BarColumn(),
                            TextColumn("{task.fields[figures]}"), TimeElapsedColumn(),
                            console=console)
        connected = progress.add_task("connected", total=run.station_count, figures="")
        # One bar for the whole duration, ramp included, as --duration counts it.
        elapsed = progress.add_task("run      ", total=run.duration_s, figures="")
        actions, actions_at = None, -TABLE_EVERY_S
        with Live(console=console, refresh_per_second=1 / REFRESH_S) as live:
            while not task.done():
                live_figures = metrics.live()
                state = loads[0].progress.as_dict() if loads else None
                progress.update(connected, completed=live_figures["connected"],
                                figures=f"{live_figures['connected']}/{run.station_count}")
                if state:
                    progress.update(elapsed, **phase_bar(state))
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
            raise CommandError("--workers needs the scale-out mode: set REDIS_URL",
                               returncode=BAD_PARAMETERS)
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


def phase_bar(state: dict) -> dict:
    """The run bar: elapsed of the duration, and which phase it is in."""
    done = min(state["ramp_s"] + state["scenario_s"], state["duration_s"])
    label = {"ramp": "ramp-up", "scenario": "scenario", "drain": "draining",
             "done": "done"}.get(state["phase"], state["phase"])
    figures = f"{done:.0f}/{state['duration_s']:g} s · {label}"
    if state["phase"] == "drain":
        figures += f" (up to {state['drain_limit_s']:g} s)"
    return {"completed": done, "figures": figures}


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
