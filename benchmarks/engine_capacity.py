"""Capacity of the station engine: stations per process, memory per station, round trips/core.

    python benchmarks/engine_capacity.py                       # 10,000 stations, ~2-3 minutes
    python benchmarks/engine_capacity.py --stations 200 --measure 5    # smoke run
    python benchmarks/engine_capacity.py --stations 2000 --profile     # top costs to stderr

A bare CSMS runs in its own process so its CPU is not charged to the simulator. Each phase
(schema validation on, then off) runs the stations of one Shard in a fresh process, so RSS
and CPU time belong to that phase alone. Round trips are Heartbeats answered by the CSMS.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import gc
import json
import multiprocessing as mp
import pstats
import resource
import signal
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

from websockets.asyncio.client import connect
from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed

# Run as a script, the repository root is not importable; spawned children inherit sys.path.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SUBPROTOCOL = "ocpp2.0.1"
STATS_PATH = "/_stats"
# Sockets besides the stations': listener, stats connection, pipes, interpreter files.
FD_MARGIN = 256
SETTLE_S = 3.0  # steady state before RSS is read, so boot-time garbage is gone or counted
LAG_TICK_S = 0.1
TARGET_STATIONS, TARGET_KB, TARGET_RT_PER_CORE = 10_000, 30.0, 4_000


def raise_fd_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < needed:
        sys.exit(f"RLIMIT_NOFILE hard limit is {hard}, {needed} file descriptors are needed per "
                 "process: raise it (ulimit -Hn, limits.conf or the container's nofile) or "
                 "run fewer --stations.")
    soft = hard if hard != resource.RLIM_INFINITY else max(soft, needed)
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def rss_kb() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


# -- the CSMS: as little work per frame as possible, so it is never the bottleneck ---------

def csms_main(heartbeat: int, needed_fds: int, port_out, lifetime_s: float | None = None) -> None:
    """The fast CSMS every benchmark here runs in a process of its own."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops it, also after Ctrl-C
    raise_fd_limit(needed_fds)
    asyncio.run(csms(heartbeat, port_out, lifetime_s))


async def csms(heartbeat: int, port_out, lifetime_s: float | None = None) -> None:
    counts: dict[str, int] = {}
    booted: set[str] = set()
    sessions = 0
    # Authorize and a TransactionEvent with an idToken need idTokenInfo, or nobody charges.
    accepted = {"idTokenInfo": {"status": "Accepted"}}

    async def handle(ws) -> None:
        nonlocal sessions
        with contextlib.suppress(ConnectionClosed):
            if ws.request.path == STATS_PATH:
                async for _ in ws:
                    await ws.send(json.dumps({"counts": counts, "booted": len(booted),
                                              "sessions": sessions, "cpu": time.process_time()}))
                return
            sessions += 1
            try:
                async for raw in ws:
                    frame = json.loads(raw)
                    if frame[0] != 2:
                        continue
                    action = frame[2]
                    if action in ("Heartbeat", "BootNotification"):
                        payload = {"currentTime": datetime.now(UTC).isoformat()}
                        if action == "BootNotification":
                            booted.add(ws.request.path)
                            payload |= {"status": "Accepted", "interval": heartbeat}
                    elif action == "Authorize" or "idToken" in frame[3]:
                        payload = accepted
                    else:
                        payload = {}
                    await ws.send(json.dumps([3, frame[1], payload], separators=(",", ":")))
                    counts[action] = counts.get(action, 0) + 1
            finally:
                sessions -= 1

    # The default backlog of 100 drops SYNs when a lagging ramp connects stations in bursts.
    async with serve(handle, "127.0.0.1", 0, subprotocols=[SUBPROTOCOL], compression=None,
                     ping_interval=None, backlog=4096) as server:
        port_out.send(server.sockets[0].getsockname()[1])
        # Thousands of connections are millions of long-lived objects: full collections of
        # them stalled every answer for up to 0.6 s, which stations measure as latency.
        # Frozen objects are never scanned. The parent terminates this process; the
        # lifetime is a backstop.
        seconds = 0
        while lifetime_s is None or seconds < lifetime_s:
            gc.freeze()
            await asyncio.sleep(1)
            seconds += 1


