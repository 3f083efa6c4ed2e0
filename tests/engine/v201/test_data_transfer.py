"""Data transfer: P01 DataTransfer from the CSMS."""

from ocpp.v201 import call


async def test_p01_data_transfer_from_an_unknown_vendor_is_declined(csms, fleet):
    await fleet.start()
    answer = await csms.call("CS-1", call.DataTransfer(vendor_id="com.example"))
    assert answer.status == "UnknownVendorId"
