"""Which shards run and which do not, and since when: what the dashboard shows as stale.

A shard runs while a copy holds its Redis lease and that copy is the one that started its
stations (ShardRun.ran_epoch is the newest epoch): a shard whose holder died, or whose new
copy still waits for the old one to stop (leases), has no station talking to the CSMS,
whatever the database last heard from them. Beat writes since when a shard has had no copy
at all (tasks.reconcile_shards): that one waits for a free engine worker slot.
"""

from __future__ import annotations

import logging
import time

import redis
from django.conf import settings
from django.db.models import Count
from redis.exceptions import RedisError

from .leases import lease_key
from .models import Station
from .shard_models import ShardRun

LOGGER = logging.getLogger(__name__)

CACHE_S = 2.0
_cache: dict = {"at": float("-inf"), "value": None}
_client: list[redis.Redis] = []


def _redis() -> redis.Redis:
    if not _client:
        _client.append(redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1,
                                            socket_connect_timeout=1))
    return _client[0]


def shard_states() -> dict[int, dict] | None:
    """By shard in use: its stations, whether a copy runs it, since when none has
    (ISO time) or None. {} in embedded mode; None when Redis cannot say."""
    if settings.FLEET_MODE == "embedded" or not settings.REDIS_URL:
        return {}
    counts = dict(Station.objects.filter(enabled=True, shard__isnull=False).order_by()
                  .values_list("shard").annotate(n=Count("pk")).values_list("shard", "n"))
    if not counts:
        return {}
    shards = sorted(counts)
    try:
        held = _redis().mget([lease_key(s) for s in shards])
    except (RedisError, OSError) as exc:
        LOGGER.debug("cannot read the shards' leases: %s", exc)
        return None
    runs = {shard: (epoch, ran, since) for shard, epoch, ran, since in ShardRun.objects
            .filter(shard__in=shards).values_list("shard", "epoch", "ran_epoch", "waiting_since")}
    states = {}
    for shard, holder in zip(shards, held, strict=True):
        epoch, ran, since = runs.get(shard, (None, None, None))
        states[shard] = {
            "stations": counts[shard],
            "running": bool(holder) and ran is not None and ran == epoch,
            "waiting_since": since.isoformat(timespec="seconds") if since else None,
        }
    return states


def cached_shard_states() -> dict[int, dict] | None:
    """shard_states(), at most CACHE_S old: every dashboard socket of a process shares it."""
    now = time.monotonic()
    if now - _cache["at"] >= CACHE_S:
        _cache["value"], _cache["at"] = shard_states(), now
    return _cache["value"]


def stale_summary(states: dict[int, dict] | None) -> dict:
    """What the fleet page shows: the stale shards, and those waiting for a worker slot."""
    if not states:
        return {"stale": [], "stale_stations": 0, "waiting": []}
    stale = sorted(s for s, state in states.items() if not state["running"])
    return {
        "stale": stale,
        "stale_stations": sum(states[s]["stations"] for s in stale),
        "waiting": [{"shard": s, "stations": states[s]["stations"],
                     "since": states[s]["waiting_since"]}
                    for s in stale if states[s]["waiting_since"]],
    }
