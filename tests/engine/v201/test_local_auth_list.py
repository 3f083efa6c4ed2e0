"""Local authorization list: D01 SendLocalList and D02 GetLocalListVersion, its limits, and
the list (with the cache) across a restart, against the schema-validating CSMS."""

import asyncio

import pytest
from ocpp.exceptions import FormatViolationError, OccurrenceConstraintViolationError
from ocpp.v201 import call

from stations.engine.device_model.catalog import (
    LOCAL_LIST_ENTRIES_MAX,
    LOCAL_LIST_ITEMS_PER_MESSAGE,
)
from stations.engine.station import Station
from tests.engine.conftest import restart_csms, variables, wait_until


def item(value, status="Accepted", **info):
    entry = {"id_token": {"id_token": value, "type": "ISO14443"}}
    if status is not None:
        entry["id_token_info"] = {"status": status, **info}
    return entry


def uid(n):
    return f"04{n:06X}"


async def send(csms, version, items, update_type="Full", station_id="CS-1"):
    return await csms.call(station_id, call.SendLocalList(
        version_number=version, update_type=update_type,
        local_authorization_list=items or None))  # the schema wants it absent, not empty


async def version(csms, station_id="CS-1"):
    return (await csms.call(station_id, call.GetLocalListVersion())).version_number


def listed(station):
    return {row["id_token"]: row["status"] for row in station.local_list.rows()}


async def test_d02_without_a_list_the_version_is_0(csms, fleet):
    await fleet.start()
    assert await version(csms) == 0


async def test_d01_a_full_list_replaces_the_list_and_sets_its_version(csms, fleet):
    station = await fleet.start()
    assert (await send(csms, 4, [item(uid(1)), item(uid(2), "Blocked")])).status == "Accepted"
    assert await version(csms) == 4  # D01.FR.01
    assert listed(station) == {uid(1): "Accepted", uid(2): "Blocked"}
    assert (await send(csms, 2, [item(uid(3))])).status == "Accepted"
    assert listed(station) == {uid(3): "Accepted"}, "a Full list replaces the old one"
    assert await version(csms) == 2
    assert (await send(csms, 5, [])).status == "Accepted"
    assert listed(station) == {} and await version(csms) == 5, "an empty Full list empties it"
    assert station.device_model.get_int("LocalAuthListCtrlr", "Entries") == 0


async def test_d01_a_differential_update_adds_replaces_and_removes(csms, fleet):
    station = await fleet.start()
    await send(csms, 1, [item(uid(1)), item(uid(2))])
    changes = [item(uid(2), "Expired"), item(uid(3)), item(uid(1), status=None)]
    assert (await send(csms, 2, changes, "Differential")).status == "Accepted"
    assert listed(station) == {uid(2): "Expired", uid(3): "Accepted"}  # D01.FR.16/17
    assert await version(csms) == 2
    dm = station.device_model
    assert dm.get_int("LocalAuthListCtrlr", "Entries") == 2
    assert dm.get_int("LocalAuthListCtrlr", "Storage") > 0
    assert (await send(csms, 3, [], "Differential")).status == "Accepted"
    assert await version(csms) == 3, "an empty Differential update moves the version only"


async def test_d01_a_differential_update_needs_a_newer_version(csms, fleet):
    station = await fleet.start()
    await send(csms, 7, [item(uid(1))])
    for older in (7, 6):
        response = await send(csms, older, [item(uid(2))], "Differential")
        assert response.status == "VersionMismatch"  # D01.FR.19
    assert listed(station) == {uid(1): "Accepted"} and await version(csms) == 7


@pytest.mark.parametrize("items", [
    [item(uid(1)), item(uid(1), "Blocked")],   # D01.FR.06 every idToken once
    [item(uid(1)), item(uid(2), status=None)],  # a Full list says what each idToken is
])
async def test_d01_a_list_with_a_duplicate_or_an_entry_without_info_fails(csms, fleet, items):
    station = await fleet.start()
    await send(csms, 1, [item(uid(9))])
    response = await send(csms, 2, items)
    assert response.status == "Failed"
    assert listed(station) == {uid(9): "Accepted"} and await version(csms) == 1


