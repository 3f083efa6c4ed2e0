"""Load-test runs: check the parameters, make the stations, run, store the report.

The checks come first and refuse a run before anything starts: an unreachable CSMS, no
stations, a rate or duration that is not a positive finite number, a scenario that is not
in the library or the database, or does not parse, a threshold that does not exist.

A run's duration counts from its start, ramp-up included; after it, the run drains (up to
its response timeout) before the connections close. See engine/loadrun.py.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field, replace
from importlib.metadata import PackageNotFoundError, version

from asgiref.sync import sync_to_async
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from .configs import station_configs
from .engine.loadrun import LoadRun
from .engine.metrics import RunMetrics
from .engine.scenario import Scenario, parse_scenario
from .engine.verdict import verdict
from .loadtest_params import (  # noqa: F401 - the load-test API callers use
    MAX_DURATION_S,
    MAX_STATIONS,
    LoadTestError,
    ScenarioSource,
    check_parameters,
    check_reachable,
    library,
    parameter_problems,
    require_database,
    resolve_scenario,
    run_thresholds,
    scenario_choices,
)
from .models import Connector, Evse, LoadTestRun, Station, StationTemplate


def project_version() -> str:
    try:
        return version("ocpp-fleet-simulator")
    except PackageNotFoundError:
        return "unknown"


def create_run(*, csms_url: str, stations: int, ramp_per_second: float | None,
               duration_s: float | None, source: ScenarioSource, seed: int | None,
               keep_stations: bool = False, security_profile: int = 0, template: str = "",
               password: str = "", ca_cert: str = "", client_cert: str = "",
               client_key: str = "", response_timeout_s: float = 30.0,
               thresholds: dict[str, float] | None = None) -> LoadTestRun:
    """A pending run, its parameters checked; `thresholds` add to (and override) the
    scenario's. Raises LoadTestError naming what is wrong."""
    check_parameters(stations=stations, ramp_per_second=ramp_per_second,
                     duration_s=duration_s, response_timeout_s=response_timeout_s)
    scenario = source.scenario
    run = LoadTestRun(
        csms_url=csms_url, security_profile=security_profile, password=password,
        ca_cert=ca_cert, client_cert=client_cert, client_key=client_key,
        station_count=stations,
        ramp_per_second=ramp_per_second
        or (scenario.boot.ramp_per_second if scenario.boot else 50.0),
        duration_s=duration_s or scenario.duration_s,
        seed=seed if seed is not None else (scenario.seed if scenario.seed is not None else 1),
        scenario_name=source.name, scenario_text=source.text, scenario_format=source.format,
        keep_stations=keep_stations, version=project_version(), template_name=template,
        response_timeout_s=response_timeout_s, thresholds=run_thresholds(scenario, thresholds),
    )
    if template and not StationTemplate.objects.filter(name=template).exists():
        raise LoadTestError(f"no station template named {template!r}", field="template")
    try:
        run.full_clean()
    except ValidationError as exc:
        raise LoadTestError("; ".join(f"{field}: {' '.join(errors)}"
                                      for field, errors in exc.message_dict.items())) from exc
    run.save()
    return run


@transaction.atomic
def create_stations(run: LoadTestRun) -> None:
    """The run's stations, disabled so the fleet engine never starts them itself."""
    ids = [f"{run.station_prefix}{n:05d}" for n in range(1, run.station_count + 1)]
    if run.template_name:
        template = StationTemplate.objects.get(name=run.template_name)
        template._bulk_create(
            ids, template=None, enabled=False, csms_url=run.csms_url,
            security_profile=run.security_profile, password=run.password,
            ca_cert=run.ca_cert, client_cert=run.client_cert, client_key=run.client_key)
        return
    Station.objects.bulk_create(
        [Station(station_id=i, csms_url=run.csms_url, security_profile=run.security_profile,
                 password=run.password, ca_cert=run.ca_cert, client_cert=run.client_cert,
                 client_key=run.client_key, enabled=False, serial_number=i[-25:])
         for i in ids], batch_size=2000)
    pks = list(Station.objects.filter(station_id__in=ids).values_list("pk", flat=True))
    Evse.objects.bulk_create([Evse(station_id=pk, evse_id=1) for pk in pks], batch_size=2000)
    evses = Evse.objects.filter(station_id__in=pks).values_list("pk", flat=True)
    Connector.objects.bulk_create([Connector(evse_id=pk, connector_id=1) for pk in evses],
                                  batch_size=2000)


def run_stations(run: LoadTestRun):
    # configs.station_configs defaults to enabled stations; the run's are disabled.
    return Station.objects.filter(station_id__startswith=run.station_prefix)


def remove_stations(run: LoadTestRun) -> None:
    run_stations(run).delete()


def scenario_of(run: LoadTestRun) -> Scenario:
    return parse_scenario(run.scenario_text, format=run.scenario_format)


