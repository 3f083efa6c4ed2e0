"""Thin Celery tasks: run a shard in this worker child; keep every shard running."""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from datetime import timedelta

import redis
import redis.asyncio as aioredis
from celery import shared_task
from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone

from . import services
from .leases import RedisLease, lease_key, queued_key
from .shard_host import ShardHost
from .shard_models import ShardRun

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
    # Timeouts: a Redis that stops answering must fail a refresh, not hang the fence.
    client = aioredis.from_url(settings.REDIS_URL, socket_timeout=5, socket_connect_timeout=2)
    lease = RedisLease(client, shard, ttl=settings.FLEET_LEASE_TTL,
                       margin=settings.FLEET_LEASE_MARGIN)
    host = ShardHost(shard, lease=lease)
    try:
        reason = await host.run(stop)
    finally:
        await client.aclose()
    LOGGER.info("shard %s ended: %s", shard, reason)
    return reason


# How often beat repeats that a shard still waits for a free engine worker slot.
WAITING_LOG_EVERY_S = 60.0
_told: dict[int, float] = {}


@shared_task(name="stations.reconcile_shards", ignore_result=True)
def reconcile_shards() -> list[int]:
    """Queue every shard that has stations but no live lease (worker died, or new shard),
    and record since when each has none: the dashboard shows the shards that wait."""
    services.assign_shards()
    client = redis.Redis.from_url(settings.REDIS_URL)
    queued, held, waiting = [], [], []
    for shard in services.shards_in_use():
        if client.exists(lease_key(shard)):
            held.append(shard)
            continue
        waiting.append(shard)
        # One queued copy at a time; the marker lapses in case that copy is lost too.
        if client.set(queued_key(shard), "1", nx=True, ex=settings.FLEET_LEASE_TTL * 4):
            run_shard.apply_async((shard,), queue=settings.FLEET_ENGINE_QUEUE)
            queued.append(shard)
    if queued:
        LOGGER.info("queued shards %s", queued)
    _record_waiting(waiting, held)
    return queued


def _record_waiting(waiting: list[int], held: list[int]) -> None:
    now = timezone.now()
    for shard in waiting:
        ShardRun.objects.get_or_create(shard=shard)
    ShardRun.objects.filter(shard__in=waiting, waiting_since__isnull=True).update(
        waiting_since=now)
    ShardRun.objects.filter(shard__in=held).exclude(waiting_since=None).update(
        waiting_since=None)
    # A shard queued a while ago and still without a copy: every slot is taken.
    late = now - timedelta(seconds=settings.FLEET_RECONCILE_SECONDS * 2 + 1)
    for shard, since in ShardRun.objects.filter(shard__in=waiting, waiting_since__lt=late) \
            .values_list("shard", "waiting_since"):
        if time.monotonic() - _told.get(shard, float("-inf")) >= WAITING_LOG_EVERY_S:
            _told[shard] = time.monotonic()
            LOGGER.warning("shard %s waits for a free engine worker slot since %s (%.0f s): "
                           "its stations do not run; add engine workers or concurrency",
                           shard, since.isoformat(timespec="seconds"),
                           (now - since).total_seconds())
    for shard in held:
        _told.pop(shard, None)


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
