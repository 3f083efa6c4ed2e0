"""Functional blocks: each action a station answers has one block, made when first used."""

import pytest
from ocpp.routing import on

from stations.engine.block import Block, route_map
from stations.engine.config import StationConfig
from stations.engine.station import Station
from stations.engine.v201.provisioning import Provisioning
from stations.engine.v201.remote_control import RemoteControl


def test_every_action_a_station_answers_is_routed_to_the_block_that_handles_it():
    routes = Station.routes()
    assert set(routes) == {
        "GetVariables", "SetVariables", "GetBaseReport", "Reset", "ChangeAvailability",
        "RequestStartTransaction", "RequestStopTransaction", "GetTransactionStatus",
        "UnlockConnector", "TriggerMessage", "DataTransfer",
        "ClearCache", "SendLocalList", "GetLocalListVersion",
    }
    assert routes["Reset"].block is Provisioning
    assert routes["RequestStartTransaction"].block is RemoteControl
    assert routes["RequestStartTransaction"].after is not None


def test_two_blocks_handling_the_same_action_are_refused():
    class One(Block):
        @on("ClearCache")
        def on_clear_cache(self, **_):
            return None

    class Other(Block):
        @on("ClearCache")
        def on_clear_cache(self, **_):
            return None

    with pytest.raises(TypeError, match="ClearCache is handled by both One and Other"):
        route_map([One, Other])


def test_a_block_with_state_is_made_once_on_first_use_and_one_without_for_each_use():
    station = Station(StationConfig("CS-1", "ws://127.0.0.1:1"))
    assert station._remote_control is None, "no remote control until a request comes"
    control = RemoteControl.of(station)
    assert RemoteControl.of(station) is control
    assert station._authorization is None, "no authorization state until an idToken comes"
    assert station.authorization is station.authorization
    assert station.meter_values is not station.meter_values
