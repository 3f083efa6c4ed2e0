"""Remote control: F01-F03 RequestStart/StopTransaction, F05 UnlockConnector, F06 TriggerMessage.

Each `@on` handler answers at once; the work its answer promises (starting a transaction,
sending the message asked for) runs in the matching `@after` handler, after the CALLRESULT
went out, as OCPP expects.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ocpp.routing import after, on
from ocpp.v201 import call_result

from ..block import Block
from ..physical.evse import Change
from .datatypes import id_token as as_id_token
from .datatypes import status_info

if TYPE_CHECKING:
    from ..physical.evse import Evse

# TriggerMessage requests answered with the message asked for.
_TRIGGERED_ALWAYS = frozenset({"Heartbeat", "StatusNotification", "MeterValues",
                               "FirmwareStatusNotification", "LogStatusNotification"})


class RemoteControl(Block):
    __slots__ = ("claims",)
    # Made by the first request it handles: most stations never get one.
    slot = "_remote_control"

    def __init__(self, station):
        super().__init__(station)
        # EVSEs promised to accepted RequestStartTransactions, by remoteStartId.
        self.claims: dict[int, int] = {}

    # -- F01/F02 RequestStartTransaction ----------------------------------------------

    def _evse_for_remote_start(self, evse_id: int | None) -> Evse | None:
        station = self.station
        if evse_id is not None:
            candidates = [station.evses[evse_id]] if evse_id in station.evses else []
        else:
            # Prefer an EVSE where an EV already waits (cable first), then a free one.
            candidates = sorted(station.evses.values(), key=lambda e: e.plugged_connector is None)
        claimed = set(self.claims.values())
        for evse in candidates:
            usable = evse.operative and station.operative and not evse.faulted
            if usable and evse.id_token is None and evse.id not in claimed:
                return evse
        return None

    @on("RequestStartTransaction")
    def on_request_start(self, id_token, remote_start_id, evse_id=None, **_):
        evse = self._evse_for_remote_start(evse_id)
        if evse is None:
            return call_result.RequestStartTransaction(
                "Rejected", status_info("NoFreeEvse", "no available EVSE for a new session")
            )
        # Claim it now so a second request for the same EVSE is refused.
        self.claims[remote_start_id] = evse.id
        tx = evse.transaction
        return call_result.RequestStartTransaction(
            "Accepted", transaction_id=tx.transaction_id if tx else None
        )

    @after("RequestStartTransaction")
    async def do_remote_start(self, id_token, remote_start_id, evse_id=None, **_):
        station = self.station
        claimed = self.claims.pop(remote_start_id, None)
        evse = station.evses.get(claimed)
        if evse is None:
            return
        token = as_id_token(id_token)
        if station.device_model.get_bool("AuthCtrlr", "AuthorizeRemoteStart"):
            status = await station.authorization.authorize(token)
            if status != "Accepted":
                station.emit("remote_start", {"evse_id": evse.id, "status": status})
                return
        station.transactions.remote_start_requested(evse, remote_start_id)
        evse.authorize(token, remote=True)

    # -- F03 RequestStopTransaction ---------------------------------------------------

    @on("RequestStopTransaction")
    def on_request_stop(self, transaction_id, **_):
        if self.station.transactions.evse_with_transaction(transaction_id) is None:
            return call_result.RequestStopTransaction("Rejected")
        return call_result.RequestStopTransaction("Accepted")

    @after("RequestStopTransaction")
    async def do_remote_stop(self, transaction_id, **_):
        evse = self.station.transactions.evse_with_transaction(transaction_id)
        if evse is not None:
            evse.deauthorize(Change.REMOTE_STOP, end=True)

    # -- F05 UnlockConnector ----------------------------------------------------------

    @on("UnlockConnector")
    def on_unlock_connector(self, evse_id, connector_id, **_):
        evse = self.station.evses.get(evse_id)
        if evse is None or connector_id not in evse.connector_ids:
            return call_result.UnlockConnector("UnknownConnector")
        if evse.transaction is not None:
            return call_result.UnlockConnector("OngoingAuthorizedTransaction")
        return call_result.UnlockConnector("Unlocked")

    # -- F06 TriggerMessage -----------------------------------------------------------

    @on("TriggerMessage")
    def on_trigger_message(self, requested_message, evse=None, **_):
        return call_result.TriggerMessage(self._trigger_status(requested_message, evse))

    def _trigger_status(self, requested: str, evse: dict | None) -> str:
        station = self.station
        if evse is not None and evse["id"] not in station.evses:
            return "Rejected"
        if requested == "BootNotification":
            # F06.FR.17: a station whose boot was accepted refuses a triggered boot.
            return "Rejected" if station.provisioning.boot_status == "Accepted" else "Accepted"
        if requested == "TransactionEvent":
            targets = [station.evses[evse["id"]]] if evse else list(station.evses.values())
            return "Accepted" if any(e.transaction for e in targets) else "Rejected"
        if requested in _TRIGGERED_ALWAYS:
            return "Accepted"
        return "NotImplemented"

    @after("TriggerMessage")
    async def do_trigger_message(self, requested_message, evse=None, **_):
        if self._trigger_status(requested_message, evse) != "Accepted":
            return
        station = self.station
        targets = [station.evses[evse["id"]]] if evse else list(station.evses.values())
        if requested_message == "BootNotification":
            station.provisioning.trigger_boot()
        elif requested_message == "Heartbeat":
            await station.availability.send_heartbeat()
        elif requested_message == "StatusNotification":
            connector = evse.get("connector_id") if evse else None
            for target in targets:
                for connector_id in target.connector_ids:
                    if connector is None or connector == connector_id:
                        await station.availability.send_status(
                            target.id, connector_id, force=True)
        elif requested_message == "TransactionEvent":
            for target in targets:
                station.transactions.trigger_event(target)
        elif requested_message == "MeterValues":
            for target in targets:
                await station.meter_values.send_triggered(target)
        elif requested_message == "FirmwareStatusNotification":
            await station.call_action("FirmwareStatusNotification", {"status": "Idle"})
        elif requested_message == "LogStatusNotification":
            await station.call_action("LogStatusNotification", {"status": "Idle"})
