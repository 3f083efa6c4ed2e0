"""Load-test scenarios: what the drivers and networks of a fleet do, seeded and repeatable.

A scenario (TOML or JSON) has optional sections: boot storm, steady faults, charging
sessions, reconnect storm, and the thresholds a run must meet. A station's steps depend
only on (seed, station id, scenario), so a fleet split over any number of shards does what
it does in one process.
"""

from __future__ import annotations

import functools
import itertools
import json
import math
import random
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path

from . import id_tokens
from .device_model.catalog import SUPPORTED_MEASURANDS
from .verdict import ThresholdError, check_thresholds

DISTRIBUTIONS = {
    "fixed": ("value_s",),
    "uniform": ("min_s", "max_s"),
    "exponential": ("mean_s",),
    "lognormal": ("mean_s", "sigma"),
    "normal": ("mean_s", "sd_s"),
}
ZIPF_A = 1.2
# What the values of a Central, Local or KeyCode pool start with when the scenario says not.
DEFAULT_TOKEN_PREFIX = "LT-"
TX_UPDATED_INTERVAL_KEY = "SampledDataCtrlr/TxUpdatedInterval/Actual"
# What a scenario's measurand lists set: the samples at the start, during and at the end
# of a transaction (OCPP 2.0.1 Part 2, SampledDataCtrlr; J02).
MEASURAND_KEYS = {
    "started_measurands": "SampledDataCtrlr/TxStartedMeasurands/Actual",
    "measurands": "SampledDataCtrlr/TxUpdatedMeasurands/Actual",
    "ended_measurands": "SampledDataCtrlr/TxEndedMeasurands/Actual",
}

POSITIVE = (lambda v: v > 0, "must be > 0")
NOT_NEGATIVE = (lambda v: v >= 0, "must be >= 0")
FRACTION = (lambda v: 0 <= v <= 1, "must be between 0 and 1")


class ScenarioError(ValueError):
    """A scenario that cannot run; the message names the field at fault."""


def _field(kind, check=None, default=MISSING):
    """A field read by `_read`: kind is number, int, str, a tuple of choices or a class."""
    return field(default=default, metadata={"kind": kind, "check": check})


@dataclass(frozen=True, kw_only=True)
class Distribution:
    dist: str = _field(tuple(DISTRIBUTIONS))
    value_s: float | None = _field("number", POSITIVE, None)
    min_s: float | None = _field("number", NOT_NEGATIVE, None)
    max_s: float | None = _field("number", POSITIVE, None)
    mean_s: float | None = _field("number", POSITIVE, None)
    sigma: float | None = _field("number", NOT_NEGATIVE, None)
    sd_s: float | None = _field("number", NOT_NEGATIVE, None)

    def problem(self) -> tuple[str, str] | None:
        if self.dist == "uniform" and self.min_s > self.max_s:
            return "max_s", "must be >= min_s"
        return None

    def sample(self, rng: random.Random) -> float:
        if self.dist == "fixed":
            return self.value_s
        if self.dist == "uniform":
            return rng.uniform(self.min_s, self.max_s)
        if self.dist == "exponential":
            return rng.expovariate(1 / self.mean_s)
        if self.dist == "lognormal":
            # mean_s is what people know (the average session), not the mean of the log.
            return rng.lognormvariate(math.log(self.mean_s) - self.sigma**2 / 2, self.sigma)
        return max(1.0, rng.normalvariate(self.mean_s, self.sd_s))


@dataclass(frozen=True, kw_only=True)
class Boot:
    ramp_per_second: float = _field("number", POSITIVE)


@dataclass(frozen=True, kw_only=True)
class Steady:
    status_changes_per_hour: float = _field("number", NOT_NEGATIVE)
    fault_s: float = _field("number", POSITIVE, 30.0)


