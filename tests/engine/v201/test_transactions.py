"""Transactions: E01-E07, E09, E11-E14 started, stopped and reported at the station."""

from ocpp.v201 import call

from tests.engine.conftest import restart_csms, tx_events, variables, wait_until


async def test_e02_cable_first_starts_on_plug_in_and_charges_after_authorization(csms, fleet):
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

    outcome = await station.present_id_token(1, "04A1B2C3")
    assert outcome.ok
    authorize = (await csms.wait_for("Authorize", "CS-1"))[0]
    assert authorize["idToken"] == {"idToken": "04A1B2C3", "type": "ISO14443"}
    updated = (await csms.wait_for("TransactionEvent", "CS-1", count=2))[1]
    assert updated["eventType"] == "Updated"
    assert updated["triggerReason"] == "Authorized"
    assert updated["idToken"]["idToken"] == "04A1B2C3"
    assert updated["transactionInfo"]["chargingState"] == "Charging"
    assert updated["seqNo"] == 1
    assert updated["transactionInfo"]["transactionId"] == started["transactionInfo"][
        "transactionId"
    ]


async def test_e03_id_token_first_starts_when_the_cable_closes_the_power_path(csms, fleet):
    station = await fleet.start()  # TxStartPoint defaults to PowerPathClosed
    assert (await station.present_id_token(1, "04A1B2C3")).ok
    await csms.wait_for("Authorize", "CS-1")
    assert tx_events(csms) == []
    await station.plug_in(1)
    started = (await csms.wait_for("TransactionEvent", "CS-1"))[0]
    assert started["eventType"] == "Started"
    assert started["triggerReason"] == "CablePluggedIn"
    assert started["idToken"]["idToken"] == "04A1B2C3"
    assert started["transactionInfo"]["chargingState"] == "Charging"
    sampled = started["meterValue"][0]["sampledValue"]
    assert sampled[0]["measurand"] == "Energy.Active.Import.Register"
    assert sampled[0]["context"] == "Transaction.Begin"


async def test_e01_tx_start_point_authorized_starts_before_the_cable(csms, fleet):
    station = await fleet.start(variables=variables(**{"TxCtrlr.TxStartPoint": "Authorized"}))
    await station.present_id_token(1, "04A1B2C3")
    started = (await csms.wait_for("TransactionEvent", "CS-1"))[0]
    assert started["triggerReason"] == "Authorized"
    assert started["transactionInfo"]["chargingState"] == "Idle"
    await station.plug_in(1)
    updated = (await csms.wait_for("TransactionEvent", "CS-1", count=2))[1]
    assert updated["triggerReason"] == "CablePluggedIn"
    assert updated["transactionInfo"]["chargingState"] == "Charging"


async def test_e05_csms_rejecting_the_token_in_a_transaction_event_deauthorizes(csms, fleet):
    csms.policy.rejected_tokens.add("04DEAD01")
    station = await fleet.start(
        variables=variables(**{"AuthCtrlr.Enabled": "false"})
    )
    await station.present_id_token(1, "04DEAD01")
    await station.plug_in(1)
    ended = await csms.wait_for(
        "TransactionEvent", "CS-1", where=lambda e: e["eventType"] == "Ended"
    )
    assert ended[0]["triggerReason"] == "Deauthorized"
    assert ended[0]["transactionInfo"]["stoppedReason"] == "DeAuthorized"


async def test_e06_tx_stop_point_ev_connected_keeps_the_session_until_unplug(csms, fleet):
    station = await fleet.start(
        variables=variables(**{"TxCtrlr.TxStopPoint": "EVConnected"})
    )
    await station.present_id_token(1, "04A1B2C3")
    await station.plug_in(1)
    await station.present_id_token(1, "04A1B2C3")
    updated = (await csms.wait_for("TransactionEvent", "CS-1", count=2))[1]
    assert updated["eventType"] == "Updated"
    assert updated["triggerReason"] == "StopAuthorized"
    assert updated["transactionInfo"]["chargingState"] == "EVConnected"
    # The event that reports the stop names who stopped (TransactionEventRequest.idToken).
    assert updated["idToken"] == {"idToken": "04A1B2C3", "type": "ISO14443"}
    await station.unplug(1)
    ended = (await csms.wait_for("TransactionEvent", "CS-1", count=3))[2]
    assert ended["eventType"] == "Ended"
    assert ended["transactionInfo"]["stoppedReason"] == "EVDisconnected"
    assert "idToken" not in ended, "the driver's stop was reported once, before"


