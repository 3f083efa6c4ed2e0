"""Authorization: C01-C16, how an idToken presented at a station is decided and what it may
stop, walked against the schema-validating CSMS (which refuses an idToken whose value does
not fit its type, as a strict CSMS does); the cache's own rules at the end."""

import asyncio
import time
from datetime import UTC, datetime, timedelta

import pytest
from ocpp.v201 import call

from stations.engine.device_model.catalog import AUTH_CACHE_STORAGE_MAX
from stations.engine.v201.auth_cache import AuthCache, same_token
from stations.engine.v201.authorization import authorization_view
from tests.engine.conftest import restart_csms, tx_events, variables, wait_until

# idTokens as their types format them: ISO14443 UIDs are 4 or 7 bytes of hex.
DRIVER = "04A1B2C3"
COLLEAGUE = "04D5E6F7"
STRANGER = "04C0FFEE"
MASTER = "04BADA55"
CONTRACT = "DE8AAC12345678"  # eMAID: country, provider, C, instance (ISO 15118-2)
CACHE_ON = {"AuthCacheCtrlr.Enabled": "true"}
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


def rfid(value):
    return {"idToken": value, "type": "ISO14443"}


def authorizes(csms, value=None):
    """The Authorize requests the CSMS received (for one idToken value)."""
    return [a for a in csms.messages("CS-1", "Authorize")
            if value is None or a["idToken"]["idToken"] == value]


def group(name):
    return {"status": "Accepted", "groupIdToken": {"idToken": name, "type": "Central"}}


def cached(station):
    rows = authorization_view(station)["cache"]["entries"]
    return {row["id_token"]: row["status"] for row in rows}


async def go_offline(csms, station):
    await csms.stop()
    await wait_until(lambda: not station.online)


async def send_list(csms, version, entries, update_type="Full"):
    items = [{"id_token": {"id_token": value, "type": "ISO14443"},
              "id_token_info": {"status": status}} for value, status in entries]
    return await csms.call("CS-1", call.SendLocalList(
        version_number=version, update_type=update_type, local_authorization_list=items))


# -- C01 RFID, C15 unknown idTokens offline -----------------------------------------------


async def test_c01_a_rejected_token_gets_no_energy(csms, fleet):
    csms.policy.rejected_tokens.add("0BADC0DE")
    station = await fleet.start()
    await station.plug_in(1)
    outcome = await station.present_id_token(1, "0BADC0DE")
    assert not outcome.ok
    assert outcome.status == "Invalid"
    assert station.evses[1].charging_state() == "EVConnected"
    assert tx_events(csms) == []


def test_c01_two_id_tokens_are_equal_when_value_and_type_are_whatever_their_additional_info():
    # C01.FR.25; the value is a CiString: case does not matter.
    card = {"idToken": DRIVER, "type": "ISO14443"}
    assert same_token(card, {**card, "additionalInfo": [{"additionalIdToken": "x",
                                                          "type": "y"}]})
    assert same_token(card, {"idToken": DRIVER.lower(), "type": "ISO14443"})
    assert not same_token(card, {"idToken": DRIVER, "type": "ISO15693"})


# The start button's NoAuthorization idToken is never sent in an Authorize (C02).
@pytest.mark.parametrize("token_type, valid, invalid",
                         [t for t in TOKENS if t[0] != "NoAuthorization"])
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


async def offline_session_answered_invalid(csms, fleet, **settings):
    """C15: a session started offline for an unknown idToken the CSMS then calls Invalid."""
    station = await fleet.start(time_scale=20.0, variables=variables(**{
        "AuthCtrlr.OfflineTxForUnknownIdEnabled": "true", **settings}))
    await go_offline(csms, station)
    assert (await station.present_id_token(1, STRANGER)).ok  # C15.FR.01
    await station.plug_in(1)
    await station.set_ev_drawing(1, False)  # nothing delivered until the CSMS answered
    csms.policy.rejected_tokens.add(STRANGER)
    await restart_csms(csms)
    started = (await csms.wait_for("TransactionEvent", "CS-1"))[0]  # C15.FR.02
    assert started["offline"] is True and started["idToken"]["idToken"] == STRANGER
    return station


