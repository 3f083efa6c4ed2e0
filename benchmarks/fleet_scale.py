"""The scale-out fleet under load: boot time, engine CPU and memory, delay to the dashboard.

    python benchmarks/fleet_scale.py                          # 10,000 stations, ~2 minutes
    python benchmarks/fleet_scale.py --stations 500 --measure 15      # smoke run

Everything runs as in production (Celery engine workers and beat, PostgreSQL, a private
Redis); a bare CSMS runs in its own process so its CPU is not charged to the engine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import os
import re
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

import psycopg
from websockets.asyncio.client import connect

ROOT = Path(__file__).resolve().parent.parent
# Run as a script, the repository root is not importable; spawned children inherit sys.path.
sys.path.insert(0, str(ROOT))

from benchmarks.engine_capacity import (  # noqa: E402 - the shared fast CSMS
    STATS_PATH,
    SUBPROTOCOL,
    csms_main,
    raise_fd_limit,
)

HEARTBEAT_S = 60
FD_MARGIN = 512  # besides the stations' sockets: Redis, PostgreSQL, pipes, files
SAMPLE_S = 5.0
SETTLE_S = 5.0  # after the burst of transaction starts, before the steady window opens
TICK = os.sysconf("SC_CLK_TCK")
TARGET_BOOT_S, TARGET_KB, TARGET_P95_S = 30.0, 40.0, 1.0


# -- what the benchmark watches ------------------------------------------------------------

class Dashboard:
    """A member of the "dashboard" group, as a browser's consumer is."""

    def __init__(self, redis_url: str):
        from channels_redis.pubsub import RedisPubSubChannelLayer
        self.layer = RedisPubSubChannelLayer(hosts=[redis_url])
        self.messages: list[tuple[float, int]] = []  # (received, bytes)
        self.delays: list[tuple[float, float]] = []  # (received, received - changed_at)
        self._size, decode = 0, self.layer.deserialize

        def measure(raw: bytes):  # the only place that sees the bytes as they came
            self._size = len(raw)
            return decode(raw)
        self.layer.deserialize = measure

    async def run(self, subscribed: asyncio.Event) -> None:
        channel = await self.layer.new_channel()
        await self.layer.group_add("dashboard", channel)
        subscribed.set()
        while True:
            message = await self.layer.receive(channel)
            now = time.time()
            if message.get("type") == "fleet.delta":
                self.messages.append((now, self._size))
                self.delays += [(now, now - view["changed_at"])
                                for view in message["stations"].values() if view["changed_at"]]

    def window(self, start: float, end: float) -> tuple[list[int], list[float]]:
        return ([b for t, b in self.messages if start <= t <= end],
                [d for t, d in self.delays if start <= t <= end])


