"""Shard ownership: at most one copy of a shard sends to the CSMS, whatever Redis forgets.

Three parts:

- **The Redis lease**, `SET key token NX EX ttl`: who holds the shard now. The holder
  refreshes it every second (`refresh_every`); beat queues a shard whose key is gone.
- **Self-fencing.** A holder sends only until `fence_at = confirmed + ttl - margin`, where
  `confirmed` is when it *sent* the last refresh that Redis confirmed. A holder that cannot
  refresh (Redis down, process stalled, network cut) stops its stations by then whatever
  else happens: it closes their connections and saves their states (shard_host).
- **The database's ShardRun row** (shard_models), which a Redis restart does not lose: an
  epoch bumped by every copy that takes the key, the copy that last ran the stations
  (`ran_epoch`, the only one allowed to write their states) and whether it released them.

A copy that takes the key starts at once only on positive evidence that no other copy
sends: the shard never ran, or its last runner released it (which it does only after it
stopped sending and saved its stations). Otherwise it waits `ttl + margin` from taking the
key, polling for that release meanwhile, and before it starts it confirms the key is still
its own and makes itself the runner.

Why no two copies send at once. Let N take the key at time a (its SET NX answered then) and
start at s >= a + ttl + margin, after a refresh confirmed the key was still N's. Another
copy O sends at time t only if a refresh O sent at c > t - ttl + margin was confirmed.
1. If Redis processed O's refresh before a, then c < a and O fenced itself by
   c + ttl - margin < a + ttl - margin: 2 x margin before s. The margin covers the fence
   timer firing late (event-loop lag), Redis's round trip, and clocks' rate differences
   (only intervals are compared, never clocks of two machines).
2. Else the key held O's token after a, so O set it again after it vanished (Redis
   restarted). O re-takes a vanished key only while the database still names O the last
   to take it, checked before and after its SET NX; N bumps the epoch right after its own
   SET NX, so O's second check came before N's bump and O's SET NX before that. N's
   confirmation came after its bump, so after O's SET NX: the key went from O's token to
   N's again, which only N's own re-take of a vanished key does, and a re-take restarts
   N's wait. Apply 1 with a = that re-take: every refresh O had confirmed was before it
   (O cannot set the key again: the epoch is N's by then).
With the released shortcut: a runner writes `released` only once it has stopped sending,
and every copy that starts later had to see that (or wait as above).

The cost, when a holder dies without a word (kill -9): its key expires ttl after its last
refresh, beat queues the shard within FLEET_RECONCILE_SECONDS, and the new copy waits
ttl + margin: its stations are back within 2 x ttl + margin + reconcile period + ramp
(38 s + ramp with the defaults). A clean stop (SIGTERM, fencing) costs reconcile + ramp.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid

import redis.asyncio as aioredis
from asgiref.sync import sync_to_async
from django.db import IntegrityError, transaction
from redis.exceptions import RedisError

from .shard_models import ShardRun

LOGGER = logging.getLogger(__name__)

PREFIX = "fleet:shard"

# 1: refreshed (the key is ours), 0: someone else's, -1: gone (Redis forgot it).
_REFRESH = """
local holder = redis.call('get', KEYS[1])
if holder == ARGV[1] then
    redis.call('expire', KEYS[1], ARGV[2])
    return 1
end
if holder then return 0 end
return -1
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('del', KEYS[1])
end
return 0
"""

# While waiting to take over: how often the database is asked whether the shard was released.
RELEASE_POLL_S = 1.0


def lease_key(shard: int) -> str:
    return f"{PREFIX}:{shard}:lease"


def queued_key(shard: int) -> str:
    return f"{PREFIX}:{shard}:queued"


def default_margin(ttl: float) -> float:
    return max(1.0, ttl / 5)


class LeaseLost(Exception):
    """Another copy of the shard holds the lease, or took the shard since we did."""


class Fenced(Exception):
    """The lease could not be refreshed in time: this copy must stop sending now."""


# -- the database's memory (sync; called through sync_to_async or in the recorder's thread)

def claim(shard: int, token: str) -> tuple[int, bool]:
    """Make `token` the shard's newest copy; returns its epoch and whether it may start at
    once (the shard never ran, or its last runner released it)."""
    for _ in range(2):
        try:
            with transaction.atomic():
                ShardRun.objects.get_or_create(shard=shard)
                row = ShardRun.objects.select_for_update().get(shard=shard)
                clean = row.ran_epoch is None or row.released
                row.epoch += 1
                row.holder = token
                row.waiting_since = None
                row.save(update_fields=["epoch", "holder", "waiting_since", "changed_at"])
                return row.epoch, clean
        except IntegrityError:
            continue  # two copies created the row at once; the second try finds it
    raise RuntimeError(f"shard {shard}: could not claim its ShardRun row")


def newest_copy(shard: int, epoch: int) -> bool:
    return ShardRun.objects.filter(shard=shard, epoch=epoch).exists()


def released(shard: int) -> bool:
    row = ShardRun.objects.filter(shard=shard).values_list("ran_epoch", "released").first()
    return row is None or row[0] is None or row[1]


def begin(shard: int, epoch: int) -> bool:
    """Become the shard's runner, if no copy took it since; blocks behind a write of the
    previous runner's, so what it saved is in the database before this copy loads it."""
    return ShardRun.objects.filter(shard=shard, epoch=epoch).update(
        ran_epoch=epoch, released=False) == 1


def release(shard: int, epoch: int) -> None:
    ShardRun.objects.filter(shard=shard, ran_epoch=epoch).update(released=True)


