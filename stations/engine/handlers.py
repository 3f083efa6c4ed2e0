"""What a station does when the CSMS asks: the CSMS-initiated messages it supports.

Each `@on` handler answers at once; work the answer promises (sending a report, starting
a transaction, rebooting) runs in the matching `@after` handler, after the CALLRESULT
went out, as OCPP expects.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from ocpp.charge_point import snake_to_camel_case
from ocpp.routing import after, on
from ocpp.v201 import call_result

from .evse import utc_now

if TYPE_CHECKING:
    from .evse import Evse

# A NotifyReport carries at most this many items when the device model does not say.
REPORT_ITEMS_DEFAULT = 20


def _token(id_token: dict) -> dict:
    """An idToken as the station keeps it: the camelCase form it sends back."""
    return {"idToken": id_token["id_token"], "type": id_token["type"]}


def _rejected(reason: str, text: str = "") -> dict:
    info = {"reason_code": reason}
    if text:
        info["additional_info"] = text[:512]
    return info


class CsmsRequests:
    """Mixin for Station: the `@on`/`@after` handlers the ocpp library routes to."""

    # -- provisioning (B05-B07, B11/B12) -----------------------------------------------

    @on("GetVariables")
    def on_get_variables(self, get_variable_data, **_):
        return call_result.GetVariables(self.device_model.get_variables(get_variable_data))

    @on("SetVariables")
    def on_set_variables(self, set_variable_data, **_):
        return call_result.SetVariables(self.device_model.set_variables(set_variable_data))

    @on("GetBaseReport")
    def on_get_base_report(self, request_id, report_base, **_):
        if self.device_model.report(report_base) is None:
            return call_result.GetBaseReport("NotSupported")
        return call_result.GetBaseReport("Accepted")

    @after("GetBaseReport")
    async def send_base_report(self, request_id, report_base, **_):
        items = self.device_model.report(report_base) or []
        per_message = REPORT_ITEMS_DEFAULT
        with contextlib.suppress(Exception):
            per_message = self.device_model.get_int(
                "DeviceDataCtrlr", "ItemsPerMessage", variable_instance="GetReport"
            ) or REPORT_ITEMS_DEFAULT
        chunks = [items[i : i + per_message] for i in range(0, len(items), per_message)] or [[]]
        generated_at = utc_now()
        for seq_no, chunk in enumerate(chunks):
            payload = {
                "requestId": request_id,
                "generatedAt": generated_at,
                "seqNo": seq_no,
                "tbc": seq_no < len(chunks) - 1,
            }
            if chunk:
                payload["reportData"] = snake_to_camel_case(chunk)
            await self.call_action("NotifyReport", payload)

    @on("Reset")
    def on_reset(self, type, evse_id=None, **_):  # noqa: A002 - OCPP's field name
        if evse_id is not None:
            return call_result.Reset(
                "Rejected", _rejected("UnsupportedRequest", "only the whole station resets")
            )
        busy = any(evse.transaction for evse in self.evses.values())
        if type == "OnIdle" and busy:
            self.reset_scheduled = True
            return call_result.Reset("Scheduled")
        return call_result.Reset("Accepted")

    @after("Reset")
    async def do_reset(self, type, evse_id=None, **_):  # noqa: A002
        if evse_id is None and not self.reset_scheduled:
            await self.reboot("RemoteReset", flush=True)

    # -- availability (G03/G04) --------------------------------------------------------

    @on("ChangeAvailability")
    def on_change_availability(self, operational_status, evse=None, **_):
        operative = operational_status == "Operative"
        if evse is None:
            busy = any(e.transaction for e in self.evses.values())
            if not operative and busy and self.operative:
                self.station_inoperative_scheduled = True
                return call_result.ChangeAvailability("Scheduled")
            self.set_station_operative(operative)
            return call_result.ChangeAvailability("Accepted")
        target = self.evses.get(evse["id"])
        connector_id = evse.get("connector_id")
        unknown_connector = connector_id is not None and connector_id not in (
            target.connector_ids if target else ()
        )
        if target is None or unknown_connector:
            return call_result.ChangeAvailability(
                "Rejected", _rejected("UnknownEvse", "no such EVSE or connector")
            )
        if not operative and target.transaction is not None and target.operative:
            target.inoperative_scheduled = True
            return call_result.ChangeAvailability("Scheduled")
        target.inoperative_scheduled = False
        self.set_evse_operative(target, operative)
        return call_result.ChangeAvailability("Accepted")

    # -- remote control (F01-F03, F05, F06) --------------------------------------------

    def _evse_for_remote_start(self, evse_id: int | None) -> Evse | None:
        if evse_id is not None:
            candidates = [self.evses[evse_id]] if evse_id in self.evses else []
        else:
            # Prefer an EVSE where an EV already waits (cable first), then a free one.
            candidates = sorted(self.evses.values(), key=lambda e: e.plugged_connector is None)
        claimed = set(self.remote_claims.values())
        for evse in candidates:
            usable = evse.operative and self.operative and not evse.faulted
            if usable and evse.id_token is None and evse.id not in claimed:
                return evse
        return None

    @on("RequestStartTransaction")
    def on_request_start(self, id_token, remote_start_id, evse_id=None, **_):
        evse = self._evse_for_remote_start(evse_id)
        if evse is None:
            return call_result.RequestStartTransaction(
                "Rejected", _rejected("NoFreeEvse", "no available EVSE for a new session")
            )
        # Claim it now so a second request for the same EVSE is refused.
        self.remote_claims[remote_start_id] = evse.id
        tx = evse.transaction
        return call_result.RequestStartTransaction(
            "Accepted", transaction_id=tx.transaction_id if tx else None
        )

    @after("RequestStartTransaction")
    async def do_remote_start(self, id_token, remote_start_id, evse_id=None, **_):
        claimed = self.remote_claims.pop(remote_start_id, None)
        evse = self.evses.get(claimed)
        if evse is None:
            return
        token = _token(id_token)
        if self.device_model.get_bool("AuthCtrlr", "AuthorizeRemoteStart"):
            status = await self.authorize(token)
            if status != "Accepted":
                self.emit("remote_start", {"evse_id": evse.id, "status": status})
                return
        evse.authorize(token, "RemoteStart", remote_start_id=remote_start_id)

    @on("RequestStopTransaction")
    def on_request_stop(self, transaction_id, **_):
        if self._evse_with_transaction(transaction_id) is None:
            return call_result.RequestStopTransaction("Rejected")
        return call_result.RequestStopTransaction("Accepted")

    @after("RequestStopTransaction")
    async def do_remote_stop(self, transaction_id, **_):
        evse = self._evse_with_transaction(transaction_id)
        if evse is not None:
            evse.deauthorize("RemoteStop", "Remote", end=True)

    def _evse_with_transaction(self, transaction_id: str) -> Evse | None:
        for evse in self.evses.values():
            if evse.transaction and evse.transaction.transaction_id == transaction_id:
                return evse
        return None

    @on("GetTransactionStatus")
    def on_get_transaction_status(self, transaction_id=None, **_):
        queued = [m for m in self.outbox.snapshot() if m["action"] == "TransactionEvent"]
        if transaction_id is None:
            return call_result.GetTransactionStatus(messages_in_queue=bool(queued))
        mine = [
            m for m in queued
            if m["payload"]["transactionInfo"]["transactionId"] == transaction_id
        ]
        ongoing = self._evse_with_transaction(transaction_id) is not None
        return call_result.GetTransactionStatus(
            messages_in_queue=bool(mine), ongoing_indicator=ongoing
        )

    @on("UnlockConnector")
    def on_unlock_connector(self, evse_id, connector_id, **_):
        evse = self.evses.get(evse_id)
        if evse is None or connector_id not in evse.connector_ids:
            return call_result.UnlockConnector("UnknownConnector")
        if evse.transaction is not None:
            return call_result.UnlockConnector("OngoingAuthorizedTransaction")
        return call_result.UnlockConnector("Unlocked")

    @on("TriggerMessage")
    def on_trigger_message(self, requested_message, evse=None, **_):
        status = self._trigger_status(requested_message, evse)
        if status != "Accepted":
            return call_result.TriggerMessage(status)
        return call_result.TriggerMessage("Accepted")

    def _trigger_status(self, requested: str, evse: dict | None) -> str:
        if evse is not None and evse["id"] not in self.evses:
            return "Rejected"
        if requested == "BootNotification":
            # F06.FR.17: a station whose boot was accepted refuses a triggered boot.
            return "Rejected" if self.boot_status == "Accepted" else "Accepted"
        if requested == "TransactionEvent":
            targets = [self.evses[evse["id"]]] if evse else list(self.evses.values())
            return "Accepted" if any(e.transaction for e in targets) else "Rejected"
        if requested in {"Heartbeat", "StatusNotification", "MeterValues",
                         "FirmwareStatusNotification", "LogStatusNotification"}:
            return "Accepted"
        return "NotImplemented"

    @after("TriggerMessage")
    async def do_trigger_message(self, requested_message, evse=None, **_):
        if self._trigger_status(requested_message, evse) != "Accepted":
            return
        targets = [self.evses[evse["id"]]] if evse else list(self.evses.values())
        if requested_message == "BootNotification":
            self.boot_reason = "Triggered"
            self._boot_now.set()
        elif requested_message == "Heartbeat":
            await self.send_heartbeat()
        elif requested_message == "StatusNotification":
            connector = evse.get("connector_id") if evse else None
            for target in targets:
                for connector_id in target.connector_ids:
                    if connector is None or connector == connector_id:
                        await self._send_status(target.id, connector_id, force=True)
        elif requested_message == "TransactionEvent":
            for target in targets:
                target.trigger_meter_values()
        elif requested_message == "MeterValues":
            for target in targets:
                target.update_meter()
                values = target.meter.sample(
                    self.device_model.get_list("AlignedDataCtrlr", "Measurands")
                    or ["Energy.Active.Import.Register"],
                    "Trigger",
                    target.ev,
                )
                await self.call_action("MeterValues", {
                    "evseId": target.id,
                    "meterValue": [{"timestamp": utc_now(), "sampledValue": values}],
                })
        elif requested_message == "FirmwareStatusNotification":
            await self.call_action("FirmwareStatusNotification", {"status": "Idle"})
        elif requested_message == "LogStatusNotification":
            await self.call_action("LogStatusNotification", {"status": "Idle"})

    @on("DataTransfer")
    def on_data_transfer(self, vendor_id, **_):
        return call_result.DataTransfer("UnknownVendorId")