async def test_c15_max_energy_on_invalid_id_lets_the_session_charge_on_until_the_limit(
    csms, fleet
):
    station = await offline_session_answered_invalid(csms, fleet, **{
        "TxCtrlr.StopTxOnInvalidId": "false", "TxCtrlr.MaxEnergyOnInvalidId": "200"})
    await wait_until(lambda: len(csms.messages("CS-1", "TransactionEvent")) >= 2, 10)
    await asyncio.sleep(0.3)
    assert station.evses[1].id_token is not None, "the Invalid answer let it charge on"
    await station.set_ev_drawing(1, True)
    ended = (await csms.wait_for("TransactionEvent", "CS-1",
                                 where=lambda e: e["eventType"] == "Ended", timeout=10))[0]
    assert ended["triggerReason"] == "EnergyLimitReached"
    assert ended["transactionInfo"]["stoppedReason"] == "EnergyLimitReached"
    energy = ended["meterValue"][0]["sampledValue"][0]["value"]
    assert 200 <= energy < 400, "it stopped once 200 Wh were delivered"
    assert not any(e["triggerReason"] == "Deauthorized" for e in tx_events(csms))


@pytest.mark.parametrize("settings", [
    {"TxCtrlr.StopTxOnInvalidId": "false", "TxCtrlr.MaxEnergyOnInvalidId": "0"},
    {"TxCtrlr.StopTxOnInvalidId": "true", "TxCtrlr.MaxEnergyOnInvalidId": "200"},
])
async def test_c15_without_max_energy_or_with_stop_tx_on_invalid_id_it_ends_at_once(
    csms, fleet, settings
):
    await offline_session_answered_invalid(csms, fleet, **settings)
    ended = (await csms.wait_for("TransactionEvent", "CS-1",
                                 where=lambda e: e["eventType"] == "Ended"))[0]
    assert ended["triggerReason"] == "Deauthorized"
    assert ended["transactionInfo"]["stoppedReason"] == "DeAuthorized"


# -- C02 start button, C03 payment terminal, C04 PIN, C06 local ids ------------------------


async def test_c02_the_start_button_starts_and_stops_without_authorization(csms, fleet):
    station = await fleet.start(variables=variables(**{"AuthCtrlr.Enabled": "false"}))
    await station.plug_in(1)
    assert (await station.press_start_button(1)).ok
    started = (await csms.wait_for("TransactionEvent", "CS-1"))[0]
    assert started["idToken"] == {"idToken": "", "type": "NoAuthorization"}
    assert started["transactionInfo"]["chargingState"] == "Charging"
    assert (await station.press_start_button(1)).status == "Stopped"
    ended = (await csms.wait_for("TransactionEvent", "CS-1", count=2))[1]
    assert ended["eventType"] == "Ended"
    assert authorizes(csms) == []


async def test_c02_a_station_that_authorizes_has_no_start_button(csms, fleet):
    station = await fleet.start()
    outcome = await station.press_start_button(1)
    assert (outcome.ok, outcome.status) == (False, "Rejected")
    assert "AuthCtrlr.Enabled" in outcome.detail


async def test_c03_a_card_payment_starts_with_the_terminals_reference_and_is_not_cached(
    csms, fleet
):
    station = await fleet.start(variables=variables(**CACHE_ON))
    outcome = await station.pay_by_card(1)
    assert outcome.ok and "approved" in outcome.detail
    await station.plug_in(1)
    started = (await csms.wait_for("TransactionEvent", "CS-1"))[0]
    assert started["idToken"]["type"] == "Central"
    assert started["idToken"]["idToken"].startswith("PAY-")
    assert authorizes(csms) == [], "the payment authorized it (C03.FR.01)"
    await wait_until(lambda: station.evses[1].transaction is not None)
    assert cached(station) == {}, "C03.FR.02: Central idTokens are not cached"
    assert not (await station.pay_by_card(1)).ok, "one payment per session"


async def test_c04_a_pin_is_authorized_as_a_key_code_and_a_wrong_one_is_refused(csms, fleet):
    csms.policy.rejected_tokens.add("9999")
    station = await fleet.start()
    wrong = await station.enter_pin(1, "9999")
    assert (wrong.ok, wrong.status) == (False, "Invalid")
    assert not (await station.enter_pin(1, "12a4")).ok
    assert (await station.enter_pin(1, "1234")).ok
    sent = [a["idToken"] for a in authorizes(csms)]
    assert sent == [{"idToken": "9999", "type": "KeyCode"}, {"idToken": "1234", "type": "KeyCode"}]
    await station.plug_in(1)
    started = (await csms.wait_for("TransactionEvent", "CS-1"))[0]
    assert started["idToken"] == {"idToken": "1234", "type": "KeyCode"}