def build_report(run: LoadTestRun, snapshot: dict, timings: dict | None = None) -> dict:
    summary = RunMetrics.summary(snapshot)
    return {
        "run": {
            "id": run.pk, "csms_url": run.csms_url, "security_profile": run.security_profile,
            "stations": run.station_count, "ramp_per_second": run.ramp_per_second,
            # Ramp-up included; the drain comes after it.
            "duration_s": run.duration_s, "response_timeout_s": run.response_timeout_s,
            "seed": run.seed, "scenario": run.scenario_name,
            "template": run.template_name,
            "scenario_definition": run.scenario_text, "version": run.version,
            "status": run.status, "error": run.error,
            "started_at": run.started_at.isoformat() if run.started_at else None,
            "ended_at": run.ended_at.isoformat() if run.ended_at else None,
            "timings": timings or {},
            "thresholds": dict(run.thresholds),
        },
        "summary": summary,
        "verdict": verdict(summary, run.thresholds, run.station_count),
    }


def _status(end_reason: str | None) -> str:
    return {"duration": LoadTestRun.Status.COMPLETED, "stopped": LoadTestRun.Status.STOPPED}.get(
        end_reason, LoadTestRun.Status.FAILED)


async def execute(run: LoadTestRun, stop: asyncio.Event, *, validate: bool = True,
                  metrics: RunMetrics | None = None, on_load=None) -> dict:
    """Run a load test in this process and store its report; returns the report.

    `on_load(load)` is given the LoadRun once it exists, for its progress."""
    load = None
    try:
        await sync_to_async(create_stations)(run)
        configs = await sync_to_async(station_configs)(run_stations(run),
                                                       validate_schema=validate)
        configs = [replace(c, response_timeout=run.response_timeout_s) for c in configs]
        load = LoadRun(configs, scenario_of(run), run.seed, duration_s=run.duration_s,
                       ramp_per_second=run.ramp_per_second, metrics=metrics,
                       plan_key=plan_key(run))
        if on_load is not None:
            on_load(load)
        run.status, run.started_at = LoadTestRun.Status.RUNNING, timezone.now()
        await run.asave(update_fields=["status", "started_at"])
        snapshot = await load.run(stop)
        run.status = _status(load.progress.end_reason)
    except Exception as exc:
        # Whatever went wrong, the run gets a report of what it measured and says why.
        snapshot = (load.metrics if load else metrics or RunMetrics()).snapshot()
        run.status, run.error = LoadTestRun.Status.FAILED, repr(exc)
    try:
        run.ended_at = timezone.now()
        run.report = build_report(run, snapshot, load.progress.as_dict() if load else {})
        await run.asave(update_fields=["status", "ended_at", "report", "error"])
    finally:
        if not run.keep_stations:
            await sync_to_async(remove_stations)(run)
    return run.report


# -- runs in this process ----------------------------------------------------------------


@dataclass
class ActiveRun:
    """A run this process executes: how to stop it, what it measures, where it is."""

    stop: asyncio.Event
    metrics: RunMetrics
    task: asyncio.Task
    load: LoadRun | None = field(default=None)

    def progress(self) -> dict | None:
        return self.load.progress.as_dict() if self.load is not None else None


_active: dict[int, ActiveRun] = {}


def active_runs() -> dict[int, ActiveRun]:
    """Runs started by start_in_process in this process and not yet over, by run id."""
    return _active


def start_in_process(run: LoadTestRun, *, validate: bool = True):
    """Start `run` on the running loop (the dashboard's, the API's); returns
    (stop_event, metrics, task). The run is in active_runs() until its report is stored."""
    stop, metrics = asyncio.Event(), RunMetrics()
    active = None

    def loaded(load: LoadRun) -> None:
        active.load = load

    task = asyncio.ensure_future(execute(run, stop, validate=validate, metrics=metrics,
                                         on_load=loaded))
    active = _active[run.pk] = ActiveRun(stop, metrics, task)
    task.add_done_callback(lambda _t, pk=run.pk: _active.pop(pk, None))
    return stop, metrics, task


# -- spread over engine workers --------------------------------------------------------

PART_KEY = "fleet:run:{run}:part:{part}"
STOP_KEY = "fleet:run:{run}:stop"
SNAPSHOT_EVERY_S = 1.0


def part_stations(run: LoadTestRun, part: int, parts: int):
    """Every `parts`-th station from `part`: the split does not change any station's plan."""
    ids = sorted(run_stations(run).values_list("station_id", flat=True))
    return run_stations(run).filter(station_id__in=ids[part::parts])


def plan_key(run: LoadTestRun):
    """A run's stations are seeded by their number, not their id (`LT<run>-00001`), so the
    same seed plays the same events in every run."""
    prefix = run.station_prefix
    return lambda station_id: station_id.removeprefix(prefix)


