"""Transactions: E11-E13 TransactionEvents delivered in order, E14 GetTransactionStatus."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ocpp.routing import on
from ocpp.v201 import call_result

from ..block import Block

if TYPE_CHECKING:
    from ..evse import Evse
    from ..outbox import Message


class Transactions(Block):
    __slots__ = ()
    slot = "transactions"

    def send(self, evse: Evse, payload: dict) -> None:
        """Queue a TransactionEvent; offline, it says so (E12)."""
        station = self.station
        if not station.online:
            payload["offline"] = True
        station.outbox.put("TransactionEvent", payload)
        if station.sink is not None:
            tx = evse.transaction
            energy = evse.meter.register_wh - tx.energy_at_start_wh if tx else None
            station.emit("transaction", {"evse_id": evse.id, "tx_energy_wh": energy, **payload})

    def trigger_event(self, evse: Evse) -> bool:
        """F06 TriggerMessage(TransactionEvent): one Updated event with fresh readings."""
        return evse.trigger_meter_values()

    # -- E11-E13 delivery -------------------------------------------------------------

    async def deliver_queued(self) -> None:
        """While online: queued messages go out in order, each until answered (E11/E12),
        or until it failed MessageAttempts times (E13)."""
        await self.station.outbox.deliver(
            self._deliver, attempts=self._attempts, interval=self._interval
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
                evse.on_transaction_event_response(message.payload, response)

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
