"""Bad input from the CSMS gets the CALLERROR OCPP-J prescribes, and the station runs on."""

import asyncio
import json

import pytest
from ocpp.v201 import call

from .conftest import wait_until


def replies(csms, station_id="CS-1"):
    return [json.loads(raw) for sid, way, raw in csms.frames if sid == station_id and way == "in"]


@pytest.mark.parametrize(
    "frame, expected_id, expected_code",
    [
        ("this is not json", "-1", "RpcFrameworkError"),
        ('{"not": "an array"}', "-1", "RpcFrameworkError"),
        ("[2, 17, \"Reset\", {}]", "-1", "RpcFrameworkError"),
        ('[2, "m1", "Reset"]', "m1", "RpcFrameworkError"),
        ('[2, "m2", "Reset", "payload"]', "m2", "RpcFrameworkError"),
        ('[7, "m3", {}]', "m3", "MessageTypeNotSupported"),
        ('[2, "m4", "MakeCoffee", {}]', "m4", "NotImplemented"),
        ('[2, "m5", "CancelReservation", {"reservationId": 1}]', "m5", "NotSupported"),
        ('[2, "m6", "Reset", {}]', "m6", "OccurrenceConstraintViolation"),
        ('[2, "m7", "Reset", {"type": "Sometimes"}]', "m7", "PropertyConstraintViolation"),
        ('[2, "m8", "Reset", {"type": 5}]', "m8", "TypeConstraintViolation"),
        ('[2, "m9", "Reset", {"type": "OnIdle", "colour": "red"}]', "m9", "FormatViolation"),
    ],
)
async def test_a_bad_frame_gets_the_prescribed_call_error(csms, fleet, frame, expected_id,
                                                          expected_code):
    station = await fleet.start()
    await csms.send_raw("CS-1", frame)
    await wait_until(lambda: any(r[0] == 4 for r in replies(csms)))
    error = next(r for r in replies(csms) if r[0] == 4)
    assert error[1] == expected_id
    assert error[2] == expected_code
    assert isinstance(error[3], str) and isinstance(error[4], dict)
    # The station is still there and still answers.
    answer = await csms.call("CS-1", call.TriggerMessage(requested_message="Heartbeat"))
    assert answer.status == "Accepted"
    assert station.online


async def test_a_call_error_the_station_sends_is_logged_with_the_action_it_answers(csms,
                                                                                  fleet):
    station = await fleet.start()
    frames = []
    station.frame_hook = lambda *frame: frames.append(frame)
    await csms.send_raw("CS-1", '[2, "m1", "CancelReservation", {"reservationId": 1}]')
    await csms.send_raw("CS-1", '[2, "m2", "Reset", {"type": "Sometimes"}]')
    await wait_until(lambda: sum(1 for f in frames if f[2] == 4) == 2)
    # (station, direction, message type, unique id, action, payload, latency)
    errors = [(f[1], f[3], f[4], f[5][0]) for f in frames if f[2] == 4]
    assert errors == [("out", "m1", "CancelReservation", "NotSupported"),
                      ("out", "m2", "Reset", "PropertyConstraintViolation")]


async def test_an_answer_to_nothing_is_dropped_without_reply(csms, fleet):
    station = await fleet.start()
    before = len(replies(csms))
    await csms.send_raw("CS-1", '[3, "nobody-asked", {}]')
    await csms.send_raw("CS-1", '[4, "nobody-asked", "GenericError", "", {}]')
    await csms.send_raw("CS-1", '[3, "short"]')
    await asyncio.sleep(0.2)
    assert len(replies(csms)) == before
    answer = await csms.call("CS-1", call.TriggerMessage(requested_message="Heartbeat"))
    assert answer.status == "Accepted" and station.online


async def test_schema_validation_can_be_switched_off(csms, fleet):
    await fleet.start(validate_schema=False)
    await csms.send_raw("CS-1", '[2, "m1", "UnlockConnector", {"evseId": 1, "connectorId": 1, '
                                '"extra": true}]')
    await wait_until(lambda: any(r[0] == 3 for r in replies(csms)))
    answer = next(r for r in replies(csms) if r[0] == 3)
    assert answer == [3, "m1", {"status": "Unlocked"}]
