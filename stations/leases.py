"""Shard ownership: a Redis key with an expiry, held by exactly one running copy.

`SET key owner NX EX ttl` takes it; the holder refreshes it well before it expires; a
holder that dies stops refreshing, the key expires, and beat queues the shard again.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid

import redis.asyncio as aioredis
from redis.exceptions import RedisError

LOGGER = logging.getLogger(__name__)

PREFIX = "fleet:shard"

# Refresh and release only while the key still holds our own token.
_REFRESH = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('expire', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('del', KEYS[1])
end
return 0
"""


def lease_key(shard: int) -> str:
    return f"{PREFIX}:{shard}:lease"


def owner_key(shard: int) -> str:
    return f"{PREFIX}:{shard}:owner"


def queued_key(shard: int) -> str:
    return f"{PREFIX}:{shard}:queued"


class LeaseLost(Exception):
    """Another copy of the shard holds the lease."""


class RedisLease:
    def __init__(self, client: aioredis.Redis, shard: int, ttl: float):
        self.client = client
        self.shard = shard
        self.ttl = max(int(ttl), 1)
        # Host and pid first so an operator (or a test) can see who holds it.
        self.token = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        # Set by acquire(): whether another process ran this shard before.
        self.took_over = False

    async def acquire(self) -> bool:
        taken = await self.client.set(lease_key(self.shard), self.token, nx=True, ex=self.ttl)
        if taken:
            await self.client.delete(queued_key(self.shard))
            # Who ran the shard before: a takeover must give a stalled holder time to notice.
            previous = await self.client.getset(owner_key(self.shard), self.token)
            self.took_over = previous is not None and previous.decode() != self.token
        return bool(taken)

    async def refresh(self) -> None:
        """Keep the lease. Raises LeaseLost if someone else has it; survives Redis outages.

        After a Redis restart the key is gone: take it again, unless another copy already did.
        """
        try:
            if await self.client.eval(_REFRESH, 1, lease_key(self.shard), self.token, self.ttl):
                return
            if await self.acquire():
                LOGGER.warning("shard %s: the lease had expired (Redis restarted, or this "
                               "process stalled); took it again", self.shard)
                return
        except (RedisError, OSError) as exc:
            # Keep running: the stations do not need Redis to talk to their CSMS.
            LOGGER.warning("shard %s: cannot refresh lease: %s", self.shard, exc)
            return
        raise LeaseLost(f"shard {self.shard} is held by {await self._holder()}")

    async def release(self) -> None:
        try:
            await self.client.eval(_RELEASE, 1, lease_key(self.shard), self.token)
            # A clean stop: whoever comes next need not wait for us.
            await self.client.eval(_RELEASE, 1, owner_key(self.shard), self.token)
        except (RedisError, OSError) as exc:
            LOGGER.warning("shard %s: cannot release lease: %s", self.shard, exc)

    async def _holder(self) -> str:
        try:
            holder = await self.client.get(lease_key(self.shard))
        except (RedisError, OSError):
            return "unknown"
        return holder.decode() if holder else "nobody"


class LocalLease:
    """The embedded mode's lease: one process, nothing to share."""

    ttl = 3600
    took_over = False

    async def acquire(self) -> bool:
        return True

    async def refresh(self) -> None:
        return None

    async def release(self) -> None:
        return None
