"""Meter values: MeterValues sent when the CSMS triggers them (F06)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..block import Block
from ..protocol import utc_now

if TYPE_CHECKING:
    from ..evse import Evse


class MeterValues(Block):
    __slots__ = ()

    async def send_triggered(self, evse: Evse) -> None:
        """TriggerMessage(MeterValues): the AlignedDataCtrlr measurands, read now."""
        station = self.station
        evse.update_meter()
        values = evse.meter.sample(
            station.device_model.get_list("AlignedDataCtrlr", "Measurands")
            or ["Energy.Active.Import.Register"],
            "Trigger",
            evse.ev,
        )
        await station.call_action("MeterValues", {
            "evseId": evse.id,
            "meterValue": [{"timestamp": utc_now(), "sampledValue": values}],
        })