async def test_d01_version_0_is_never_a_lists_version(csms, fleet):
    await fleet.start()
    response = await send(csms, 0, [item(uid(1))])
    assert response.status == "Failed"  # D01.FR.18
    assert await version(csms) == 0


async def test_d01_more_items_or_bytes_than_a_message_may_carry_get_a_callerror(csms, fleet):
    station = await fleet.start()
    dm = station.device_model
    assert dm.get_int("LocalAuthListCtrlr", "ItemsPerMessage") == LOCAL_LIST_ITEMS_PER_MESSAGE
    too_many = [item(uid(n)) for n in range(LOCAL_LIST_ITEMS_PER_MESSAGE + 1)]
    with pytest.raises(OccurrenceConstraintViolationError):
        await send(csms, 1, too_many)
    text = "x" * 512
    too_big = [item(uid(n), personal_message={"format": "UTF8", "content": text})
               for n in range(LOCAL_LIST_ITEMS_PER_MESSAGE)]
    with pytest.raises(FormatViolationError):
        await send(csms, 1, too_big)
    assert await version(csms) == 0, "nothing was installed"


async def test_d01_an_update_beyond_the_entries_limit_fails_and_changes_nothing(csms, fleet):
    station = await fleet.start()
    per = LOCAL_LIST_ITEMS_PER_MESSAGE
    await send(csms, 1, [item(uid(n)) for n in range(per)])
    for v, start in enumerate(range(per, LOCAL_LIST_ENTRIES_MAX, per), start=2):
        response = await send(csms, v, [item(uid(n)) for n in range(start, start + per)],
                              "Differential")
        assert response.status == "Accepted"
    assert len(listed(station)) == LOCAL_LIST_ENTRIES_MAX
    current = await version(csms)
    response = await send(csms, current + 1, [item(uid(LOCAL_LIST_ENTRIES_MAX))], "Differential")
    assert response.status == "Failed"
    assert response.status_info["reason_code"] == "TooManyElements"
    assert len(listed(station)) == LOCAL_LIST_ENTRIES_MAX and await version(csms) == current


async def test_d01_d02_a_disabled_list_takes_no_updates_and_reports_no_version(csms, fleet):
    station = await fleet.start()
    await send(csms, 3, [item(uid(1))])
    station.device_model.set_internal("LocalAuthListCtrlr", "Enabled", "false")
    assert (await send(csms, 4, [item(uid(2))])).status == "Failed"
    assert await version(csms) == 0
    station.device_model.set_internal("LocalAuthListCtrlr", "Enabled", "true")
    assert await version(csms) == 3


async def test_d01_the_list_and_the_cache_survive_a_restart(csms, fleet):
    saved = {}

    async def store(station_id, state):
        saved[station_id] = state

    config = fleet.config(variables=variables(**{
        "AuthCacheCtrlr.Enabled": "true", "AuthCtrlr.LocalPreAuthorize": "true"}))
    first = Station(config, state_store=store)
    task = asyncio.create_task(first.run())
    await wait_until(lambda: first.online)
    await send(csms, 6, [item(uid(1)), item(uid(2), "Blocked")])
    await first.present_id_token(1, uid(3))  # cached from the CSMS's answer
    await wait_until(lambda: "local_list" in saved.get("CS-1", {})
                     and saved["CS-1"].get("auth_cache"))
    task.cancel()  # the process dies
    await asyncio.gather(task, return_exceptions=True)

    second = Station(config, state=saved["CS-1"], state_store=store)
    fleet.running.append((second, asyncio.create_task(second.run())))
    await wait_until(lambda: second.online)
    assert await version(csms) == 6
    assert listed(second) == {uid(1): "Accepted", uid(2): "Blocked"}
    assert second.device_model.get_int("LocalAuthListCtrlr", "Entries") == 2
    asked = len(csms.messages("CS-1", "Authorize"))
    assert (await second.present_id_token(1, uid(3))).ok
    assert len(csms.messages("CS-1", "Authorize")) == asked, "authorized from the kept cache"
    await csms.stop()
    await wait_until(lambda: not second.online)
    assert (await second.present_id_token(1, uid(3))).status == "Stopped"
    assert (await second.present_id_token(1, uid(1))).ok, "the kept list, offline"
    await restart_csms(csms)