# -- the simulator: one phase in one process -----------------------------------------------

def simulate_main(port: int, args: argparse.Namespace, validate: bool, out) -> None:
    raise_fd_limit(args.stations + FD_MARGIN)
    try:
        out.send(asyncio.run(simulate(port, args, validate)))
    except BaseException:
        out.send({"error": traceback.format_exc()})


async def probe_lag(lags: list[float]) -> None:
    loop = asyncio.get_running_loop()
    while True:
        due = loop.time() + LAG_TICK_S
        await asyncio.sleep(LAG_TICK_S)
        lags.append(loop.time() - due)


async def simulate(port: int, args: argparse.Namespace, validate: bool) -> dict:
    from stations.engine.config import EvseConfig, StationConfig
    from stations.engine.shard import Shard

    loop = asyncio.get_running_loop()
    url, n = f"ws://127.0.0.1:{port}", args.stations
    async with connect(url + STATS_PATH, subprotocols=[SUBPROTOCOL]) as stats_ws:
        async def heartbeats_answered() -> tuple[int, float]:
            await stats_ws.send("?")
            stats = json.loads(await asyncio.wait_for(stats_ws.recv(), 30))
            return stats["counts"].get("Heartbeat", 0), stats["cpu"]

        # Configs are made lazily so that they count as part of what a station costs.
        configs = (StationConfig(f"BENCH-{i:05d}", url, evses=(EvseConfig(1),),
                                 validate_schema=validate) for i in range(n))
        shard = Shard(ramp_per_second=args.ramp)
        rss_before = rss_kb()
        began = loop.time()
        starter = asyncio.ensure_future(shard.start(configs))
        while shard.online_count() < n and loop.time() - began < args.boot_timeout:
            await asyncio.sleep(0.1)
        boot_s, booted = loop.time() - began, shard.online_count()
        starter.cancel()
        await asyncio.sleep(SETTLE_S)
        rss_after = rss_kb()

        lags: list[float] = []
        prober = asyncio.ensure_future(probe_lag(lags))
        profile = cProfile.Profile() if args.profile else None
        if profile is not None:
            profile.enable()
        rt0, csms_cpu0 = await heartbeats_answered()
        cpu0, wall0 = time.process_time(), time.perf_counter()
        await asyncio.sleep(args.measure)
        rt1, csms_cpu1 = await heartbeats_answered()
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        if profile is not None:
            profile.disable()
            print(f"\n== profile, validation {'on' if validate else 'off'} ==", file=sys.stderr)
            pstats.Stats(profile, stream=sys.stderr).sort_stats("tottime").print_stats(25)
        prober.cancel()
        online_end = shard.online_count()
        await asyncio.wait_for(shard.stop(), 60)

    lags.sort()
    trips = rt1 - rt0
    return {
        "booted": booted, "online_end": online_end, "boot_s": boot_s,
        "kb_per_station": (rss_after - rss_before) / n,
        "rt_per_s": trips / wall,
        "us_per_rt": cpu / trips * 1e6 if trips else float("nan"),
        "rt_per_cpu_s": trips / cpu if cpu else float("nan"),
        "lag_p99_ms": lags[int(0.99 * (len(lags) - 1))] * 1000 if lags else float("nan"),
        "lag_max_ms": lags[-1] * 1000 if lags else float("nan"),
        "csms_cpu_pct": (csms_cpu1 - csms_cpu0) / wall * 100,
    }


# -- the parent: start the processes, print the figures ------------------------------------

