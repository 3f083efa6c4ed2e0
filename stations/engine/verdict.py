"""Pass/fail verdicts: the thresholds a load test must meet, checked against its summary.

A threshold is a name and a limit: `p95_ms = 800` (every CALL's latency), `p95_ms.Authorize
= 500` (one action's), `call_error_rate = 0.01`, `boot_accepted_share = 1`. Latencies, rates
and counts pass at or below their limit, shares at or above it. A threshold that cannot be
measured (no answers to take a percentile of, no boots) fails: a gate must not pass a run
that did not do what it gates.

New checks are one entry in CHECKS.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ocpp.v201.enums import Action

ACTIONS = frozenset(action.value for action in Action)


class ThresholdError(ValueError):
    """A threshold that cannot be checked; the message names it and what is allowed."""


@dataclass(frozen=True)
class Check:
    # What the measured value is, for people: "p95 latency".
    label: str
    unit: str
    # True: measured <= limit passes; False: measured >= limit passes.
    at_most: bool
    # Whether `name.Action` narrows it to one action.
    per_action: bool
    # (summary, action or None, stations) -> the measured value, None when nothing was.
    measure: Callable[[dict, str | None, int], float | None]
    # Limits outside this range are refused.
    low: float = 0.0
    high: float = math.inf


def _calls(summary: dict, action: str | None) -> dict:
    """Totals of one action, or of every action the stations sent."""
    if action is not None:
        row = summary["actions"].get(action)
        if row is None:
            return {"requests": 0, "responses": 0, "errors": 0, "timeouts": 0,
                    "latency_ms": {}}
        return {**row, "errors": sum(row["errors"].values())}
    return summary["calls"]


def _latency(key: str):
    return lambda summary, action, _n: _calls(summary, action)["latency_ms"].get(key)


def _rate(field: str):
    def measure(summary, action, _n):
        calls = _calls(summary, action)
        return calls[field] / calls["requests"] if calls["requests"] else None
    return measure


def _unanswered(summary, action, _n):
    calls = _calls(summary, action)
    return (calls["requests"] - calls["responses"] - calls["errors"] - calls["timeouts"])


def _boot_accepted_share(summary, _action, _n):
    answers = sum(summary["boot"].values())
    return summary["boot"].get("Accepted", 0) / answers if answers else None


def _connected_share(summary, _action, stations):
    return summary["connections"].get("peak_connected", 0) / stations if stations else None


def _connection_failures(summary, _action, _n):
    return sum(summary["connections"].get("failed", {}).values())


CHECKS: dict[str, Check] = {
    **{f"{p}_ms": Check(f"{p} latency", "ms", True, True, _latency(p))
       for p in ("p50", "p90", "p95", "p99", "max")},
    "call_error_rate": Check("share of CALLs answered with a CALLERROR", "", True, True,
                             _rate("errors"), high=1.0),
    "timeout_rate": Check("share of CALLs not answered in time", "", True, True,
                          _rate("timeouts"), high=1.0),
    "unanswered_calls": Check("CALLs still unanswered when the run ended", "", True, True,
                              _unanswered),
    "boot_accepted_share": Check("share of BootNotifications Accepted", "", False, False,
                                 _boot_accepted_share, high=1.0),
    "connected_share": Check("share of stations connected at the peak", "", False, False,
                             _connected_share, high=1.0),
    "connection_failures": Check("failed connection attempts", "", True, False,
                                 _connection_failures),
}


def allowed() -> str:
    names = ", ".join(CHECKS)
    return (f"known thresholds: {names} (latencies and rates may name an action, as in "
            "p95_ms.Authorize)")


def split(name: str) -> tuple[Check, str | None]:
    metric, _, action = name.partition(".")
    check = CHECKS.get(metric)
    if check is None:
        raise ThresholdError(f"{name!r} is not a known threshold; {allowed()}")
    if not action:
        return check, None
    if not check.per_action:
        raise ThresholdError(f"{metric} is one figure for the whole run; it takes no action "
                             f"(got {name!r})")
    if action not in ACTIONS:
        raise ThresholdError(f"{action!r} in {name!r} is not an OCPP 2.0.1 action")
    return check, action


def _flatten(raw: Mapping, prefix: str = "") -> dict:
    # TOML reads `p95_ms.Authorize = 500` as a table: {"p95_ms": {"Authorize": 500}}.
    flat = {}
    for key, value in raw.items():
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def check_thresholds(raw: Mapping | None) -> dict[str, float]:
    """Names and limits checked and made floats; raises ThresholdError on the first bad one."""
    thresholds = {}
    for name, value in _flatten(raw or {}).items():
        check, _action = split(name)
        if isinstance(value, bool) or not isinstance(value, int | float) \
                or not math.isfinite(value):
            raise ThresholdError(f"the limit of {name} must be a number (got {value!r})")
        if not check.low <= value <= check.high:
            bound = f"between {check.low:g} and {check.high:g}" if math.isfinite(check.high) \
                else f"at least {check.low:g}"
            raise ThresholdError(f"the limit of {name} must be {bound} (got {value:g})")
        thresholds[name] = float(value)
    return thresholds


def parse_threshold(text: str) -> tuple[str, float]:
    """`NAME=VALUE`, as given on a command line or in a form."""
    name, sep, value = text.partition("=")
    name, value = name.strip(), value.strip()
    if not sep or not name or not value:
        raise ThresholdError(f"a threshold is NAME=VALUE, as in p95_ms.Authorize=500 "
                             f"(got {text!r})")
    try:
        number = float(value)
    except ValueError:
        raise ThresholdError(f"the limit of {name} must be a number (got {value!r})") from None
    return name, check_thresholds({name: number})[name]


def _figure(value: float, unit: str) -> str:
    text = f"{value:.4g}" if abs(value) < 1 or unit else f"{value:g}"
    return f"{text} {unit}".rstrip()


def verdict(summary: dict, thresholds: Mapping[str, float], stations: int) -> dict:
    """{"passed", "checks": [{name, limit, measured, passed, detail}]}, checks by name."""
    checks = []
    for name in sorted(thresholds):
        limit = thresholds[name]
        check, action = split(name)
        measured = check.measure(summary, action, stations)
        what = f"{check.label} of {action}" if action else check.label
        if measured is None:
            passed, detail = False, f"{what}: nothing to measure"
        else:
            measured = float(measured)
            passed = measured <= limit if check.at_most else measured >= limit
            sign = ("≤" if passed else ">") if check.at_most else ("≥" if passed else "<")
            detail = (f"{what}: {_figure(measured, check.unit)} {sign} "
                      f"{_figure(limit, check.unit)}")
        checks.append({"name": name, "limit": limit, "measured": measured, "passed": passed,
                       "detail": detail})
    return {"passed": all(c["passed"] for c in checks), "checks": checks}