def runs_shard(shard: int, epoch: int) -> bool:
    """Inside a write transaction: whether this copy still owns the stations' states. The
    row lock orders the write before (or after, then refused) a new runner's begin()."""
    row = (ShardRun.objects.select_for_update().filter(shard=shard)
           .values_list("ran_epoch", flat=True).first())
    return row == epoch


class RedisLease:
    def __init__(self, client: aioredis.Redis, shard: int, ttl: float,
                 margin: float | None = None):
        self.client = client
        self.shard = shard
        self.ttl = max(int(ttl), 1)
        self.margin = default_margin(self.ttl) if margin is None else margin
        self.refresh_every = min(1.0, self.ttl / 3)
        # Host and pid first so an operator (or a test) can see who holds it.
        self.token = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.epoch: int | None = None
        # Monotonic times: when the last confirmed refresh was sent; when the key was
        # (last re-)taken; whether this copy may start without waiting.
        self.confirmed_at = float("-inf")
        self.taken_at = float("-inf")
        self.clean = False
        self.started = False
        self._polled_at = float("-inf")

    @property
    def fence_at(self) -> float:
        """The monotonic time by which this copy must have stopped sending."""
        return self.confirmed_at + self.ttl - self.margin

    async def acquire(self) -> bool:
        sent = time.monotonic()
        if not await self.client.set(lease_key(self.shard), self.token, nx=True, ex=self.ttl):
            return False
        self.confirmed_at, self.taken_at = sent, time.monotonic()
        await self.client.delete(queued_key(self.shard))
        try:
            self.epoch, self.clean = await sync_to_async(claim)(self.shard, self.token)
        except Exception:
            await self._delete_key()
            raise
        if not self.clean:
            LOGGER.info("shard %s: its last copy did not release it; waiting %.0f s before "
                        "starting, so a copy still running stops first", self.shard,
                        self.ttl + self.margin)
        return True

    async def ready(self) -> bool:
        """Whether the takeover wait is over (or the last runner released the shard)."""
        if self.clean or time.monotonic() >= self.taken_at + self.ttl + self.margin:
            return True
        if time.monotonic() - self._polled_at >= RELEASE_POLL_S:
            self._polled_at = time.monotonic()
            try:
                self.clean = await sync_to_async(released)(self.shard)
            except Exception as exc:  # noqa: BLE001 - the full wait still applies
                LOGGER.warning("shard %s: cannot read its release: %s", self.shard, exc)
        return self.clean

    async def begin(self) -> bool:
        """Confirm the key and become the runner; False: not now (Redis unreachable)."""
        taken = self.taken_at
        if not await self.refresh() or self.taken_at != taken:
            return False  # unconfirmed, or re-taken: the wait starts again
        if not await sync_to_async(begin)(self.shard, self.epoch):
            raise LeaseLost(f"shard {self.shard} was taken by another copy meanwhile")
        self.started = True
        return True

    async def refresh(self) -> bool:
        """Keep the lease; True if Redis confirmed it. Raises LeaseLost if another copy has
        it. A key Redis forgot is taken again while the database still names this copy."""
        sent = time.monotonic()
        try:
            state = await self.client.eval(_REFRESH, 1, lease_key(self.shard), self.token,
                                           self.ttl)
            if state == 1:
                self.confirmed_at = sent
                return True
            if state == -1 and await self._retake():
                LOGGER.warning("shard %s: Redis had forgotten the lease (restarted?); took "
                               "it again", self.shard)
                return True
        except (RedisError, OSError) as exc:
            # Keep running until fence_at: the stations do not need Redis to talk to their CSMS.
            LOGGER.warning("shard %s: cannot refresh lease: %s", self.shard, exc)
            return False
        raise LeaseLost(f"shard {self.shard} is held by {await self._holder()}")

    async def _retake(self) -> bool:
        if not await sync_to_async(newest_copy)(self.shard, self.epoch):
            return False
        sent = time.monotonic()
        if not await self.client.set(lease_key(self.shard), self.token, nx=True, ex=self.ttl):
            return False
        if not await sync_to_async(newest_copy)(self.shard, self.epoch):
            await self._delete_key()
            return False
        self.confirmed_at = sent
        if not self.started:
            self.taken_at = time.monotonic()
        return True

    async def release(self) -> None:
        """This copy has stopped sending and saved its stations: say so, then let go."""
        try:
            if self.started:
                await sync_to_async(release)(self.shard, self.epoch)
        except Exception as exc:  # noqa: BLE001 - the next copy then waits the full time
            LOGGER.warning("shard %s: cannot record its release: %s", self.shard, exc)
        await self._delete_key()

    def runs_stations(self) -> bool:
        return runs_shard(self.shard, self.epoch)

    async def _delete_key(self) -> None:
        try:
            await self.client.eval(_RELEASE, 1, lease_key(self.shard), self.token)
        except (RedisError, OSError) as exc:
            LOGGER.warning("shard %s: cannot release lease: %s", self.shard, exc)

    async def _holder(self) -> str:
        try:
            holder = await self.client.get(lease_key(self.shard))
        except (RedisError, OSError):
            return "unknown"
        return holder.decode() if holder else "a newer copy"


class LocalLease:
    """The embedded mode's lease: one process, nothing to share."""

    ttl = 3600
    refresh_every = 3600.0
    fence_at = float("inf")
    runs_stations = None  # no guard on the recorder's writes

    async def acquire(self) -> bool:
        return True

    async def ready(self) -> bool:
        return True

    async def begin(self) -> bool:
        return True

    async def refresh(self) -> bool:
        return True

    async def release(self) -> None:
        return None
