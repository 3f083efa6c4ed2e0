"""Authorization: C01 the CSMS authorizes an idToken, C15 an unknown idToken offline."""

from tests.engine.conftest import restart_csms, tx_events, wait_until


async def test_c01_a_rejected_token_gets_no_energy(csms, fleet):
    csms.policy.rejected_tokens.add("BAD")
    station = await fleet.start()
    await station.plug_in(1)
    outcome = await station.present_id_token(1, "BAD")
    assert not outcome.ok
    assert outcome.status == "Invalid"
    assert station.evses[1].charging_state() == "EVConnected"
    assert tx_events(csms) == []


async def test_c15_an_unknown_token_offline_is_refused_unless_allowed(csms, fleet):
    station = await fleet.start()
    await csms.stop()
    await wait_until(lambda: not station.online)
    outcome = await station.present_id_token(1, "TOKEN-1")
    assert outcome.status == "Offline"
    station.device_model.set_internal("AuthCtrlr", "OfflineTxForUnknownIdEnabled", "true")
    assert (await station.present_id_token(1, "TOKEN-1")).ok
    await restart_csms(csms)
