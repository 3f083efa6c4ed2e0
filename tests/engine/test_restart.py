"""A station whose process died comes back from its saved state and ends the cut session."""

import asyncio

from stations.engine.shard import Shard
from stations.engine.station import Station

from .conftest import restart_csms, variables, wait_until


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


# -- a shard handed over, or killed, in the middle of transactions ----------------------------

class Saved(dict):
    """The states a shard saved or noted, as the database would hold them."""

    async def store(self, station_id, state):
        self[station_id] = state

    def note(self, station_id, state):
        self[station_id] = state


def shard(saved, **kw):
    return Shard(state_store=saved.store, state_note=saved.note, ramp_per_second=0,
                 tune_gc=False, **kw)


def energy(event) -> float:
    values = [v for m in event.get("meterValue", []) for v in m["sampledValue"]
              if v.get("measurand", "Energy.Active.Import.Register")
              == "Energy.Active.Import.Register"]
    return values[-1]["value"]


async def charging_station(csms, fleet, saved, config=None):
    first = shard(saved)
    await first.start([config or fleet.config(time_scale=60)])
    station = first.stations["CS-1"]
    await wait_until(lambda: station.online)
    assert (await station.start_charging(1, "04A1B2C3")).ok
    started = (await csms.wait_for("TransactionEvent", "CS-1"))[0]
    await wait_until(lambda: station.evses[1].charging_state() == "Charging")
    return first, station, started["transactionInfo"]["transactionId"]


async def test_e11_a_handed_over_station_goes_on_with_its_transaction(csms, fleet):
    saved = Saved()
    first, station, tx_id = await charging_station(csms, fleet, saved)
    power_w = station.evses[1].meter.power_w
    await first.stop(handover=True)
    assert saved["CS-1"]["handover"] is True
    left_at_wh = saved["CS-1"]["evses"]["1"]["register_wh"]
    await asyncio.sleep(1.0)  # the shard moves: a minute of charging at time_scale 60

    second = shard(saved)
    await second.start([fleet.config(time_scale=60)], states=dict(saved))
    again = second.stations["CS-1"]
    await wait_until(lambda: again.online)
    assert (await again.stop_charging(1)).ok
    ended = (await csms.wait_for("TransactionEvent", "CS-1",
                                 where=lambda e: e["eventType"] == "Ended"))[0]
    await second.stop()

    events = csms.messages("CS-1", "TransactionEvent")
    assert len(csms.messages("CS-1", "BootNotification")) == 1, "a reconnect, not a reboot"
    assert {e["transactionInfo"]["transactionId"] for e in events} == {tx_id}
    assert [e["seqNo"] for e in events] == list(range(len(events)))
    assert ended["transactionInfo"]["stoppedReason"] == "Local"
    assert ended["triggerReason"] == "StopAuthorized"
    # The EV charged while no process ran the station: at least half of what its power
    # gives for the second away (time_scale 60), none of it lost.
    assert energy(ended) - left_at_wh >= power_w * 60 / 3600 / 2


async def test_a_crash_taken_as_a_lost_connection_goes_on_with_the_transaction(csms, fleet):
    saved = Saved()
    first, station, tx_id = await charging_station(csms, fleet, saved)
    await wait_until(lambda: saved.get("CS-1", {}).get("outbox") == [])
    # Killed: no handover, only what was checkpointed.
    for task in first._tasks.values():
        task.cancel()
    await station._connection.close()
    assert "handover" not in saved["CS-1"]

    second = shard(saved, crash_recovery="connection-loss")
    await second.start([fleet.config(time_scale=60)], states=dict(saved))
    again = second.stations["CS-1"]
    await wait_until(lambda: again.online)
    assert (await again.stop_charging(1)).ok
    ended = (await csms.wait_for("TransactionEvent", "CS-1",
                                 where=lambda e: e["eventType"] == "Ended"))[0]
    await second.stop()
    events = csms.messages("CS-1", "TransactionEvent")
    assert len(csms.messages("CS-1", "BootNotification")) == 1
    assert {e["transactionInfo"]["transactionId"] for e in events} == {tx_id}
    assert [e["seqNo"] for e in events] == list(range(len(events)))
    assert ended["transactionInfo"]["stoppedReason"] == "Local"


async def test_e12_events_made_offline_survive_a_crash_and_no_seq_no_is_reused(csms, fleet):
    saved = Saved()
    config = fleet.config(time_scale=60,
                          variables=variables(**{"SampledDataCtrlr.TxUpdatedInterval": "1"}))
    first, station, tx_id = await charging_station(csms, fleet, saved, config)
    await csms.stop()
    await wait_until(lambda: not station.online)
    # Made offline, queued, checkpointed as queued (no delivery to wait for).
    await wait_until(lambda: len(saved["CS-1"]["outbox"]) >= 2, timeout=10)
    queued = [m["payload"] for m in saved["CS-1"]["outbox"]]
    for task in first._tasks.values():
        task.cancel()
    await asyncio.gather(*first._tasks.values(), return_exceptions=True)

    await restart_csms(csms)
    second = shard(saved)  # power-loss: boots, ends the cut session
    await second.start([fleet.config(time_scale=60)], states=dict(saved))
    ended = (await csms.wait_for("TransactionEvent", "CS-1",
                                 where=lambda e: e["eventType"] == "Ended"))[0]
    await wait_until(lambda: len(second.stations["CS-1"].outbox) == 0)
    await second.stop()
    events = csms.messages("CS-1", "TransactionEvent")
    seq_nos = [e["seqNo"] for e in events]
    assert seq_nos == list(range(len(events))), "no gap, no seqNo twice"
    delivered = {e["seqNo"]: e for e in events}
    for payload in queued:
        assert delivered[payload["seqNo"]] == payload, "delivered as made"
        assert payload["offline"] is True
    assert ended["transactionInfo"]["stoppedReason"] == "PowerLoss"
    assert ended["seqNo"] == max(seq_nos)
    assert {e["transactionInfo"]["transactionId"] for e in events} == {tx_id}
