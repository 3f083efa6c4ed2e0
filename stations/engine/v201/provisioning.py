"""Provisioning: B01-B03 boot, B05-B07 the device model over OCPP, B11/B12 Reset.

A station boots with BootNotification until the CSMS accepts it, waiting the interval the
CSMS gives between attempts. While Pending it answers the CSMS; while Rejected it answers
nothing but SecurityError. Reset reboots at once, or when the last transaction has ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from ocpp.charge_point import snake_to_camel_case
from ocpp.routing import after, on
from ocpp.v201 import call_result

from ..block import Block
from ..flag import Flag
from ..protocol import CALL_FAILURES, utc_now
from .datatypes import status_info

LOGGER = logging.getLogger(__name__)

# Seconds between BootNotification attempts when the CSMS gives no interval.
BOOT_RETRY_DEFAULT_S = 30
# A NotifyReport carries at most this many items when the device model does not say.
REPORT_ITEMS_DEFAULT = 20


class Provisioning(Block):
    __slots__ = ("boot_status", "boot_reason", "_boot_now", "reset_scheduled")
    slot = "provisioning"

    def __init__(self, station):
        super().__init__(station)
        # Accepted, Pending or Rejected once a BootNotification was answered.
        self.boot_status: str | None = None
        # The BootReasonEnumType value the next BootNotification gives.
        self.boot_reason = "PowerUp"
        # Cuts the wait between boot attempts short (TriggerMessage while Pending).
        self._boot_now = Flag()
        # Reset(OnIdle) received while charging: reboot when the last transaction ends.
        self.reset_scheduled = False

    # -- B01-B03 boot -----------------------------------------------------------------

    async def boot(self) -> None:
        """BootNotification until Accepted, honouring the interval in between."""
        station = self.station
        config = station.config
        while True:
            self._boot_now.clear()
            payload = {
                "reason": self.boot_reason,
                "chargingStation": {
                    "model": config.model,
                    "vendorName": config.vendor,
                    "firmwareVersion": config.firmware_version,
                },
            }
            if config.serial_number:
                payload["chargingStation"]["serialNumber"] = config.serial_number
            try:
                response = await station.call_action("BootNotification", payload)
                status, interval = response["status"], response["interval"]
            except CALL_FAILURES as exc:
                LOGGER.warning("%s: BootNotification failed: %s", station.id, exc)
                status, interval = "Failed", 0
            station.emit("boot", {"status": status, "interval": interval})
            if status == "Accepted":
                self.boot_status = status
                if interval > 0:
                    station.device_model.set_internal(
                        "OCPPCommCtrlr", "HeartbeatInterval", str(interval)
                    )
                return
            self.boot_status = status if status != "Failed" else None
            wait = interval if interval > 0 else BOOT_RETRY_DEFAULT_S
            # While Pending, a TriggerMessage(BootNotification) cuts the wait short.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._boot_now.wait()

    def trigger_boot(self) -> None:
        """F06: the CSMS asked for a BootNotification now."""
        self.boot_reason = "Triggered"
        self._boot_now.set()

    def refusal(self) -> str | None:
        # B03.FR.08: a Rejected station answers the CSMS only with SecurityError.
        if self.boot_status == "Rejected":
            return "The CSMS rejected this station's BootNotification"
        return None

    def rebooted(self, reason: str) -> None:
        """The station restarts: it boots again, giving `reason`."""
        self.boot_status = None
        self.boot_reason = reason
        self.reset_scheduled = False

    # -- B05-B07 the device model -----------------------------------------------------

    @on("GetVariables")
    def on_get_variables(self, get_variable_data, **_):
        return call_result.GetVariables(self.station.device_model.get_variables(get_variable_data))

    @on("SetVariables")
    def on_set_variables(self, set_variable_data, **_):
        return call_result.SetVariables(self.station.device_model.set_variables(set_variable_data))

    @on("GetBaseReport")
    def on_get_base_report(self, request_id, report_base, **_):
        if self.station.device_model.report(report_base) is None:
            return call_result.GetBaseReport("NotSupported")
        return call_result.GetBaseReport("Accepted")

    @after("GetBaseReport")
    async def send_base_report(self, request_id, report_base, **_):
        device_model = self.station.device_model
        items = device_model.report(report_base) or []
        per_message = REPORT_ITEMS_DEFAULT
        with contextlib.suppress(Exception):
            per_message = device_model.get_int(
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
            await self.station.call_action("NotifyReport", payload)

    # -- B11/B12 Reset ----------------------------------------------------------------

    @on("Reset")
    def on_reset(self, type, evse_id=None, **_):  # noqa: A002 - OCPP's field name
        if evse_id is not None:
            return call_result.Reset(
                "Rejected", status_info("UnsupportedRequest", "only the whole station resets")
            )
        busy = any(evse.transaction for evse in self.station.evses.values())
        if type == "OnIdle" and busy:
            self.reset_scheduled = True
            return call_result.Reset("Scheduled")
        return call_result.Reset("Accepted")

    @after("Reset")
    async def do_reset(self, type, evse_id=None, **_):  # noqa: A002
        if evse_id is None and not self.reset_scheduled:
            await self.station.reboot("RemoteReset", flush=True)

    def station_idle(self) -> bool:
        """The last transaction ended: a Reset(OnIdle) that waited for it reboots now."""
        if not self.reset_scheduled:
            return False
        self.station.spawn(self.station.reboot("RemoteReset", flush=True))
        return True
