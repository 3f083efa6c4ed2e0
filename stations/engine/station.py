"""One charging station: its connection to the CSMS, and the functional blocks it is made of.

The station keeps running across connections. It connects, boots (provisioning), reports
its connectors and beats (availability) and delivers queued transaction messages in order
(transactions); when the connection drops it keeps charging offline and reconnects with
backoff and jitter. What the CSMS asks of it is answered by the block that handles the
action (v201/); what people do at it is driver.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable

from websockets.exceptions import ConnectionClosed

from .config import StationConfig
from .connection import ConnectFailed, open_connection, ssl_context
from .device_model.model import DeviceModel
from .driver import DriverActions
from .flag import Flag
from .outbox import Outbox
from .physical.evse import Change, Evse
from .protocol import OcppPeer
from .v201.authorization import Authorization
from .v201.availability import Availability
from .v201.data_transfer import DataTransfer
from .v201.local_auth_list import LocalAuthList
from .v201.meter_values import MeterValues
from .v201.provisioning import Provisioning
from .v201.remote_control import RemoteControl
from .v201.transactions import Transactions

LOGGER = logging.getLogger(__name__)

# How long a rebooting station stays away before it connects again.
REBOOT_PAUSE_S = 1.0

EventSink = Callable[[str, str, dict], None]
StateStore = Callable[[str, dict], Awaitable[None]]
StateNote = Callable[[str, dict], None]


class Station(DriverActions, OcppPeer):
    # Slots: a shard holds thousands of stations, and an instance dict with this many
    # keys is 1.6 KB where slots are 8 bytes each.
    __slots__ = (
        "config", "sink", "_draws", "device_model", "operative", "evses", "outbox", "online",
        "_wanted_online", "_stopping", "_session_end", "_wake", "_reboot_reason",
        "_background", "state_store", "state_note", "_note_due", "provisioning",
        "availability", "transactions", "_remote_control", "_authorization", "_local_list",
    )
    # The OCPP 2.0.1 functional blocks this station is made of; CALLs go to their handlers.
    BLOCKS = (Provisioning, Availability, Authorization, Transactions, RemoteControl,
              MeterValues, DataTransfer, LocalAuthList)

    def __init__(
        self,
        config: StationConfig,
        sink: EventSink | None = None,
        *,
        state: dict | None = None,
        state_store: StateStore | None = None,
        resume: bool = False,
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
            on_change=self.persist,
        )
        # False while the whole station is out of service (ChangeAvailability).
        self.operative = True
        self.evses = {e.evse_id: Evse(self, e) for e in config.evses}
        self.outbox = Outbox()
        # True while connected with the boot accepted: what OCPP calls online.
        self.online = False
        self._wanted_online = Flag()
        self._wanted_online.set()
        self._stopping = False
        # Completed to end the connection; a future only while connected.
        self._session_end: asyncio.Future | None = None
        # Wakes a backoff pause early (stop, or asked to come back online).
        self._wake = Flag()
        self._reboot_reason: str | None = None
        # Tasks spawned for status messages; made on first use (an empty set is 216 bytes).
        self._background: set[asyncio.Task] | None = None
        # Saves export_state() durably; awaited around every transaction message so a
        # station restarted elsewhere neither loses nor repeats one.
        self.state_store = state_store
        # Takes export_state() to save within a few milliseconds, not awaited: messages
        # queued offline and the meter of a running transaction (set by the shard).
        self.state_note: StateNote | None = None
        self._note_due = False
        # The blocks every station uses from its first connection; the others are made
        # when first used (remote control, authorization, the local list) or for each use
        # (meter values and data transfer keep no state).
        self.provisioning = Provisioning(self)
        self.availability = Availability(self)
        self.transactions = Transactions(self)
        self._remote_control: RemoteControl | None = None
        self._authorization: Authorization | None = None
        self._local_list: LocalAuthList | None = None
        self.availability.restore_operative()
        self.device_model.add_listener(self.availability.variable_changed)
        if state:
            self.restore_state(state, resume=resume)
        self.outbox.on_queued = self.checkpoint_soon

    @property
    def authorization(self) -> Authorization:
        return Authorization.of(self)

    @property
    def local_list(self) -> LocalAuthList:
        return LocalAuthList.of(self)

    # Blocks that keep no state: made for each use, they cost a station nothing between.
    @property
    def meter_values(self) -> MeterValues:
        return MeterValues(self)

    @property
    def rng(self) -> random.Random:
        """A generator for one draw (or a few made together), repeatable per station."""
        self._draws += 1
        return random.Random(f"{self.config.station_id}/{self._draws}")

    # -- surviving a restart ----------------------------------------------------------

    def export_state(self, *, handover: bool = False) -> dict:
        """What another process needs to go on as this station. `handover`: the station
        stopped cleanly (it sends nothing more), so the next one resumes its transactions."""
        state = {
            "evses": {
                str(evse.id): {**evse.export_state(),
                               "transaction": self.transactions.export(evse)}
                for evse in self.evses.values()
            },
            "outbox": self.outbox.snapshot(),
            **self._export_authorization(),
            # Wall-clock: the next process may run on another machine.
            "saved_at": time.time(),
            "boot": {"status": self.provisioning.boot_status, "heartbeat_interval":
                     self.device_model.get_int("OCPPCommCtrlr", "HeartbeatInterval")},
        }
        if handover:
            state["handover"] = True
        return state

    def _export_authorization(self) -> dict:
        # Only stations that hold a cache or a local list save them.
        saved = {}
        if self._authorization is not None and self._authorization.cache:
            saved["auth_cache"] = self._authorization.export()
        if self._local_list is not None and self._local_list.version:
            saved["local_list"] = self._local_list.export()
        return saved

    def restore_state(self, state: dict, *, resume: bool = False) -> None:
        """Come back in another process: queued messages first, then the saved sessions.

        `resume`: the process stopped as a connection is lost (a handover, or a crash taken
        as one): the station was never down, so it goes on with its boot and transactions,
        and the EVs kept charging meanwhile. Otherwise the process died as a power cut
        does: the station boots, and the sessions it had end (PowerLoss)."""
        self.outbox = Outbox(state.get("outbox", []))
        if state.get("auth_cache"):
            self.authorization.restore(state["auth_cache"])
        if state.get("local_list"):
            self.local_list.restore(state["local_list"])
        away = max(0.0, time.time() - state.get("saved_at", time.time())) if resume else None
        for evse_id, evse_state in state.get("evses", {}).items():
            evse = self.evses.get(int(evse_id))
            if evse is not None:
                evse.restore_state(evse_state, away=away)
                self.transactions.restored(evse, evse_state.get("transaction"), resume=resume)
        boot = state.get("boot") or {}
        if resume and boot.get("status") == "Accepted":
            # Reconnecting after a lost connection is not a reboot: no BootNotification.
            self.provisioning.boot_status = "Accepted"
            if boot.get("heartbeat_interval"):
                self.device_model.set_internal("OCPPCommCtrlr", "HeartbeatInterval",
                                               str(boot["heartbeat_interval"]))

    async def save_state(self, *, handover: bool = False) -> None:
        if self.state_store is not None:
            await self.state_store(self.config.station_id, self.export_state(handover=handover))

    def checkpoint_soon(self) -> None:
        """Have the state saved within a few milliseconds (not awaited).

        Taken once the change under way is complete (the next turn of the loop), not in
        the middle of it: an Ended queued but its transaction not yet cleared would come
        back as a transaction to end a second time."""
        if self.state_note is None or self._stopping or self._note_due:
            return
        self._note_due = True
        asyncio.get_running_loop().call_soon(self._note_state)

    def _note_state(self) -> None:
        self._note_due = False
        if self.state_note is not None and not self._stopping:
            self.state_note(self.config.station_id, self.export_state())

    def save_soon(self) -> None:
        """Save the state without waiting (what changed is not a transaction message)."""
        if self.state_store is not None:
            self.spawn(self.save_state())

    # -- events out ------------------------------------------------------------------

    def emit(self, kind: str, data: dict) -> None:
        if self.sink is not None:
            self.sink(self.config.station_id, kind, data)

    def persist(self, key: str, value: str) -> None:
        """Keep a value the station must have again after a restart (the caller stores it)."""
        self.config.variables[key] = value
        self.emit("variable", {"key": key, "value": value})

    def evse_changed(self, evse: Evse, change: Change, *, end: bool = False) -> None:
        """What changed at an EVSE, in this station's dialect: 2.0.1 TransactionEvents."""
        self.transactions.evse_changed(evse, change, end=end)

    def report_evse(self, evse: Evse) -> None:
        if self.sink is not None:
            self.emit("evse", evse.snapshot())

    def spawn(self, coro) -> asyncio.Task:
        """Run `coro` alongside, kept until it is done."""
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
        self.halt()

    def halt(self) -> None:
        """Stop now, without waiting: the connection closes, nothing reconnects."""
        self._stopping = True
        self._wanted_online.set()
        self._wake.set()
        self.end_session()
        # The sessions themselves go on (the next process may resume them); their meter
        # samples stop here, so nothing is queued after the last saved state.
        for evse in self.evses.values():
            tx = evse.transaction
            if tx is not None and getattr(tx, "meter_task", None) is not None:
                tx.meter_task.cancel()

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
        if self.provisioning.boot_status != "Accepted":
            await self.provisioning.boot()
        self.online = True
        self.emit("online", {"boot_status": self.provisioning.boot_status})
        for evse in self.evses.values():
            self.report_evse(evse)
        self.outbox.on_delivered = self.save_state
        # In the order they were made: the transaction messages queued while offline
        # (E11/E12), then the connector statuses as they are now (G01, B04), which a
        # change during the delivery must not overtake.
        self.availability.hold_statuses()
        await self.transactions.deliver_queued(until_empty=True)
        await self.availability.send_changed_statuses()
        self.availability.start_heartbeat()
        try:
            await self.transactions.deliver_queued()
        finally:
            self.availability.stop_heartbeat()

    async def _restart(self, reason: str) -> None:
        """What a reboot does to a station: transactions gone, authorization lost."""
        self._reboot_reason = None
        self.provisioning.rebooted(reason)
        self.availability.rebooted()
        for evse in self.evses.values():
            evse.id_token = None
        await self._pause(REBOOT_PAUSE_S)

    def refuse_calls(self) -> str | None:
        return self.provisioning.refusal()

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

    # -- what blocks wait for --------------------------------------------------------

    def transaction_ended(self, evse: Evse) -> None:
        """What waited for a transaction to end happens now (G03/G04 Scheduled, B12 OnIdle)."""
        self.availability.evse_idle(evse)
        if any(e.transaction for e in self.evses.values()):
            return
        # A scheduled reset goes first; the Inoperative then waits for a later idle.
        if not self.provisioning.station_idle():
            self.availability.station_idle()

    def snapshot(self) -> dict:
        return {
            "station_id": self.config.station_id,
            "online": self.online,
            "boot_status": self.provisioning.boot_status,
            "evses": [evse.snapshot() for evse in self.evses.values()],
            "queued": len(self.outbox),
        }
