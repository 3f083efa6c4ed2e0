"""Runs a shard of stations in this process: the Django side of an engine Shard.

It owns the shard's lease, loads the stations and their desired state from the
database, applies commands arriving on the channel layer and answers them, and sends
what the stations report to the dashboard (Publisher) and the database (Recorder).
The same host runs inside a Celery child (one shard) and inside the web process in
embedded mode (every station).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings

from . import embedded, fleet_metrics
from .capacity import Capacity, OutOfFilesLog, destination, out_of_files
from .configs import station_configs
from .engine.driver import Outcome
from .engine.id_tokens import DEFAULT_TYPE as DEFAULT_ID_TOKEN_TYPE
from .engine.publisher import FrameIds, Publisher
from .engine.shard import Shard
from .engine.station import Station
from .engine.v201.authorization import authorization_view
from .leases import Fenced, LeaseLost, LocalLease
from .models import Evse, StationLive
from .models import Station as StationRow
from .recorder import Recorder

LOGGER = logging.getLogger(__name__)

ALL_SHARDS_GROUP = "shard.all"
# On a clean stop, seconds the stations' CALLs in flight have to get their answers, so the
# next copy need not send them again.
HANDOVER_DRAIN_S = 1.0


def shard_group(shard: int | None) -> str:
    return ALL_SHARDS_GROUP if shard is None else f"shard.{shard}"


def load_shard(shard: int | None, only: set[str] | None = None):
    """Configs, saved engine states and desired state of a shard's enabled stations."""
    rows = StationRow.objects.filter(enabled=True)
    if shard is not None:
        rows = rows.filter(shard=shard)
    if only is not None:
        rows = rows.filter(station_id__in=only)
    configs = station_configs(rows, validate_schema=settings.FLEET_SCHEMA_VALIDATION)
    ids = [c.station_id for c in configs]
    states = dict(
        StationLive.objects.filter(station__station_id__in=ids, engine_state__isnull=False)
        .values_list("station__station_id", "engine_state")
    )
    desired = {
        station_id: {"online": online, "evses": {}}
        for station_id, online in rows.values_list("station_id", "desired_online")
    }
    evses = Evse.objects.filter(station__in=rows).values_list(
        "station__station_id", "evse_id", "ev_plugged", "faulted", "ev_drawing"
    )
    for station_id, evse_id, plugged, faulted, drawing in evses:
        desired[station_id]["evses"][evse_id] = (plugged, faulted, drawing)
    return configs, states, desired


def apply_desired(station: Station, desired: dict) -> None:
    """Make a station that is about to start match what the database wants."""
    station.set_wanted_online(desired["online"])
    for evse_id, (plugged, faulted, drawing) in desired["evses"].items():
        evse = station.evses.get(evse_id)
        if evse is None:
            continue
        if plugged and evse.plugged_connector is None:
            evse.plug_in()
        if faulted:
            evse.set_fault(True)
        if evse.ev is not None and not drawing:
            evse.set_ev_drawing(False)


def variable_rows(station: Station) -> list[dict]:
    """The station's device model, flat, for the detail page."""
    rows = []
    for item in station.device_model.report("FullInventory") or []:
        component, variable = item["component"], item["variable"]
        actual = next((a for a in item["variable_attribute"] if a.get("type", "Actual")
                       == "Actual"), item["variable_attribute"][0])
        characteristics = item.get("variable_characteristics", {})
        rows.append({
            "component": component["name"],
            "evse": component.get("evse", {}).get("id"),
            "connector": component.get("evse", {}).get("connector_id"),
            "variable": variable["name"],
            "instance": variable.get("instance"),
            "value": actual.get("value"),
            "mutability": actual.get("mutability", "ReadWrite"),
            "data_type": characteristics.get("data_type"),
            "unit": characteristics.get("unit"),
        })
    return rows


