"""E01-E03, E05-E07, E09, C01, J02: transactions started and stopped at the station."""

import pytest

from .conftest import wait_until


def tx_events(csms, station_id="CS-1"):
    return csms.messages(station_id, "TransactionEvent")


def variables(**values):
    return {f"{name.replace('.', '/')}/Actual": value for name, value in values.items()}


async def test_cable_first_starts_on_plug_in_and_charges_after_authorization(csms, fleet):
    station = await fleet.start(
        variables=variables(**{"TxCtrlr.TxStartPoint": "EVConnected,Authorized"})
    )
    assert (await station.plug_in(1)).ok
    started = (await csms.wait_for("TransactionEvent", "CS-1"))[0]
    assert started["eventType"] == "Started"
    assert started["triggerReason"] == "CablePluggedIn"
    assert started["transactionInfo"]["chargingState"] == "EVConnected"
    assert started["seqNo"] == 0
    assert "idToken" not in started
    occupied = await csms.wait_for(
        "StatusNotification", "CS-1", where=lambda s: s["connectorStatus"] == "Occupied"
    )
    assert occupied[0]["evseId"] == 1

    outcome = await station.present_id_token(1, "TOKEN-1")
    assert outcome.ok
    authorize = (await csms.wait_for("Authorize", "CS-1"))[0]
    assert authorize["idToken"] == {"idToken": "TOKEN-1", "type": "ISO14443"}
    updated = (await csms.wait_for("TransactionEvent", "CS-1", count=2))[1]
    assert updated["eventType"] == "Updated"
    assert updated["triggerReason"] == "Authorized"
    assert updated["idToken"]["idToken"] == "TOKEN-1"
    assert updated["transactionInfo"]["chargingState"] == "Charging"
    assert updated["seqNo"] == 1
    assert updated["transactionInfo"]["transactionId"] == started["transactionInfo"][
        "transactionId"
    ]


async def test_id_token_first_starts_when_the_cable_closes_the_power_path(csms, fleet):
    station = await fleet.start()  # TxStartPoint defaults to PowerPathClosed
    assert (await station.present_id_token(1, "TOKEN-1")).ok
    await csms.wait_for("Authorize", "CS-1")
    assert tx_events(csms) == []
    await station.plug_in(1)
    started = (await csms.wait_for("TransactionEvent", "CS-1"))[0]
    assert started["eventType"] == "Started"
    assert started["triggerReason"] == "CablePluggedIn"
    assert started["idToken"]["idToken"] == "TOKEN-1"
    assert started["transactionInfo"]["chargingState"] == "Charging"
    sampled = started["meterValue"][0]["sampledValue"]
    assert sampled[0]["measurand"] == "Energy.Active.Import.Register"
    assert sampled[0]["context"] == "Transaction.Begin"


async def test_a_rejected_token_gets_no_energy(csms, fleet):
    csms.policy.rejected_tokens.add("BAD")
    station = await fleet.start()
    await station.plug_in(1)
    outcome = await station.present_id_token(1, "BAD")
    assert not outcome.ok
    assert outcome.status == "Invalid"
    assert station.evses[1].charging_state() == "EVConnected"
    assert tx_events(csms) == []


async def test_the_same_token_stops_the_transaction(csms, fleet):
    station = await fleet.start()
    await station.present_id_token(1, "TOKEN-1")
    await station.plug_in(1)
    await csms.wait_for("TransactionEvent", "CS-1")
    outcome = await station.present_id_token(1, "TOKEN-1")
    assert outcome.status == "Stopped"
    ended = (await csms.wait_for("TransactionEvent", "CS-1", count=2))[1]
    assert ended["eventType"] == "Ended"
    assert ended["triggerReason"] == "StopAuthorized"
    assert ended["transactionInfo"]["stoppedReason"] == "Local"
    assert ended["seqNo"] == 1
    assert ended["meterValue"][0]["sampledValue"][0]["context"] == "Transaction.End"
    assert len(csms.messages("CS-1", "Authorize")) == 1, "stopping with the same card asks no one"


