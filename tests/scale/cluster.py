"""A real scale-out fleet for tests: PostgreSQL, a private Redis, Celery workers, beat.

Everything runs as separate processes, as in production; the test process only hosts
the CSMS and drives the fleet through `manage.py` and Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg
import redis

from stations.sandbox import SandboxCsms

ROOT = Path(__file__).resolve().parents[2]
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    def __init__(self, tmp_path: Path, *, shard_size: int = 25, lease_ttl: int = 3):
        self.tmp = tmp_path
        self.redis_port = free_port()
        self.db_name = f"fleet_test_{uuid.uuid4().hex[:8]}"
        self.env = {
            **os.environ,
            "DATABASE_URL": f"postgresql://postgres@127.0.0.1:5432/{self.db_name}",
            "REDIS_URL": f"redis://127.0.0.1:{self.redis_port}/0",
            "FLEET_VAR_DIR": str(tmp_path),
            "FLEET_SHARD_SIZE": str(shard_size),
            "FLEET_LEASE_TTL": str(lease_ttl),
            "FLEET_RECONCILE_SECONDS": "1",
            "FLEET_RAMP_PER_SECOND": "100",
            "FLEET_STOP_TIMEOUT": "5",
            "FLEET_LOG_LEVEL": "INFO",
            # Scale-out mode refuses to start without a key of its own.
            "DJANGO_SECRET_KEY": uuid.uuid4().hex * 2,
        }
        self.redis_process: subprocess.Popen | None = None
        self.workers: dict[str, subprocess.Popen] = {}

    # -- services --------------------------------------------------------------------

    def start_redis(self) -> None:
        self.redis_process = subprocess.Popen(
            ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if self.redis().ping():
                    return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("private redis-server did not start")

    def stop_redis(self) -> None:
        if self.redis_process and self.redis_process.poll() is None:
            self.redis_process.kill()
            self.redis_process.wait(10)

    def redis(self) -> redis.Redis:
        return redis.Redis(port=self.redis_port, socket_timeout=2)

    def create_database(self) -> None:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.db_name}"')
        self.manage("migrate", "--noinput")

    def drop_database(self) -> None:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')

    def manage(self, *args: str, timeout: float = 60) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=self.env,
            capture_output=True, text=True, timeout=timeout,
        )
        if done.returncode != 0:
            raise RuntimeError(f"manage.py {args[0]} failed:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    async def python(self, code: str, timeout: float = 60) -> str:
        """Run Django code in a fresh process (off the test's event loop)."""
        return await asyncio.to_thread(self.manage, "shell", "-c", code, timeout=timeout)

    # -- workers ---------------------------------------------------------------------

    def start_worker(self, name: str, *, queue: str = "engine", concurrency: int = 2,
                     beat: bool = False) -> None:
        log = open(self.tmp / f"{name}.log", "a")  # noqa: SIM115 - closed with the process
        command = [sys.executable, "-m", "celery", "-A", "fleet", "worker", "-Q", queue,
                   "-c", str(concurrency), "--pool", "prefork", "--disable-prefetch",
                   "-n", f"{name}@%h", "--loglevel", "INFO"]
        if beat:
            command += ["-B", "-s", str(self.tmp / "beat-schedule")]
        self.workers[name] = subprocess.Popen(
            command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def stop_worker(self, name: str, sig: int = signal.SIGTERM, timeout: float = 30) -> float:
        """Signal a worker and wait for it to exit; returns the seconds it took."""
        process = self.workers.pop(name)
        began = time.monotonic()
        process.send_signal(sig)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
            raise
        return time.monotonic() - began

    def lease_holder(self, shard: int) -> tuple[str, int] | None:
        value = self.redis().get(f"fleet:shard:{shard}:lease")
        if not value:
            return None
        host, pid, _ = value.decode().split(":")
        return host, int(pid)

    def log(self, name: str) -> str:
        return (self.tmp / f"{name}.log").read_text()

    def close(self) -> None:
        for name in list(self.workers):
            process = self.workers.pop(name)
            with contextlib.suppress(OSError):
                os.killpg(process.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(10)
        self.stop_redis()
        self.drop_database()


class WatchfulCsms(SandboxCsms):
    """The sandbox CSMS, noting when each station's connections opened and closed: two
    copies of one shard running at once would show as overlapping connections."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.connections: list[list] = []  # [station_id, opened, closed or None]

    async def _handle(self, ws) -> None:
        entry = [ws.request.path.rstrip("/").rsplit("/", 1)[-1], time.monotonic(), None]
        self.connections.append(entry)
        try:
            await super()._handle(ws)
        finally:
            entry[2] = time.monotonic()

    def overlapping(self) -> list[str]:
        """Stations that had two connections open at the same time."""
        by_station: dict[str, list] = {}
        for station_id, opened, closed in self.connections:
            by_station.setdefault(station_id, []).append((opened, closed or float("inf")))
        return sorted(
            station_id for station_id, spans in by_station.items()
            if any(later[0] < earlier[1] for earlier, later in zip(
                sorted(spans), sorted(spans)[1:], strict=False)))


def seq_no_report(csms: SandboxCsms) -> dict:
    """TransactionEvents as the CSMS got them, per transaction: copies of one seqNo with
    the same payload (a resend: at least once) and with different ones (two copies of a
    station made them: split brain), seqNos missing below the highest, offline flags."""
    seen: dict[tuple[str, int], set[str]] = {}
    copies: dict[tuple[str, int], int] = {}
    offline = 0
    for payload in csms.messages(action="TransactionEvent"):
        key = (payload["transactionInfo"]["transactionId"], payload["seqNo"])
        seen.setdefault(key, set()).add(json.dumps(payload, sort_keys=True))
        copies[key] = copies.get(key, 0) + 1
        offline += bool(payload.get("offline"))
    by_tx: dict[str, set[int]] = {}
    for tx_id, seq_no in seen:
        by_tx.setdefault(tx_id, set()).add(seq_no)
    return {
        "transactions": len(by_tx),
        "events": sum(copies.values()),
        "resent": sum(n - 1 for key, n in copies.items() if len(seen[key]) == 1),
        "conflicting": sorted(key for key, payloads in seen.items() if len(payloads) > 1),
        "gaps": sum(max(s) + 1 - len(s) for s in by_tx.values()),
        "offline": offline,
    }