COMMANDS = {
    "connect": lambda s, a: s.go_online(),
    "disconnect": lambda s, a: s.go_offline(),
    "plug_in": lambda s, a: s.plug_in(a["evse_id"], a.get("connector_id")),
    "unplug": lambda s, a: s.unplug(a["evse_id"]),
    "present_id_token": lambda s, a: s.present_id_token(
        a["evse_id"], a["id_token"], a.get("token_type", DEFAULT_ID_TOKEN_TYPE)),
    "start_charging": lambda s, a: s.start_charging(
        a["evse_id"], a["id_token"], a.get("token_type", DEFAULT_ID_TOKEN_TYPE)),
    "stop_charging": lambda s, a: s.stop_charging(a["evse_id"]),
    "set_fault": lambda s, a: s.set_fault(a["evse_id"], True),
    "clear_fault": lambda s, a: s.set_fault(a["evse_id"], False),
    "set_ev_drawing": lambda s, a: s.set_ev_drawing(a["evse_id"], a["drawing"]),
    "reboot": lambda s, a: s.reboot(),
    # What a driver does that authorization needs (C02-C07).
    "enter_pin": lambda s, a: s.enter_pin(a["evse_id"], a["pin"]),
    "press_start_button": lambda s, a: s.press_start_button(a["evse_id"]),
    "pay_by_card": lambda s, a: s.pay_by_card(a["evse_id"]),
    "present_contract": lambda s, a: s.present_contract(a["evse_id"], a["emaid"]),
}


