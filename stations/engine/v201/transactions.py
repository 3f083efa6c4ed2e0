"""Transactions: E01-E14 of OCPP 2.0.1, over what the EVSEs report.

A transaction starts when one of the TxStartPoint conditions becomes true and ends when one
of the TxStopPoint conditions that was true stops being true (E01/E06). Every change the
EVSE reports produces a TransactionEvent with the triggerReason that caused it, numbered by
seqNo, carrying the idToken once for each authorization that starts or stops it, and queued
in the station's outbox so none is lost while offline (E11/E12): a message leaves it once
the CSMS answered, or once it has failed MessageAttempts times (E13).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass, field
from itertools import product
from typing import TYPE_CHECKING, Any

from ocpp.routing import on
from ocpp.v201 import call_result

from ..block import Block
from ..physical.evse import Change
from ..physical.evse import Transaction as PhysicalTransaction
from ..protocol import utc_now

if TYPE_CHECKING:
    from ..outbox import Message
    from ..physical.evse import Evse

# The triggerReason of the TransactionEvent each change at an EVSE causes.
TRIGGER_REASONS = {
    Change.PLUGGED_IN: "CablePluggedIn",
    Change.UNPLUGGED: "EVCommunicationLost",
    Change.EV_DRAWING: "ChargingStateChanged",
    Change.FAULT: "ChargingStateChanged",
    Change.AUTHORIZED: "Authorized",
    Change.REMOTE_START: "RemoteStart",
    Change.STOPPED: "StopAuthorized",
    Change.REMOTE_STOP: "RemoteStop",
    Change.RESET: "ResetCommand",
    Change.CONNECT_TIMEOUT: "EVConnectTimeout",
    Change.DEAUTHORIZED: "Deauthorized",
    Change.MASTER_PASS: "StopAuthorized",
    Change.ENERGY_LIMIT: "EnergyLimitReached",
}
# The stoppedReason of a transaction a change ends; any other change that ends one: Local.
STOPPED_REASONS = {
    Change.UNPLUGGED: "EVDisconnected",
    Change.STOPPED: "Local",
    Change.REMOTE_STOP: "Remote",
    Change.RESET: "ImmediateReset",
    Change.CONNECT_TIMEOUT: "Timeout",
    Change.DEAUTHORIZED: "DeAuthorized",
    Change.MASTER_PASS: "MasterPass",
    Change.ENERGY_LIMIT: "EnergyLimitReached",
}
_TOKEN_GIVEN = frozenset({Change.AUTHORIZED, Change.REMOTE_START})
_STOPPED_BY_A_DRIVER = frozenset({Change.STOPPED, Change.MASTER_PASS})


def _condition_set(plugged: bool, authorized: bool, energy: bool) -> frozenset[str]:
    names = {"EVConnected": plugged, "Authorized": authorized,
             "PowerPathClosed": plugged and authorized, "EnergyTransfer": energy}
    return frozenset(name for name, true in names.items() if true)


# The TxStartPoint/TxStopPoint conditions that hold, one shared set per combination.
_CONDITIONS = {key: _condition_set(*key) for key in product((False, True), repeat=3)}
_NONE_HOLD = _CONDITIONS[False, False, False]


def conditions(evse: Evse) -> frozenset[str]:
    """The start and stop conditions that hold at `evse` now."""
    return _CONDITIONS[evse.plugged_connector is not None, evse.id_token is not None,
                       evse.charging_state() == "Charging"]


@dataclass
class Transaction(PhysicalTransaction):
    seq_no: int = 0
    # The chargingState the last TransactionEvent reported.
    charging_state: str = "Idle"
    # Sent with the next TransactionEvent, then cleared (OCPP sends each once).
    id_token_unsent: bool = False
    # The idToken the transaction is authorized for: the one that stops it with the same
    # card (E07) is named in the event that reports the stop.
    authorized_by: dict | None = None
    remote_start_id: int | None = None
    # The idToken that stops the session when it is not the one it is authorized for (a
    # group member's, C09, or a master pass, C16): named in the event that reports the stop.
    stop_id_token: dict | None = None
    meter_task: asyncio.Task | None = field(default=None, repr=False)

    def next_seq_no(self) -> int:
        seq_no = self.seq_no
        self.seq_no += 1
        return seq_no


class Transactions(Block):
    __slots__ = ("_conditions", "_remote_start_ids")
    slot = "transactions"

    def __init__(self, station):
        super().__init__(station)
        # By EVSE id, the conditions that held at its last change, where any did: most
        # EVSEs of a fleet are idle, and an idle EVSE is not in it (nor is the dict made).
        self._conditions: dict[int, frozenset[str]] | None = None
        # By EVSE id, the remoteStartId of the RequestStartTransaction that authorized it.
        self._remote_start_ids: dict[int, int] | None = None

    # -- what an EVSE reports -----------------------------------------------------------

    def evse_changed(self, evse: Evse, change: Change, *, end: bool = False) -> None:
        """Re-evaluate after a change; queue the TransactionEvent it implies, if any."""
        dm = self.station.device_model
        stopped_by = None
        if change in _STOPPED_BY_A_DRIVER and evse.transaction is not None:
            # E07: the driver stopped with the card the transaction is authorized for, or
            # another of its group (C09) or a master pass (C16).
            tx = evse.transaction
            stopped_by = tx.stop_id_token or tx.authorized_by
            tx.stop_id_token = None
        if change is Change.UNPLUGGED:
            # E09/E10: StopTxOnEVSideDisconnect says whether the EV leaving ends it.
            end = dm.get_bool("TxCtrlr", "StopTxOnEVSideDisconnect")
            if end and evse.transaction:
                evse.id_token = None
        elif change in _TOKEN_GIVEN:
            if change is Change.AUTHORIZED:
                self._set_remote_start_id(evse, None)
            if evse.plugged_connector is None:
                # E03: an authorization lapses if no EV comes within EVConnectionTimeOut.
                evse.wait_for_cable(dm.get_int("TxCtrlr", "EVConnectionTimeOut"))
        self._changed(
            evse,
            TRIGGER_REASONS[change],
            stopped_reason=STOPPED_REASONS.get(change),
            force_end=end,
            token_changed=change in _TOKEN_GIVEN,
            stopped_by=stopped_by,
        )

    def remote_start_requested(self, evse: Evse, remote_start_id: int) -> None:
        """F01/F02: the authorization about to be given comes from this remote start."""
        self._set_remote_start_id(evse, remote_start_id)

    def _set_remote_start_id(self, evse: Evse, remote_start_id: int | None) -> None:
        if remote_start_id is not None:
            if self._remote_start_ids is None:
                self._remote_start_ids = {}
            self._remote_start_ids[evse.id] = remote_start_id
        elif self._remote_start_ids:
            self._remote_start_ids.pop(evse.id, None)

    def _remote_start_id(self, evse: Evse) -> int | None:
        return self._remote_start_ids.get(evse.id) if self._remote_start_ids else None

    def _seen(self, evse: Evse) -> frozenset[str]:
        return self._conditions.get(evse.id, _NONE_HOLD) if self._conditions else _NONE_HOLD

    def _remember(self, evse: Evse) -> frozenset[str]:
        now = conditions(evse)
        if now:
            if self._conditions is None:
                self._conditions = {}
            self._conditions[evse.id] = now
        elif self._conditions:
            self._conditions.pop(evse.id, None)
        return now

    # -- E01-E07 the TxStartPoint/TxStopPoint machine -----------------------------------

    def _changed(
        self,
        evse: Evse,
        trigger: str,
        *,
        stopped_reason: str | None = None,
        force_end: bool = False,
        token_changed: bool = False,
        stopped_by: dict | None = None,
    ) -> None:
        station = self.station
        previous = self._seen(evse)
        now = self._remember(evse)
        station.availability.connector_status_changed(evse)
        dm = station.device_model
        tx = evse.transaction
        if tx is None:
            # Edge-triggered: an EV left plugged in after a stop does not start another.
            start_points = dm.get_list("TxCtrlr", "TxStartPoint")
            if any(p in now and p not in previous for p in start_points):
                self._start(evse, trigger)
            station.report_evse(evse)
            return
        if token_changed and evse.id_token is not None:
            tx.id_token_unsent = True
            tx.authorized_by = evse.id_token
            remote_start_id = self._remote_start_id(evse)
            if remote_start_id is not None:
                tx.remote_start_id = remote_start_id
        stop_points = dm.get_list("TxCtrlr", "TxStopPoint")
        lost = any(p in previous and p not in now for p in stop_points)
        if force_end or lost:
            self._end(evse, trigger, stopped_reason or "Local", id_token=stopped_by)
        elif (tx.charging_state != evse.charging_state() or tx.id_token_unsent
              or stopped_by is not None):
            # A stop that leaves the transaction running (TxStopPoint EVConnected) is
            # reported too: it carries the idToken that stopped the charging.
            self.event(evse, "Updated", trigger, id_token=stopped_by)
        station.report_evse(evse)

    def _start(self, evse: Evse, trigger: str) -> None:
        evse.transaction = Transaction(
            transaction_id=str(uuid.uuid4()),
            started_at=time.monotonic(),
            id_token_unsent=evse.id_token is not None,
            authorized_by=evse.id_token,
            remote_start_id=self._remote_start_id(evse) if evse.id_token else None,
            energy_at_start_wh=evse.meter.register_wh,
        )
        self.event(evse, "Started", trigger, meter=("TxStartedMeasurands", "Transaction.Begin"))
        evse.transaction.meter_task = asyncio.ensure_future(
            self.station.meter_values.periodic(evse))

    def _end(self, evse: Evse, trigger: str, stopped_reason: str,
             id_token: dict | None = None) -> None:
        tx = evse.transaction
        if tx.meter_task is not None:
            tx.meter_task.cancel()
        self.event(
            evse,
            "Ended",
            trigger,
            meter=("TxEndedMeasurands", "Transaction.End"),
            stopped_reason=stopped_reason,
            id_token=id_token,
        )
        evse.transaction = None
        evse.id_token = None
        self._set_remote_start_id(evse, None)
        evse.cancel_connect_timeout()
        self._remember(evse)
        self.station.transaction_ended(evse)

    # -- the TransactionEvent ---------------------------------------------------------

    def event(
        self,
        evse: Evse,
        event_type: str,
        trigger: str,
        *,
        meter: tuple[str, str] | None = None,
        stopped_reason: str | None = None,
        id_token: dict | None = None,
    ) -> None:
        """Queue one TransactionEvent for the EVSE's transaction; `meter` names the
        SampledDataCtrlr measurands variable and the reading context to sample with;
        `id_token`, the idToken that ended the authorization (E07)."""
        tx = evse.transaction
        evse.update_meter()
        state = "Idle" if event_type == "Ended" and evse.plugged_connector is None else None
        tx.charging_state = state or evse.charging_state()
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
            "evse": {"id": evse.id, "connectorId": evse.last_connector},
        }
        # TransactionEventRequest.idToken: required when the EV driver becomes authorized
        # and when the EV driver ends the authorization, once for each; not when the CSMS
        # (RequestStopTransaction) or a reset ends it.
        if id_token is not None:
            payload["idToken"] = id_token
            tx.id_token_unsent = False
        elif tx.id_token_unsent and evse.id_token is not None:
            payload["idToken"] = evse.id_token
            tx.id_token_unsent = False
        if meter is not None:
            sampled = self.station.meter_values.transaction_sample(evse, *meter)
            if sampled:
                payload["meterValue"] = sampled
        self._send(evse, payload)

    def _send(self, evse: Evse, payload: dict) -> None:
        station = self.station
        if not station.online:
            payload["offline"] = True
        station.outbox.put("TransactionEvent", payload)
        if station.sink is not None:
            tx = evse.transaction
            energy = evse.meter.register_wh - tx.energy_at_start_wh if tx else None
            station.emit("transaction", {"evse_id": evse.id, "tx_energy_wh": energy, **payload})

    def stopping_id_token(self, evse: Evse, token: dict) -> None:
        """`token` is about to stop the EVSE's session: the stop event carries it."""
        if evse.transaction is not None:
            evse.transaction.stop_id_token = token

    def trigger_event(self, evse: Evse) -> bool:
        """F06 TriggerMessage(TransactionEvent): one Updated event with fresh readings."""
        if evse.transaction is None:
            return False
        evse.update_meter()
        self.event(evse, "Updated", "Trigger", meter=("TxUpdatedMeasurands", "Trigger"))
        return True

    # -- E11-E13 delivery -------------------------------------------------------------

    def deliver_queued(self, *, until_empty: bool = False) -> Coroutine[Any, Any, None]:
        """While online: queued messages go out in order, each until answered (E11/E12),
        or until it failed MessageAttempts times (E13); `until_empty`: only those queued
        so far (and any made meanwhile)."""
        # The outbox's own coroutine, not one awaiting it: every online station holds it
        # for as long as it is connected, and a frame less is a few hundred bytes less.
        return self.station.outbox.deliver(
            self._deliver, attempts=self._attempts, interval=self._interval,
            until_empty=until_empty,
        )

    def _attempts(self) -> int:
        return self.station.device_model.get_int(
            "OCPPCommCtrlr", "MessageAttempts", variable_instance="TransactionEvent"
        )

    def _interval(self) -> float:
        return self.station.device_model.get_int(
            "OCPPCommCtrlr", "MessageAttemptInterval", variable_instance="TransactionEvent"
        )

    async def _deliver(self, message: Message) -> None:
        station = self.station
        await station.save_state()
        response = await station.call_action(message.action, message.payload)
        if message.action == "TransactionEvent":
            evse = station.evses.get(message.payload.get("evse", {}).get("id"))
            if evse is not None:
                self._answered(evse, message.payload, response)

    def _answered(self, evse: Evse, request: dict, response: dict) -> None:
        """E05/E06.FR.04: a CSMS that does not accept the idToken ends the authorization;
        StopTxOnInvalidId says whether the transaction ends with it."""
        info = response.get("idTokenInfo")
        if info and "idToken" in request:
            # The cache and the session's group learn what the CSMS said (C10.FR.05, C09).
            self.station.authorization.transaction_answered(evse, request["idToken"], info)
        if not info or info.get("status") == "Accepted" or evse.transaction is None:
            return
        if request["transactionInfo"]["transactionId"] != evse.transaction.transaction_id:
            return
        end = self.station.device_model.get_bool("TxCtrlr", "StopTxOnInvalidId")
        if not end and self.station.authorization.allow_energy_on_invalid_id(evse):
            return  # C15.FR.07: it charges on until TxCtrlr.MaxEnergyOnInvalidId
        evse.deauthorize(Change.DEAUTHORIZED, end=end)

    # -- E14 GetTransactionStatus -----------------------------------------------------

    @on("GetTransactionStatus")
    def on_get_transaction_status(self, transaction_id=None, **_):
        queued = [m for m in self.station.outbox.snapshot() if m["action"] == "TransactionEvent"]
        if transaction_id is None:
            return call_result.GetTransactionStatus(messages_in_queue=bool(queued))
        mine = [
            m for m in queued
            if m["payload"]["transactionInfo"]["transactionId"] == transaction_id
        ]
        ongoing = self.evse_with_transaction(transaction_id) is not None
        return call_result.GetTransactionStatus(
            messages_in_queue=bool(mine), ongoing_indicator=ongoing
        )

    def evse_with_transaction(self, transaction_id: str) -> Evse | None:
        for evse in self.station.evses.values():
            if evse.transaction and evse.transaction.transaction_id == transaction_id:
                return evse
        return None

    # -- surviving a restart ----------------------------------------------------------

    def export(self, evse: Evse) -> dict | None:
        """The EVSE's running transaction as plain data, for a restarted station to end."""
        tx = evse.transaction
        if tx is None:
            return None
        return {
            "transaction_id": tx.transaction_id, "seq_no": tx.seq_no,
            "energy_at_start_wh": tx.energy_at_start_wh,
            "charging_seconds": tx.charging_seconds,
            "charging_state": tx.charging_state, "id_token_unsent": tx.id_token_unsent,
            "remote_start_id": tx.remote_start_id,
        }

    def restored(self, evse: Evse, transaction: dict | None, *, resume: bool = False) -> None:
        """The EVSE came back from a restart with the session it had, if any.

        `resume`: the station never lost power (its process handed it over, or a crash is
        taken as a lost connection): the same transaction goes on, seqNo continuing, its
        periodic samples too (E11). Otherwise the power loss cut the session: it ends."""
        if transaction and resume:
            evse.transaction = Transaction(started_at=time.monotonic(), **transaction)
            self._remember(evse)
            evse.transaction.meter_task = asyncio.ensure_future(
                self.station.meter_values.periodic(evse))
            return
        self._remember(evse)
        if transaction:
            evse.transaction = Transaction(started_at=time.monotonic(), **transaction)
            # A real station that lost power ends the session it had when it comes back.
            self._end(evse, "AbnormalCondition", "PowerLoss")