@dataclass(frozen=True, kw_only=True)
class IdTokens:
    """The drivers' cards: `pool` idTokens of one type, values made in its format."""

    pool: int = _field("int", (lambda v: v >= 1, "must be >= 1"), 100)
    # IdTokenEnumType. The hardware types' values are generated from the card's place in
    # the pool (ISO14443: 7-byte UIDs), the same in every run.
    type: str = _field(id_tokens.TYPES, None, id_tokens.DEFAULT_TYPE)
    # Central, Local and KeyCode only: the values are the prefix and the card's number.
    prefix: str | None = _field("str", None, None)
    pick: str = _field(("uniform", "zipf", "sequential"), None, "uniform")

    def problem(self) -> tuple[str, str] | None:
        if self.prefix is not None and self.type not in id_tokens.FREE_FORM:
            return "prefix", (f"is for {', '.join(id_tokens.FREE_FORM)} idTokens only: "
                              f"{self.type} values are generated in their own format "
                              "(leave prefix out, or choose one of those types)")
        longest = self.token(self.pool - 1)
        if len(longest) > id_tokens.MAX_LENGTH:
            return "prefix", f"is too long: idTokens hold at most {id_tokens.MAX_LENGTH} characters"
        why = id_tokens.problem(self.type, longest)
        if why:
            return "prefix", f"makes idTokens such as {longest!r}, and {why}"
        return None

    def token(self, index: int) -> str:
        prefix = DEFAULT_TOKEN_PREFIX if self.prefix is None else self.prefix
        return id_tokens.generate(self.type, index, prefix=prefix, width=len(str(self.pool)))


@dataclass(frozen=True, kw_only=True)
class Transactions:
    share: float = _field("number", FRACTION, 1.0)
    sessions: Distribution = _field(Distribution)
    gaps: Distribution = _field(Distribution)
    id_tokens: IdTokens = _field(IdTokens, None, IdTokens())
    meter_interval_s: int | None = _field("int", (lambda v: v >= 1, "must be >= 1"), None)
    # Measurands sampled during (measurands), at the start and at the end of a session;
    # unset leaves the station's own SampledDataCtrlr values.
    measurands: tuple[str, ...] | None = _field("measurands", None, None)
    started_measurands: tuple[str, ...] | None = _field("measurands", None, None)
    ended_measurands: tuple[str, ...] | None = _field("measurands", None, None)
    # What the driver does first: plug in, then present the card (E02, Cable Plugin
    # First), or present the card, then plug in (E03, IdToken First).
    start: str = _field(("plug-in", "token"), None, "plug-in")
    # After start="token": the walk from the card reader to the car's charging port. A
    # wait longer than the station's TxCtrlr.EVConnectionTimeOut lets the authorization lapse.
    plug_in_after_s: float = _field("number", NOT_NEGATIVE, 5.0)
    stop: str = _field(("token", "unplug"), None, "token")
    # After stop="token": the driver walks back to the car and takes the cable out.
    unplug_after_s: float = _field("number", NOT_NEGATIVE, 2.0)


@dataclass(frozen=True, kw_only=True)
class Reconnect:
    share: float = _field("number", FRACTION, 1.0)
    at_s: float = _field("number", NOT_NEGATIVE)
    jitter_s: float = _field("number", NOT_NEGATIVE, 0.0)
    down_s: float = _field("number", POSITIVE)


@dataclass(frozen=True, kw_only=True)
class Scenario:
    name: str = _field("str", (lambda v: v.strip() != "", "must not be empty"))
    seed: int | None = _field("int", None, None)
    duration_s: float = _field("number", POSITIVE)
    boot: Boot | None = _field(Boot, None, None)
    steady: Steady | None = _field(Steady, None, None)
    transactions: Transactions | None = _field(Transactions, None, None)
    reconnect: Reconnect | None = _field(Reconnect, None, None)
    # Name -> limit (see verdict.py): what a run of this scenario must meet to pass.
    thresholds: dict[str, float] = field(default_factory=dict, hash=False,
                                         metadata={"kind": "thresholds", "check": None})


# -- reading and writing ---------------------------------------------------------------


def parse_scenario(text: str, *, format: str = "toml") -> Scenario:
    if format not in ("toml", "json"):
        raise ScenarioError(f"format must be toml or json, not {format!r}")
    try:
        data = tomllib.loads(text) if format == "toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        # Both messages end with the line and column.
        raise ScenarioError(f"invalid {format.upper()}: {exc}") from None
    return scenario_from_dict(data)


def scenario_from_dict(data: dict) -> Scenario:
    return _read(Scenario, data, "")


def load_scenario_file(path) -> Scenario:
    path = Path(path)
    format = path.suffix.lower().lstrip(".")
    if format not in ("toml", "json"):
        raise ScenarioError(f"{path.name}: a scenario file ends in .toml or .json")
    try:
        return parse_scenario(path.read_text(encoding="utf-8"), format=format)
    except ScenarioError as exc:
        raise ScenarioError(f"{path.name}: {exc}") from None