async def test_e07_the_same_token_stops_the_transaction(csms, fleet):
    station = await fleet.start()
    await station.present_id_token(1, "04A1B2C3")
    await station.plug_in(1)
    await csms.wait_for("TransactionEvent", "CS-1")
    outcome = await station.present_id_token(1, "04A1B2C3")
    assert outcome.status == "Stopped"
    ended = (await csms.wait_for("TransactionEvent", "CS-1", count=2))[1]
    assert ended["eventType"] == "Ended"
    assert ended["triggerReason"] == "StopAuthorized"
    assert ended["transactionInfo"]["stoppedReason"] == "Local"
    assert ended["seqNo"] == 1
    assert ended["meterValue"][0]["sampledValue"][0]["context"] == "Transaction.End"
    assert len(csms.messages("CS-1", "Authorize")) == 1, "stopping with the same card asks no one"


async def test_e07_the_event_that_reports_the_stop_names_the_token_that_stopped_it(csms, fleet):
    station = await fleet.start()
    await station.present_id_token(1, "04A1B2C3D4E5F6")
    await station.plug_in(1)
    await csms.wait_for("TransactionEvent", "CS-1")
    # The same card, its UID read in lower case: idTokens are case-insensitive.
    assert (await station.present_id_token(1, "04a1b2c3d4e5f6")).status == "Stopped"
    ended = (await csms.wait_for("TransactionEvent", "CS-1", count=2))[1]
    assert (ended["eventType"], ended["triggerReason"]) == ("Ended", "StopAuthorized")
    # TransactionEventRequest.idToken is required when the EV driver ends the authorization,
    # so the CSMS can tell who stopped the transaction (and answer with its idTokenInfo).
    assert ended["idToken"] == {"idToken": "04A1B2C3D4E5F6", "type": "ISO14443"}


async def test_e07_another_token_cannot_stop_the_transaction(csms, fleet):
    station = await fleet.start()
    await station.present_id_token(1, "04A1B2C3")
    await station.plug_in(1)
    outcome = await station.present_id_token(1, "04B2C3D4")
    assert not outcome.ok
    assert station.evses[1].transaction is not None


async def test_e09_unplugging_on_the_ev_side_ends_the_transaction(csms, fleet):
    station = await fleet.start()
    await station.present_id_token(1, "04A1B2C3")
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


async def test_an_ev_that_stops_drawing_power_is_suspended_ev(csms, fleet):
    station = await fleet.start()
    await station.present_id_token(1, "04A1B2C3")
    await station.plug_in(1)
    await station.set_ev_drawing(1, False)
    updated = (await csms.wait_for("TransactionEvent", "CS-1", count=2))[1]
    assert updated["triggerReason"] == "ChargingStateChanged"
    assert updated["transactionInfo"]["chargingState"] == "SuspendedEV"


async def test_e04_a_transaction_started_offline_is_reported_as_offline(csms, fleet):
    station = await fleet.start(
        variables=variables(**{"TxCtrlr.TxStartPoint": "EVConnected"})
    )
    await csms.stop()
    await wait_until(lambda: not station.online)
    await station.plug_in(1)
    await station.unplug(1)
    await restart_csms(csms)
    events = await csms.wait_for("TransactionEvent", "CS-1", count=2)
    assert [e["eventType"] for e in events] == ["Started", "Ended"]
    assert all(e["offline"] is True for e in events)
    assert [e["seqNo"] for e in events] == [0, 1]


