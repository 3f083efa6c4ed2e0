"""Load-test runs: check the parameters, make the stations, run, store the report.

The checks come first and refuse a run before anything starts: an unreachable CSMS, no
stations, a rate that is not positive, a scenario that does not parse.
"""

from __future__ import annotations

import asyncio
import json
import socket
from dataclasses import dataclass, replace
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from urllib.parse import urlsplit

from asgiref.sync import sync_to_async
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from .configs import station_configs
from .engine.loadrun import LoadRun
from .engine.metrics import RunMetrics
from .engine.scenario import Scenario, ScenarioError, load_scenario_file, parse_scenario
from .models import Connector, Evse, LoadTestRun, Station, StationTemplate
from .models import Scenario as ScenarioRow

MAX_STATIONS = 100_000


class LoadTestError(Exception):
    """The run cannot start; the message says why."""


def project_version() -> str:
    try:
        return version("ocpp-fleet-simulator")
    except PackageNotFoundError:
        return "unknown"


@dataclass
class ScenarioSource:
    name: str
    text: str
    format: str
    scenario: Scenario


def resolve_scenario(name_or_path: str) -> ScenarioSource:
    """A scenario from a .toml/.json file, or from the database by name."""
    path = Path(name_or_path)
    if path.is_file():
        try:
            scenario = load_scenario_file(path)
        except ScenarioError as exc:
            raise LoadTestError(f"{path} does not parse: {exc}") from exc
        fmt = "json" if path.suffix == ".json" else "toml"
        return ScenarioSource(scenario.name, path.read_text(), fmt, scenario)
    row = ScenarioRow.objects.filter(name=name_or_path).first()
    if row is None:
        raise LoadTestError(f"no scenario file {name_or_path!r}, and no scenario of that "
                            "name in the database")
    try:
        return ScenarioSource(row.name, row.definition, row.format, row.parsed())
    except ScenarioError as exc:
        raise LoadTestError(f"scenario {row.name!r} does not parse: {exc}") from exc


def check_parameters(*, stations: int, ramp_per_second: float | None,
                     duration_s: float | None) -> None:
    problems = []
    if stations < 1:
        problems.append("the number of stations must be at least 1")
    if stations > MAX_STATIONS:
        problems.append(f"at most {MAX_STATIONS:,} stations per run")
    if ramp_per_second is not None and ramp_per_second <= 0:
        problems.append("the ramp-up rate must be a positive number of stations per second")
    if duration_s is not None and duration_s <= 0:
        problems.append("the duration must be positive")
    if problems:
        raise LoadTestError("; ".join(problems))


async def check_reachable(csms_url: str, timeout: float = 3.0) -> None:
    """A TCP connection to the CSMS, so a wrong URL fails now, not in every station."""
    parts = urlsplit(csms_url)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise LoadTestError(f"{csms_url!r} is not a ws:// or wss:// URL")
    port = parts.port or (443 if parts.scheme == "wss" else 80)
    try:
        async with asyncio.timeout(timeout):
            _, writer = await asyncio.open_connection(parts.hostname, port)
    except (OSError, TimeoutError, socket.gaierror) as exc:
        raise LoadTestError(f"cannot reach the CSMS at {parts.hostname}:{port}: "
                            f"{exc or type(exc).__name__}") from exc
    writer.close()


def create_run(*, csms_url: str, stations: int, ramp_per_second: float | None,
               duration_s: float | None, source: ScenarioSource, seed: int | None,
               keep_stations: bool = False, security_profile: int = 0, template: str = "",
               password: str = "", ca_cert: str = "", client_cert: str = "",
               client_key: str = "") -> LoadTestRun:
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
    )
    if template and not StationTemplate.objects.filter(name=template).exists():
        raise LoadTestError(f"no station template named {template!r}")
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


def build_report(run: LoadTestRun, snapshot: dict) -> dict:
    return {
        "run": {
            "id": run.pk, "csms_url": run.csms_url, "security_profile": run.security_profile,
            "stations": run.station_count, "ramp_per_second": run.ramp_per_second,
            "duration_s": run.duration_s, "seed": run.seed, "scenario": run.scenario_name,
            "template": run.template_name,
            "scenario_definition": run.scenario_text, "version": run.version,
            "status": run.status,
            "started_at": run.started_at.isoformat() if run.started_at else None,
            "ended_at": run.ended_at.isoformat() if run.ended_at else None,
        },
        "summary": RunMetrics.summary(snapshot),
    }


