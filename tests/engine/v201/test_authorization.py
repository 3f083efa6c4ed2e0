"""Authorization: C01 the CSMS authorizes an idToken, C15 an unknown idToken offline; an
idToken whose value does not fit its type is refused by a strict CSMS."""

import pytest

from tests.engine.conftest import restart_csms, tx_events, variables, wait_until

# A value of each IdTokenEnumType in its format, and one that is not.
TOKENS = [
    ("ISO14443", "04A1B2C3", "TOKEN-001"),
    ("ISO15693", "E004015012345678", "04A1B2C3"),
    ("eMAID", "DE-8AA-C12345678-D", "DE-8AA-C12345678-9"),
    ("MacAddress", "02:00:5E:10:00:01", "02:00:5E"),
    ("KeyCode", "1234", "12 34"),
    ("Central", "app-session-17", "app session 17"),
    ("Local", "LOCAL-1", "#1"),
    ("NoAuthorization", "", "04A1B2C3"),
]


async def test_c01_a_rejected_token_gets_no_energy(csms, fleet):
    csms.policy.rejected_tokens.add("0BADC0DE")
    station = await fleet.start()
    await station.plug_in(1)
    outcome = await station.present_id_token(1, "0BADC0DE")
    assert not outcome.ok
    assert outcome.status == "Invalid"
    assert station.evses[1].charging_state() == "EVConnected"
    assert tx_events(csms) == []


@pytest.mark.parametrize("token_type, valid, invalid", TOKENS)
async def test_c01_a_token_of_its_types_format_is_authorized_another_gets_a_call_error(
        csms, fleet, token_type, valid, invalid):
    station = await fleet.start(evses=2)
    assert (await station.present_id_token(1, valid, token_type)).ok
    outcome = await station.present_id_token(2, invalid, token_type)
    # As CitrineOS answers: [4, id, "PropertyConstraintViolation", "ISO14443 tokens ...", {}]
    assert (outcome.ok, outcome.status) == (False, "Failed")
    assert outcome.detail.startswith("the CSMS refused the Authorize: PropertyConstraintViolation")
    errors = [f for sid, way, f in csms.frames if way == "out" and f.startswith("[4,")]
    assert len(errors) == 1 and "PropertyConstraintViolation" in errors[0]
    assert station.evses[2].id_token is None
    # The sandbox counts a badly formatted idToken as a station's mistake: any other test
    # that sent one would fail.
    assert len(csms.violations) == 1 and token_type in csms.violations[0]
    csms.violations.clear()


async def test_a_badly_formatted_token_in_a_transaction_event_is_refused_too(csms, fleet):
    station = await fleet.start(variables=variables(**{"AuthCtrlr.Enabled": "false"}))
    await station.present_id_token(1, "TOKEN-001")  # no Authorize: nothing checks it
    await station.plug_in(1)
    await wait_until(lambda: csms.violations)
    assert "TransactionEvent request: idToken: ISO14443 idTokens are" in csms.violations[0]
    await station.stop()
    csms.violations.clear()


async def test_c15_an_unknown_token_offline_is_refused_unless_allowed(csms, fleet):
    station = await fleet.start()
    await csms.stop()
    await wait_until(lambda: not station.online)
    outcome = await station.present_id_token(1, "04A1B2C3")
    assert outcome.status == "Offline"
    station.device_model.set_internal("AuthCtrlr", "OfflineTxForUnknownIdEnabled", "true")
    assert (await station.present_id_token(1, "04A1B2C3")).ok
    await restart_csms(csms)