async def test_c06_a_local_id_token_is_authorized_with_its_type(csms, fleet):
    station = await fleet.start()
    assert (await station.present_id_token(1, "kiosk-ticket-17", "Local")).ok
    assert authorizes(csms)[0]["idToken"] == {"idToken": "kiosk-ticket-17", "type": "Local"}
    await station.plug_in(1)
    started = (await csms.wait_for("TransactionEvent", "CS-1"))[0]
    assert started["idToken"]["type"] == "Local"


# -- C05 CSMS-initiated transactions ---------------------------------------------------------


async def test_c05_a_remote_start_is_authorized_like_a_local_one_from_the_local_list(
    csms, fleet
):
    station = await fleet.start(variables=variables(**{
        "AuthCtrlr.AuthorizeRemoteStart": "true", "AuthCtrlr.LocalPreAuthorize": "true"}))
    await send_list(csms, 1, [(DRIVER, "Accepted"), (STRANGER, "Blocked")])
    csms.policy.rejected_tokens.add(STRANGER)
    for remote_start_id, value in ((1, STRANGER), (2, DRIVER)):
        await csms.call("CS-1", call.RequestStartTransaction(
            id_token={"id_token": value, "type": "ISO14443"}, remote_start_id=remote_start_id,
            evse_id=1))
    await wait_until(lambda: station.evses[1].id_token == rfid(DRIVER))
    # The blocked one was asked of the CSMS (C14.FR.03), the accepted one was not.
    assert [a["idToken"]["idToken"] for a in authorizes(csms)] == [STRANGER]


# -- C07/C08 contracts and external identification ------------------------------------------


async def test_c07_a_contract_is_authorized_with_its_certificate_hash_data(csms, fleet):
    station = await fleet.start()
    assert (await station.present_contract(1, CONTRACT)).ok
    authorize = authorizes(csms)[0]
    assert authorize["idToken"] == {"idToken": CONTRACT, "type": "eMAID"}
    hash_data = authorize["iso15118CertificateHashData"][0]
    assert hash_data["hashAlgorithm"] == "SHA256"
    assert hash_data["responderURL"].startswith("http://ocsp.de8aa.")
    started = (await csms.wait_for("TransactionEvent", "CS-1"))[0]
    assert started["idToken"] == {"idToken": CONTRACT, "type": "eMAID"}
    assert started["transactionInfo"]["chargingState"] == "Charging"


async def test_c07_a_revoked_contract_certificate_does_not_charge(csms, fleet):
    csms.policy.certificate_statuses[CONTRACT] = "CertificateRevoked"
    station = await fleet.start()
    outcome = await station.present_contract(1, CONTRACT)
    assert (outcome.ok, outcome.status) == (False, "CertificateRevoked")
    assert station.evses[1].charging_state() == "EVConnected"
    assert tx_events(csms) == []


async def test_c07_a_contract_is_not_validated_offline(csms, fleet):
    station = await fleet.start(variables=variables(**{
        "AuthCtrlr.OfflineTxForUnknownIdEnabled": "true"}))
    await go_offline(csms, station)
    outcome = await station.present_contract(1, CONTRACT)
    assert (outcome.ok, outcome.status) == (False, "Offline")
    await restart_csms(csms)


async def test_c08_external_identification_sends_the_id_token_without_a_certificate(
    csms, fleet
):
    station = await fleet.start()
    await station.plug_in(1)  # an ISO 15118 EV; the driver identifies at the EVSE instead
    assert (await station.present_id_token(1, CONTRACT, "eMAID")).ok
    authorize = authorizes(csms)[0]
    assert authorize == {"idToken": {"idToken": CONTRACT, "type": "eMAID"}}
    started = (await csms.wait_for("TransactionEvent", "CS-1"))[0]
    assert started["idToken"]["type"] == "eMAID"


# -- C09 groups, C16 master pass ---------------------------------------------------------


async def test_c09_an_id_token_of_the_same_group_stops_the_session(csms, fleet):
    csms.policy.token_infos.update({DRIVER: group("FLEET-7"), COLLEAGUE: group("FLEET-7"),
                                    STRANGER: group("FLEET-8")})
    station = await fleet.start()
    await station.present_id_token(1, DRIVER)
    await station.plug_in(1)
    await csms.wait_for("TransactionEvent", "CS-1")
    refused = await station.present_id_token(1, STRANGER)
    assert (refused.ok, refused.status) == (False, "Rejected")
    assert station.evses[1].transaction is not None
    stopped = await station.present_id_token(1, COLLEAGUE)
    assert (stopped.ok, stopped.status) == (True, "Stopped")
    ended = (await csms.wait_for("TransactionEvent", "CS-1",
                                 where=lambda e: e["eventType"] == "Ended"))[0]
    assert ended["triggerReason"] == "StopAuthorized"
    assert ended["transactionInfo"]["stoppedReason"] == "Local"
    assert ended["idToken"] == rfid(COLLEAGUE), "the event says who stopped it"


