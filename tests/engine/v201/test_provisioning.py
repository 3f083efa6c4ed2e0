"""Provisioning: B01-B03 boot, B05-B07 the device model over OCPP, B11/B12 Reset."""

import pytest
from ocpp.exceptions import SecurityError
from ocpp.v201 import call

from stations.engine.station import Station
from tests.engine.conftest import wait_until


async def test_b01_a_cold_boot_reports_every_connector(csms, fleet):
    await fleet.start(evses=2, connectors=2, serial_number="SN-1")
    boot = (await csms.wait_for("BootNotification", "CS-1"))[0]
    assert boot["reason"] == "PowerUp"
    assert boot["chargingStation"]["serialNumber"] == "SN-1"
    statuses = await csms.wait_for("StatusNotification", "CS-1", count=4)
    assert {(s["evseId"], s["connectorId"]) for s in statuses} == {(1, 1), (1, 2), (2, 1), (2, 2)}
    assert {s["connectorStatus"] for s in statuses} == {"Available"}


async def test_b02_pending_retries_after_the_interval_and_sends_nothing_else(csms, fleet):
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


async def test_b02_a_triggered_boot_ends_pending_early(csms, fleet):
    csms.policy.boot_statuses = ["Pending"]
    csms.policy.boot_interval = 60
    station = await fleet.start(boot=False)
    await csms.wait_for("BootNotification", "CS-1")
    answer = await csms.call("CS-1", call.TriggerMessage(requested_message="BootNotification"))
    assert answer.status == "Accepted"
    boots = await csms.wait_for("BootNotification", "CS-1", count=2, timeout=3)
    assert boots[1]["reason"] == "Triggered"
    await wait_until(lambda: station.online)


async def test_b03_a_rejected_station_stays_silent_until_the_interval(csms, fleet):
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


def var(component, name, value=None, **extra):
    item = {"component": {"name": component}, "variable": {"name": name}, **extra}
    if value is not None:
        item["attribute_value"] = value
    return item


async def test_b05_set_variables_changes_are_reported_and_survive_a_restart(csms, fleet):
    station = await fleet.start()
    answer = await csms.call(
        "CS-1",
        call.SetVariables(
            set_variable_data=[
                var("SampledDataCtrlr", "TxUpdatedInterval", "15"),
                var("OCPPCommCtrlr", "HeartbeatInterval", "-5"),
                var("ChargingStation", "Model", "Other"),
                var("NoSuchThing", "X", "1"),
                var("TxCtrlr", "Nope", "1"),
            ]
        ),
    )
    statuses = [r["attribute_status"] for r in answer.set_variable_result]
    assert statuses == ["Accepted", "Rejected", "Rejected", "UnknownComponent", "UnknownVariable"]
    persisted = [data for _, kind, data in fleet.events if kind == "variable"]
    assert {"key": "SampledDataCtrlr/TxUpdatedInterval/Actual", "value": "15"} in persisted

    # The engine's caller stores what it reported; a new station starts from it.
    restarted = Station(fleet.config(variables={p["key"]: p["value"] for p in persisted}))
    assert restarted.device_model.get_int("SampledDataCtrlr", "TxUpdatedInterval") == 15
    read = await csms.call(
        "CS-1", call.GetVariables(get_variable_data=[var("SampledDataCtrlr", "TxUpdatedInterval")])
    )
    assert read.get_variable_result[0]["attribute_value"] == "15"
    assert station.device_model.get_int("SampledDataCtrlr", "TxUpdatedInterval") == 15


async def test_b06_get_variables_answers_per_evse_components(csms, fleet):
    await fleet.start(evses=2)
    answer = await csms.call(
        "CS-1",
        call.GetVariables(
            get_variable_data=[
                {"component": {"name": "EVSE", "evse": {"id": 2}}, "variable": {"name": "Power"},
                 "attribute_type": "MaxSet"},
                {"component": {"name": "EVSE", "evse": {"id": 3}}, "variable": {"name": "Power"}},
                var("OCPPCommCtrlr", "HeartbeatInterval", attribute_type="MaxSet"),
            ]
        ),
    )
    first, missing, unsupported = answer.get_variable_result
    assert first["attribute_status"] == "Accepted" and float(first["attribute_value"]) == 22000
    assert missing["attribute_status"] == "UnknownComponent"
    assert unsupported["attribute_status"] == "NotSupportedAttributeType"


