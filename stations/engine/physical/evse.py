"""One EVSE as hardware: its connectors, the EV at it, faults, availability and the meter.

No protocol version lives here. Whatever physically changes (an EV plugged in or leaving,
an idToken accepted or withdrawn, a fault, the EV drawing power or not) the EVSE tells its
station as a `Change`; the station's dialect says it in its own messages (OCPP 2.0.1's
transactions block as TransactionEvents; 1.6 would as StartTransaction/StopTransaction).
"""

from __future__ import annotations

import asyncio
import enum
import random
import time
from dataclasses import dataclass
from typing import Protocol

from ..config import EvseConfig, StationConfig
from .ev import Ev
from .meter import Meter

# The longest stretch the meter integrates in one step, so the taper is followed.
METER_STEP_S = 10.0


class Change(enum.Enum):
    """What happened at an EVSE. From STOPPED on, each ends an authorization and says why."""

    PLUGGED_IN = "plugged in"
    UNPLUGGED = "unplugged"
    EV_DRAWING = "EV started or stopped drawing power"
    FAULT = "fault appeared or cleared"
    AUTHORIZED = "idToken accepted at the EVSE"
    REMOTE_START = "idToken given by the CSMS"
    STOPPED = "the driver ended the authorization"
    REMOTE_STOP = "the CSMS stopped the session"
    RESET = "the station resets"
    CONNECT_TIMEOUT = "no EV was plugged in in time"
    DEAUTHORIZED = "the CSMS withdrew the idToken"
    MASTER_PASS = "a master pass stopped the session"
    ENERGY_LIMIT = "a withdrawn idToken used the energy it was allowed"


class EvseHost(Protocol):
    """What an EVSE needs of the station it belongs to."""

    config: StationConfig
    # False while the whole station is out of service.
    operative: bool

    @property
    def rng(self) -> random.Random: ...

    def evse_changed(self, evse: Evse, change: Change, *, end: bool = False) -> None:
        """`end`: the session ends whatever else would keep it."""


@dataclass
class Transaction:
    """What a transaction is in any protocol version: an id, its start, its energy and its
    charging time. A dialect adds the bookkeeping its messages need in a subclass."""

    transaction_id: str
    started_at: float
    energy_at_start_wh: float = 0.0
    charging_seconds: float = 0.0


