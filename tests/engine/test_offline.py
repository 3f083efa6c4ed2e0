"""E04, E11, E12: charging through a lost connection, delivering what happened later."""

from .conftest import wait_until
from .test_transactions import variables


async def restart(csms):
    port = int(csms.url.rsplit(":", 1)[1])
    await csms.start(port=port)


async def test_messages_made_offline_arrive_in_order_after_reconnect(csms, fleet):
    station = await fleet.start()
    await station.present_id_token(1, "TOKEN-1")
    await station.plug_in(1)
    await csms.wait_for("TransactionEvent", "CS-1")
    await csms.stop()
    await wait_until(lambda: not station.online)

    await station.set_ev_drawing(1, False)
    await station.unplug(1)
    assert len(station.outbox) == 2
    assert station.evses[1].transaction is None, "the station went on without the CSMS"

    await restart(csms)
    events = await csms.wait_for("TransactionEvent", "CS-1", count=3)
    await wait_until(lambda: len(station.outbox) == 0)
    events = csms.messages("CS-1", "TransactionEvent")
    assert [e["seqNo"] for e in events] == [0, 1, 2], "in order, none lost or duplicated"
    assert [e["eventType"] for e in events] == ["Started", "Updated", "Ended"]
    assert [e.get("offline", False) for e in events] == [False, True, True]
    assert len({e["transactionInfo"]["transactionId"] for e in events}) == 1
    assert len(csms.messages("CS-1", "BootNotification")) == 1, "reconnecting is not rebooting"
    # Connector status that changed while offline is reported after the reconnect.
    last = csms.messages("CS-1", "StatusNotification")[-1]
    assert last["connectorStatus"] == "Available"


async def test_a_transaction_started_offline_is_reported_as_offline(csms, fleet):
    station = await fleet.start(
        variables=variables(**{"TxCtrlr.TxStartPoint": "EVConnected"})
    )
    await csms.stop()
    await wait_until(lambda: not station.online)
    await station.plug_in(1)
    await station.unplug(1)
    await restart(csms)
    events = await csms.wait_for("TransactionEvent", "CS-1", count=2)
    assert [e["eventType"] for e in events] == ["Started", "Ended"]
    assert all(e["offline"] is True for e in events)
    assert [e["seqNo"] for e in events] == [0, 1]


async def test_an_unknown_token_offline_is_refused_unless_allowed(csms, fleet):
    station = await fleet.start()
    await csms.stop()
    await wait_until(lambda: not station.online)
    outcome = await station.present_id_token(1, "TOKEN-1")
    assert outcome.status == "Offline"
    station.device_model.set_internal("AuthCtrlr", "OfflineTxForUnknownIdEnabled", "true")
    assert (await station.present_id_token(1, "TOKEN-1")).ok
    await restart(csms)


async def test_an_unanswered_transaction_event_is_retried_then_dropped(csms, fleet):
    csms.policy.silent_actions.add("TransactionEvent")
    station = await fleet.start(
        response_timeout=0.3,
        variables={
            "OCPPCommCtrlr/MessageAttempts[TransactionEvent]/Actual": "2",
            "OCPPCommCtrlr/MessageAttemptInterval[TransactionEvent]/Actual": "1",
        },
    )
    await station.present_id_token(1, "TOKEN-1")
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
