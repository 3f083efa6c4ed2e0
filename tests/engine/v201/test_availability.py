"""Availability: G02 Heartbeat, G03/G04 ChangeAvailability (G01 status at boot: provisioning)."""

import asyncio

from ocpp.v201 import call


async def test_g02_heartbeat_follows_the_boot_interval_and_heartbeat_interval(csms, fleet):
    csms.policy.boot_interval = 1
    await fleet.start()
    beats = await csms.wait_for("Heartbeat", "CS-1", count=2, timeout=4)
    assert len(beats) >= 2
    answer = await csms.call(
        "CS-1",
        call.SetVariables(
            set_variable_data=[
                {
                    "component": {"name": "OCPPCommCtrlr"},
                    "variable": {"name": "HeartbeatInterval"},
                    "attribute_value": "30",
                }
            ]
        ),
    )
    assert answer.set_variable_result[0]["attribute_status"] == "Accepted"
    await asyncio.sleep(0.3)  # a beat already on its way when the change came may land
    counted = len(csms.messages("CS-1", "Heartbeat"))
    await asyncio.sleep(2.2)
    assert len(csms.messages("CS-1", "Heartbeat")) == counted, "30 s interval now applies"


async def test_g03_change_availability_takes_an_evse_out_of_service(csms, fleet):
    station = await fleet.start(evses=2)
    await csms.wait_for("StatusNotification", "CS-1", count=2)
    answer = await csms.call(
        "CS-1", call.ChangeAvailability(operational_status="Inoperative", evse={"id": 2})
    )
    assert answer.status == "Accepted"
    unavailable = await csms.wait_for(
        "StatusNotification", "CS-1", where=lambda s: s["connectorStatus"] == "Unavailable"
    )
    assert unavailable[0]["evseId"] == 2
    assert not (await station.present_id_token(2, "04A1B2C3")).ok
    persisted = [d for _, kind, d in fleet.events if kind == "variable"]
    assert {"key": "Availability/EVSE[2]", "value": "Inoperative"} in persisted
    missing = await csms.call(
        "CS-1", call.ChangeAvailability(operational_status="Inoperative", evse={"id": 9})
    )
    assert missing.status == "Rejected"


async def test_g04_change_availability_of_the_station_is_scheduled_during_a_transaction(
    csms, fleet
):
    station = await fleet.start(evses=2)
    await station.present_id_token(1, "04A1B2C3")
    await station.plug_in(1)
    answer = await csms.call("CS-1", call.ChangeAvailability(operational_status="Inoperative"))
    assert answer.status == "Scheduled"
    await station.unplug(1)
    statuses = await csms.wait_for(
        "StatusNotification", "CS-1", where=lambda s: s["connectorStatus"] == "Unavailable",
        count=2,
    )
    assert {s["evseId"] for s in statuses} == {1, 2}
    back = await csms.call("CS-1", call.ChangeAvailability(operational_status="Operative"))
    assert back.status == "Accepted"
    await csms.wait_for(
        "StatusNotification", "CS-1", where=lambda s: s["connectorStatus"] == "Available",
        count=4,
    )