class ShardHost:
    def __init__(self, shard: int | None = None, *, lease=None, layer=None,
                 ramp_per_second: float | None = None):
        self.shard = shard
        # Who may run the shard, and until when (leases: the takeover wait, the fence).
        self.lease = lease or LocalLease()
        self.layer = layer or get_channel_layer()
        self.ramp = ramp_per_second or settings.FLEET_RAMP_PER_SECOND
        self.publisher = Publisher(self._send, interval=settings.FLEET_PUBLISH_INTERVAL,
                                   shard=str(shard if shard is not None else "all"))
        self.recorder = Recorder(guard=self.lease.runs_stations)
        self.metrics = fleet_metrics.process_metrics()
        self.metrics.hosting = True
        self._frame_ids = FrameIds()
        self.engine = Shard(self._sink, ramp_per_second=self.ramp,
                            state_store=self.recorder.save_state,
                            state_note=self.recorder.note_state,
                            crash_recovery=settings.FLEET_CRASH_RECOVERY, frame_hook=self._frame)
        self._tasks: list[asyncio.Task] = []
        # Stations past the process's open files or ports are held, not started.
        self.capacity = Capacity.of_this_process(settings.FLEET_FD_RESERVE)
        self.out_of_files = OutOfFilesLog()
        self.held: dict[str, str] = {}

    def _sink(self, station_id: str, kind: str, data: dict) -> None:
        if kind == "connection" and out_of_files(data.get("detail")):
            self.out_of_files.failed("connection attempts")
        self.publisher.record(station_id, kind, data)
        self.recorder(station_id, kind, data)
        self.metrics.event(station_id, kind, data)

    def _frame(self, *frame) -> None:
        # Every frame out passes here before it is sent: the last gate of the fence, for a
        # process that was paused (SIGSTOP, a stalled VM) past its deadline and woke up
        # with timers and sends due before the lease keeper's. ConnectionError keeps an
        # outbox message queued, as a lost connection does.
        if frame[1] == "out" and time.monotonic() >= self.lease.fence_at:
            self.engine.fence()
            raise ConnectionError("this copy's lease may have lapsed: it sends no more")
        # One identity for the live and the logged copy: the page shows the frame once.
        frame_id = self._frame_ids()
        self.publisher.frame(*frame, frame_id=frame_id)
        self.recorder.frame(*frame, frame_id=frame_id)
        self.metrics.frame(*frame)

    async def _send(self, group: str, message: dict) -> None:
        await self.layer.group_send(group, message)

    async def run(self, stop: asyncio.Event) -> str:
        """Run until `stop` is set, the lease is lost or cannot be kept; returns why it ended.

        The stations start only once the lease says so (a takeover waits until no other
        copy can still be sending), and stop sending before it could be granted again."""
        if not await self.lease.acquire():
            LOGGER.info("shard %s already runs elsewhere; this copy exits", self.shard)
            return "lease-taken"
        reason = "stopped"
        started = False
        # asyncio logs every accept() that finds no descriptor, with its traceback.
        asyncio.get_running_loop().set_exception_handler(self.out_of_files.loop_handler)
        channel = await self.layer.new_channel()
        await self.layer.group_add(shard_group(self.shard), channel)
        keeper = asyncio.ensure_future(self._keep_lease())
        stopper = asyncio.ensure_future(stop.wait())
        try:
            while not (keeper.done() or stopper.done()):
                if await self.lease.ready() and await self.lease.begin():
                    started = True
                    break
                await asyncio.wait({keeper, stopper}, timeout=self.lease.refresh_every,
                                   return_when=asyncio.FIRST_COMPLETED)
            if started:
                self._tasks = [
                    asyncio.ensure_future(self.reload()),
                    asyncio.ensure_future(self._commands(channel)),
                    asyncio.ensure_future(self.publisher.run()),
                    asyncio.ensure_future(self.recorder.run()),
                ]
                if settings.REDIS_URL:
                    # Engine workers are other processes: /metrics reads their counts from Redis.
                    self._tasks.append(asyncio.ensure_future(fleet_metrics.publish(
                        self.metrics, settings.REDIS_URL, settings.FLEET_METRICS_INTERVAL)))
                await asyncio.wait({keeper, stopper}, return_when=asyncio.FIRST_COMPLETED)
        except LeaseLost as exc:  # from begin(): another copy took the shard meanwhile
            keeper.cancel()
            reason = "lease-lost"
            LOGGER.warning("shard %s: %s", self.shard, exc)
        finally:
            for task in (keeper, stopper):
                task.cancel()
            if keeper.done() and not keeper.cancelled():
                problem = keeper.exception()
                if isinstance(problem, LeaseLost):
                    reason = "lease-lost"
                elif isinstance(problem, Fenced):
                    reason = "fenced"
                if problem is not None:
                    LOGGER.warning("shard %s: %s; stopping its stations", self.shard, problem)
            if reason != "stopped":
                # Not a moment more: another copy may be granted the lease soon.
                self.engine.fence()
            await self.shutdown(channel, started=started)
        return reason

    async def shutdown(self, channel: str, *, started: bool = True) -> None:
        """Stop the stations, save them for the next copy, then give the shard up."""
        # First what starts or changes stations, so none starts while the others stop.
        for task in self._tasks[:2]:
            task.cancel()
            await asyncio.wait({task}, timeout=settings.FLEET_STOP_TIMEOUT)
        # Handed over: the next copy goes on with the transactions (a lost connection).
        await self.engine.stop(timeout=settings.FLEET_STOP_TIMEOUT, handover=started,
                               drain=HANDOVER_DRAIN_S)
        for task in reversed(self._tasks[2:]):
            task.cancel()
            # Bounded: a task that ignored its cancellation must not hold the shard.
            await asyncio.wait({task}, timeout=settings.FLEET_STOP_TIMEOUT)
        # Bounded: Redis may be the reason this copy stops.
        with contextlib.suppress(Exception):
            async with asyncio.timeout(settings.FLEET_STOP_TIMEOUT):
                await self.lease.release()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(2):
                await self.layer.group_discard(shard_group(self.shard), channel)

    async def _keep_lease(self) -> None:
        """Refresh the lease every `refresh_every`; raise Fenced once it may have lapsed
        (the last confirmed refresh is ttl - margin old), LeaseLost if another copy has it."""
        lease = self.lease
        loop = asyncio.get_running_loop()
        while True:
            left = lease.fence_at - loop.time()
            if left <= 0:
                raise Fenced(f"shard {self.shard}: lease not confirmed for "
                             f"{lease.ttl - lease.margin:.0f} s")
            await asyncio.sleep(min(lease.refresh_every, left))
            left = lease.fence_at - loop.time()
            if left > 0:
                # Bounded: a Redis that does not answer must not hold the fence back.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(left):
                        await lease.refresh()

    async def reload(self, only: set[str] | None = None) -> None:
        """Start stations the database added to this shard, stop ones it removed."""
        configs, states, desired = await sync_to_async(load_shard)(self.shard, only)
        if only is None:
            wanted = {c.station_id for c in configs}
            for station_id in [s for s in self.engine.stations if s not in wanted]:
                await self.engine.remove(station_id)
                self.capacity.release(station_id)
                self.publisher.forget(station_id)
        sandbox = embedded.sandbox()
        if sandbox is not None:
            self.capacity.local = {destination(sandbox.url)}
        admitted = []
        for config in configs:
            why = self.capacity.admit(config.station_id, config.csms_url)
            if why is None:
                admitted.append(config)
                self.held.pop(config.station_id, None)
            elif self.held.get(config.station_id) != why:
                self.held[config.station_id] = why
                self._sink(config.station_id, "connection",
                           {"online": False, "error": "held", "detail": why})
        if len(admitted) < len(configs):
            LOGGER.warning("shard %s: %d of %d stations held. %s", self.shard,
                           len(configs) - len(admitted), len(configs),
                           next(iter(self.held.values())))
        await self.engine.start(
            admitted, states=states,
            prepare=lambda station: apply_desired(station, desired[station.config.station_id]),
        )

    async def _commands(self, channel: str) -> None:
        while True:
            message = await self.layer.receive(channel)
            try:
                await self._handle(message)
            except Exception:
                LOGGER.exception("shard %s: command failed: %s", self.shard, message)

    async def _handle(self, message: dict) -> None:
        command = message.get("command")
        station_id = message.get("station_id")
        if command == "reload":
            await self.reload()
            return
        if command == "watch":
            self.publisher.watch(station_id)
            return
        if command == "unwatch":
            self.publisher.unwatch(station_id)
            return
        if command == "refresh":
            self.publisher.touch(message.get("station_ids", []))
            return
        if command in ("connect_all", "disconnect_all"):
            for station in self.engine.stations.values():
                await (station.go_online() if command == "connect_all" else station.go_offline())
            return
        if command == "get_variables" and station_id in self.engine.stations:
            variables = variable_rows(self.engine.stations[station_id])
            await self._reply(message, Outcome(True, "Accepted"), data=variables)
            return
        if command == "get_authorization" and station_id in self.engine.stations:
            view = authorization_view(self.engine.stations[station_id])
            await self._reply(message, Outcome(True, "Accepted"), data=view)
            return
        station = self.engine.stations.get(station_id)
        if station is None:
            await self._reply(message, Outcome(False, "Unknown", f"{station_id} is not running"))
            return
        handler = COMMANDS.get(command)
        if handler is None:
            outcome = Outcome(False, "Rejected", f"unknown command {command!r}")
        else:
            try:
                outcome = await handler(station, message.get("args", {}))
            except (LookupError, KeyError) as exc:
                outcome = Outcome(False, "Rejected", str(exc))
        await self._reply(message, outcome)

    async def _reply(self, message: dict, outcome: Outcome, data=None) -> None:
        reply_to = message.get("reply_to")
        if not reply_to:
            return
        reply = {"type": "command.result", "request_id": message.get("request_id"),
                 **outcome.as_dict()}
        if data is not None:
            reply["data"] = data
        try:
            await self.layer.send(reply_to, reply)
        except Exception:
            # The first use of a connection that died with Redis fails; a new one works.
            await asyncio.sleep(0.1)
            await self.layer.send(reply_to, reply)
