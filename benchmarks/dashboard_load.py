"""What one browser gets from a churning fleet of 10,000 stations.

A web process (`runfleet --no-engine`, scale-out mode) serves the dashboard; a separate
process plays the shards: the real Publisher over a Redis channel layer, with every
station changing state at random. Chromium (Debian's, driven by Playwright) shows the
fleet page. Printed: socket messages and bytes per second reaching the browser, delay
from a station's change to the browser (p50/p95/max), and the longest main-thread task.

    python benchmarks/dashboard_load.py [--stations 10000] [--changes 5000] [--measure 30]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.scale.cluster import Cluster, free_port  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
STATUSES = ("Available", "Occupied", "Faulted", "Unavailable")
STATES = ("EVConnected", "Charging", "SuspendedEV", "SuspendedEVSE")


def churn(redis_url: str, stations: int, changes_per_s: int, seconds: float) -> None:
    """The shards' side: random changes, published the way a shard publishes them."""
    from channels_redis.pubsub import RedisPubSubChannelLayer

    from stations.engine.publisher import Publisher

    async def run():
        layer = RedisPubSubChannelLayer(hosts=[redis_url])
        publisher = Publisher(layer.group_send, interval=0.3, shard="bench")
        ids = [f"LOAD-{n:05d}" for n in range(1, stations + 1)]
        rng = random.Random(7)
        for station_id in ids:
            publisher.record(station_id, "online", {"boot_status": "Accepted"})
        sender = asyncio.ensure_future(publisher.run())
        tick = 0.05
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            for _ in range(int(changes_per_s * tick)):
                station_id = rng.choice(ids)
                power = rng.uniform(0, 22000)
                publisher.record(station_id, "evse", {
                    "evse_id": 1, "connectors": {1: rng.choice(STATUSES)},
                    "charging_state": rng.choice(STATES), "power_w": power,
                    "energy_wh": rng.uniform(0, 50000), "soc": rng.uniform(10, 99),
                    "id_token": "T", "transaction_id": "tx", "tx_energy_wh": power / 10})
            await asyncio.sleep(tick)
        sender.cancel()
        await asyncio.gather(sender, return_exceptions=True)
        await layer.flush()

    asyncio.run(run())


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def measure_browser(url: str, password: str, seconds: float) -> dict:
    from playwright.sync_api import sync_playwright

    frames: list[tuple[float, int, float | None]] = []

    def on_socket(ws):
        if not ws.url.endswith("/ws/fleet/"):
            return

        def received(payload):
            now = time.time()
            text = payload if isinstance(payload, str) else payload.decode()
            message = json.loads(text)
            changed_at = message.get("changed_at")
            frames.append((now, len(text), None if changed_at is None else now - changed_at))

        ws.on("framereceived", received)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"])
        page = browser.new_page(viewport={"width": 1366, "height": 900})
        page.add_init_script("""
            window.__longest = 0;
            new PerformanceObserver(list => { for (const e of list.getEntries())
                window.__longest = Math.max(window.__longest, e.duration); })
              .observe({type: 'longtask', buffered: true});
        """)
        page.on("websocket", on_socket)
        page.goto(url + "/login/")
        page.fill("input[name=username]", "bench")
        page.fill("input[name=password]", password)
        page.click("button[type=submit], input[type=submit]")
        page.wait_for_function("window.websocketConnected === true", timeout=30000)
        page.locator("[data-station]").first.wait_for(timeout=30000)
        began = time.time()
        page.wait_for_timeout(seconds * 500)
        page.locator('[data-pager="next"]').click()  # paging while updates stream in
        page.wait_for_timeout(seconds * 500)
        longest = page.evaluate("window.__longest")
        browser.close()
    window = [f for f in frames if f[0] >= began]
    elapsed = time.time() - began
    delays = [f[2] for f in window if f[2] is not None]
    return {"messages_per_s": len(window) / elapsed,
            "bytes_per_s": sum(f[1] for f in window) / elapsed,
            "p50": percentile(delays, 0.5), "p95": percentile(delays, 0.95),
            "max": max(delays, default=float("nan")), "longest_task_ms": longest}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stations", type=int, default=10_000)
    parser.add_argument("--changes", type=int, default=5_000, help="state changes per second")
    parser.add_argument("--measure", type=float, default=30.0, help="seconds in the browser")
    args = parser.parse_args()

    cluster = Cluster(Path(tempfile.mkdtemp(prefix="dashboard-load-")))
    web = churner = None
    try:
        cluster.start_redis()
        cluster.create_database()
        out = cluster.manage("shell", "-c", f"""
import secrets
from django.contrib.auth import get_user_model
from stations.models import Station, StationTemplate
t = StationTemplate.objects.create(name="load", id_pattern="LOAD-{{n:05d}}",
                                   csms_url="ws://127.0.0.1:9", evse_count=1)
t.create_stations({args.stations})
Station.objects.update(online=True, status="Available")
password = secrets.token_urlsafe(12)
get_user_model().objects.create_superuser("bench", password=password)
print("PASSWORD", password)
""", timeout=300)
        password = out.split("PASSWORD ", 1)[1].strip()
        port = free_port()
        web = subprocess.Popen(
            [sys.executable, "manage.py", "runfleet", "--no-engine", "--port", str(port)],
            cwd=ROOT, env=cluster.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        churner = multiprocessing.get_context("spawn").Process(
            target=churn, args=(cluster.env["REDIS_URL"], args.stations, args.changes,
                                args.measure + 30))
        churner.start()
        figures = measure_browser(f"http://127.0.0.1:{port}", password, args.measure)
    finally:
        if web is not None:
            web.terminate()
            web.wait(20)
        if churner is not None:
            churner.terminate()
            churner.join(10)
        cluster.close()

    print(f"\n{args.stations} stations, {args.changes} state changes/s, "
          f"one browser for {args.measure:g} s")
    print(f"  socket messages per second       {figures['messages_per_s']:8.2f}")
    print(f"  socket bytes per second          {figures['bytes_per_s']:8.0f}")
    print(f"  delay change -> browser p50 (s)  {figures['p50']:8.3f}")
    print(f"  delay change -> browser p95 (s)  {figures['p95']:8.3f}")
    print(f"  delay change -> browser max (s)  {figures['max']:8.3f}")
    longest = figures["longest_task_ms"]
    # Chromium reports only tasks over 50 ms as long tasks.
    print(f"  longest main-thread task (ms)    {longest:8.0f}"
          + ("  (none over 50 ms)" if not longest else ""))
    checks = [("<= 4 socket messages per second", figures["messages_per_s"] <= 4),
              ("p95 delay <= 1 s", figures["p95"] <= 1.0),
              ("no main-thread task over 100 ms", figures["longest_task_ms"] <= 100)]
    for label, ok in checks:
        print(f"{'PASS' if ok else 'MISS'}  {label}")


if __name__ == "__main__":
    main()
