"""Thin Celery tasks: run a shard in this worker child; keep every shard running."""

from __future__ import annotations

import asyncio
import logging
import signal

import redis
import redis.asyncio as aioredis
from celery import shared_task
from django.conf import settings
from django.db import close_old_connections

from . import services
from .leases import RedisLease, lease_key, queued_key
from .shard_host import ShardHost

LOGGER = logging.getLogger(__name__)


@shared_task(name="stations.run_shard", acks_late=False, time_limit=None,
             soft_time_limit=None, ignore_result=True)
def run_shard(shard: int) -> str:
    """One asyncio loop hosting one shard's stations, until SIGTERM or lease loss."""
    close_old_connections()
    return asyncio.run(_run_shard(shard))


async def _run_shard(shard: int) -> str:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    client = aioredis.from_url(settings.REDIS_URL)
    lease = RedisLease(client, shard, ttl=settings.FLEET_LEASE_TTL)
    host = ShardHost(shard, lease=lease, takeover_delay=settings.FLEET_LEASE_TTL / 3 + 1)
    try:
        reason = await host.run(stop)
    finally:
        await client.aclose()
    LOGGER.info("shard %s ended: %s", shard, reason)
    return reason


@shared_task(name="stations.reconcile_shards", ignore_result=True)
def reconcile_shards() -> list[int]:
    """Queue every shard that has stations but no live lease (worker died, or new shard)."""
    services.assign_shards()
    client = redis.Redis.from_url(settings.REDIS_URL)
    queued = []
    for shard in services.shards_in_use():
        if client.exists(lease_key(shard)):
            continue
        # One queued copy at a time; the marker lapses in case that copy is lost too.
        if client.set(queued_key(shard), "1", nx=True, ex=settings.FLEET_LEASE_TTL * 4):
            run_shard.apply_async((shard,), queue=settings.FLEET_ENGINE_QUEUE)
            queued.append(shard)
    if queued:
        LOGGER.info("queued shards %s", queued)
    return queued


@shared_task(name="stations.run_load_part", acks_late=False, time_limit=None,
             soft_time_limit=None, ignore_result=True)
def run_load_part(run_id: int, part: int, parts: int) -> None:
    """One engine worker's share of a load test spread over several workers."""
    from .loadtest import execute_part
    from .models import LoadTestRun

    close_old_connections()
    run = LoadTestRun.objects.get(pk=run_id)

    async def main():
        client = aioredis.from_url(settings.REDIS_URL)
        try:
            await execute_part(run, part, parts, client)
        finally:
            await client.aclose()

    asyncio.run(main())