def run_phase(ctx, port: int, args: argparse.Namespace, validate: bool) -> dict:
    receive, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=simulate_main, args=(port, args, validate, send), daemon=True)
    proc.start()
    try:
        if not receive.poll(args.boot_timeout + SETTLE_S + args.measure + 120):
            raise RuntimeError("the simulator process did not report in time")
        result = receive.recv()
    finally:
        proc.join(30)
        if proc.is_alive():
            proc.terminate()
            proc.join(5)
    if "error" in result:
        raise RuntimeError(f"simulator failed:\n{result['error']}")
    return result


ROWS = [
    ("stations booted / N", lambda r, n: f"{r['booted']}/{n}"),
    ("time to boot all (s)", lambda r, n: f"{r['boot_s']:.1f}"),
    ("RSS per station (KB)", lambda r, n: f"{r['kb_per_station']:.1f}"),
    ("round trips/s achieved", lambda r, n: f"{r['rt_per_s']:.0f}"),
    ("simulator CPU per round trip (µs)", lambda r, n: f"{r['us_per_rt']:.0f}"),
    ("round trips per CPU-second", lambda r, n: f"{r['rt_per_cpu_s']:.0f}"),
    ("loop lag p99 / max (ms)", lambda r, n: f"{r['lag_p99_ms']:.0f} / {r['lag_max_ms']:.0f}"),
    ("still online at the end", lambda r, n: f"{r['online_end']}/{n}"),
    ("CSMS CPU (% of a core)", lambda r, n: f"{r['csms_cpu_pct']:.0f}"),
]


def report(args: argparse.Namespace, on: dict, off: dict) -> None:
    n = args.stations
    print(f"\n{n} stations, ramp {args.ramp:g}/s, heartbeat {args.heartbeat}s, "
          f"measured over {args.measure:g}s")
    print(f"{'':36}{'validation on':>16}{'validation off':>16}")
    for label, cell in ROWS:
        print(f"{label:36}{cell(on, n):>16}{cell(off, n):>16}")
    worst_kb = max(on["kb_per_station"], off["kb_per_station"])
    targets = [
        (n >= TARGET_STATIONS and on["booted"] == off["booted"] == n,
         f"{TARGET_STATIONS:,} stations in one process: {on['booted']} and {off['booted']} "
         f"of {n} online"),
        (worst_kb <= TARGET_KB, f"<= {TARGET_KB:g} KB RSS per station: {worst_kb:.1f} KB"),
        (off["rt_per_cpu_s"] >= TARGET_RT_PER_CORE,
         f">= {TARGET_RT_PER_CORE:,} round trips/s per core, validation off: "
         f"{off['rt_per_cpu_s']:.0f}"),
    ]
    print()
    for ok, text in targets:
        print(f"{'PASS' if ok else 'MISS'}  {text}")
    if args.profile:
        print("(profiled: cProfile inflates the CPU figures)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stations", type=int, default=10_000)
    parser.add_argument("--ramp", type=float, default=2000, help="stations started per second")
    parser.add_argument("--heartbeat", type=int, default=1, help="HeartbeatInterval, seconds")
    parser.add_argument("--measure", type=float, default=20, help="measurement window, seconds")
    parser.add_argument("--boot-timeout", type=float, default=120)
    parser.add_argument("--profile", action="store_true",
                        help="cProfile the measurement window, top costs to stderr")
    args = parser.parse_args()
    needed = args.stations + FD_MARGIN
    raise_fd_limit(needed)  # fails here, clearly, before any process is started

    ctx = mp.get_context("spawn")
    receive, send = ctx.Pipe(duplex=False)
    server = ctx.Process(target=csms_main, args=(args.heartbeat, needed, send), daemon=True)
    server.start()
    try:
        if not receive.poll(30):
            sys.exit("the CSMS process did not start")
        port = receive.recv()
        results = {}
        for validate in (True, False):
            print(f"phase: {args.stations} stations, validation {'on' if validate else 'off'}",
                  file=sys.stderr, flush=True)
            results[validate] = run_phase(ctx, port, args, validate)
    finally:
        server.terminate()
        server.join(10)
    report(args, results[True], results[False])


if __name__ == "__main__":
    main()