async def test_c09_a_cached_group_member_stops_without_asking_the_csms(csms, fleet):
    csms.policy.token_infos.update({DRIVER: group("FLEET-7"), COLLEAGUE: group("FLEET-7")})
    station = await fleet.start(variables=variables(**{
        **CACHE_ON, "AuthCtrlr.LocalPreAuthorize": "true"}))
    assert (await station.present_id_token(1, COLLEAGUE)).ok
    await station.present_id_token(1, COLLEAGUE)  # stops: nothing was plugged in
    await station.present_id_token(1, DRIVER)
    await station.plug_in(1)
    await csms.wait_for("TransactionEvent", "CS-1")
    asked = len(authorizes(csms, COLLEAGUE))
    assert (await station.present_id_token(1, COLLEAGUE)).status == "Stopped"
    assert len(authorizes(csms, COLLEAGUE)) == asked, "the cache knew its group"


async def test_c16_a_master_pass_stops_every_transaction_and_starts_none(csms, fleet):
    csms.policy.token_infos[MASTER] = group("POLICE")
    station = await fleet.start(evses=2, variables=variables(**{
        "AuthCtrlr.MasterPassGroupId": "POLICE"}))
    for evse_id, value in ((1, DRIVER), (2, COLLEAGUE)):
        await station.start_charging(evse_id, value)
    await csms.wait_for("TransactionEvent", "CS-1", count=2)
    would_stop = authorization_view(station)["master_pass"]["would_stop"]
    assert [row["evse_id"] for row in would_stop] == [1, 2]
    outcome = await station.present_id_token(1, MASTER)
    assert (outcome.ok, outcome.status) == (True, "Stopped")
    ended = await csms.wait_for("TransactionEvent", "CS-1", count=2,
                                where=lambda e: e["eventType"] == "Ended")
    assert {e["evse"]["id"] for e in ended} == {1, 2}
    for event in ended:
        assert event["triggerReason"] == "StopAuthorized"
        assert event["transactionInfo"]["stoppedReason"] == "MasterPass"
        assert event["idToken"] == rfid(MASTER)
    again = await station.present_id_token(2, MASTER)
    assert (again.ok, again.status) == (False, "Rejected")
    assert station.evses[2].id_token is None, "a master pass starts no session"


# -- C10-C12 the authorization cache ---------------------------------------------------------


async def test_c10_authorize_and_transaction_event_answers_are_cached(csms, fleet):
    station = await fleet.start(variables=variables(**CACHE_ON))
    await station.present_id_token(1, DRIVER)
    assert cached(station) == {DRIVER: "Accepted"}  # C10.FR.01
    # The CSMS changed its mind by the time the session started: its TransactionEvent
    # answer replaces the entry (C10.FR.05) and ends the authorization.
    csms.policy.rejected_tokens.add(DRIVER)
    await station.plug_in(1)
    await wait_until(lambda: cached(station) == {DRIVER: "Invalid"})
    assert station.device_model.get_int("AuthCacheCtrlr", "Storage") > 0


async def test_c10_nothing_is_cached_while_the_cache_is_disabled(csms, fleet):
    station = await fleet.start()
    await station.present_id_token(1, DRIVER)
    await station.present_id_token(1, DRIVER)
    assert cached(station) == {}
    await go_offline(csms, station)
    assert (await station.present_id_token(1, DRIVER)).status == "Offline"
    await restart_csms(csms)


