"""What a load test is given, checked before anything starts: numbers, the CSMS, the
scenario (from the library folder or the database, never from a path) and thresholds."""

from __future__ import annotations

import asyncio
import math
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS

from .database import database_problem
from .engine.scenario import Scenario, ScenarioError, load_scenario_file
from .engine.verdict import ThresholdError, check_thresholds
from .models import Scenario as ScenarioRow

MAX_STATIONS = 100_000
# A week: beyond it the report's timeline (4 h) and most CSMS logs have long rolled over.
MAX_DURATION_S = 7 * 24 * 3600.0
MAX_RESPONSE_TIMEOUT_S = 600.0
# The scenario library: scenarios are taken from here or from the database, never from
# another path, so a form cannot be used to probe the server's files.
SCENARIO_DIR = Path(settings.FLEET_SCENARIO_DIR)
SCENARIO_SUFFIXES = (".toml", ".json")


class LoadTestError(Exception):
    """The run cannot start; the message says why, `field` which parameter is at fault."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


def require_database(using: str = DEFAULT_DB_ALIAS) -> None:
    """Refuse to start on a database that is not migrated, saying what to run."""
    problem = database_problem(using)
    if problem:
        raise LoadTestError(problem)


# -- scenarios ---------------------------------------------------------------------------


@dataclass
class ScenarioSource:
    name: str
    text: str
    format: str
    scenario: Scenario


def library() -> dict[str, Path]:
    """The scenario files of the library, by file name."""
    if not SCENARIO_DIR.is_dir():
        return {}
    return {path.name: path for path in sorted(SCENARIO_DIR.iterdir())
            if path.suffix in SCENARIO_SUFFIXES and path.is_file()}


def scenario_choices() -> list[tuple[str, list[tuple[str, str]]]]:
    """What a form offers: the library's files and the database's scenarios."""
    files = [(name, name) for name in library()]
    rows = [(name, name) for name in ScenarioRow.objects.values_list("name", flat=True)]
    return [(f"Library ({SCENARIO_DIR.name}/)", files), ("Database (admin)", rows)]


def _unknown_scenario(name: str) -> LoadTestError:
    files = ", ".join(library()) or "none"
    rows = list(ScenarioRow.objects.values_list("name", flat=True)[:21])
    in_db = ", ".join(rows[:20]) + (", …" if len(rows) > 20 else "") if rows else "none"
    return LoadTestError(f"no scenario named {name!r}: scenarios come from the library "
                         f"({SCENARIO_DIR.name}/: {files}) or the database ({in_db})",
                         field="scenario")


def resolve_scenario(name: str) -> ScenarioSource:
    """A scenario by name: `mixed.toml` is a library file; `mixed` a database scenario of
    that name, else the library's mixed.toml (or .json). Nothing else: no paths."""
    name = (name or "").strip()
    files = library()
    path, row = files.get(name), None
    if path is None and name:
        row = ScenarioRow.objects.filter(name=name).first()
        if row is None:
            path = next((files[name + suffix] for suffix in SCENARIO_SUFFIXES
                         if name + suffix in files), None)
    if row is not None:
        try:
            return ScenarioSource(row.name, row.definition, row.format, row.parsed())
        except ScenarioError as exc:
            raise LoadTestError(f"scenario {row.name!r} does not parse: {exc}",
                                field="scenario") from exc
    if path is None:
        raise _unknown_scenario(name)
    try:
        scenario = load_scenario_file(path)
    except ScenarioError as exc:
        raise LoadTestError(str(exc), field="scenario") from exc
    return ScenarioSource(scenario.name, path.read_text(encoding="utf-8"),
                          path.suffix.lstrip("."), scenario)


# -- parameters --------------------------------------------------------------------------


def _positive(value: float | None, what: str, most: float) -> str | None:
    if value is None:
        return None
    if not math.isfinite(value) or value <= 0:
        return f"{what} must be a positive number (got {value:g})"
    if value > most:
        return f"{what} must be at most {most:g} (got {value:g})"
    return None


def parameter_problems(*, stations: int | None, ramp_per_second: float | None,
                       duration_s: float | None,
                       response_timeout_s: float | None = None) -> dict[str, str]:
    """Each bad parameter, by field name, with what is wrong."""
    problems = {}
    if stations is None or stations < 1:
        problems["stations"] = "the number of stations must be at least 1"
    elif stations > MAX_STATIONS:
        problems["stations"] = f"at most {MAX_STATIONS:,} stations per run"
    for key, value, what, most in (
        ("ramp", ramp_per_second, "the ramp-up rate (stations per second)", math.inf),
        ("duration", duration_s, "the duration (seconds)", MAX_DURATION_S),
        ("response_timeout", response_timeout_s, "the response timeout (seconds)",
         MAX_RESPONSE_TIMEOUT_S),
    ):
        problem = _positive(value, what, most)
        if problem:
            problems[key] = problem
    return problems


def check_parameters(*, stations: int | None, ramp_per_second: float | None,
                     duration_s: float | None, response_timeout_s: float | None = None) -> None:
    problems = parameter_problems(stations=stations, ramp_per_second=ramp_per_second,
                                  duration_s=duration_s, response_timeout_s=response_timeout_s)
    if problems:
        field_name = next(iter(problems)) if len(problems) == 1 else None
        raise LoadTestError("; ".join(problems.values()), field=field_name)


async def check_reachable(csms_url: str, timeout: float = 3.0) -> None:
    """A TCP connection to the CSMS, so a wrong URL fails now, not in every station."""
    parts = urlsplit(csms_url or "")
    try:
        port = parts.port or (443 if parts.scheme == "wss" else 80)
    except ValueError:
        port = None
    if parts.scheme not in ("ws", "wss") or not parts.hostname or port is None:
        raise LoadTestError(f"{csms_url!r} is not a ws:// or wss:// URL", field="csms_url")
    try:
        async with asyncio.timeout(timeout):
            _, writer = await asyncio.open_connection(parts.hostname, port)
    except (OSError, TimeoutError, socket.gaierror) as exc:
        raise LoadTestError(f"cannot reach the CSMS at {parts.hostname}:{port}: "
                            f"{exc or type(exc).__name__}", field="csms_url") from exc
    writer.close()


def run_thresholds(scenario: Scenario, given: dict | None) -> dict[str, float]:
    """The scenario's thresholds, overridden name by name by the run's own."""
    try:
        return {**scenario.thresholds, **check_thresholds(given or {})}
    except ThresholdError as exc:
        raise LoadTestError(str(exc), field="thresholds") from exc
