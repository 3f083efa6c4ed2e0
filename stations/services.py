"""The one place that changes what stations should do, and tells the engine.

Desired state goes to the database first (the truth a restarted shard re-reads); then
a command goes to the station's shard over the channel layer, and its outcome comes back
on a reply channel: done, or rejected and why.
"""

from __future__ import annotations

import asyncio
import uuid

from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import transaction
from django.db.models import Count

from .models import Evse, Station
from .shard_host import shard_group

COMMAND_TIMEOUT_S = 5.0

# Desired-state fields each command writes before it is sent.
STATION_FIELDS = {"connect": {"desired_online": True}, "disconnect": {"desired_online": False}}
EVSE_FIELDS = {
    "plug_in": {"ev_plugged": True},
    "start_charging": {"ev_plugged": True},
    "present_contract": {"ev_plugged": True},
    "unplug": {"ev_plugged": False},
    "set_fault": {"faulted": True},
    "clear_fault": {"faulted": False},
}


def embedded() -> bool:
    return settings.FLEET_MODE == "embedded"


@transaction.atomic
def assign_shards(size: int | None = None) -> set[int]:
    """Put enabled stations without a shard into shards of at most `size`; return those touched.

    Fills the emptiest existing shards first, so adding stations to a running fleet places
    them without moving anyone else.
    """
    size = size or settings.FLEET_SHARD_SIZE
    waiting = list(
        Station.objects.filter(enabled=True, shard__isnull=True)
        .select_for_update().order_by("pk").values_list("pk", flat=True)
    )
    if not waiting:
        return set()
    counts = dict(
        Station.objects.filter(shard__isnull=False).values_list("shard")
        .annotate(n=Count("pk")).values_list("shard", "n")
    )
    touched: set[int] = set()
    shard = 0
    while waiting:
        room = size - counts.get(shard, 0)
        if room > 0:
            chunk, waiting = waiting[:room], waiting[room:]
            Station.objects.filter(pk__in=chunk).update(shard=shard)
            counts[shard] = counts.get(shard, 0) + len(chunk)
            touched.add(shard)
        shard += 1
    return touched


def shards_in_use() -> list[int]:
    return sorted(
        # order_by(): the model's default ordering would make DISTINCT per station.
        Station.objects.filter(enabled=True, shard__isnull=False)
        .order_by().values_list("shard", flat=True).distinct()
    )


def _group_for(station: Station) -> str:
    return shard_group(None if embedded() else station.shard)


def _write_desired(station: Station, command: str, args: dict) -> None:
    if command in STATION_FIELDS:
        Station.objects.filter(pk=station.pk).update(**STATION_FIELDS[command])
    if command in EVSE_FIELDS:
        Evse.objects.filter(station=station, evse_id=args.get("evse_id")).update(
            **EVSE_FIELDS[command]
        )
    if command == "set_ev_drawing":
        Evse.objects.filter(station=station, evse_id=args["evse_id"]).update(
            ev_drawing=bool(args["drawing"])
        )


async def asend_command(station_id: str, command: str, timeout: float = COMMAND_TIMEOUT_S,
                        **args) -> dict:
    """Record desired state, send `command` to the station's shard, return its outcome."""
    station = await Station.objects.filter(station_id=station_id).afirst()
    if station is None:
        return {"ok": False, "status": "Unknown", "detail": f"no station {station_id}"}
    await sync_to_async(_write_desired)(station, command, args)
    if station.shard is None and not embedded():
        return {"ok": False, "status": "NotRunning", "detail": "the station has no shard yet"}
    layer = get_channel_layer()
    reply_to = await layer.new_channel()
    request_id = uuid.uuid4().hex
    await layer.group_send(_group_for(station), {
        "type": "shard.command", "command": command, "station_id": station_id,
        "args": args, "reply_to": reply_to, "request_id": request_id,
    })
    try:
        async with asyncio.timeout(timeout):
            while True:
                reply = await layer.receive(reply_to)
                if reply.get("request_id") == request_id:
                    return {k: reply[k] for k in ("ok", "status", "detail", "data")
                            if k in reply}
    except TimeoutError:
        return {"ok": False, "status": "NoAnswer",
                "detail": f"no engine answered within {timeout:g} s"}


def send_command(station_id: str, command: str, **args) -> dict:
    return async_to_sync(asend_command)(station_id, command, **args)


async def anotify_shard(shard: int | None, command: str, **fields) -> None:
    """A command with no answer: reload, watch, unwatch."""
    group = shard_group(None if embedded() else shard)
    await get_channel_layer().group_send(group, {"type": "shard.command", "command": command,
                                                 **fields})


def reload_shards(shards) -> None:
    for shard in shards:
        async_to_sync(anotify_shard)(shard, "reload")


def stations_changed() -> set[int]:
    """After stations were added or enabled: place them and let their shards start them."""
    touched = assign_shards()
    reload_shards({None} if embedded() else touched)
    return touched


def stations_removed(shards) -> None:
    """After stations were deleted: their shards stop them."""
    reload_shards({None} if embedded() else {s for s in shards if s is not None})


async def aset_fleet_online(online: bool) -> int:
    """Connect or disconnect every enabled station; returns how many."""
    count = await Station.objects.filter(enabled=True).aupdate(desired_online=online)
    command = "connect_all" if online else "disconnect_all"
    shards = [None] if embedded() else await sync_to_async(shards_in_use)()
    for shard in shards:
        await anotify_shard(shard, command)
    return count