async def test_c10_an_entry_lapses_after_its_lifetime_or_cache_expiry(csms, fleet):
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    csms.policy.token_infos[COLLEAGUE] = {"status": "Accepted", "cacheExpiryDateTime": past}
    station = await fleet.start(variables=variables(**CACHE_ON))
    for value in (DRIVER, COLLEAGUE):
        assert (await station.present_id_token(1, value)).ok
        await station.present_id_token(1, value)  # nothing plugged in: this ends it
    assert cached(station) == {DRIVER: "Accepted"}, "an expired answer is not stored"
    await go_offline(csms, station)
    assert (await station.present_id_token(1, COLLEAGUE)).status == "Offline"  # C10.FR.13
    assert (await station.present_id_token(1, DRIVER)).ok, "C12 offline from the cache"
    await station.present_id_token(1, DRIVER)
    station.device_model.set_internal("AuthCacheCtrlr", "LifeTime", "1")
    await asyncio.sleep(1.2)
    assert (await station.present_id_token(1, DRIVER)).status == "Offline", "C10.FR.10"
    assert cached(station) == {}
    await restart_csms(csms)


async def test_c11_clear_cache_empties_the_cache_and_is_rejected_while_it_is_disabled(
    csms, fleet
):
    station = await fleet.start(variables=variables(**CACHE_ON))
    await station.present_id_token(1, DRIVER)
    assert cached(station)
    assert (await csms.call("CS-1", call.ClearCache())).status == "Accepted"
    assert cached(station) == {}
    assert station.device_model.get_int("AuthCacheCtrlr", "Storage") == 0
    station.device_model.set_internal("AuthCacheCtrlr", "Enabled", "false")
    assert (await csms.call("CS-1", call.ClearCache())).status == "Rejected"


async def test_c12_online_with_local_pre_authorize_a_cached_token_starts_at_once(csms, fleet):
    station = await fleet.start(variables=variables(**{
        **CACHE_ON, "AuthCtrlr.LocalPreAuthorize": "true"}))
    await station.present_id_token(1, DRIVER)
    await station.present_id_token(1, DRIVER)
    assert len(authorizes(csms)) == 1
    # Blocked meanwhile at the CSMS: the cache still starts it (C12.FR.02) and the CSMS
    # ends it in its answer to the event that carries the idToken (C12.FR.03).
    csms.policy.rejected_tokens.add(DRIVER)
    assert (await station.present_id_token(1, DRIVER)).ok
    assert len(authorizes(csms)) == 1, "no Authorize for a cached idToken"
    await station.plug_in(1)
    events = await csms.wait_for("TransactionEvent", "CS-1", count=2)
    assert events[0]["idToken"] == rfid(DRIVER)
    assert events[1]["triggerReason"] == "Deauthorized"


async def test_c12_a_cached_token_that_is_not_accepted_is_asked_again(csms, fleet):
    csms.policy.rejected_tokens.add(DRIVER)
    station = await fleet.start(variables=variables(**{
        **CACHE_ON, "AuthCtrlr.LocalPreAuthorize": "true"}))
    assert (await station.present_id_token(1, DRIVER)).status == "Invalid"
    csms.policy.rejected_tokens.clear()
    assert (await station.present_id_token(1, DRIVER)).ok  # C10.FR.03/C12.FR.05
    assert len(authorizes(csms)) == 2
    await station.present_id_token(1, DRIVER)
    # AuthCacheCtrlr.DisablePostAuthorize: a cached refusal is final.
    csms.policy.rejected_tokens.add(STRANGER)
    await station.present_id_token(1, STRANGER)
    csms.policy.rejected_tokens.clear()
    station.device_model.set_internal("AuthCacheCtrlr", "DisablePostAuthorize", "true")
    assert (await station.present_id_token(1, STRANGER)).status == "Invalid"
    assert len(authorizes(csms, STRANGER)) == 1


# -- C13/C14 the local list, DisableRemoteAuthorization --------------------------------------


async def test_c13_offline_the_local_list_decides_and_wins_over_the_cache(csms, fleet):
    station = await fleet.start(variables=variables(**CACHE_ON))
    await station.present_id_token(1, COLLEAGUE)  # cached as Accepted
    await station.present_id_token(1, COLLEAGUE)
    await send_list(csms, 3, [(DRIVER, "Accepted"), (COLLEAGUE, "Blocked")])
    await go_offline(csms, station)
    blocked = await station.present_id_token(1, COLLEAGUE)
    assert (blocked.ok, blocked.status) == (False, "Blocked"), "C13.FR.04, over the cache"
    assert (await station.present_id_token(1, DRIVER)).ok  # C13.FR.01
    await station.plug_in(1)
    await restart_csms(csms)
    started = (await csms.wait_for("TransactionEvent", "CS-1"))[0]
    assert started["offline"] is True and started["idToken"] == rfid(DRIVER)