async def test_another_token_cannot_stop_a_session(csms, fleet):
    station = await fleet.start()
    await station.present_id_token(1, "TOKEN-1")
    await station.plug_in(1)
    outcome = await station.present_id_token(1, "TOKEN-2")
    assert not outcome.ok
    assert station.evses[1].transaction is not None


async def test_unplugging_on_the_ev_side_ends_the_transaction(csms, fleet):
    station = await fleet.start()
    await station.present_id_token(1, "TOKEN-1")
    await station.plug_in(1)
    await station.unplug(1)
    ended = (await csms.wait_for("TransactionEvent", "CS-1", count=2))[1]
    assert ended["eventType"] == "Ended"
    assert ended["triggerReason"] == "EVCommunicationLost"
    assert ended["transactionInfo"]["stoppedReason"] == "EVDisconnected"
    assert ended["transactionInfo"]["chargingState"] == "Idle"
    await csms.wait_for(
        "StatusNotification", "CS-1", where=lambda s: s["connectorStatus"] == "Available", count=2
    )


async def test_tx_stop_point_ev_connected_keeps_the_session_until_unplug(csms, fleet):
    station = await fleet.start(
        variables=variables(**{"TxCtrlr.TxStopPoint": "EVConnected"})
    )
    await station.present_id_token(1, "TOKEN-1")
    await station.plug_in(1)
    await station.present_id_token(1, "TOKEN-1")
    updated = (await csms.wait_for("TransactionEvent", "CS-1", count=2))[1]
    assert updated["eventType"] == "Updated"
    assert updated["triggerReason"] == "StopAuthorized"
    assert updated["transactionInfo"]["chargingState"] == "EVConnected"
    await station.unplug(1)
    ended = (await csms.wait_for("TransactionEvent", "CS-1", count=3))[2]
    assert ended["eventType"] == "Ended"
    assert ended["transactionInfo"]["stoppedReason"] == "EVDisconnected"


async def test_tx_start_point_authorized_starts_before_the_cable(csms, fleet):
    station = await fleet.start(variables=variables(**{"TxCtrlr.TxStartPoint": "Authorized"}))
    await station.present_id_token(1, "TOKEN-1")
    started = (await csms.wait_for("TransactionEvent", "CS-1"))[0]
    assert started["triggerReason"] == "Authorized"
    assert started["transactionInfo"]["chargingState"] == "Idle"
    await station.plug_in(1)
    updated = (await csms.wait_for("TransactionEvent", "CS-1", count=2))[1]
    assert updated["triggerReason"] == "CablePluggedIn"
    assert updated["transactionInfo"]["chargingState"] == "Charging"


async def test_meter_values_follow_tx_updated_interval_with_rising_energy(csms, fleet):
    station = await fleet.start(
        variables=variables(**{"SampledDataCtrlr.TxUpdatedInterval": "1"}),
        time_scale=60.0,
    )
    await station.present_id_token(1, "TOKEN-1")
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


async def test_an_ev_that_stops_drawing_power_is_suspended_ev(csms, fleet):
    station = await fleet.start()
    await station.present_id_token(1, "TOKEN-1")
    await station.plug_in(1)
    await station.set_ev_drawing(1, False)
    updated = (await csms.wait_for("TransactionEvent", "CS-1", count=2))[1]
    assert updated["triggerReason"] == "ChargingStateChanged"
    assert updated["transactionInfo"]["chargingState"] == "SuspendedEV"


