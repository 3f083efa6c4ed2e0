"""Meter values: J02 sampled values in TransactionEvents, MeterValues on TriggerMessage (F06).

During a transaction the station samples its meter every TxUpdatedInterval seconds
(SampledDataCtrlr), and when a transaction starts, ends or is triggered, reading the
measurands the matching SampledDataCtrlr variable lists.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from ..block import Block
from ..physical.meter import UNITS
from ..protocol import utc_now

if TYPE_CHECKING:
    from ..physical.ev import Ev
    from ..physical.evse import Evse
    from ..physical.meter import Meter

# Seconds between looks at TxUpdatedInterval while it is 0 (no periodic samples).
_IDLE_LOOK_S = 5


def sampled_values(meter: Meter, measurands: list[str], context: str, ev: Ev | None) -> list[dict]:
    """SampledValueType items (camelCase) for the measurands the meter can read."""
    readings = meter.readings(ev)
    values = []
    for measurand in measurands:
        if measurand not in readings:
            continue
        item = {"value": readings[measurand], "context": context, "measurand": measurand}
        item["unitOfMeasure"] = {"unit": UNITS[measurand]}
        if measurand == "SoC":
            item["location"] = "EV"
        values.append(item)
    return values


class MeterValues(Block):
    __slots__ = ()

    def transaction_sample(
        self, evse: Evse, measurands_variable: str, context: str
    ) -> list[dict] | None:
        """J02: the meterValue of a TransactionEvent, or None when there is nothing to send."""
        dm = self.station.device_model
        if not dm.get_bool("SampledDataCtrlr", "Enabled"):
            return None
        measurands = dm.get_list("SampledDataCtrlr", measurands_variable)
        values = sampled_values(evse.meter, measurands, context, evse.ev)
        if not values:
            return None
        return [{"timestamp": utc_now(), "sampledValue": values}]

    async def periodic(self, evse: Evse) -> None:
        """J02: an Updated TransactionEvent every TxUpdatedInterval while the transaction runs."""
        station = self.station
        dm = station.device_model
        while evse.transaction is not None:
            interval = dm.get_int("SampledDataCtrlr", "TxUpdatedInterval")
            if interval <= 0:
                # 0 means no periodic samples; look again later in case it changes.
                await asyncio.sleep(_IDLE_LOOK_S)
                continue
            await asyncio.sleep(interval)
            if evse.transaction is None:
                return
            evse.update_meter()
            state_moved = evse.transaction.charging_state != evse.charging_state()
            station.transactions.event(evse, "Updated", "MeterValuePeriodic",
                                       meter=("TxUpdatedMeasurands", "Sample.Periodic"))
            if state_moved:
                station.report_evse(evse)

    async def send_triggered(self, evse: Evse) -> None:
        """F06 TriggerMessage(MeterValues): the AlignedDataCtrlr measurands, read now."""
        station = self.station
        evse.update_meter()
        values = sampled_values(
            evse.meter,
            station.device_model.get_list("AlignedDataCtrlr", "Measurands")
            or ["Energy.Active.Import.Register"],
            "Trigger",
            evse.ev,
        )
        await station.call_action("MeterValues", {
            "evseId": evse.id,
            "meterValue": [{"timestamp": utc_now(), "sampledValue": values}],
        })