async def test_b07_get_base_report_sends_a_full_inventory_in_numbered_parts(csms, fleet):
    await fleet.start(evses=2, connectors=2)
    answer = await csms.call(
        "CS-1", call.GetBaseReport(request_id=77, report_base="FullInventory")
    )
    assert answer.status == "Accepted"
    await csms.wait_for("NotifyReport", "CS-1", where=lambda r: not r.get("tbc", False))
    reports = csms.messages("CS-1", "NotifyReport")
    assert len(reports) > 1
    assert [r["seqNo"] for r in reports] == list(range(len(reports)))
    assert all(r["tbc"] for r in reports[:-1]) and not reports[-1]["tbc"]
    assert {r["requestId"] for r in reports} == {77}
    components = {
        (d["component"]["name"], d["component"].get("evse", {}).get("connectorId"))
        for r in reports for d in r["reportData"]
    }
    for expected in ["OCPPCommCtrlr", "TxCtrlr", "AuthCtrlr", "SampledDataCtrlr",
                     "AlignedDataCtrlr", "SecurityCtrlr", "DeviceDataCtrlr", "ChargingStation"]:
        assert (expected, None) in components
    assert ("Connector", 2) in components


async def test_b07_a_summary_inventory_reports_only_availability(csms, fleet):
    await fleet.start()
    answer = await csms.call(
        "CS-1", call.GetBaseReport(request_id=1, report_base="SummaryInventory")
    )
    assert answer.status == "Accepted"
    summary = await csms.wait_for("NotifyReport", "CS-1")
    names = {d["variable"]["name"] for d in summary[0]["reportData"]}
    assert names <= {"AvailabilityState", "Available"}


async def test_b11_reset_immediate_without_a_transaction_reboots(csms, fleet):
    station = await fleet.start()
    answer = await csms.call("CS-1", call.Reset(type="Immediate"))
    assert answer.status == "Accepted"
    boots = await csms.wait_for("BootNotification", "CS-1", count=2, timeout=5)
    assert boots[1]["reason"] == "RemoteReset"
    await wait_until(lambda: station.online)


async def test_b12_reset_immediate_ends_the_running_transaction_first(csms, fleet):
    station = await fleet.start()
    await station.present_id_token(1, "04A1B2C3")
    await station.plug_in(1)
    await csms.wait_for("TransactionEvent", "CS-1")
    assert (await csms.call("CS-1", call.Reset(type="Immediate"))).status == "Accepted"
    boots = await csms.wait_for("BootNotification", "CS-1", count=2, timeout=5)
    ended = csms.messages("CS-1", "TransactionEvent")[-1]
    assert ended["eventType"] == "Ended"
    assert ended["triggerReason"] == "ResetCommand"
    assert ended["transactionInfo"]["stoppedReason"] == "ImmediateReset"
    order = [r.action for r in csms.received]
    assert order.index("BootNotification", 1) > len(order) - 1 - order[::-1].index(
        "TransactionEvent"), "Ended goes out before the reboot"
    assert boots[1]["reason"] == "RemoteReset"
    # The EV is still plugged in after the reboot: its connector reports Occupied.
    await csms.wait_for(
        "StatusNotification", "CS-1", where=lambda s: s["connectorStatus"] == "Occupied",
        count=2,
    )


async def test_b12_reset_on_idle_waits_for_the_transaction_to_end(csms, fleet):
    station = await fleet.start()
    await station.present_id_token(1, "04A1B2C3")
    await station.plug_in(1)
    assert (await csms.call("CS-1", call.Reset(type="OnIdle"))).status == "Scheduled"
    assert len(csms.messages("CS-1", "BootNotification")) == 1
    await station.present_id_token(1, "04A1B2C3")
    boots = await csms.wait_for("BootNotification", "CS-1", count=2, timeout=5)
    assert boots[1]["reason"] == "RemoteReset"
    ended = csms.messages("CS-1", "TransactionEvent")[-1]
    assert ended["transactionInfo"]["stoppedReason"] == "Local"
