"""Load-test metrics of one shard: what the CSMS answered, how fast, and when.

A RunMetrics is the frame hook and (part of) the event sink of the stations on one loop;
recording costs O(1) per frame or event. `snapshot()` returns plain JSON that `merge()`
adds across shards, processes and machines and `summary()` turns into the report.
Latencies go into HDR histograms because they add exactly: merged percentiles equal
those of one collector that saw every stream.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from hdrh.histogram import HdrHistogram

SNAPSHOT_VERSION = 1
# Microseconds, 1 µs .. 120 s, 3 significant digits: at most 0.1 % off.
LOWEST_US, HIGHEST_US, DIGITS = 1, 120_000_000, 3
PERCENTILES = (50, 90, 95, 99)
LIVE_PERCENTILES = (50, 95, 99)
# Seconds of timeline kept: 4 h of dense rows is ~200 kB of snapshot JSON.
KEEP_S = 4 * 3600
CALL, CALLRESULT = 2, 3
COLUMNS = ("msgs_in", "msgs_out", "errors", "timeouts", "connected")
IN, OUT, ERRORS, TIMEOUTS, CONNECTED = range(len(COLUMNS))
_KINDS = frozenset(("connection", "boot", "authorize", "call_timeout", "call_failed"))
# A transaction counts when its TransactionEvent goes to the CSMS, not when it is queued:
# one queued at the end of a run, or while offline, may never be delivered.
_TRANSACTION_STEPS = {"Started": "started", "Ended": "completed"}


def _histogram() -> HdrHistogram:
    return HdrHistogram(LOWEST_US, HIGHEST_US, DIGITS)


def _encode(histogram: HdrHistogram) -> str:
    return histogram.encode().decode("ascii")


def _ms(value_us: float) -> float:
    return round(value_us / 1000, 2)


def _percentiles(histogram: HdrHistogram, percentiles=PERCENTILES) -> dict:
    if not histogram.get_total_count():
        return {f"p{p}": None for p in percentiles}
    values = histogram.get_percentile_to_value_dict(list(percentiles))
    return {f"p{p}": _ms(values[p]) for p in percentiles}


def _latency_summary(histogram: HdrHistogram, sum_us: float) -> dict:
    answered = histogram.get_total_count()
    return _percentiles(histogram) | {
        "max": _ms(histogram.get_max_value()) if answered else None,
        "mean": _ms(sum_us / answered) if answered else None,
    }


def _window_row(index: int, window_s: float, histogram: HdrHistogram) -> dict:
    start = index * window_s
    return {"t": int(start) if start == int(start) else start} | _percentiles(
        histogram, LIVE_PERCENTILES)


def _bump(counts: dict, key) -> None:
    counts[key] = counts.get(key, 0) + 1


def _add_counts(total: dict, part: dict) -> dict:
    """Adds nested counters into `total`; into {} it is a deep copy."""
    for key, value in part.items():
        if isinstance(value, dict):
            _add_counts(total.setdefault(key, {}), value)
        else:
            total[key] = total.get(key, 0) + value
    return total


def _merge_timelines(timelines: list[dict]) -> dict:
    parts = [t for t in timelines if t["msgs_in"]]
    if not parts:
        return {"start": None} | {column: [] for column in COLUMNS}
    first = min(p["start"] for p in parts)
    size = max(p["start"] + len(p["msgs_in"]) for p in parts) - first
    merged = {"start": first} | {column: [0] * size for column in COLUMNS}
    for part in parts:
        offset = part["start"] - first
        for column in COLUMNS:
            for i, value in enumerate(part[column], offset):
                merged[column][i] += value
        # A shard whose snapshot is older still holds the stations it last reported.
        for i in range(offset + len(part["connected"]), size):
            merged["connected"][i] += part["connected"][-1]
    return merged


class _Action:
    """Counters of one action the station sends."""

    __slots__ = ("requests", "responses", "errors", "timeouts", "latency", "latency_sum_us")

    def __init__(self):
        self.requests = self.responses = self.timeouts = self.latency_sum_us = 0
        self.errors: dict[str, int] = {}
        self.latency = _histogram()


class RunMetrics:
    """How the CSMS behaved towards the stations of one shard."""

    def __init__(
        self, *, clock: Callable[[], float] = time.time, window_s: float = 5.0, keep_s: int = KEEP_S
    ):
        if window_s <= 0 or keep_s < 1:
            raise ValueError("window_s and keep_s must be positive")
        self._clock = clock
        self.window_s = window_s
        self.keep_s = keep_s
        self._actions: dict[str, _Action] = {}
        self._csms_requests: dict[str, int] = {}
        self._connections = {"attempts": 0, "succeeded": 0, "failed": {}, "http_status": {},
                             "subprotocol_refused": 0, "closed": 0}
        self._online: set[str] = set()
        self._peak = 0
        self._boot: dict[str, int] = {}
        self._transactions = {"started": 0, "completed": 0, "rejected": 0}
        self.msgs_in = self.msgs_out = self.errors = self.timeouts = 0
        # Rows [in, out, errors, timeouts, connected] by second, oldest first.
        self._seconds: dict[int, list[int]] = {}
        self._sec: int | None = None
        self._row: list[int] = []
        # Latency windows by index (start / window_s). Closed ones are kept encoded: a live
        # histogram holds ~150 kB, an encoded one a few hundred bytes. The previous window
        # stays live for `live()`.
        self._windows: dict[int, str] = {}
        self._max_windows = max(1, int(keep_s // window_s))
        self._window: tuple[int, HdrHistogram] | None = None
        self._previous: tuple[int, HdrHistogram] | None = None

    def _roll(self, sec: int) -> list[int]:
        row = self._seconds.get(sec)
        if row is None:
            row = self._seconds[sec] = [0, 0, 0, 0, len(self._online)]
            if len(self._seconds) > self.keep_s:
                del self._seconds[next(iter(self._seconds))]
        self._sec, self._row = sec, row
        return row

    def _row_now(self) -> list[int]:
        sec = int(self._clock())
        return self._row if sec == self._sec else self._roll(sec)

    def _action(self, action: str) -> _Action:
        stats = self._actions.get(action)
        if stats is None:
            stats = self._actions[action] = _Action()
        return stats

    def frame(self, station_id: str, direction: str, message_type_id: int, unique_id: str,
              action: str | None, payload, latency_ms: float | None) -> None:
        now = self._clock()
        sec = int(now)
        row = self._row if sec == self._sec else self._roll(sec)
        if direction == "out":
            self.msgs_out += 1
            row[OUT] += 1
            if message_type_id == CALL:
                self._action(action).requests += 1
                if action == "TransactionEvent":
                    step = _TRANSACTION_STEPS.get(payload.get("eventType"))
                    if step:
                        self._transactions[step] += 1
            return
        self.msgs_in += 1
        row[IN] += 1
        if message_type_id == CALL:
            _bump(self._csms_requests, action)
            return
        if action is None:
            return
        stats = self._action(action)
        if message_type_id == CALLRESULT:
            stats.responses += 1
        else:
            _bump(stats.errors, payload[0] if payload else "unknown")
            self.errors += 1
            row[ERRORS] += 1
        if latency_ms is not None:
            value = min(max(int(latency_ms * 1000 + 0.5), 0), HIGHEST_US)
            stats.latency.record_value(value)
            stats.latency_sum_us += value
            index = int(now // self.window_s)
            window = self._window
            if window is None or window[0] != index:
                window = self._open_window(index)
            window[1].record_value(value)

    def _open_window(self, index: int) -> tuple[int, HdrHistogram]:
        if self._window is not None:
            self._windows[self._window[0]] = _encode(self._window[1])
            self._previous = self._window
            while len(self._windows) > self._max_windows:
                del self._windows[next(iter(self._windows))]
        # A clock stepping back may reopen a closed window: continue it, not replace it.
        closed = self._windows.pop(index, None)
        self._window = (index, HdrHistogram.decode(closed) if closed else _histogram())
        return self._window

    def event(self, station_id: str, kind: str, data: dict) -> None:
        if kind not in _KINDS:
            return
        if kind == "connection":
            self._on_connection(station_id, data)
        elif kind == "boot":
            _bump(self._boot, data.get("status", "unknown"))
        elif kind == "authorize" and data.get("status") != "Accepted":
            self._transactions["rejected"] += 1
        elif kind == "call_timeout":
            self._action(data.get("action", "unknown")).timeouts += 1
            self.timeouts += 1
            self._row_now()[TIMEOUTS] += 1
        elif kind == "call_failed":  # an error the CSMS gave no code for
            _bump(self._action(data.get("action", "unknown")).errors, "failed")
            self.errors += 1
            self._row_now()[ERRORS] += 1

    def _on_connection(self, station_id: str, data: dict) -> None:
        conn = self._connections
        if data.get("error"):
            conn["attempts"] += 1
            _bump(conn["failed"], data["error"])
            if data["error"] == "http_status":
                _bump(conn["http_status"], str(data.get("status")))
            elif data["error"] == "subprotocol":
                conn["subprotocol_refused"] += 1
            return
        if data.get("online"):
            conn["attempts"] += 1
            conn["succeeded"] += 1
            self._online.add(station_id)
            self._peak = max(self._peak, len(self._online))
        else:
            conn["closed"] += 1
            self._online.discard(station_id)
        self._row_now()[CONNECTED] = len(self._online)

    def live(self) -> dict:
        now = self._clock()
        span = max(1, round(self.window_s))
        rows = [row for t in range(int(now) - span, int(now)) if (row := self._seconds.get(t))]
        index = int(now // self.window_s)
        recent = _histogram()
        for window in (self._previous, self._window):
            if window is not None and index - 1 <= window[0] <= index:
                recent.add(window[1])
        return {
            "connected": len(self._online),
            "msgs_in_per_s": round(sum(row[IN] for row in rows) / span, 1),
            "msgs_out_per_s": round(sum(row[OUT] for row in rows) / span, 1),
            "latency_ms": _percentiles(recent, LIVE_PERCENTILES),
            "errors": self.errors,
            "timeouts": self.timeouts,
        }

    def _timeline(self, now_sec: int, since: int | None = None) -> dict:
        """Dense from the first kept second (or `since`) to now, so shards add up second by
        second."""
        if not self._seconds:
            return {"start": None} | {column: [] for column in COLUMNS}
        last = max(max(self._seconds), now_sec)
        first = max(min(self._seconds), last - self.keep_s + 1)
        if since is not None:
            first = min(max(first, since), last)
        earlier = [t for t in self._seconds if t < first]
        connected = self._seconds[max(earlier)][CONNECTED] if earlier else 0
        columns = [[] for _ in COLUMNS]
        for t in range(first, last + 1):
            row = self._seconds.get(t) or (0, 0, 0, 0, connected)
            connected = row[CONNECTED]
            for column, value in zip(columns, row, strict=True):
                column.append(value)
        return {"start": first} | dict(zip(COLUMNS, columns, strict=True))

    def recent(self, since: float | None = None) -> dict:
        """What a live chart adds to what it has: the seconds from `since` to now, and the
        latency windows from the one holding `since`. The last second and window are still
        filling, so a caller asks again from them and replaces them."""
        now = self._clock()
        timeline = self._timeline(int(now), None if since is None else int(since))
        rows = [] if timeline["start"] is None else [
            {"t": timeline["start"] + i} | {c: timeline[c][i] for c in COLUMNS}
            for i in range(len(timeline["msgs_in"]))]
        first = None if since is None else int(since // self.window_s)
        windows = {index: HdrHistogram.decode(text) for index, text in self._windows.items()
                   if first is None or index >= first}
        if self._window is not None and (first is None or self._window[0] >= first):
            windows[self._window[0]] = self._window[1]
        return {"timeline": rows,
                "latency_timeline": [_window_row(index, self.window_s, windows[index])
                                     for index in sorted(windows)]}

    def snapshot(self) -> dict:
        windows = {str(index): text for index, text in self._windows.items()}
        if self._window is not None:
            windows[str(self._window[0])] = _encode(self._window[1])
        actions = {
            name: {"requests": s.requests, "responses": s.responses, "errors": dict(s.errors),
                   "timeouts": s.timeouts, "latency_sum_us": s.latency_sum_us}
            for name, s in self._actions.items()
        }
        return {
            "version": SNAPSHOT_VERSION,
            "window_s": self.window_s,
            "counts": {
                "actions": actions,
                "csms_requests": dict(self._csms_requests),
                "connections": _add_counts({"connected": len(self._online)}, self._connections),
                "boot": dict(self._boot),
                "transactions": dict(self._transactions),
                "messages": {"in": self.msgs_in, "out": self.msgs_out},
            },
            "peak_connected": self._peak,
            "latency": {name: _encode(s.latency) for name, s in self._actions.items()},
            "timeline": self._timeline(int(self._clock())),
            "latency_windows": windows,
        }

    @staticmethod
    def merge(snapshots: Iterable[dict]) -> dict:
        snapshots = list(snapshots)
        if not snapshots:
            return RunMetrics().snapshot()
        window_s = snapshots[0]["window_s"]
        if any(s.get("version") != SNAPSHOT_VERSION or s["window_s"] != window_s
               for s in snapshots):
            raise ValueError("snapshots differ in version or window_s; cannot merge")

        def added(key: str) -> dict:
            total: dict[str, HdrHistogram] = {}
            for snap in snapshots:
                for name, text in snap[key].items():
                    total.setdefault(name, _histogram()).add(HdrHistogram.decode(text))
            return {name: _encode(histogram) for name, histogram in total.items()}

        timeline = _merge_timelines([snap["timeline"] for snap in snapshots])
        # Shards peak at different moments, so peaks do not add: take the highest
        # per-second total, or one shard's peak if that is higher.
        peak = max([*timeline["connected"], *(snap["peak_connected"] for snap in snapshots)])
        counts: dict = {}
        for snap in snapshots:
            _add_counts(counts, snap["counts"])
        return {"version": SNAPSHOT_VERSION, "window_s": window_s, "counts": counts,
                "peak_connected": peak, "latency": added("latency"), "timeline": timeline,
                "latency_windows": added("latency_windows")}

    @staticmethod
    def summary(snapshot: dict) -> dict:
        counts = snapshot["counts"]
        actions = {}
        every = _histogram()
        calls = {"requests": 0, "responses": 0, "errors": 0, "timeouts": 0}
        latency_sum_us = 0
        for name, stats in sorted(counts["actions"].items()):
            histogram = HdrHistogram.decode(snapshot["latency"][name])
            every.add(histogram)
            latency_sum_us += stats["latency_sum_us"]
            actions[name] = {"requests": stats["requests"], "responses": stats["responses"],
                             "errors": dict(sorted(stats["errors"].items())),
                             "timeouts": stats["timeouts"],
                             "latency_ms": _latency_summary(histogram, stats["latency_sum_us"])}
            for key in ("requests", "responses", "timeouts"):
                calls[key] += stats[key]
            calls["errors"] += sum(stats["errors"].values())
        # Every CALL the stations sent, whatever its action: what a threshold without an
        # action checks.
        calls["latency_ms"] = _latency_summary(every, latency_sum_us)
        timeline = snapshot["timeline"]
        rows = [{"t": timeline["start"] + i} | {c: timeline[c][i] for c in COLUMNS}
                for i in range(len(timeline["msgs_in"]))]
        window_s, windows = snapshot["window_s"], snapshot["latency_windows"]
        latency_timeline = [_window_row(int(index), window_s, HdrHistogram.decode(windows[index]))
                            for index in sorted(windows, key=int)]
        return {
            "actions": actions,
            "calls": calls,
            "csms_requests": dict(sorted(counts["csms_requests"].items())),
            "connections": _add_counts({"peak_connected": snapshot["peak_connected"]},
                                       counts["connections"]),
            "boot": dict(sorted(counts["boot"].items())),
            "transactions": dict(counts["transactions"]),
            "messages": dict(counts["messages"]),
            "timeline": rows,
            "latency_timeline": latency_timeline,
        }
