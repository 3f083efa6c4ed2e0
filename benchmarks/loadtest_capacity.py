"""How many stations one machine can drive in a load test and still measure latency correctly.

    python benchmarks/loadtest_capacity.py                              # 5k, 10k, 15k: ~4 min
    python benchmarks/loadtest_capacity.py --stations 500 --duration 15      # smoke run

Each fleet size runs as a LoadRun (what `manage.py loadtest` runs) in a fresh process,
against a minimal CSMS in another process. Latencies are taken by the simulator's own
event loop: once that loop wakes late, every latency it records is inflated by the
lateness, so a size counts only while the loop lag p99 stays under 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import multiprocessing as mp
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

from websockets.asyncio.client import connect

# Run as a script, the repository root is not importable; spawned children inherit sys.path.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# Its fd limit, RSS reading and control-socket conventions serve here unchanged.
import benchmarks.engine_capacity as cap  # noqa: E402

RAMP = 1000.0  # stations started per second
LAG_OK_MS = 50.0
TARGET = 10_000
FLEET = 100_000
# The last moments before the scenario ends are left out: shutdown must not count as lag.
END_MARGIN_S = 0.5
SLACK_S = 120.0  # for process start, stragglers connecting and the shutdown


def scenario_toml(args: argparse.Namespace) -> str:
    # Sessions outlast the run so the charging share is charging the whole time.
    return (f'name = "capacity"\nseed = 1\nduration_s = {args.duration:g}\n\n'
            f"[boot]\nramp_per_second = {RAMP:g}\n\n"
            f"[transactions]\nshare = {args.charging:g}\n"
            f'sessions = {{ dist = "fixed", value_s = {args.duration + 86400:g} }}\n'
            'gaps = { dist = "uniform", min_s = 1, max_s = 10 }\nmeter_interval_s = 10\n')


# -- the simulator: one fleet size in one process --------------------------------------------

def simulate_main(port: int, n: int, args: argparse.Namespace, out) -> None:
    cap.raise_fd_limit(n + cap.FD_MARGIN)
    # A station that fails logs a warning each time; the figures count them instead.
    logging.basicConfig(level=logging.ERROR)
    try:
        out.send(asyncio.run(simulate(port, n, args)))
    except BaseException:
        out.send({"error": traceback.format_exc()})


def steady_metrics():
    from stations.engine.metrics import RunMetrics

    class SteadyMetrics(RunMetrics):
        """The run's metrics, plus a copy of the frames seen while `steady` is set.

        The run's own latencies also cover the ramp and the shutdown, when the loop is
        busiest; the steady copy holds only what a long test would see.
        """

        steady: RunMetrics | None = None

        def frame(self, *args) -> None:
            super().frame(*args)
            if self.steady is not None:
                self.steady.frame(*args)

    return SteadyMetrics()


def pct(values: list[float], p: float) -> float:
    return values[min(len(values) - 1, int(p / 100 * len(values)))] if values else math.nan


async def simulate(port: int, n: int, args: argparse.Namespace) -> dict:
    from stations.engine.config import EvseConfig, StationConfig
    from stations.engine.loadrun import LoadRun
    from stations.engine.metrics import RunMetrics
    from stations.engine.scenario import parse_scenario

    loop = asyncio.get_running_loop()
    url = f"ws://127.0.0.1:{port}"
    async with connect(url + cap.STATS_PATH, subprotocols=[cap.SUBPROTOCOL]) as stats_ws:
        async def csms_cpu() -> float:
            await stats_ws.send("?")
            return json.loads(await asyncio.wait_for(stats_ws.recv(), 30))["cpu"]

        rss0 = cap.rss_kb()
        configs = [StationConfig(f"CAP-{i:06d}", url, evses=(EvseConfig(1),),
                                 validate_schema=not args.no_validation) for i in range(n)]
        metrics = steady_metrics()
        # A run's duration includes its ramp: the planned ramp, then the scenario seconds.
        run = LoadRun(configs, parse_scenario(scenario_toml(args)), 1,
                      duration_s=n / RAMP + args.duration, ramp_per_second=RAMP,
                      metrics=metrics)
        stop = asyncio.Event()
        began = loop.time()
        task = asyncio.ensure_future(run.run(stop))
        # The run's end (then its drain) is where the steady part ends.
        steady_end = began + n / RAMP + args.duration - END_MARGIN_S
        while (run.shard.online_count() < n and not task.done()
               and loop.time() < steady_end):
            await asyncio.sleep(0.1)
        online_start = run.shard.online_count()
        connect_s = loop.time() - began if online_start == n else None

        lags: list[float] = []
        wall0, cpu0, csms0 = loop.time(), time.process_time(), await csms_cpu()
        metrics.steady = RunMetrics()
        while connect_s is not None and loop.time() + cap.LAG_TICK_S < steady_end:
            due = loop.time() + cap.LAG_TICK_S
            await asyncio.sleep(cap.LAG_TICK_S)
            lags.append(loop.time() - due)
        wall = loop.time() - wall0
        cpu, csms = time.process_time() - cpu0, await csms_cpu() - csms0
        steady_snapshot, metrics.steady = metrics.steady.snapshot(), None
        rss1, online_end = cap.rss_kb(), run.shard.online_count()
        try:
            snapshot = await asyncio.wait_for(asyncio.shield(task), SLACK_S)
        except TimeoutError:
            stop.set()
            snapshot = await asyncio.wait_for(task, SLACK_S)

    summary = RunMetrics.summary(steady_snapshot)
    messages = summary["messages"]
    latency = {name: summary["actions"].get(name, {}).get("latency_ms", {})
               for name in ("Heartbeat", "TransactionEvent")}
    lags.sort()
    steady = bool(lags) and wall > 0
    return {
        "online_start": online_start, "online_end": online_end, "connect_s": connect_s,
        "steady_s": wall if steady else 0.0,
        "in_per_s": messages["in"] / wall if steady else math.nan,
        "out_per_s": messages["out"] / wall if steady else math.nan,
        "latency": latency,
        "answered": {name: summary["actions"].get(name, {}).get("responses", 0)
                     for name in latency},
        "failed": sum(sum(a["errors"].values()) + a["timeouts"]
                      for a in RunMetrics.summary(snapshot)["actions"].values()),
        "lag_ms": [pct(lags, p) * 1000 for p in (50, 99, 100)],
        "cpu_pct": cpu / wall * 100 if steady else math.nan,
        "csms_cpu_pct": csms / wall * 100 if steady else math.nan,
        "kb_per_station": (rss1 - rss0) / n,
    }


# -- the parent: start the processes, print the figures --------------------------------------

def run_size(ctx, port: int, n: int, args: argparse.Namespace) -> dict:
    receive, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=simulate_main, args=(port, n, args, send), daemon=True)
    proc.start()
    try:
        if not receive.poll(n / RAMP + args.duration + 3 * SLACK_S):
            raise RuntimeError(f"the simulator of {n} stations did not report in time")
        result = receive.recv()
    finally:
        proc.join(30)
        if proc.is_alive():
            proc.terminate()
            proc.join(5)
    if "error" in result:
        raise RuntimeError(f"simulator of {n} stations failed:\n{result['error']}")
    return result


def trustworthy(r: dict, n: int) -> bool:
    return r["online_start"] == n and r["lag_ms"][1] < LAG_OK_MS


def triple(values) -> str:
    return "/".join("—" if v is None or math.isnan(v) else f"{v:.0f}" if v >= 100 else f"{v:.1f}"
                    for v in values)


def latency_cell(r: dict, name: str) -> str:
    lat = r["latency"][name]
    return f"{triple(lat.get(p) for p in ('p50', 'p95', 'p99'))} ({r['answered'][name]})"


ROWS = [
    ("stations online: steady start / end", lambda r, n: f"{r['online_start']}/"
                                                         f"{r['online_end']} of {n}"),
    ("time to connect all (s)",
     lambda r, n: "never" if r["connect_s"] is None else f"{r['connect_s']:.1f}"),
    ("steady window (s)", lambda r, n: f"{r['steady_s']:.0f}"),
    ("msgs/s in / out", lambda r, n: f"{r['in_per_s']:.0f} / {r['out_per_s']:.0f}"),
    ("Heartbeat p50/p95/p99 ms (answered)", lambda r, n: latency_cell(r, "Heartbeat")),
    ("TransactionEvent p50/p95/p99 ms", lambda r, n: latency_cell(r, "TransactionEvent")),
    ("calls failed or timed out, whole run", lambda r, n: str(r["failed"])),
    ("loop lag p50/p99/max (ms)", lambda r, n: triple(r["lag_ms"])),
    ("simulator CPU (% of a core)", lambda r, n: f"{r['cpu_pct']:.0f}"),
    ("CSMS CPU (% of a core)", lambda r, n: f"{r['csms_cpu_pct']:.0f}"),
    ("RSS per station (KB)", lambda r, n: f"{r['kb_per_station']:.1f}"),
    ("verdict", lambda r, n: "trustworthy" if trustworthy(r, n) else "NOT trustworthy"),
]


def report(args: argparse.Namespace, results: dict[int, dict]) -> None:
    print(f"\nheartbeat {args.heartbeat} s, {args.charging:.0%} charging (meter values every "
          f"10 s), ramp {RAMP:g}/s, {args.duration:g} s scenario, schema validation "
          f"{'off' if args.no_validation else 'on'}; all figures but the\n"
          "connect time over the steady part (all online until the scenario ends)")
    print(f"{'':37}" + "".join(f"{f'{n} stations':>22}" for n in results))
    for label, cell in ROWS:
        print(f"{label:37}" + "".join(f"{cell(r, n):>22}" for n, r in results.items()))
    good = [n for n, r in results.items() if trustworthy(r, n)]
    largest = max(good, default=0)
    print()
    if not largest:
        print(f"no size tried had all stations online with loop lag p99 < {LAG_OK_MS:g} ms")
    else:
        bound = " (the largest size tried: the limit may be higher)" \
            if largest == max(results) else ""
        print(f"largest trustworthy fleet: {largest} stations{bound}")
    print(f"{'PASS' if largest >= TARGET else 'MISS'}  >= {TARGET:,} stations per machine with "
          f"heartbeats every 60 s and 10% charging: {largest:,}\n      (measured with "
          f"heartbeats every {args.heartbeat} s and {args.charging:.0%} charging)")
    if not largest:
        return
    machines = math.ceil(FLEET / largest)
    flags = " --no-validation" if args.no_validation else ""
    print(f"a {FLEET:,}-station test needs ceil({FLEET} / {largest}) = {machines} machines: "
          "on each, an engine worker sharing one REDIS_URL and DATABASE_URL\n"
          "  celery -A fleet worker -Q engine --pool prefork --disable-prefetch -c 1\n"
          "and, on any one of them, the run that spreads the stations over them:\n"
          f"  python manage.py loadtest --csms-url ws://<csms>/<path> --stations {FLEET} "
          f"--workers {machines} --scenario capacity --ramp {RAMP * machines:g} "
          f"--duration <s, ramp included>{flags} --quiet")
    toml = "\n".join(f"  {line}".rstrip() for line in scenario_toml(args).splitlines())
    print(f"with scenarios/capacity.toml (or a database scenario named capacity) being the "
          f"scenario measured here:\n{toml}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stations", default="5000,10000,15000",
                        help="fleet sizes to try, comma-separated")
    parser.add_argument("--duration", type=float, default=60, help="scenario seconds per size")
    parser.add_argument("--charging", type=float, default=0.1, help="share of stations charging")
    parser.add_argument("--heartbeat", type=int, default=60, help="HeartbeatInterval, seconds")
    parser.add_argument("--no-validation", action="store_true",
                        help="as loadtest --no-validation: no schema validation of frames")
    args = parser.parse_args()
    sizes = [int(s) for s in args.stations.split(",") if s.strip()]
    if not sizes or min(sizes) < 1 or args.duration <= 1 or not 0 <= args.charging <= 1:
        parser.error("sizes must be >= 1, --duration > 1 and --charging between 0 and 1")
    needed = max(sizes) + cap.FD_MARGIN
    cap.raise_fd_limit(needed)  # fails here, clearly, before any process is started

    ctx = mp.get_context("spawn")
    receive, send = ctx.Pipe(duplex=False)
    lifetime = sum(n / RAMP + args.duration + 4 * SLACK_S for n in sizes)
    server = ctx.Process(target=cap.csms_main, args=(args.heartbeat, needed, send, lifetime),
                         daemon=True)
    server.start()
    results: dict[int, dict] = {}
    try:
        if not receive.poll(30):
            sys.exit("the CSMS process did not start")
        port = receive.recv()
        for n in sizes:
            print(f"{datetime.now(UTC):%H:%M:%S} {n} stations", file=sys.stderr, flush=True)
            results[n] = run_size(ctx, port, n, args)
    finally:
        server.terminate()
        server.join(10)
    report(args, results)


if __name__ == "__main__":
    main()
