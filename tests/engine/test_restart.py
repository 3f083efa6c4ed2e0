"""A station whose process died comes back from its saved state and ends the cut session."""

import asyncio

from stations.engine.station import Station

from .conftest import wait_until


async def test_a_restarted_station_ends_its_transaction_exactly_once(csms, fleet):
    saved = {}

    async def store(station_id, state):
        saved[station_id] = state

    config = fleet.config()
    first = Station(config, state_store=store)
    task = asyncio.create_task(first.run())
    await wait_until(lambda: first.online)
    await first.present_id_token(1, "04A1B2C3")
    await first.plug_in(1)
    first.device_model.set_internal("SampledDataCtrlr", "TxUpdatedInterval", "1")
    await csms.wait_for("TransactionEvent", "CS-1", count=2, timeout=5)
    # Between messages: a message whose answer was still on its way when the process
    # died is sent again after the restart (at least once; the CSMS sees its seqNo twice).
    await wait_until(lambda: len(first.outbox) == 0 and saved["CS-1"]["outbox"] == [])
    # The process dies: no goodbye, no Ended.
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    if first._connection is not None:
        await first._connection.close()
    sent = csms.messages("CS-1", "TransactionEvent")
    assert all(e["eventType"] != "Ended" for e in sent)

    second = Station(config, sink=lambda *e: fleet.events.append(e), state=saved["CS-1"],
                     state_store=store)
    fleet.running.append((second, asyncio.create_task(second.run())))
    ended = await csms.wait_for(
        "TransactionEvent", "CS-1", where=lambda e: e["eventType"] == "Ended"
    )
    await wait_until(lambda: len(second.outbox) == 0)
    events = csms.messages("CS-1", "TransactionEvent")
    assert len(ended) == 1
    assert [e["seqNo"] for e in events] == list(range(len(events)))
    assert ended[0]["transactionInfo"]["stoppedReason"] == "PowerLoss"
    assert ended[0]["transactionInfo"]["transactionId"] == events[0]["transactionInfo"][
        "transactionId"]
    assert ended[0]["meterValue"][0]["sampledValue"][0]["value"] >= 0
    # The EV is still plugged in: its connector says so after the boot.
    assert second.evses[1].plugged_connector == 1
    assert saved["CS-1"]["outbox"] == []
