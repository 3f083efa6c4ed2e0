"""One charging station: its connection to the CSMS, boot, heartbeat and driver actions.

The station keeps running across connections. It connects, boots (B01-B03), reports its
connectors (G01), beats (G02) and delivers queued transaction messages in order
(E11/E12); when the connection drops it keeps charging offline and reconnects with
backoff and jitter. What the CSMS asks of it lives in `handlers.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable

from websockets.exceptions import ConnectionClosed

from .config import StationConfig
from .connection import ConnectFailed, open_connection, ssl_context
from .device_model.model import DeviceModel
from .driver import CALL_FAILURES, DriverActions
from .evse import Evse, utc_now
from .flag import Flag
from .handlers import CsmsRequests
from .outbox import Message, Outbox
from .protocol import OcppPeer

LOGGER = logging.getLogger(__name__)

# Seconds between BootNotification attempts when the CSMS gives no interval.
BOOT_RETRY_DEFAULT_S = 30
# How long a rebooting station stays away before it connects again.
REBOOT_PAUSE_S = 1.0

# Keys under which availability set by ChangeAvailability is persisted with the
# device-model values, so it survives a reboot as G03/G04 require.
STATION_OPERATIVE_KEY = "Availability/ChargingStation"

# Spreads first heartbeats; not seeded per station, as nothing replays them.
_JITTER = random.Random()

EventSink = Callable[[str, str, dict], None]
StateStore = Callable[[str, dict], Awaitable[None]]



_CONNECTOR_KEYS: dict[tuple[int, int], tuple[int, int]] = {}


def connector_key(evse_id: int, connector_id: int) -> tuple[int, int]:
    """One (evse, connector) tuple for all stations: each keeps two status tables."""
    key = (evse_id, connector_id)
    return _CONNECTOR_KEYS.setdefault(key, key)


def evse_operative_key(evse_id: int) -> str:
    return f"Availability/EVSE[{evse_id}]"


class Station(DriverActions, CsmsRequests, OcppPeer):
    # Slots: a shard holds thousands of stations, and an instance dict with this many
    # keys is 1.6 KB where slots are 8 bytes each.
    __slots__ = (
        "config", "sink", "_draws", "device_model", "operative", "evses", "outbox",
        "boot_status", "boot_reason", "online", "_acknowledged_status", "_reported_status",
        "_wanted_online", "_stopping", "_session_end", "_wake", "_reboot_reason", "_boot_now",
        "_heartbeat", "_background", "remote_claims", "station_inoperative_scheduled",
        "reset_scheduled", "state_store",
    )

    def __init__(
        self,
        config: StationConfig,
        sink: EventSink | None = None,
        *,
        state: dict | None = None,
        state_store: StateStore | None = None,
    ):
        super().__init__(
            config.station_id,
            validate=config.validate_schema,
            response_timeout=config.response_timeout,
        )
        self.config = config
        # Receives (station_id, kind, data) for everything a user might watch.
        self.sink = sink
        # Random draws so far: each draw's generator is seeded by the id and this count,
        # so a station's EVs and jitter repeat from run to run without keeping a 2.5 KB
        # generator per station.
        self._draws = 0
        self.device_model = DeviceModel(
            config.evses,
            vendor=config.vendor,
            model=config.model,
            serial_number=config.serial_number,
            firmware_version=config.firmware_version,
            security_profile=config.security_profile,
            identity=config.station_id,
            overrides=config.variables,
            on_change=self._persist,
        )
        self.device_model.add_listener(self._variable_changed)
        self.operative = config.variables.get(STATION_OPERATIVE_KEY) != "Inoperative"
        self.evses = {e.evse_id: Evse(self, e) for e in config.evses}
        for evse in self.evses.values():
            evse.operative = config.variables.get(evse_operative_key(evse.id)) != "Inoperative"
        self.outbox = Outbox()
        # Accepted, Pending or Rejected once a BootNotification was answered.
        self.boot_status: str | None = None
        self.boot_reason = "PowerUp"
        # True while connected with the boot accepted: what OCPP calls online.
        self.online = False
        # The last status the CSMS acknowledged per (evse, connector), to resend changes.
        self._acknowledged_status: dict[tuple[int, int], str] = {}
        self._reported_status: dict[tuple[int, int], str] = {}
        self._wanted_online = Flag()
        self._wanted_online.set()
        self._stopping = False
        # Completed to end the connection; a future only while connected.
        self._session_end: asyncio.Future | None = None
        # Wakes a backoff pause early (stop, or asked to come back online).
        self._wake = Flag()
        self._reboot_reason: str | None = None
        self._boot_now = Flag()
        # While online: the timer of the next Heartbeat, or the task sending it.
        self._heartbeat: asyncio.TimerHandle | asyncio.Task | None = None
        # Tasks spawned for status messages; made on first use (an empty set is 216 bytes).
        self._background: set[asyncio.Task] | None = None
        # EVSEs promised to accepted RequestStartTransactions, by remoteStartId.
        self.remote_claims: dict[int, int] = {}
        self.station_inoperative_scheduled = False
        # Reset(OnIdle) received while charging: reboot when the last transaction ends.
        self.reset_scheduled = False
        # Saves export_state() durably; awaited around every transaction message so a
        # station restarted elsewhere neither loses nor repeats one.
        self.state_store = state_store
        if state:
            self.restore_state(state)

    @property
    def rng(self) -> random.Random:
        """A generator for one draw (or a few made together), repeatable per station."""
        self._draws += 1
        return random.Random(f"{self.config.station_id}/{self._draws}")

    # -- surviving a restart ----------------------------------------------------------

    def export_state(self) -> dict:
        return {
            "evses": {str(evse.id): evse.export_state() for evse in self.evses.values()},
            "outbox": self.outbox.snapshot(),
        }

    def restore_state(self, state: dict) -> None:
        """Resume after the process died: queued messages first, then the cut sessions end."""
        self.outbox = Outbox(state.get("outbox", []))
        for evse_id, evse_state in state.get("evses", {}).items():
            evse = self.evses.get(int(evse_id))
            if evse is not None:
                evse.restore_state(evse_state)

    async def save_state(self) -> None:
        if self.state_store is not None:
            await self.state_store(self.config.station_id, self.export_state())

    # -- events out ------------------------------------------------------------------

    def emit(self, kind: str, data: dict) -> None:
        if self.sink is not None:
            self.sink(self.config.station_id, kind, data)

    def _persist(self, key: str, value: str) -> None:
        self.config.variables[key] = value
        self.emit("variable", {"key": key, "value": value})

    def _variable_changed(self, component: str, variable: str, value: str) -> None:
        if (component, variable) == ("OCPPCommCtrlr", "HeartbeatInterval"):
            self._restart_heartbeat()

    def report_evse(self, evse: Evse) -> None:
        if self.sink is not None:
            self.emit("evse", evse.snapshot())

    def _spawn(self, coro) -> asyncio.Task:
        task = asyncio.ensure_future(coro)
        if self._background is None:
            self._background = set()
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    # -- lifecycle -------------------------------------------------------------------

    async def run(self) -> None:
        """Stay connected until stop(): connect, boot, serve, reconnect with backoff."""
        failures = 0
        while not self._stopping:
            await self._wanted_online.wait()
            if self._stopping:
                break
            try:
                ws = await open_connection(self.config, ssl_context(self.config))
            except ConnectFailed as exc:
                failures += 1
                self.emit("connection", {"online": False, "error": exc.reason,
                                         "detail": exc.detail, "status": exc.status})
                LOGGER.debug("%s: cannot connect (%s)", self.id, exc)
                await self._pause(self._backoff(failures))
                continue
            failures = 0
            await self._session(ws)
            if self._reboot_reason:
                await self._restart(self._reboot_reason)
            elif not self._stopping and self._wanted_online.is_set():
                await self._pause(self._backoff(1))

    async def stop(self) -> None:
        self._stopping = True
        self._wanted_online.set()
        self._wake.set()
        self.end_session()

    def end_session(self) -> None:
        """Close the current connection, if any (the run loop decides what comes next)."""
        ended = self._session_end
        if ended is not None and not ended.done():
            ended.set_result(None)

    def _part_ended(self, _task: asyncio.Task) -> None:
        self.end_session()

    def _backoff(self, failures: int) -> float:
        base = min(self.config.reconnect_max, self.config.reconnect_min * 2 ** (failures - 1))
        return base * (1 + self.config.reconnect_jitter * self.rng.random())

    async def _pause(self, seconds: float) -> None:
        """Sleep, but wake early when asked to stop."""
        self._wake.clear()
        if self._stopping:
            return
        # Not wait_for: it costs a task, and in Python 3.11 it can swallow a cancellation.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._wake.wait()

    async def _session(self, ws) -> None:
        self.attach(ws)
        # One future that either part completes, or end_session(): lighter than a task
        # waiting on a Flag, or than asyncio.wait's set, closure and callbacks, and every
        # station holds it for as long as it is connected.
        ended = self._session_end = asyncio.get_running_loop().create_future()
        self.emit("connection", {"online": True})
        reader = asyncio.ensure_future(self._read())
        main = asyncio.ensure_future(self._online_work())
        reader.add_done_callback(self._part_ended)
        main.add_done_callback(self._part_ended)
        try:
            await ended
        finally:
            self._session_end = None
            for task in (reader, main, ended):
                task.cancel()
            self.detach()
            self.online = False
            await ws.close()
            await asyncio.gather(reader, main, return_exceptions=True)
            self.emit("connection", {"online": False})
            LOGGER.debug("%s: disconnected", self.id)

    async def _read(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            await self.serve()

    async def _online_work(self) -> None:
        if self.boot_status != "Accepted":
            await self._boot()
        self.online = True
        self.emit("online", {"boot_status": self.boot_status})
        for evse in self.evses.values():
            self.report_evse(evse)
        await self._send_changed_statuses()
        self.outbox.on_delivered = self.save_state
        self._schedule_heartbeat(first=True)
        try:
            await self.outbox.deliver(
                self._deliver, attempts=self._attempts, interval=self._interval
            )
        finally:
            self._heartbeat.cancel()
            self._heartbeat = None

    async def _restart(self, reason: str) -> None:
        """What a reboot does to a station: transactions gone, authorization lost."""
        self._reboot_reason = None
        self.boot_status = None
        self.boot_reason = reason
        self.reset_scheduled = False
        self._acknowledged_status.clear()
        for evse in self.evses.values():
            evse.id_token = None
        await self._pause(REBOOT_PAUSE_S)

    def refuse_calls(self) -> str | None:
        # B03.FR.08: a Rejected station answers the CSMS only with SecurityError.
        if self.boot_status == "Rejected":
            return "The CSMS rejected this station's BootNotification"
        return None

    # -- station-initiated messages --------------------------------------------------

    async def call_action(self, action: str, payload: dict) -> dict:
        try:
            return await super().call_action(action, payload)
        except ConnectionClosed as exc:
            raise ConnectionError("connection closed") from exc
        except TimeoutError:
            # A CSMS that does not answer is what a load test wants to count.
            self.emit("call_timeout", {"action": action})
            raise

    async def _boot(self) -> None:
        """B01-B03: BootNotification until Accepted, honouring the interval in between."""
        while True:
            self._boot_now.clear()
            payload = {
                "reason": self.boot_reason,
                "chargingStation": {
                    "model": self.config.model,
                    "vendorName": self.config.vendor,
                    "firmwareVersion": self.config.firmware_version,
                },
            }
            if self.config.serial_number:
                payload["chargingStation"]["serialNumber"] = self.config.serial_number
            try:
                response = await self.call_action("BootNotification", payload)
                status, interval = response["status"], response["interval"]
            except CALL_FAILURES as exc:
                LOGGER.warning("%s: BootNotification failed: %s", self.id, exc)
                status, interval = "Failed", 0
            self.emit("boot", {"status": status, "interval": interval})
            if status == "Accepted":
                self.boot_status = status
                if interval > 0:
                    self.device_model.set_internal(
                        "OCPPCommCtrlr", "HeartbeatInterval", str(interval)
                    )
                return
            self.boot_status = status if status != "Failed" else None
            wait = interval if interval > 0 else BOOT_RETRY_DEFAULT_S
            # While Pending, a TriggerMessage(BootNotification) cuts the wait short.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._boot_now.wait()

    def _schedule_heartbeat(self, first: bool = False) -> None:
        # A timer between beats, not a sleeping task: a shard has thousands of stations
        # and a task with its coroutine is several times the size of a timer.
        interval = max(self.device_model.get_int("OCPPCommCtrlr", "HeartbeatInterval"), 1)
        # Stations that booted together would otherwise beat together for ever.
        delay = interval * _JITTER.random() if first else interval
        self._heartbeat = asyncio.get_running_loop().call_later(delay, self._beat)

    def _beat(self) -> None:
        self._heartbeat = asyncio.ensure_future(self._beat_and_reschedule())

    async def _beat_and_reschedule(self) -> None:
        await self.send_heartbeat()
        # Cancelled with the session; anything else leads to the next beat.
        self._schedule_heartbeat()

    def _restart_heartbeat(self) -> None:
        """The interval changed: the next beat comes one new interval from now (not
        jittered like the first after boot, which could bring it much sooner)."""
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            self._schedule_heartbeat()

    async def send_heartbeat(self) -> None:
        with contextlib.suppress(*CALL_FAILURES):
            await self.call_action("Heartbeat", {})

    def _attempts(self) -> int:
        return self.device_model.get_int(
            "OCPPCommCtrlr", "MessageAttempts", variable_instance="TransactionEvent"
        )

    def _interval(self) -> float:
        return self.device_model.get_int(
            "OCPPCommCtrlr", "MessageAttemptInterval", variable_instance="TransactionEvent"
        )

    async def _deliver(self, message: Message) -> None:
        await self.save_state()
        response = await self.call_action(message.action, message.payload)
        if message.action == "TransactionEvent":
            evse = self.evses.get(message.payload.get("evse", {}).get("id"))
            if evse is not None:
                evse.on_transaction_event_response(message.payload, response)

    def send_transaction_event(self, evse: Evse, payload: dict) -> None:
        if not self.online:
            payload["offline"] = True
        self.outbox.put("TransactionEvent", payload)
        if self.sink is not None:
            tx = evse.transaction
            energy = evse.meter.register_wh - tx.energy_at_start_wh if tx else None
            self.emit("transaction", {"evse_id": evse.id, "tx_energy_wh": energy, **payload})

    # -- connector status (G01) ------------------------------------------------------

    def connector_status_changed(self, evse: Evse) -> None:
        for connector_id in evse.connector_ids:
            key = connector_key(evse.id, connector_id)
            status = evse.connector_status(connector_id)
            if self._reported_status.get(key) == status:
                continue
            self._reported_status[key] = status
            self.emit("status", {"evse_id": evse.id, "connector_id": connector_id,
                                 "status": status})
            if self.online:
                # The status as of now: a later change must not swallow this one.
                self._spawn(self._send_status(evse.id, connector_id, status, force=True))

    async def _send_changed_statuses(self) -> None:
        for evse in self.evses.values():
            for connector_id in evse.connector_ids:
                self._reported_status[connector_key(evse.id, connector_id)] = (
                    evse.connector_status(connector_id))
                if self._acknowledged_status.get((evse.id, connector_id)) != (
                    evse.connector_status(connector_id)
                ):
                    await self._send_status(evse.id, connector_id)

    async def _send_status(
        self, evse_id: int, connector_id: int, status: str | None = None, force: bool = False
    ) -> None:
        status = status or self.evses[evse_id].connector_status(connector_id)
        if not force and self._acknowledged_status.get((evse_id, connector_id)) == status:
            return
        payload = {
            "timestamp": utc_now(),
            "connectorStatus": status,
            "evseId": evse_id,
            "connectorId": connector_id,
        }
        with contextlib.suppress(ConnectionError, *CALL_FAILURES):
            await self.call_action("StatusNotification", payload)
            self._acknowledged_status[connector_key(evse_id, connector_id)] = status

    def transaction_ended(self, evse: Evse) -> None:
        if evse.inoperative_scheduled:
            evse.inoperative_scheduled = False
            self.set_evse_operative(evse, False)
        if not any(e.transaction for e in self.evses.values()):
            if self.reset_scheduled:
                self._spawn(self.reboot("RemoteReset", flush=True))
            elif self.station_inoperative_scheduled:
                self.station_inoperative_scheduled = False
                self.set_station_operative(False)

    def set_evse_operative(self, evse: Evse, operative: bool) -> None:
        evse.operative = operative
        self._persist(evse_operative_key(evse.id), "Operative" if operative else "Inoperative")
        self.connector_status_changed(evse)
        self.report_evse(evse)

    def set_station_operative(self, operative: bool) -> None:
        self.operative = operative
        self._persist(STATION_OPERATIVE_KEY, "Operative" if operative else "Inoperative")
        for evse in self.evses.values():
            self.connector_status_changed(evse)
            self.report_evse(evse)

    def snapshot(self) -> dict:
        return {
            "station_id": self.config.station_id,
            "online": self.online,
            "boot_status": self.boot_status,
            "evses": [evse.snapshot() for evse in self.evses.values()],
            "queued": len(self.outbox),
        }