async def test_e11_e12_messages_made_offline_arrive_in_order_after_reconnect(csms, fleet):
    station = await fleet.start()
    await station.present_id_token(1, "04A1B2C3")
    await station.plug_in(1)
    await csms.wait_for("TransactionEvent", "CS-1")
    await csms.stop()
    await wait_until(lambda: not station.online)

    await station.set_ev_drawing(1, False)
    await station.unplug(1)
    assert len(station.outbox) == 2
    assert station.evses[1].transaction is None, "the station went on without the CSMS"

    await restart_csms(csms)
    events = await csms.wait_for("TransactionEvent", "CS-1", count=3)
    await wait_until(lambda: len(station.outbox) == 0)
    events = csms.messages("CS-1", "TransactionEvent")
    assert [e["seqNo"] for e in events] == [0, 1, 2], "in order, none lost or duplicated"
    assert [e["eventType"] for e in events] == ["Started", "Updated", "Ended"]
    assert [e.get("offline", False) for e in events] == [False, True, True]
    assert len({e["transactionInfo"]["transactionId"] for e in events}) == 1
    assert len(csms.messages("CS-1", "BootNotification")) == 1, "reconnecting is not rebooting"
    # Connector status that changed while offline is reported after the reconnect.
    await csms.wait_for("StatusNotification", "CS-1",
                        where=lambda s: s["connectorStatus"] == "Available")


async def test_e11_e12_after_a_reconnect_messages_go_out_in_the_order_they_were_made(csms,
                                                                                    fleet):
    station = await fleet.start()
    await station.present_id_token(1, "04A1B2C3")
    await station.plug_in(1)
    await csms.wait_for("TransactionEvent", "CS-1")
    await csms.stop()
    await wait_until(lambda: not station.online)
    # Offline: the session ends and the EV leaves; the events are queued, the connector
    # goes Available.
    await station.present_id_token(1, "04A1B2C3")
    await station.unplug(1)
    assert len(station.outbox) == 1
    seen = len(csms.received)

    await restart_csms(csms)

    def after():
        return [(r.action, r.payload) for r in csms.received[seen:]
                if r.action in ("TransactionEvent", "StatusNotification")]

    await wait_until(lambda: any(action == "StatusNotification" for action, _ in after()))
    await wait_until(lambda: not station.outbox)
    after = after()
    # The TransactionEvent was made (offline) before the StatusNotification made at the
    # reconnect: it goes first, and the status says what the connector is after it.
    assert [action for action, _ in after] == ["TransactionEvent", "StatusNotification"]
    ended, status = after[0][1], after[1][1]
    assert (ended["eventType"], ended["offline"]) == ("Ended", True)
    assert status["timestamp"] >= ended["timestamp"]


async def test_e13_an_unanswered_transaction_event_is_retried_then_dropped(csms, fleet):
    csms.policy.silent_actions.add("TransactionEvent")
    station = await fleet.start(
        response_timeout=0.3,
        variables={
            "OCPPCommCtrlr/MessageAttempts[TransactionEvent]/Actual": "2",
            "OCPPCommCtrlr/MessageAttemptInterval[TransactionEvent]/Actual": "1",
        },
    )
    await station.present_id_token(1, "04A1B2C3")
    await station.plug_in(1)
    attempts = await csms.wait_for("TransactionEvent", "CS-1", count=2, timeout=5)
    assert attempts[0] == attempts[1], "the same message, resent"
    await wait_until(lambda: len(station.outbox) == 0, timeout=5)
    csms.policy.silent_actions.clear()
    await station.unplug(1)
    ended = await csms.wait_for(
        "TransactionEvent", "CS-1", where=lambda e: e["eventType"] == "Ended"
    )
    assert ended[0]["seqNo"] == 1


async def test_e14_get_transaction_status_reports_queue_and_ongoing(csms, fleet):
    station = await fleet.start()
    await station.present_id_token(1, "04A1B2C3")
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
