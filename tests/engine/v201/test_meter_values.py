"""Meter values: J02 sampled values in the TransactionEvents of a running transaction."""

from tests.engine.conftest import variables


async def test_j02_meter_values_follow_tx_updated_interval_with_rising_energy(csms, fleet):
    station = await fleet.start(
        variables=variables(**{"SampledDataCtrlr.TxUpdatedInterval": "1"}),
        time_scale=60.0,
    )
    await station.present_id_token(1, "04A1B2C3")
    await station.plug_in(1)
    events = await csms.wait_for(
        "TransactionEvent", "CS-1", where=lambda e: e["triggerReason"] == "MeterValuePeriodic",
        count=2, timeout=5,
    )
    readings = [
        {v["measurand"]: v for v in e["meterValue"][0]["sampledValue"]} for e in events
    ]
    assert set(readings[0]) == {
        "Energy.Active.Import.Register", "Power.Active.Import", "Current.Import", "Voltage", "SoC"
    }
    first, second = readings
    assert second["Energy.Active.Import.Register"]["value"] > first[
        "Energy.Active.Import.Register"]["value"]
    assert 0 < first["Power.Active.Import"]["value"] <= 22000
    assert first["Energy.Active.Import.Register"]["unitOfMeasure"]["unit"] == "Wh"
    assert second["SoC"]["value"] > first["SoC"]["value"]
    assert first["Power.Active.Import"]["context"] == "Sample.Periodic"
    assert [e["seqNo"] for e in events] == sorted(e["seqNo"] for e in events)
