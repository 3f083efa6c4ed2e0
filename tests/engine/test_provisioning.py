"""B05-B07 device model over OCPP, B11/B12 Reset, G03/G04 availability, F05, F06."""

import pytest
from ocpp.v201 import call

from stations.engine.station import Station

from .conftest import wait_until


def var(component, name, value=None, **extra):
    item = {"component": {"name": component}, "variable": {"name": name}, **extra}
    if value is not None:
        item["attribute_value"] = value
    return item


async def test_set_variables_changes_are_reported_and_survive_a_restart(csms, fleet):
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


async def test_get_variables_answers_per_evse_components(csms, fleet):
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


async def test_get_base_report_sends_a_full_inventory_in_numbered_parts(csms, fleet):
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


async def test_an_unknown_report_base_is_not_supported(csms, fleet):
    await fleet.start()
    answer = await csms.call(
        "CS-1", call.GetBaseReport(request_id=1, report_base="SummaryInventory")
    )
    assert answer.status == "Accepted"
    summary = await csms.wait_for("NotifyReport", "CS-1")
    names = {d["variable"]["name"] for d in summary[0]["reportData"]}
    assert names <= {"AvailabilityState", "Available"}


async def test_reset_immediate_without_a_transaction_reboots(csms, fleet):
    station = await fleet.start()
    answer = await csms.call("CS-1", call.Reset(type="Immediate"))
    assert answer.status == "Accepted"
    boots = await csms.wait_for("BootNotification", "CS-1", count=2, timeout=5)
    assert boots[1]["reason"] == "RemoteReset"
    await wait_until(lambda: station.online)


async def test_reset_immediate_ends_the_running_transaction_first(csms, fleet):
    station = await fleet.start()
    await station.present_id_token(1, "TOKEN-1")
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


async def test_reset_on_idle_waits_for_the_transaction_to_end(csms, fleet):
    station = await fleet.start()
    await station.present_id_token(1, "TOKEN-1")
    await station.plug_in(1)
    assert (await csms.call("CS-1", call.Reset(type="OnIdle"))).status == "Scheduled"
    assert len(csms.messages("CS-1", "BootNotification")) == 1
    await station.present_id_token(1, "TOKEN-1")
    boots = await csms.wait_for("BootNotification", "CS-1", count=2, timeout=5)
    assert boots[1]["reason"] == "RemoteReset"
    ended = csms.messages("CS-1", "TransactionEvent")[-1]
    assert ended["transactionInfo"]["stoppedReason"] == "Local"


async def test_change_availability_of_an_evse(csms, fleet):
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
    assert not (await station.present_id_token(2, "TOKEN-1")).ok
    persisted = [d for _, kind, d in fleet.events if kind == "variable"]
    assert {"key": "Availability/EVSE[2]", "value": "Inoperative"} in persisted
    missing = await csms.call(
        "CS-1", call.ChangeAvailability(operational_status="Inoperative", evse={"id": 9})
    )
    assert missing.status == "Rejected"


async def test_change_availability_of_the_station_is_scheduled_during_a_transaction(
    csms, fleet
):
    station = await fleet.start(evses=2)
    await station.present_id_token(1, "TOKEN-1")
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


async def test_unlock_connector(csms, fleet):
    station = await fleet.start()
    unlocked = await csms.call("CS-1", call.UnlockConnector(evse_id=1, connector_id=1))
    assert unlocked.status == "Unlocked"
    unknown = await csms.call("CS-1", call.UnlockConnector(evse_id=1, connector_id=5))
    assert unknown.status == "UnknownConnector"
    await station.present_id_token(1, "TOKEN-1")
    await station.plug_in(1)
    busy = await csms.call("CS-1", call.UnlockConnector(evse_id=1, connector_id=1))
    assert busy.status == "OngoingAuthorizedTransaction"


@pytest.mark.parametrize(
    "requested, action",
    [
        ("Heartbeat", "Heartbeat"),
        ("StatusNotification", "StatusNotification"),
        ("MeterValues", "MeterValues"),
        ("FirmwareStatusNotification", "FirmwareStatusNotification"),
        ("LogStatusNotification", "LogStatusNotification"),
    ],
)
async def test_trigger_message_sends_what_was_asked(csms, fleet, requested, action):
    await fleet.start()
    before = len(csms.messages("CS-1", action))
    answer = await csms.call(
        "CS-1", call.TriggerMessage(requested_message=requested, evse={"id": 1, "connector_id": 1})
    )
    assert answer.status == "Accepted"
    await csms.wait_for("CS-1" and action, "CS-1", count=before + 1)


async def test_trigger_message_refusals(csms, fleet):
    station = await fleet.start()
    boot = await csms.call("CS-1", call.TriggerMessage(requested_message="BootNotification"))
    assert boot.status == "Rejected", "an accepted station does not boot again on request"
    tx = await csms.call("CS-1", call.TriggerMessage(requested_message="TransactionEvent"))
    assert tx.status == "Rejected", "no transaction to report"
    sign = await csms.call(
        "CS-1", call.TriggerMessage(requested_message="SignChargingStationCertificate")
    )
    assert sign.status == "NotImplemented"
    await station.present_id_token(1, "TOKEN-1")
    await station.plug_in(1)
    await csms.wait_for("TransactionEvent", "CS-1")
    tx = await csms.call(
        "CS-1", call.TriggerMessage(requested_message="TransactionEvent", evse={"id": 1})
    )
    assert tx.status == "Accepted"
    triggered = await csms.wait_for(
        "TransactionEvent", "CS-1", where=lambda e: e["triggerReason"] == "Trigger"
    )
    assert triggered[0]["meterValue"][0]["sampledValue"][0]["context"] == "Trigger"


async def test_get_transaction_status_reports_queue_and_ongoing(csms, fleet):
    station = await fleet.start()
    await station.present_id_token(1, "TOKEN-1")
    await station.plug_in(1)
    started = (await csms.wait_for("TransactionEvent", "CS-1"))[0]
    tx_id = started["transactionInfo"]["transactionId"]
    answer = await csms.call("CS-1", call.GetTransactionStatus(transaction_id=tx_id))
    assert answer.ongoing_indicator is True
    assert answer.messages_in_queue is False
    await station.unplug(1)
    await csms.wait_for("TransactionEvent", "CS-1", count=2)
    answer = await csms.call("CS-1", call.GetTransactionStatus(transaction_id=tx_id))
    assert answer.ongoing_indicator is False


async def test_data_transfer_from_an_unknown_vendor_is_declined(csms, fleet):
    await fleet.start()
    answer = await csms.call("CS-1", call.DataTransfer(vendor_id="com.example"))
    assert answer.status == "UnknownVendorId"
