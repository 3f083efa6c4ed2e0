"""Data transfer: P01 DataTransfer from the CSMS. No vendor extensions yet: UnknownVendorId."""

from __future__ import annotations

from ocpp.routing import on
from ocpp.v201 import call_result

from ..block import Block


class DataTransfer(Block):
    __slots__ = ()

    @on("DataTransfer")
    def on_data_transfer(self, vendor_id, **_):
        return call_result.DataTransfer("UnknownVendorId")