async def execute_part(run: LoadTestRun, part: int, parts: int, redis_client) -> dict:
    """One worker's share of a distributed run; its snapshots go to Redis for merging."""
    configs = await sync_to_async(lambda: station_configs(part_stations(run, part, parts)))()
    configs = [replace(c, response_timeout=run.response_timeout_s) for c in configs]
    load = LoadRun(configs, scenario_of(run), run.seed, duration_s=run.duration_s,
                   ramp_per_second=run.ramp_per_second / parts,
                   planned_ramp_s=run.station_count / run.ramp_per_second,
                   plan_key=plan_key(run))
    stop = asyncio.Event()
    key = PART_KEY.format(run=run.pk, part=part)

    async def publish(done: bool = False) -> None:
        snapshot = load.metrics.snapshot()
        await redis_client.set(key, json.dumps({"done": done, "snapshot": snapshot,
                                                "progress": load.progress.as_dict()}),
                               ex=86400)

    async def watch() -> None:
        while True:
            await asyncio.sleep(SNAPSHOT_EVERY_S)
            if await redis_client.exists(STOP_KEY.format(run=run.pk)):
                stop.set()
            await publish()

    watcher = asyncio.ensure_future(watch())
    try:
        snapshot = await load.run(stop)
    except Exception as exc:
        await redis_client.set(key, json.dumps({"done": True, "error": repr(exc),
                                                "snapshot": load.metrics.snapshot(),
                                                "progress": load.progress.as_dict()}))
        raise
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
    await publish(done=True)
    return snapshot


async def collect_parts(run: LoadTestRun, parts: int, redis_client):
    """The latest snapshot of every part that reported, whether all are done, and errors."""
    snapshots, done, errors = [], True, []
    progresses = []
    for part in range(parts):
        raw = await redis_client.get(PART_KEY.format(run=run.pk, part=part))
        if raw is None:
            done = False
            continue
        data = json.loads(raw)
        snapshots.append(data["snapshot"])
        progresses.append(data.get("progress") or {})
        done = done and data["done"]
        if data.get("error"):
            errors.append(f"part {part}: {data['error']}")
    return snapshots, done, errors, progresses


def merge_progress(progresses: list[dict]) -> dict:
    """What the parts ran, together: the longest phases, all stations, the first reason."""
    if not progresses:
        return {}
    merged = {key: max(p.get(key) or 0 for p in progresses)
              for key in ("elapsed_s", "ramp_s", "scenario_s", "drain_s", "duration_s",
                          "drain_limit_s")}
    for key in ("stations", "stations_started", "unanswered", "queued"):
        merged[key] = sum(p.get(key) or 0 for p in progresses)
    reasons = [p.get("end_reason") for p in progresses]
    merged["end_reason"] = next((r for r in ("error", "stopped") if r in reasons),
                                reasons[0])
    merged["phase"] = "done" if all(p.get("phase") == "done" for p in progresses) else \
        progresses[0].get("phase")
    return merged


async def execute_distributed(run: LoadTestRun, parts: int, stop: asyncio.Event,
                              redis_client, on_progress=None) -> dict:
    """Spread a run over `parts` engine workers, merge what they measured, store the report."""
    from .tasks import run_load_part

    await sync_to_async(create_stations)(run)
    run.status, run.started_at = LoadTestRun.Status.RUNNING, timezone.now()
    await run.asave(update_fields=["status", "started_at"])
    for part in range(parts):
        await sync_to_async(run_load_part.delay)(run.pk, part, parts)
    loop = asyncio.get_running_loop()
    # The run, its drain, and time for every part to start, stop and report.
    deadline = loop.time() + run.duration_s + run.response_timeout_s + 120
    stop_sent = False
    snapshots: list[dict] = []
    progresses: list[dict] = []
    while loop.time() < deadline:
        if stop.is_set() and not stop_sent:
            await redis_client.set(STOP_KEY.format(run=run.pk), "1", ex=3600)
            stop_sent = True
        snapshots, done, errors, progresses = await collect_parts(run, parts, redis_client)
        if on_progress is not None and snapshots:
            on_progress(RunMetrics.merge(snapshots))
        if errors:
            run.error = "; ".join(errors)
            await redis_client.set(STOP_KEY.format(run=run.pk), "1", ex=3600)
        if done and len(snapshots) == parts:
            break
        await asyncio.sleep(SNAPSHOT_EVERY_S / 2)
    else:
        run.error = f"only {len(snapshots)} of {parts} parts reported in time"
    run.status = (LoadTestRun.Status.STOPPED if stop_sent else LoadTestRun.Status.COMPLETED) \
        if not run.error else LoadTestRun.Status.FAILED
    run.ended_at = timezone.now()
    run.report = build_report(run, RunMetrics.merge(snapshots), merge_progress(progresses))
    run.report["parts"] = [RunMetrics.summary(s)["messages"] for s in snapshots]
    await run.asave(update_fields=["status", "ended_at", "report", "error"])
    if not run.keep_stations:
        await sync_to_async(remove_stations)(run)
    return run.report
