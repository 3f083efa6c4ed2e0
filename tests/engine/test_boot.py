"""B01-B03 and G01/G02: boot, status at boot, heartbeat."""

import asyncio

import pytest
from ocpp.exceptions import SecurityError
from ocpp.v201 import call

from .conftest import wait_until


async def test_it_boots_and_reports_every_connector(csms, fleet):
    await fleet.start(evses=2, connectors=2, serial_number="SN-1")
    boot = (await csms.wait_for("BootNotification", "CS-1"))[0]
    assert boot["reason"] == "PowerUp"
    assert boot["chargingStation"]["serialNumber"] == "SN-1"
    statuses = await csms.wait_for("StatusNotification", "CS-1", count=4)
    assert {(s["evseId"], s["connectorId"]) for s in statuses} == {(1, 1), (1, 2), (2, 1), (2, 2)}
    assert {s["connectorStatus"] for s in statuses} == {"Available"}


async def test_pending_retries_after_the_interval_and_sends_nothing_else(csms, fleet):
    csms.policy.boot_statuses = ["Pending"]
    csms.policy.boot_interval = 1
    station = await fleet.start(boot=False)
    await csms.wait_for("BootNotification", "CS-1")
    assert station.provisioning.boot_status == "Pending"
    # While Pending the CSMS may configure the station; the station answers.
    answer = await csms.call(
        "CS-1",
        call.GetVariables(
            get_variable_data=[
                {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}
            ]
        ),
    )
    assert answer.get_variable_result[0]["attribute_status"] == "Accepted"
    boots = await csms.wait_for("BootNotification", "CS-1", count=2, timeout=3)
    gap = csms.received[-1].at - csms.received[0].at
    assert len(boots) == 2 and gap >= 0.9
    await wait_until(lambda: station.online)
    await csms.wait_for("StatusNotification", "CS-1")
    first_status = next(i for i, r in enumerate(csms.received) if r.action == "StatusNotification")
    second_boot = [i for i, r in enumerate(csms.received) if r.action == "BootNotification"][1]
    assert first_status > second_boot, "no StatusNotification while Pending"


async def test_a_triggered_boot_ends_pending_early(csms, fleet):
    csms.policy.boot_statuses = ["Pending"]
    csms.policy.boot_interval = 60
    station = await fleet.start(boot=False)
    await csms.wait_for("BootNotification", "CS-1")
    answer = await csms.call("CS-1", call.TriggerMessage(requested_message="BootNotification"))
    assert answer.status == "Accepted"
    boots = await csms.wait_for("BootNotification", "CS-1", count=2, timeout=3)
    assert boots[1]["reason"] == "Triggered"
    await wait_until(lambda: station.online)


async def test_rejected_station_stays_silent_until_the_interval(csms, fleet):
    csms.policy.boot_statuses = ["Rejected"]
    csms.policy.boot_interval = 2
    station = await fleet.start(boot=False)
    await csms.wait_for("BootNotification", "CS-1")
    # B03.FR.08: while Rejected, CSMS requests get a SecurityError and nothing else.
    with pytest.raises(SecurityError):
        await csms.call("CS-1", call.GetBaseReport(request_id=1, report_base="FullInventory"))
    assert [r.action for r in csms.received] == ["BootNotification"]
    await csms.wait_for("BootNotification", "CS-1", count=2, timeout=4)
    gap = [r.at for r in csms.received if r.action == "BootNotification"]
    assert gap[1] - gap[0] >= 1.9
    await wait_until(lambda: station.online)


async def test_heartbeat_follows_the_boot_interval_and_heartbeat_interval(csms, fleet):
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