async def test_csms_rejecting_the_token_in_a_transaction_event_deauthorizes(csms, fleet):
    csms.policy.rejected_tokens.add("LATE-BLOCK")
    station = await fleet.start(
        variables=variables(**{"AuthCtrlr.Enabled": "false"})
    )
    await station.present_id_token(1, "LATE-BLOCK")
    await station.plug_in(1)
    ended = await csms.wait_for(
        "TransactionEvent", "CS-1", where=lambda e: e["eventType"] == "Ended"
    )
    assert ended[0]["triggerReason"] == "Deauthorized"
    assert ended[0]["transactionInfo"]["stoppedReason"] == "DeAuthorized"


@pytest.mark.parametrize("authorize_remote_start", ["true", "false"])
async def test_remote_start_then_plug_in(csms, fleet, authorize_remote_start):
    from ocpp.v201 import call

    station = await fleet.start(
        variables=variables(**{"AuthCtrlr.AuthorizeRemoteStart": authorize_remote_start})
    )
    response = await csms.call(
        "CS-1",
        call.RequestStartTransaction(
            id_token={"id_token": "REMOTE-1", "type": "Central"}, remote_start_id=42, evse_id=1
        ),
    )
    assert response.status == "Accepted"
    await wait_until(lambda: station.evses[1].id_token is not None)
    asked = len(csms.messages("CS-1", "Authorize"))
    assert asked == (1 if authorize_remote_start == "true" else 0)
    await station.plug_in(1)
    started = (await csms.wait_for("TransactionEvent", "CS-1"))[0]
    assert started["transactionInfo"]["remoteStartId"] == 42
    assert started["idToken"] == {"idToken": "REMOTE-1", "type": "Central"}

    stop = await csms.call(
        "CS-1",
        call.RequestStopTransaction(transaction_id=started["transactionInfo"]["transactionId"]),
    )
    assert stop.status == "Accepted"
    ended = (await csms.wait_for("TransactionEvent", "CS-1", count=2))[1]
    assert ended["triggerReason"] == "RemoteStop"
    assert ended["transactionInfo"]["stoppedReason"] == "Remote"


async def test_remote_start_on_a_plugged_in_ev_reports_the_transaction(csms, fleet):
    from ocpp.v201 import call

    station = await fleet.start(
        variables=variables(**{"TxCtrlr.TxStartPoint": "EVConnected"})
    )
    await station.plug_in(1)
    started = (await csms.wait_for("TransactionEvent", "CS-1"))[0]
    response = await csms.call(
        "CS-1",
        call.RequestStartTransaction(
            id_token={"id_token": "REMOTE-2", "type": "Central"}, remote_start_id=7
        ),
    )
    assert response.transaction_id == started["transactionInfo"]["transactionId"]
    updated = (await csms.wait_for("TransactionEvent", "CS-1", count=2))[1]
    assert updated["triggerReason"] == "RemoteStart"
    assert updated["transactionInfo"]["remoteStartId"] == 7
    assert updated["transactionInfo"]["chargingState"] == "Charging"


async def test_remote_stop_of_an_unknown_transaction_is_rejected(csms, fleet):
    from ocpp.v201 import call

    await fleet.start()
    response = await csms.call("CS-1", call.RequestStopTransaction(transaction_id="nope"))
    assert response.status == "Rejected"


async def test_remote_start_without_an_ev_times_out(csms, fleet):
    from ocpp.v201 import call

    station = await fleet.start(
        variables=variables(**{"TxCtrlr.EVConnectionTimeOut": "1",
                               "TxCtrlr.TxStartPoint": "Authorized"})
    )
    await csms.call(
        "CS-1",
        call.RequestStartTransaction(
            id_token={"id_token": "REMOTE-3", "type": "Central"}, remote_start_id=9
        ),
    )
    ended = await csms.wait_for(
        "TransactionEvent", "CS-1", where=lambda e: e["eventType"] == "Ended", timeout=5
    )
    assert ended[0]["triggerReason"] == "EVConnectTimeout"
    assert ended[0]["transactionInfo"]["stoppedReason"] == "Timeout"
    assert station.evses[1].id_token is None