def scenario_to_dict(s: Scenario) -> dict:
    """Every set value, defaults included, so a stored scenario reads back the same."""
    return asdict(s, dict_factory=lambda items: {k: v for k, v in items if v is not None})


def _read(cls, data, prefix: str):
    """`cls` from a table; `prefix` ("transactions.") makes messages name the field."""
    if not isinstance(data, dict):
        raise ScenarioError(f"{prefix.rstrip('.') or 'a scenario'} must be a table")
    known = list(fields(cls))
    if cls is Distribution:
        if "dist" not in data:
            raise ScenarioError(f"{prefix}dist is required")
        dist = _value(data["dist"], known[0], f"{prefix}dist")
        # Each distribution takes its own parameters, all of them required.
        known = [f for f in known if f.name == "dist" or f.name in DISTRIBUTIONS[dist]]
    names = [f.name for f in known]
    for key in data:
        if key not in names:
            raise ScenarioError(f"{prefix}{key} is not a known key; expected: {', '.join(names)}")
    values = {}
    for f in known:
        if f.name in data:
            values[f.name] = _value(data[f.name], f, prefix + f.name)
        elif (f.default is MISSING and f.default_factory is MISSING) or cls is Distribution:
            raise ScenarioError(f"{prefix}{f.name} is required")
    result = cls(**values)
    problem = result.problem() if hasattr(result, "problem") else None
    if problem:
        raise ScenarioError(f"{prefix}{problem[0]} {problem[1]}")
    return result


def _value(raw, f, name: str):
    kind, check = f.metadata["kind"], f.metadata["check"]
    if isinstance(kind, type):
        return _read(kind, raw, name + ".")
    if kind == "thresholds":
        if not isinstance(raw, dict):
            raise ScenarioError(f"{name} must be a table of NAME = LIMIT")
        try:
            return check_thresholds(raw)
        except ThresholdError as exc:
            raise ScenarioError(f"{name}: {exc}") from None
    if kind == "measurands":
        return _measurands(raw, name)
    if isinstance(kind, tuple):
        if raw not in kind:
            raise ScenarioError(f"{name} must be one of: {', '.join(kind)} (got {raw!r})")
        return raw
    # bool is an int to Python, never a number in a scenario.
    if kind == "number":
        if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
            raise ScenarioError(f"{name} must be a number")
        raw = float(raw)
    elif kind == "int" and (isinstance(raw, bool) or not isinstance(raw, int)):
        raise ScenarioError(f"{name} must be an integer")
    elif kind == "str" and not isinstance(raw, str):
        raise ScenarioError(f"{name} must be a string")
    if check and not check[0](raw):
        raise ScenarioError(f"{name} {check[1]}")
    return raw


def _measurands(raw, name: str) -> tuple[str, ...]:
    if not isinstance(raw, list | tuple) or not raw or not all(isinstance(m, str) for m in raw):
        raise ScenarioError(f"{name} must be a list of measurand names, as in "
                            '["Energy.Active.Import.Register", "Power.Active.Import"]')
    unknown = [m for m in raw if m not in SUPPORTED_MEASURANDS]
    if unknown:
        raise ScenarioError(f"{name}: {', '.join(map(repr, unknown))} cannot be sampled; "
                            f"the stations measure {', '.join(SUPPORTED_MEASURANDS)}")
    return tuple(dict.fromkeys(raw))


# -- planning ----------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class Step:
    at_s: float
    station_id: str
    action: str
    args: tuple = ()

    @property
    def kwargs(self) -> dict:
        return dict(self.args)


def effective_seed(scenario: Scenario, seed: int | None) -> int:
    return seed if seed is not None else (scenario.seed or 0)


def _rng(seed: int, station_id: str, part: str) -> random.Random:
    # One stream per section, so adding a reconnect storm leaves the sessions as they were.
    return random.Random(f"{seed}:{station_id}:{part}")


def charges(scenario: Scenario, seed: int | None, station_id: str) -> bool:
    """Whether this station runs sessions; a higher share keeps the stations it had."""
    tx = scenario.transactions
    if tx is None:
        return False
    return _rng(effective_seed(scenario, seed), station_id, "tx").random() < tx.share