def ticks_rss(path: str) -> tuple[int, int]:
    """CPU ticks (utime + stime) and VmRSS (KB) of a /proc/<pid> or /proc/<pid>/task/<tid>."""
    with open(f"{path}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    with open(f"{path}/status") as f:
        rss = next((int(line.split()[1]) for line in f if line.startswith("VmRSS:")), 0)
    return int(fields[11]) + int(fields[12]), rss


def pss_uss(pid: int) -> tuple[int, int]:
    """Proportional and unique set size (KB): shared pages split between their sharers,
    and pages this process alone holds."""
    values = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("Pss", "Private_Clean", "Private_Dirty"):
                values[key] = int(rest.split()[0])
    return values["Pss"], values["Private_Clean"] + values["Private_Dirty"]


def children(pid: int) -> list[int]:
    pids = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        with contextlib.suppress(OSError):
            pids += [int(p) for p in task.read_text().split()]
    return pids


def sample(masters: list[int], control: int, db_name: str) -> dict:
    """Engine workers' CPU and RSS, the control worker's and the machine's CPU, DB writes."""
    s = {"at": time.monotonic(), "cpu": 0, "kids": 0, "loops": 0, "master_kb": 0,
         "children_kb": 0, "control": 0, "pss_kb": 0, "children_uss_kb": 0}
    for pid in [control, *children(control)]:
        with contextlib.suppress(OSError):
            s["control"] += ticks_rss(f"/proc/{pid}")[0]
    for master in masters:
        with contextlib.suppress(OSError):
            ticks, rss = ticks_rss(f"/proc/{master}")
            s["cpu"] += ticks
            s["master_kb"] += rss
            s["pss_kb"] += pss_uss(master)[0]
        for child in children(master):
            with contextlib.suppress(OSError):
                ticks, rss = ticks_rss(f"/proc/{child}")
                # asyncio runs the stations in a child's main thread; Django's ORM calls
                # (sync_to_async) run in another thread, so the two costs can be told apart.
                s["loops"] += ticks_rss(f"/proc/{child}/task/{child}")[0]
                s["cpu"] += ticks
                s["kids"] += ticks
                s["children_kb"] += rss
                pss, uss = pss_uss(child)
                s["pss_kb"] += pss
                s["children_uss_kb"] += uss
    with open("/proc/stat") as f:
        jiffies = [int(v) for v in f.readline().split()[1:]]
    s["busy"] = sum(jiffies) - jiffies[3] - jiffies[4]  # all but idle and iowait
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres") as db:
        s["rows"], s["commits"] = db.execute(
            "SELECT tup_inserted + tup_updated + tup_deleted, xact_commit "
            "FROM pg_stat_database WHERE datname = %s", (db_name,)).fetchone()
    return s


def percentile(values: list[float], q: float) -> float:
    return sorted(values)[int(q * (len(values) - 1))] if values else float("nan")


# -- the run -------------------------------------------------------------------------------

SETUP = """
from stations.models import DeviceModelValue, Station, StationTemplate
from stations.services import assign_shards
t = StationTemplate.objects.create(name="bench", id_pattern="BENCH-{{n:06d}}", csms_url={url!r},
                                   evse_count=1, connectors_per_evse=1, max_power_kw=22)
t.create_stations({n})
DeviceModelValue.objects.bulk_create(  # meter values every 10 s while charging
    [DeviceModelValue(station_id=pk, key="SampledDataCtrlr/TxUpdatedInterval/Actual", value="10")
     for pk in Station.objects.values_list("pk", flat=True)], batch_size=5000)
print("SHARDS", len(assign_shards()))
"""

CHARGE = """
import asyncio, collections, json
from stations.engine.id_tokens import generate
from stations.services import asend_command
async def main():
    limit = asyncio.Semaphore(50)
    async def one(station_id):  # each driver's own RFID card (ISO14443 UID)
        async with limit:
            card = generate("ISO14443", int(station_id[-6:]))
            return (await asend_command(station_id, "start_charging", evse_id=1,
                                        id_token=card))["status"]
    return collections.Counter(await asyncio.gather(*(one(s) for s in {ids!r})))
print("OUTCOMES", json.dumps(asyncio.run(main())))
"""


async def run(cluster, port: int, args: argparse.Namespace) -> dict:
    n, r = args.stations, {}
    async with connect(f"ws://127.0.0.1:{port}{STATS_PATH}", subprotocols=[SUBPROTOCOL]) as ws:
        async def csms_stats() -> dict:
            await ws.send("?")
            return json.loads(await asyncio.wait_for(ws.recv(), 30))

        began = time.monotonic()
        out = await cluster.python(SETUP.format(url=f"ws://127.0.0.1:{port}/ocpp", n=n), 300)
        r["shards"], r["setup_s"] = out.split("SHARDS ")[1].strip(), time.monotonic() - began
        dashboard, subscribed = Dashboard(cluster.env["REDIS_URL"]), asyncio.Event()
        listener = asyncio.ensure_future(dashboard.run(subscribed))
        await asyncio.wait_for(subscribed.wait(), 10)

        began = time.monotonic()
        cluster.start_worker("control", queue="control", concurrency=1, beat=True)
        for i in range(args.workers):
            cluster.start_worker(f"engine{i}", concurrency=args.concurrency)
        masters = [p.pid for name, p in cluster.workers.items() if name.startswith("engine")]
        progress = [(0.0, 0)]  # (seconds since the workers started, stations booted)
        while progress[-1][1] < n and progress[-1][0] < args.boot_timeout:
            await asyncio.sleep(0.25)
            progress.append((time.monotonic() - began, (await csms_stats())["booted"]))
        r["booted"], r["boot_s"] = progress[-1][1], progress[-1][0]
        r["first_s"], r["half_s"] = (next((t for t, b in progress if b >= goal), float("nan"))
                                     for goal in (1, n / 2))

        # Spread over the id range, so that every shard gets its share of charging stations.
        k = round(args.charging * n)
        ids = [f"BENCH-{1 + i * n // k:06d}" for i in range(k)]
        began = time.monotonic()
        out = await cluster.python(CHARGE.format(ids=ids), timeout=60 + k / 5)
        r["outcomes"] = json.loads(out.split("OUTCOMES ")[1])
        r["charge_s"] = time.monotonic() - began
        await asyncio.sleep(SETTLE_S)

        def measure() -> dict:
            return sample(masters, cluster.workers["control"].pid, cluster.db_name)

        samples, start, window_from = [measure()], await csms_stats(), time.time()
        window_end = samples[0]["at"] + args.measure
        while time.monotonic() < window_end - 0.01:
            await asyncio.sleep(min(SAMPLE_S, window_end - time.monotonic()))
            samples.append(measure())
        end, window_to = await csms_stats(), time.time()
        listener.cancel()
        await asyncio.gather(listener, return_exceptions=True)

    first, last = samples[0], samples[-1]
    wall = last["at"] - first["at"]
    sizes, delays = dashboard.window(window_from, window_to)
    calls = {a: c - start["counts"].get(a, 0) for a, c in sorted(end["counts"].items())}
    rate = {key: (last[key] - first[key]) / wall
            for key in ("cpu", "kids", "loops", "control", "busy", "rows", "commits")}
    r.update(
        wall=wall, rate=rate, csms_cpu=(end["cpu"] - start["cpu"]) / wall,
        kb=[s["children_kb"] for s in (first, last)], master_kb=last["master_kb"],
        pss_kb=last["pss_kb"], uss_kb=last["children_uss_kb"],
        children=sum(len(children(m)) for m in masters),
        calls={a: c / wall for a, c in calls.items() if c}, sessions=end["sessions"],
        dash=(len(sizes) / wall, sum(sizes) / wall / 1024), delays=len(delays),
        p50=percentile(delays, 0.5), p95=percentile(delays, 0.95),
        max=max(delays, default=float("nan")),
    )
    return r


def report(args: argparse.Namespace, r: dict) -> None:
    n, rate = args.stations, r["rate"]
    kb_per_station = max(r["kb"]) / n
    rows = [
        ("set-up: stations, values, shards (s)", f"{r['setup_s']:.1f} ({r['shards']} shards)"),
        ("booted at the CSMS", f"{r['booted']}/{n}"),
        ("first / half / all booted after (s)",
         f"{r['first_s']:.1f} / {r['half_s']:.1f} / {r['boot_s']:.1f}  (from worker start)"),
        ("start_charging outcomes", f"{r['outcomes']} in {r['charge_s']:.1f} s"),
        ("connected at the end", f"{r['sessions']}/{n}"),
        ("steady window (s)", f"{r['wall']:.1f}"),
        ("engine workers CPU (% of a core)", f"{rate['cpu'] / TICK * 100:.0f}"),
        ("  Celery masters", f"{(rate['cpu'] - rate['kids']) / TICK * 100:.0f}"),
        ("  children's event loops", f"{rate['loops'] / TICK * 100:.0f}"),
        ("  children's other threads (ORM)",
         f"{(rate['kids'] - rate['loops']) / TICK * 100:.0f}"),
        ("control worker + beat CPU (% of a core)", f"{rate['control'] / TICK * 100:.0f}"),
        ("CSMS CPU (% of a core)", f"{r['csms_cpu'] * 100:.0f}"),
        ("machine CPU busy (% of a core)",
         f"{rate['busy'] / TICK * 100:.0f} of {os.cpu_count() * 100}"),
        ("PostgreSQL rows written, commits /s", f"{rate['rows']:.0f}, {rate['commits']:.0f}"),
        ("engine children RSS (MB)", f"{r['kb'][0] / 1024:.0f} -> {r['kb'][1] / 1024:.0f} "
                                     f"over the window, {r['children']} processes"),
        ("engine masters RSS (MB)", f"{r['master_kb'] / 1024:.0f}"),
        ("RSS per station (KB, children / N)", f"{kb_per_station:.1f}"),
        ("  children's own pages (USS) / N", f"{r['uss_kb'] / n:.1f}"),
        ("  PSS of masters + children / N", f"{r['pss_kb'] / n:.1f}"),
        ("OCPP CALLs/s at the CSMS", f"{sum(r['calls'].values()):.1f}"),
        *((f"  {action}", f"{per_s:.1f}") for action, per_s in r["calls"].items()),
        ("dashboard messages/s", f"{r['dash'][0]:.1f} ({r['dash'][1]:.0f} KB/s)"),
        ("delay to dashboard p50/p95/max (ms)", f"{r['p50'] * 1e3:.0f} / {r['p95'] * 1e3:.0f} / "
                                                f"{r['max'] * 1e3:.0f} over {r['delays']} views"),
    ]
    print(f"\n{n} stations, {args.charging:.0%} charging, {args.workers} engine worker(s) x "
          f"{args.concurrency}, shards of {args.shard_size}, ramp {args.ramp:g}/s per shard,\n"
          f"lease TTL {args.lease_ttl} s, reconcile every {args.reconcile:g} s, schema "
          f"validation {os.environ.get('FLEET_SCHEMA_VALIDATION', 'on (default)')}")
    for label, value in rows:
        print(f"{label:41}{value}")
    print()
    for ok, text in [
        (r["booted"] == n and r["boot_s"] <= TARGET_BOOT_S,
         f"all {n} booted within {TARGET_BOOT_S:g} s: {r['booted']} in {r['boot_s']:.1f} s"),
        (kb_per_station <= TARGET_KB,
         f"engine RSS <= {TARGET_KB:g} KB per station: {kb_per_station:.1f} KB"),
        (r["p95"] <= TARGET_P95_S,
         f"p95 delay to the dashboard group <= {TARGET_P95_S:g} s: {r['p95']:.2f} s"),
    ]:
        print(f"{'PASS' if ok else 'MISS'}  {text}")


def log_problems(cluster) -> list[str]:
    """Warnings and errors of the workers, once each: a run's health goes with its figures."""
    seen: dict[str, int] = {}
    for name in cluster.workers:
        for line in cluster.log(name).splitlines():
            if re.search(r"WARNING|ERROR|CRITICAL|Traceback", line):
                key = re.sub(r"^\[[^]]*\] ", "", line)[:120]
                seen[key] = seen.get(key, 0) + 1
    return [f"worker log: {count:5d} x {line}"
            for line, count in sorted(seen.items(), key=lambda kv: -kv[1])[:8]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stations", type=int, default=10_000)
    parser.add_argument("--charging", type=float, default=0.10, help="share to start charging")
    parser.add_argument("--measure", type=float, default=60, help="steady window, seconds")
    parser.add_argument("--workers", type=int, default=1, help="engine worker processes")
    parser.add_argument("--concurrency", type=int, default=2, help="children per worker")
    parser.add_argument("--shard-size", type=int, default=5000)
    parser.add_argument("--ramp", type=float, default=1000, help="stations/s per shard")
    parser.add_argument("--boot-timeout", type=float, default=90)
    # Production's defaults: the test cluster's short ones (3 s, 1 s) are not what a fleet runs.
    parser.add_argument("--lease-ttl", type=int, default=15, help="FLEET_LEASE_TTL, seconds")
    parser.add_argument("--reconcile", type=float, default=5, help="FLEET_RECONCILE_SECONDS")
    args = parser.parse_args()
    needed = args.stations + FD_MARGIN
    raise_fd_limit(needed)  # the workers and the CSMS inherit it
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # clean up as on Ctrl-C

    sys.path.insert(0, str(ROOT))
    from tests.scale.cluster import Cluster

    tmp = Path(tempfile.mkdtemp(prefix="fleet-scale-"))
    cluster = Cluster(tmp, shard_size=args.shard_size, lease_ttl=args.lease_ttl)
    cluster.env.update(FLEET_RAMP_PER_SECOND=str(args.ramp),
                       FLEET_RECONCILE_SECONDS=str(args.reconcile))
    # On unless the caller's environment says otherwise (the report shows which).
    cluster.env.setdefault("FLEET_SCHEMA_VALIDATION", "on")
    ctx = mp.get_context("spawn")
    receive, send = ctx.Pipe(duplex=False)
    server = ctx.Process(target=csms_main, args=(HEARTBEAT_S, needed, send), daemon=True)
    try:
        server.start()
        if not receive.poll(30):
            raise RuntimeError("the CSMS process did not start")
        port = receive.recv()
        cluster.start_redis()
        cluster.create_database()
        result = asyncio.run(run(cluster, port, args))
        problems = log_problems(cluster)  # before close() deletes the logs
    finally:
        print("cleaning up", file=sys.stderr, flush=True)
        try:
            cluster.close()
        finally:
            if server.is_alive():
                server.terminate()
                server.join(10)
            shutil.rmtree(tmp, ignore_errors=True)
    report(args, result)
    if problems:
        print(*problems, sep="\n")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit("interrupted; cleaned up")