async def test_c13_without_local_authorize_offline_the_list_is_not_used_offline(csms, fleet):
    station = await fleet.start(variables=variables(**{
        "AuthCtrlr.LocalAuthorizeOffline": "false"}))
    await send_list(csms, 1, [(DRIVER, "Accepted")])
    await go_offline(csms, station)
    assert (await station.present_id_token(1, DRIVER)).status == "Offline"
    await restart_csms(csms)


async def test_c14_online_with_local_pre_authorize_the_list_starts_without_authorize(
    csms, fleet
):
    station = await fleet.start(variables=variables(**{"AuthCtrlr.LocalPreAuthorize": "true"}))
    await send_list(csms, 1, [(DRIVER, "Accepted"), (STRANGER, "Blocked")])
    assert (await station.present_id_token(1, DRIVER)).ok  # C14.FR.02
    assert authorizes(csms) == []
    await station.present_id_token(1, DRIVER)
    # C14.FR.03: a list entry that is not Accepted is asked of the CSMS...
    assert (await station.present_id_token(1, STRANGER)).ok
    assert [a["idToken"]["idToken"] for a in authorizes(csms)] == [STRANGER]
    await station.present_id_token(1, STRANGER)
    # ...unless LocalAuthListCtrlr.DisablePostAuthorize.
    station.device_model.set_internal("LocalAuthListCtrlr", "DisablePostAuthorize", "true")
    assert (await station.present_id_token(1, STRANGER)).status == "Blocked"
    assert len(authorizes(csms)) == 1


async def test_c14_without_local_pre_authorize_the_csms_is_asked_online(csms, fleet):
    csms.policy.rejected_tokens.add(DRIVER)
    station = await fleet.start()
    await send_list(csms, 1, [(DRIVER, "Accepted")])
    assert (await station.present_id_token(1, DRIVER)).status == "Invalid"
    assert len(authorizes(csms)) == 1


async def test_c14_disable_remote_authorization_decides_from_the_list_and_cache_only(
    csms, fleet
):
    station = await fleet.start(evses=2, variables=variables(**{
        "AuthCtrlr.DisableRemoteAuthorization": "true", "AuthCtrlr.LocalPreAuthorize": "true"}))
    await send_list(csms, 1, [(DRIVER, "Accepted"), (COLLEAGUE, "Blocked")])
    unknown = await station.present_id_token(1, STRANGER)
    assert (unknown.ok, unknown.status) == (False, "Unknown")
    assert "DisableRemoteAuthorization" in unknown.detail
    assert (await station.present_id_token(1, COLLEAGUE)).status == "Blocked"
    assert (await station.present_contract(2, CONTRACT)).status == "Unknown"
    assert (await station.present_id_token(1, DRIVER)).ok
    assert authorizes(csms) == [], "no AuthorizeRequest at all"


# -- the cache's own rules -------------------------------------------------------------------


def fill(cache, count, policy, now=1000.0):
    for n in range(count):
        cache.put(rfid(f"04{n:06X}"), {"status": "Accepted"}, now + n, policy)


@pytest.mark.parametrize(("policy", "evicted"), [("FIFO", 0), ("LRU", 1), ("LFU", 2)])
def test_c10_a_full_cache_evicts_by_its_policy(monkeypatch, policy, evicted):
    entry = len('[{"idToken":"04000000","type":"ISO14443"},{"status":"Accepted"}]')
    monkeypatch.setattr("stations.engine.v201.auth_cache.STORAGE_MAX_BYTES", 3 * entry)
    cache = AuthCache()
    fill(cache, 3, policy)
    # 0 was stored first and is used most, and last; 1 was used least recently; 2 least often.
    for token, at in ((0, 2900.0), (0, 2950.0), (0, 3000.0), (1, 1500.0), (1, 1600.0),
                      (2, 2500.0)):
        cache.used(rfid(f"04{token:06X}"), at)
    cache.put(rfid(STRANGER), {"status": "Accepted"}, 4000.0, policy)
    kept = {row["id_token"] for row in cache.rows(4000.0, 0)}
    assert kept == {f"04{n:06X}" for n in range(3) if n != evicted} | {STRANGER}
    assert cache.size == 3 * entry


def test_c10_the_cache_keeps_what_fits_and_survives_export():
    cache = AuthCache()
    fill(cache, 500, "LRU")
    assert 0 < len(cache) < 500 and cache.size <= AUTH_CACHE_STORAGE_MAX
    copy = AuthCache.restore(cache.export())
    assert copy.size == cache.size
    assert copy.rows(time.time(), 0) == cache.rows(time.time(), 0)
