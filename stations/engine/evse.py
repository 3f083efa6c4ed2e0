"""One EVSE: its connectors' status, the EV at it, and the transaction running on it.

A transaction starts when the first of the TxStartPoint conditions becomes true and
ends when one of the TxStopPoint conditions that was true stops being true (OCPP 2.0.1
E01/E06). Every change produces a TransactionEvent with the triggerReason that caused it,
numbered by seqNo and queued in the station's outbox so none is lost while offline.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .config import EvseConfig
from .meter import Ev, Meter
from .protocol import utc_now

if TYPE_CHECKING:
    from .station import Station

# The longest stretch the meter integrates in one step, so the taper is followed.
METER_STEP_S = 10.0


@dataclass
class Transaction:
    transaction_id: str
    started_at: float
    seq_no: int = 0
    charging_state: str = "Idle"
    # Sent with the next TransactionEvent, then cleared (OCPP sends each once).
    id_token_unsent: bool = False
    remote_start_id: int | None = None
    energy_at_start_wh: float = 0.0
    charging_seconds: float = 0.0
    meter_task: asyncio.Task | None = field(default=None, repr=False)

    def next_seq_no(self) -> int:
        seq_no = self.seq_no
        self.seq_no += 1
        return seq_no


class Evse:
    # Slots: a fleet holds tens of thousands of EVSEs.
    __slots__ = ("station", "config", "id", "connector_ids", "meter", "plugged_connector",
                 "last_connector", "ev", "id_token", "pending_remote_start_id", "faulted",
                 "operative", "inoperative_scheduled", "transaction", "_conditions",
                 "_last_metered", "_connect_timeout")

    def __init__(self, station: Station, config: EvseConfig):
        self.station = station
        self.config = config
        self.id = config.evse_id
        self.connector_ids = [c.connector_id for c in config.connectors]
        self.meter = Meter(voltage=config.voltage, phases=config.phases)
        self.plugged_connector: int | None = None
        # Named in TransactionEvents, including the one sent after the EV left.
        self.last_connector = self.connector_ids[0]
        self.ev: Ev | None = None
        self.id_token: dict | None = None
        self.pending_remote_start_id: int | None = None
        self.faulted = False
        self.operative = True
        # ChangeAvailability(Inoperative) that waits for the running transaction to end.
        self.inoperative_scheduled = False
        self.transaction: Transaction | None = None
        self._conditions = self._evaluate_conditions()
        self._last_metered = time.monotonic()
        self._connect_timeout: asyncio.TimerHandle | None = None

    # -- what the EVSE looks like from outside -----------------------------------------

    def connector_status(self, connector_id: int) -> str:
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
        """What must outlive the process: the meter, the EV, the running transaction."""
        tx = self.transaction
        return {
            "register_wh": self.meter.register_wh,
            "plugged_connector": self.plugged_connector,
            "ev": None if self.ev is None else {
                "capacity_kwh": self.ev.capacity_kwh, "soc": self.ev.soc,
                "max_power_kw": self.ev.max_power_kw, "drawing": self.ev.drawing,
            },
            "faulted": self.faulted,
            "transaction": None if tx is None else {
                "transaction_id": tx.transaction_id, "seq_no": tx.seq_no,
                "energy_at_start_wh": tx.energy_at_start_wh,
                "charging_seconds": tx.charging_seconds,
            },
        }

    def restore_state(self, state: dict) -> None:
        """Come back from a restart: the EV is still there, the session was cut."""
        self.meter.register_wh = state.get("register_wh", 0.0)
        self.plugged_connector = state.get("plugged_connector")
        if self.plugged_connector is not None:
            self.last_connector = self.plugged_connector
        if state.get("ev"):
            self.ev = Ev(**state["ev"])
        self.faulted = state.get("faulted", False)
        self._conditions = self._evaluate_conditions()
        tx = state.get("transaction")
        if tx:
            self.transaction = Transaction(started_at=time.monotonic(), **tx)
            # A real station that lost power ends the session it had when it comes back.
            self._end("AbnormalCondition", "PowerLoss")

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

    def _sample(self, measurands_variable: str, context: str) -> list[dict] | None:
        dm = self.station.device_model
        if not dm.get_bool("SampledDataCtrlr", "Enabled"):
            return None
        measurands = dm.get_list("SampledDataCtrlr", measurands_variable)
        values = self.meter.sample(measurands, context, self.ev)
        if not values:
            return None
        return [{"timestamp": utc_now(), "sampledValue": values}]

    # -- driver and technician actions ---------------------------------------------------

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
        self._cancel_connect_timeout()
        self.changed("CablePluggedIn")
        return None

    def unplug(self) -> str | None:
        if self.plugged_connector is None:
            return "no EV is plugged in"
        self.update_meter()
        self.plugged_connector = None
        self.ev = None
        stop_anyway = self.station.device_model.get_bool("TxCtrlr", "StopTxOnEVSideDisconnect")
        if stop_anyway and self.transaction:
            self.id_token = None
        self.changed("EVCommunicationLost", stopped_reason="EVDisconnected", force_end=stop_anyway)
        return None

    def set_ev_drawing(self, drawing: bool) -> str | None:
        if self.ev is None:
            return "no EV is plugged in"
        self.update_meter()
        self.ev.drawing = drawing
        self.changed("ChargingStateChanged")
        return None

    def set_fault(self, faulted: bool) -> None:
        self.update_meter()
        self.faulted = faulted
        self.changed("ChargingStateChanged")

    def authorize(self, id_token: dict, trigger: str, remote_start_id: int | None = None) -> None:
        """The station accepted `id_token` for this EVSE (locally or remotely)."""
        self.update_meter()
        self.id_token = id_token
        self.pending_remote_start_id = remote_start_id
        if self.plugged_connector is None:
            self._start_connect_timeout()
        self.changed(trigger, token_changed=True)

    def deauthorize(self, trigger: str, stopped_reason: str, *, end: bool = False) -> None:
        """The authorization ended: stop by the same token, remotely, or by the CSMS."""
        self.update_meter()
        self.id_token = None
        self._cancel_connect_timeout()
        self.changed(trigger, stopped_reason=stopped_reason, force_end=end)

    def _start_connect_timeout(self) -> None:
        self._cancel_connect_timeout()
        seconds = self.station.device_model.get_int("TxCtrlr", "EVConnectionTimeOut")
        if seconds > 0:
            loop = asyncio.get_running_loop()
            self._connect_timeout = loop.call_later(seconds, self._connect_timed_out)

    def _cancel_connect_timeout(self) -> None:
        if self._connect_timeout is not None:
            self._connect_timeout.cancel()
            self._connect_timeout = None

    def _connect_timed_out(self) -> None:
        self._connect_timeout = None
        if self.plugged_connector is None and self.id_token is not None:
            self.deauthorize("EVConnectTimeout", "Timeout", end=True)

    # -- the transaction state machine ---------------------------------------------------

    def _evaluate_conditions(self) -> dict[str, bool]:
        plugged = self.plugged_connector is not None
        authorized = self.id_token is not None
        return {
            "EVConnected": plugged,
            "Authorized": authorized,
            "PowerPathClosed": plugged and authorized,
            "EnergyTransfer": self.charging_state() == "Charging",
        }

    def changed(
        self,
        trigger: str,
        *,
        stopped_reason: str | None = None,
        force_end: bool = False,
        token_changed: bool = False,
    ) -> None:
        """Re-evaluate after a change; emit the TransactionEvent it implies, if any."""
        previous, self._conditions = self._conditions, self._evaluate_conditions()
        self.station.availability.connector_status_changed(self)
        dm = self.station.device_model
        tx = self.transaction
        if tx is None:
            # Edge-triggered: an EV left plugged in after a stop does not start another.
            start_points = dm.get_list("TxCtrlr", "TxStartPoint")
            now = self._conditions
            if any(now.get(p) and not previous.get(p) for p in start_points):
                self._start(trigger)
            self.station.report_evse(self)
            return
        if token_changed and self.id_token is not None:
            tx.id_token_unsent = True
            if self.pending_remote_start_id is not None:
                tx.remote_start_id = self.pending_remote_start_id
        stop_points = dm.get_list("TxCtrlr", "TxStopPoint")
        lost = any(previous.get(p) and not self._conditions.get(p) for p in stop_points)
        if force_end or lost:
            self._end(trigger, stopped_reason or "Local")
        elif tx.charging_state != self.charging_state() or tx.id_token_unsent:
            self._event("Updated", trigger)
        self.station.report_evse(self)

    def _start(self, trigger: str) -> None:
        self.transaction = Transaction(
            transaction_id=str(uuid.uuid4()),
            started_at=time.monotonic(),
            id_token_unsent=self.id_token is not None,
            remote_start_id=self.pending_remote_start_id if self.id_token else None,
            energy_at_start_wh=self.meter.register_wh,
        )
        self._event("Started", trigger, meter=("TxStartedMeasurands", "Transaction.Begin"))
        self.transaction.meter_task = asyncio.ensure_future(self._periodic_meter_values())

    def _end(self, trigger: str, stopped_reason: str) -> None:
        tx = self.transaction
        if tx.meter_task is not None:
            tx.meter_task.cancel()
        self._event(
            "Ended",
            trigger,
            meter=("TxEndedMeasurands", "Transaction.End"),
            stopped_reason=stopped_reason,
        )
        self.transaction = None
        self.id_token = None
        self.pending_remote_start_id = None
        self._cancel_connect_timeout()
        self._conditions = self._evaluate_conditions()
        self.station.transaction_ended(self)

    def trigger_meter_values(self) -> bool:
        """TriggerMessage(TransactionEvent): one Updated event with fresh readings."""
        if self.transaction is None:
            return False
        self.update_meter()
        self._event("Updated", "Trigger", meter=("TxUpdatedMeasurands", "Trigger"))
        return True

    async def _periodic_meter_values(self) -> None:
        dm = self.station.device_model
        while self.transaction is not None:
            interval = dm.get_int("SampledDataCtrlr", "TxUpdatedInterval")
            if interval <= 0:
                # 0 means no periodic samples; look again later in case it changes.
                await asyncio.sleep(5)
                continue
            await asyncio.sleep(interval)
            if self.transaction is None:
                return
            self.update_meter()
            state_moved = self.transaction.charging_state != self.charging_state()
            self._event("Updated", "MeterValuePeriodic",
                        meter=("TxUpdatedMeasurands", "Sample.Periodic"))
            if state_moved:
                self.station.report_evse(self)

    def _event(
        self,
        event_type: str,
        trigger: str,
        *,
        meter: tuple[str, str] | None = None,
        stopped_reason: str | None = None,
    ) -> None:
        tx = self.transaction
        self.update_meter()
        state = "Idle" if event_type == "Ended" and self.plugged_connector is None else None
        tx.charging_state = state or self.charging_state()
        info = {"transactionId": tx.transaction_id, "chargingState": tx.charging_state}
        if tx.charging_seconds:
            info["timeSpentCharging"] = int(tx.charging_seconds)
        if stopped_reason and event_type == "Ended":
            info["stoppedReason"] = stopped_reason
        if tx.remote_start_id is not None:
            info["remoteStartId"] = tx.remote_start_id
            tx.remote_start_id = None
        payload = {
            "eventType": event_type,
            "timestamp": utc_now(),
            "triggerReason": trigger,
            "seqNo": tx.next_seq_no(),
            "transactionInfo": info,
            "evse": {"id": self.id, "connectorId": self.last_connector},
        }
        if tx.id_token_unsent and self.id_token is not None:
            payload["idToken"] = self.id_token
            tx.id_token_unsent = False
        if meter is not None:
            sampled = self._sample(*meter)
            if sampled:
                payload["meterValue"] = sampled
        self.station.transactions.send(self, payload)

    def on_transaction_event_response(self, request: dict, response: dict) -> None:
        """E05/C15: a CSMS that does not accept the idToken ends the authorization."""
        info = response.get("idTokenInfo")
        if not info or info.get("status") == "Accepted" or self.transaction is None:
            return
        if request["transactionInfo"]["transactionId"] != self.transaction.transaction_id:
            return
        end = self.station.device_model.get_bool("TxCtrlr", "StopTxOnInvalidId")
        self.deauthorize("Deauthorized", "DeAuthorized", end=end)