@functools.cache
def _zipf_weights(pool: int) -> tuple[float, ...]:
    return tuple(itertools.accumulate(1 / k**ZIPF_A for k in range(1, pool + 1)))


def _token_picker(tokens: IdTokens, rng: random.Random) -> Callable[[], str]:
    if tokens.pick == "sequential":
        # Each EVSE walks the pool from its own place, not all from the first card.
        counter = itertools.count(rng.randrange(tokens.pool))
        return lambda: tokens.token(next(counter) % tokens.pool)
    if tokens.pick == "zipf":
        weights, indexes = _zipf_weights(tokens.pool), range(tokens.pool)
        return lambda: tokens.token(rng.choices(indexes, cum_weights=weights)[0])
    return lambda: tokens.token(rng.randrange(tokens.pool))


def station_plan(
    scenario: Scenario, seed: int | None, station_id: str, evse_ids: list[int],
    key: str | None = None,
) -> list[Step]:
    """A station's steps; `key` (default: its id) seeds them, so the stations of two runs
    named differently (`LT1-00001`, `LT2-00001`) play the same events."""
    key = key or station_id
    seed = effective_seed(scenario, seed)
    end = scenario.duration_s
    steps: list[Step] = []

    def add(at: float, action: str, **args) -> None:
        if at < end:
            steps.append(Step(round(at, 3), station_id, action, tuple(args.items())))

    tx = scenario.transactions
    if tx is not None and charges(scenario, seed, key):
        for evse_id in evse_ids:
            rng = _rng(seed, key, f"tx:{evse_id}")
            pick = _token_picker(tx.id_tokens, rng)
            token_type = tx.id_tokens.type
            t = tx.gaps.sample(rng)
            while t < end:
                if tx.start == "token":
                    # E03: the card first; the session starts when the cable is in.
                    add(t, "present_token", evse_id=evse_id, id_token=pick(),
                        token_type=token_type)
                    t += tx.plug_in_after_s
                    add(t, "plug_in", evse_id=evse_id)
                else:
                    add(t, "start_charging", evse_id=evse_id, id_token=pick(),
                        token_type=token_type)
                t += tx.sessions.sample(rng)
                if tx.stop == "token":
                    add(t, "stop_charging", evse_id=evse_id)
                    t += tx.unplug_after_s
                add(t, "unplug", evse_id=evse_id)
                t += tx.gaps.sample(rng)

    steady = scenario.steady
    if steady is not None and steady.status_changes_per_hour > 0 and evse_ids:
        rng = _rng(seed, key, "steady")
        rate = steady.status_changes_per_hour / 3600
        t = rng.expovariate(rate)
        while t < end:
            evse_id = rng.choice(evse_ids)
            add(t, "set_fault", evse_id=evse_id)
            add(t + steady.fault_s, "clear_fault", evse_id=evse_id)
            # The next fault comes after this one cleared, so no clear cuts a later fault short.
            t += steady.fault_s + rng.expovariate(rate)

    rc = scenario.reconnect
    if rc is not None:
        rng = _rng(seed, key, "reconnect")
        if rng.random() < rc.share:
            at = rc.at_s + rng.uniform(0, rc.jitter_s)
            add(at, "disconnect")
            add(at + rc.down_s, "connect")

    # Stable: at equal times a station's steps keep the order they were made in.
    steps.sort(key=lambda s: s.at_s)
    return steps


def plan(scenario: Scenario, seed: int | None, stations: Mapping[str, list[int]],
         key: Callable[[str], str] | None = None) -> list[Step]:
    steps = [step for station_id in sorted(stations)
             for step in station_plan(scenario, seed, station_id, list(stations[station_id]),
                                      key(station_id) if key else None)]
    steps.sort(key=lambda s: (s.at_s, s.station_id))
    return steps


def station_variables(scenario: Scenario) -> dict[str, str]:
    """Device-model values the scenario sets on every station (SampledDataCtrlr)."""
    tx = scenario.transactions
    if tx is None:
        return {}
    variables = {TX_UPDATED_INTERVAL_KEY: str(tx.meter_interval_s)} if tx.meter_interval_s \
        else {}
    for attribute, key in MEASURAND_KEYS.items():
        measurands = getattr(tx, attribute)
        if measurands:
            variables[key] = ",".join(measurands)
    return variables