class Evse:
    # Slots: a fleet holds tens of thousands of EVSEs.
    __slots__ = ("station", "config", "id", "connector_ids", "meter", "plugged_connector",
                 "last_connector", "ev", "id_token", "faulted", "operative",
                 "inoperative_scheduled", "transaction", "_last_metered", "_connect_timeout")

    def __init__(self, station: EvseHost, config: EvseConfig):
        self.station = station
        self.config = config
        self.id = config.evse_id
        self.connector_ids = [c.connector_id for c in config.connectors]
        self.meter = Meter(voltage=config.voltage, phases=config.phases)
        self.plugged_connector: int | None = None
        # Named in transaction messages, including the one sent after the EV left.
        self.last_connector = self.connector_ids[0]
        self.ev: Ev | None = None
        # The idToken (IdTokenType: idToken and type) this EVSE is authorized for.
        self.id_token: dict | None = None
        self.faulted = False
        self.operative = True
        # An Inoperative the CSMS asked for, waiting for the running transaction to end.
        self.inoperative_scheduled = False
        # The running transaction: the dialect's subclass of Transaction.
        self.transaction: Transaction | None = None
        self._last_metered = time.monotonic()
        self._connect_timeout: asyncio.TimerHandle | None = None

    # -- what the EVSE looks like from outside -----------------------------------------

    def connector_status(self, connector_id: int) -> str:
        """Available, Occupied, Unavailable or Faulted (2.0.1's ConnectorStatus; 1.6 says
        Occupied more finely, from charging_state)."""
        if self.faulted:
            return "Faulted"
        if self.plugged_connector == connector_id:
            return "Occupied"
        if not self.operative or not self.station.operative:
            return "Unavailable"
        if self.plugged_connector is not None:
            # One EV per EVSE: the other connectors cannot be used meanwhile.
            return "Unavailable"
        return "Available"

    def charging_state(self) -> str:
        """Idle, EVConnected, SuspendedEVSE, SuspendedEV or Charging: what the power path
        does (2.0.1's ChargingState; 1.6 calls EVConnected Preparing)."""
        if self.plugged_connector is None:
            return "Idle"
        if self.id_token is None:
            return "EVConnected"
        if self.faulted or not self.operative or self.power_limit_kw() <= 0:
            return "SuspendedEVSE"
        if self.ev is None or self.ev.accepts_kw() <= 0:
            return "SuspendedEV"
        return "Charging"

    def power_limit_kw(self) -> float:
        return self.config.max_power_kw

    def snapshot(self) -> dict:
        self.update_meter()
        tx = self.transaction
        return {
            "evse_id": self.id,
            "connectors": {c: self.connector_status(c) for c in self.connector_ids},
            "charging_state": self.charging_state(),
            "power_w": round(self.meter.power_w, 1),
            "energy_wh": round(self.meter.register_wh, 1),
            "soc": round(self.ev.soc, 1) if self.ev else None,
            "id_token": self.id_token["idToken"] if self.id_token else None,
            "transaction_id": tx.transaction_id if tx else None,
            "tx_energy_wh": round(self.meter.register_wh - tx.energy_at_start_wh, 1)
            if tx
            else None,
        }

    # -- surviving a restart ----------------------------------------------------------------

    def export_state(self) -> dict:
        """What of the hardware must outlive the process: the meter, the EV, a fault, the
        idToken it is authorized for."""
        self.update_meter()
        return {
            "register_wh": self.meter.register_wh,
            "plugged_connector": self.plugged_connector,
            "ev": None if self.ev is None else {
                "capacity_kwh": self.ev.capacity_kwh, "soc": self.ev.soc,
                "max_power_kw": self.ev.max_power_kw, "drawing": self.ev.drawing,
            },
            "faulted": self.faulted,
            "id_token": self.id_token,
        }

    def restore_state(self, state: dict, *, away: float | None = None) -> None:
        """Come back from a restart: the EV is still there.

        `away`: seconds the EVSE went on without its process (the station did not lose
        power): it is still authorized, and the EV charged all that time, which the next
        meter reading integrates. None: the power was cut, and with it the authorization."""
        self.meter.register_wh = state.get("register_wh", 0.0)
        self.plugged_connector = state.get("plugged_connector")
        if self.plugged_connector is not None:
            self.last_connector = self.plugged_connector
        if state.get("ev"):
            self.ev = Ev(**state["ev"])
        self.faulted = state.get("faulted", False)
        if away is not None:
            self.id_token = state.get("id_token")
            self._last_metered = time.monotonic() - away

    # -- the meter ---------------------------------------------------------------------

    def update_meter(self) -> None:
        """Integrate energy since the last reading, in steps that follow the taper."""
        now = time.monotonic()
        elapsed = (now - self._last_metered) * self.station.config.time_scale
        self._last_metered = now
        charging = self.charging_state() == "Charging"
        while elapsed > 0:
            step = min(elapsed, METER_STEP_S)
            self.meter.deliver(self.ev if charging else None, self.power_limit_kw(), step)
            if charging and self.transaction:
                self.transaction.charging_seconds += step
            elapsed -= step
        if not charging:
            self.meter.stop()

    # -- what people and the CSMS do to it -----------------------------------------------

    def plug_in(self, connector_id: int | None = None) -> str | None:
        """Plug an EV in; returns why not, or None."""
        connector_id = connector_id or self.connector_ids[0]
        if connector_id not in self.connector_ids:
            return f"EVSE {self.id} has no connector {connector_id}"
        if self.plugged_connector is not None:
            return "an EV is already plugged in"
        self.update_meter()
        self.plugged_connector = self.last_connector = connector_id
        self.ev = Ev.random(self.station.rng, self.config.max_power_kw)
        self.cancel_connect_timeout()
        self.station.evse_changed(self, Change.PLUGGED_IN)
        return None

    def unplug(self) -> str | None:
        if self.plugged_connector is None:
            return "no EV is plugged in"
        self.update_meter()
        self.plugged_connector = None
        self.ev = None
        self.station.evse_changed(self, Change.UNPLUGGED)
        return None

    def set_ev_drawing(self, drawing: bool) -> str | None:
        if self.ev is None:
            return "no EV is plugged in"
        self.update_meter()
        self.ev.drawing = drawing
        self.station.evse_changed(self, Change.EV_DRAWING)
        return None

    def set_fault(self, faulted: bool) -> None:
        self.update_meter()
        self.faulted = faulted
        self.station.evse_changed(self, Change.FAULT)

    def authorize(self, id_token: dict, *, remote: bool = False) -> None:
        """The station accepted `id_token` for this EVSE: presented here, or by the CSMS."""
        self.update_meter()
        self.id_token = id_token
        self.station.evse_changed(self, Change.REMOTE_START if remote else Change.AUTHORIZED)

    def deauthorize(self, why: Change, *, end: bool = False) -> None:
        """The authorization ended for `why`; `end`: so does the session, whatever else
        would keep it."""
        self.update_meter()
        self.id_token = None
        self.cancel_connect_timeout()
        self.station.evse_changed(self, why, end=end)

    # -- waiting for the EV after an authorization ----------------------------------------

    def wait_for_cable(self, seconds: float) -> None:
        """An authorization without an EV lapses unless one is plugged in within `seconds`
        (0: it waits for ever)."""
        self.cancel_connect_timeout()
        if seconds > 0:
            loop = asyncio.get_running_loop()
            self._connect_timeout = loop.call_later(seconds, self._connect_timed_out)

    def cancel_connect_timeout(self) -> None:
        if self._connect_timeout is not None:
            self._connect_timeout.cancel()
            self._connect_timeout = None

    def _connect_timed_out(self) -> None:
        self._connect_timeout = None
        if self.plugged_connector is None and self.id_token is not None:
            self.deauthorize(Change.CONNECT_TIMEOUT, end=True)
