"""Availability: G01 StatusNotification, G02 Heartbeat, G03/G04 ChangeAvailability.

Every connector status the CSMS has not acknowledged is sent when the station comes online
(after the transaction messages queued while it was offline), and every change while
online; Heartbeat keeps the link alive at HeartbeatInterval. The CSMS takes an EVSE or the
whole station out of service at once, or once its transactions end.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from typing import TYPE_CHECKING

from ocpp.routing import on
from ocpp.v201 import call_result

from ..block import Block
from ..protocol import CALL_FAILURES, utc_now
from .datatypes import status_info

if TYPE_CHECKING:
    from ..physical.evse import Evse

# Keys under which availability set by ChangeAvailability is persisted with the
# device-model values, so it survives a reboot as G03/G04 require.
STATION_OPERATIVE_KEY = "Availability/ChargingStation"

# Spreads first heartbeats; not seeded per station, as nothing replays them.
_JITTER = random.Random()

_CONNECTOR_KEYS: dict[tuple[int, int], tuple[int, int]] = {}


def connector_key(evse_id: int, connector_id: int) -> tuple[int, int]:
    """One (evse, connector) tuple for all stations: each keeps two status tables."""
    key = (evse_id, connector_id)
    return _CONNECTOR_KEYS.setdefault(key, key)


def evse_operative_key(evse_id: int) -> str:
    return f"Availability/EVSE[{evse_id}]"


class Availability(Block):
    __slots__ = ("_acknowledged", "_reported", "inoperative_scheduled", "_heartbeat",
                 "_held")
    slot = "availability"

    def __init__(self, station):
        super().__init__(station)
        # The last status the CSMS acknowledged per (evse, connector), to resend changes.
        self._acknowledged: dict[tuple[int, int], str] = {}
        # The last status told to the sink per (evse, connector), to tell only changes.
        self._reported: dict[tuple[int, int], str] = {}
        # ChangeAvailability(Inoperative) of the station, waiting for its transactions to end.
        self.inoperative_scheduled = False
        # While online: the timer of the next Heartbeat, or the task sending it.
        self._heartbeat: asyncio.TimerHandle | asyncio.Task | None = None
        # While the messages queued offline go out after a reconnect: status changes wait
        # for send_changed_statuses(), so none overtakes what was made before it.
        self._held = False

    def restore_operative(self) -> None:
        """Take up the availability the CSMS set before the station last stopped."""
        station = self.station
        variables = station.config.variables
        station.operative = variables.get(STATION_OPERATIVE_KEY) != "Inoperative"
        for evse in station.evses.values():
            evse.operative = variables.get(evse_operative_key(evse.id)) != "Inoperative"

    # -- G01 StatusNotification -------------------------------------------------------

    def connector_status_changed(self, evse: Evse) -> None:
        station = self.station
        for connector_id in evse.connector_ids:
            key = connector_key(evse.id, connector_id)
            status = evse.connector_status(connector_id)
            if self._reported.get(key) == status:
                continue
            self._reported[key] = status
            station.emit("status", {"evse_id": evse.id, "connector_id": connector_id,
                                    "status": status})
            if station.online and not self._held:
                # The status as of now: a later change must not swallow this one.
                station.spawn(self.send_status(evse.id, connector_id, status, force=True))

    def hold_statuses(self) -> None:
        """Until send_changed_statuses(): status changes are kept, not sent."""
        self._held = True

    async def send_changed_statuses(self) -> None:
        """Coming online: every status the CSMS has not acknowledged yet (B04: those that
        changed while offline), after the transaction messages queued meanwhile."""
        self._held = False
        for evse in self.station.evses.values():
            for connector_id in evse.connector_ids:
                self._reported[connector_key(evse.id, connector_id)] = (
                    evse.connector_status(connector_id))
                if self._acknowledged.get((evse.id, connector_id)) != (
                    evse.connector_status(connector_id)
                ):
                    await self.send_status(evse.id, connector_id)

    async def send_status(
        self, evse_id: int, connector_id: int, status: str | None = None, force: bool = False
    ) -> None:
        station = self.station
        status = status or station.evses[evse_id].connector_status(connector_id)
        if not force and self._acknowledged.get((evse_id, connector_id)) == status:
            return
        payload = {
            "timestamp": utc_now(),
            "connectorStatus": status,
            "evseId": evse_id,
            "connectorId": connector_id,
        }
        with contextlib.suppress(ConnectionError, *CALL_FAILURES):
            await station.call_action("StatusNotification", payload)
            self._acknowledged[connector_key(evse_id, connector_id)] = status

    def rebooted(self) -> None:
        """After a reboot the CSMS hears every connector's status again."""
        self._acknowledged.clear()

    # -- G02 Heartbeat ----------------------------------------------------------------

    def start_heartbeat(self) -> None:
        self._schedule_heartbeat(first=True)

    def stop_heartbeat(self) -> None:
        self._heartbeat.cancel()
        self._heartbeat = None

    def variable_changed(self, component: str, variable: str, value: str) -> None:
        if (component, variable) == ("OCPPCommCtrlr", "HeartbeatInterval"):
            self._restart_heartbeat()

    def _schedule_heartbeat(self, first: bool = False) -> None:
        # A timer between beats, not a sleeping task: a shard has thousands of stations
        # and a task with its coroutine is several times the size of a timer.
        interval = max(
            self.station.device_model.get_int("OCPPCommCtrlr", "HeartbeatInterval"), 1
        )
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
            await self.station.call_action("Heartbeat", {})

    # -- G03/G04 ChangeAvailability ---------------------------------------------------

    @on("ChangeAvailability")
    def on_change_availability(self, operational_status, evse=None, **_):
        station = self.station
        operative = operational_status == "Operative"
        if evse is None:
            busy = any(e.transaction for e in station.evses.values())
            if not operative and busy and station.operative:
                self.inoperative_scheduled = True
                return call_result.ChangeAvailability("Scheduled")
            self.set_station_operative(operative)
            return call_result.ChangeAvailability("Accepted")
        target = station.evses.get(evse["id"])
        connector_id = evse.get("connector_id")
        unknown_connector = connector_id is not None and connector_id not in (
            target.connector_ids if target else ()
        )
        if target is None or unknown_connector:
            return call_result.ChangeAvailability(
                "Rejected", status_info("UnknownEvse", "no such EVSE or connector")
            )
        if not operative and target.transaction is not None and target.operative:
            target.inoperative_scheduled = True
            return call_result.ChangeAvailability("Scheduled")
        target.inoperative_scheduled = False
        self.set_evse_operative(target, operative)
        return call_result.ChangeAvailability("Accepted")

    def set_evse_operative(self, evse: Evse, operative: bool) -> None:
        station = self.station
        evse.operative = operative
        station.persist(evse_operative_key(evse.id), "Operative" if operative else "Inoperative")
        self.connector_status_changed(evse)
        station.report_evse(evse)

    def set_station_operative(self, operative: bool) -> None:
        station = self.station
        station.operative = operative
        station.persist(STATION_OPERATIVE_KEY, "Operative" if operative else "Inoperative")
        for evse in station.evses.values():
            self.connector_status_changed(evse)
            station.report_evse(evse)

    def evse_idle(self, evse: Evse) -> None:
        """The EVSE's transaction ended: an Inoperative that waited for it applies now."""
        if evse.inoperative_scheduled:
            evse.inoperative_scheduled = False
            self.set_evse_operative(evse, False)

    def station_idle(self) -> None:
        """The station's last transaction ended: so does the wait of a station Inoperative."""
        if self.inoperative_scheduled:
            self.inoperative_scheduled = False
            self.set_station_operative(False)
