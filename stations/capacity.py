"""How many stations this process can run, and what it does with the ones beyond.

Two limits bind a process long before CPU does:
- **Open files.** Each station's websocket is a file descriptor, two when its CSMS is the
  sandbox in this very process (the server's end too). The soft RLIMIT_NOFILE is raised to
  the hard limit at start; FLEET_FD_RESERVE of them stay for everything else (the web
  server and its clients, the database, Redis, logs), so the dashboard, the login and the
  recorder keep working however many stations are configured.
- **Ephemeral ports.** Connections from one source address to one CSMS address need a
  local port each, from /proc/sys/net/ipv4/ip_local_port_range (28,232 here).
Stations past either are held: not started, shown with the reason, started when room is
made (stations removed, a reload). If descriptors run out all the same (something else
took them), stations back off as from any failed connection and the failures are logged
once per EMFILE_LOG_EVERY_S with their count, not once per attempt.
"""

from __future__ import annotations

import errno
import logging
import resource
import time
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import urlsplit

LOGGER = logging.getLogger(__name__)

PORT_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
DEFAULT_PORTS = 28_232  # Linux's default range, 32768-60999
EMFILE_LOG_EVERY_S = 10.0
OUT_OF_FILES = (errno.EMFILE, errno.ENFILE)


def raise_fd_limit() -> int:
    """Raise this process's soft open-files limit to its hard limit; returns the soft one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = max(soft, 1 << 20)
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError) as exc:
            LOGGER.warning("cannot raise the open-files limit from %d to %d: %s", soft, hard,
                           exc)
    return soft


def ephemeral_ports(path: Path = PORT_RANGE) -> int:
    try:
        low, high = (int(n) for n in path.read_text().split())
    except (OSError, ValueError):
        return DEFAULT_PORTS
    return high - low + 1


def destination(csms_url: str) -> tuple[str, int]:
    parts = urlsplit(csms_url)
    port = parts.port or (443 if parts.scheme == "wss" else 80)
    return (parts.hostname or "").lower(), port


class Capacity:
    """The stations one process may run: admits them while descriptors and ports last."""

    def __init__(self, fd_limit: int, reserve: int, ports: int,
                 local_csms: Iterable[tuple[str, int]] = ()):
        self.fd_limit = fd_limit
        self.reserve = reserve
        self.fds = max(0, fd_limit - reserve)
        self.ports = ports
        # CSMS addresses served by this process: a station of theirs costs two descriptors.
        self.local = set(local_csms)
        self._running: dict[str, tuple[int, tuple[str, int]]] = {}
        self._fds_used = 0
        self._per_destination: dict[tuple[str, int], int] = {}

    @classmethod
    def of_this_process(cls, reserve: int, local_csms: Iterable[tuple[str, int]] = ()):
        return cls(raise_fd_limit(), reserve, ephemeral_ports(), local_csms)

    def admit(self, station_id: str, csms_url: str) -> str | None:
        """Count the station in and return None, or return why it cannot run here."""
        if station_id in self._running:
            return None
        where = destination(csms_url)
        cost = 2 if where in self.local else 1
        if self._fds_used + cost > self.fds:
            return (f"Held: no open file left for its connection ({self.fds:,} of this "
                    f"process's {self.fd_limit:,} are for stations, {self.reserve:,} kept for "
                    "the web server and database); raise the open-files limit or run more "
                    "engine processes")
        if self._per_destination.get(where, 0) >= self.ports:
            return (f"Held: no local port left toward {where[0]}:{where[1]} "
                    f"({self.ports:,} ephemeral ports per source address)")
        self._running[station_id] = (cost, where)
        self._fds_used += cost
        self._per_destination[where] = self._per_destination.get(where, 0) + 1
        return None

    def release(self, station_id: str) -> None:
        cost, where = self._running.pop(station_id, (0, None))
        if where is not None:
            self._fds_used -= cost
            self._per_destination[where] -= 1

    @property
    def running(self) -> int:
        return len(self._running)


class OutOfFilesLog:
    """Counts failures for lack of file descriptors; logs them once per interval."""

    def __init__(self, every: float = EMFILE_LOG_EVERY_S, clock=time.monotonic):
        self.every = every
        self._clock = clock
        self._count = 0
        self._logged_at = float("-inf")

    def failed(self, what: str) -> None:
        self._count += 1
        now = self._clock()
        if now - self._logged_at >= self.every:
            soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
            LOGGER.error("out of file descriptors (limit %d): %d %s failed in the last %.0f s; "
                         "stations back off and retry", soft, self._count, what, self.every)
            self._logged_at = now
            self._count = 0

    def loop_handler(self, loop, context: dict) -> None:
        """An asyncio exception handler: a server's accept() without descriptors is
        counted (asyncio would log each one with its traceback, a hundred a second)."""
        exc = context.get("exception")
        if isinstance(exc, OSError) and exc.errno in OUT_OF_FILES:
            self.failed("accepts")
            return
        loop.default_exception_handler(context)


def out_of_files(detail: str | None) -> bool:
    """Whether a connection failure's text says the process ran out of descriptors."""
    return bool(detail) and ("Errno 24" in detail or "Too many open files" in detail)
