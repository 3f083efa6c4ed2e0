"""Remote control: F01-F03 remote start and stop, F05 UnlockConnector, F06 TriggerMessage."""

import pytest
from ocpp.v201 import call

from tests.engine.conftest import variables, wait_until


async def test_f01_remote_start_on_a_plugged_in_ev_reports_the_transaction(csms, fleet):
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


@pytest.mark.parametrize("authorize_remote_start", ["true", "false"])
async def test_f02_f03_remote_start_then_plug_in_then_remote_stop(
    csms, fleet, authorize_remote_start
):
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
    assert "idToken" not in ended, "no driver ended it: the CSMS did"


async def test_f02_remote_start_without_an_ev_times_out(csms, fleet):
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


async def test_f03_remote_stop_of_an_unknown_transaction_is_rejected(csms, fleet):
    await fleet.start()
    response = await csms.call("CS-1", call.RequestStopTransaction(transaction_id="nope"))
    assert response.status == "Rejected"


async def test_f05_unlock_connector_unlocks_a_known_connector_with_no_transaction(csms, fleet):
    station = await fleet.start()
    unlocked = await csms.call("CS-1", call.UnlockConnector(evse_id=1, connector_id=1))
    assert unlocked.status == "Unlocked"
    unknown = await csms.call("CS-1", call.UnlockConnector(evse_id=1, connector_id=5))
    assert unknown.status == "UnknownConnector"
    await station.present_id_token(1, "04A1B2C3")
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
async def test_f06_trigger_message_sends_what_was_asked(csms, fleet, requested, action):
    await fleet.start()
    before = len(csms.messages("CS-1", action))
    answer = await csms.call(
        "CS-1", call.TriggerMessage(requested_message=requested, evse={"id": 1, "connector_id": 1})
    )
    assert answer.status == "Accepted"
    await csms.wait_for("CS-1" and action, "CS-1", count=before + 1)


async def test_f06_trigger_message_refuses_what_it_cannot_send(csms, fleet):
    station = await fleet.start()
    boot = await csms.call("CS-1", call.TriggerMessage(requested_message="BootNotification"))
    assert boot.status == "Rejected", "an accepted station does not boot again on request"
    tx = await csms.call("CS-1", call.TriggerMessage(requested_message="TransactionEvent"))
    assert tx.status == "Rejected", "no transaction to report"
    sign = await csms.call(
        "CS-1", call.TriggerMessage(requested_message="SignChargingStationCertificate")
    )
    assert sign.status == "NotImplemented"
    await station.present_id_token(1, "04A1B2C3")
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