async def execute(run: LoadTestRun, stop: asyncio.Event, *, validate: bool = True,
                  metrics: RunMetrics | None = None, response_timeout: float = 30.0) -> dict:
    """Run a load test in this process and store its report; returns the report."""
    await sync_to_async(create_stations)(run)
    configs = await sync_to_async(station_configs)(run_stations(run),
                                                   validate_schema=validate)
    configs = [replace(c, response_timeout=response_timeout) for c in configs]
    load = LoadRun(configs, scenario_of(run), run.seed, ramp_per_second=run.ramp_per_second,
                   metrics=metrics)
    run.status, run.started_at = LoadTestRun.Status.RUNNING, timezone.now()
    await run.asave(update_fields=["status", "started_at"])
    try:
        snapshot = await load.run(stop)
        run.status = LoadTestRun.Status.STOPPED if stop.is_set() else \
            LoadTestRun.Status.COMPLETED
    except Exception as exc:
        snapshot = load.metrics.snapshot()
        run.status, run.error = LoadTestRun.Status.FAILED, repr(exc)
    run.ended_at = timezone.now()
    run.report = build_report(run, snapshot)
    await run.asave(update_fields=["status", "ended_at", "report", "error"])
    if not run.keep_stations:
        await sync_to_async(remove_stations)(run)
    return run.report


# -- spread over engine workers --------------------------------------------------------

PART_KEY = "fleet:run:{run}:part:{part}"
STOP_KEY = "fleet:run:{run}:stop"
SNAPSHOT_EVERY_S = 1.0


def part_stations(run: LoadTestRun, part: int, parts: int):
    """Every `parts`-th station from `part`: the split does not change any station's plan."""
    ids = sorted(run_stations(run).values_list("station_id", flat=True))
    return run_stations(run).filter(station_id__in=ids[part::parts])


async def execute_part(run: LoadTestRun, part: int, parts: int, redis_client) -> dict:
    """One worker's share of a distributed run; its snapshots go to Redis for merging."""
    configs = await sync_to_async(lambda: station_configs(part_stations(run, part, parts)))()
    load = LoadRun(configs, scenario_of(run), run.seed,
                   ramp_per_second=run.ramp_per_second / parts)
    stop = asyncio.Event()
    key = PART_KEY.format(run=run.pk, part=part)

    async def publish(done: bool = False) -> None:
        snapshot = load.metrics.snapshot()
        await redis_client.set(key, json.dumps({"done": done, "snapshot": snapshot}), ex=86400)

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
                                                "snapshot": load.metrics.snapshot()}))
        raise
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
    await publish(done=True)
    return snapshot


async def collect_parts(run: LoadTestRun, parts: int, redis_client):
    """The latest snapshot of every part that reported, whether all are done, and errors."""
    snapshots, done, errors = [], True, []
    for part in range(parts):
        raw = await redis_client.get(PART_KEY.format(run=run.pk, part=part))
        if raw is None:
            done = False
            continue
        data = json.loads(raw)
        snapshots.append(data["snapshot"])
        done = done and data["done"]
        if data.get("error"):
            errors.append(f"part {part}: {data['error']}")
    return snapshots, done, errors


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
    # Ramp, play, and give every part time to stop and report.
    deadline = loop.time() + run.station_count / run.ramp_per_second + run.duration_s + 120
    stop_sent = False
    snapshots: list[dict] = []
    while loop.time() < deadline:
        if stop.is_set() and not stop_sent:
            await redis_client.set(STOP_KEY.format(run=run.pk), "1", ex=3600)
            stop_sent = True
        snapshots, done, errors = await collect_parts(run, parts, redis_client)
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
    run.report = build_report(run, RunMetrics.merge(snapshots))
    run.report["parts"] = [RunMetrics.summary(s)["messages"] for s in snapshots]
    await run.asave(update_fields=["status", "ended_at", "report", "error"])
    if not run.keep_stations:
        await sync_to_async(remove_stations)(run)
    return run.report
