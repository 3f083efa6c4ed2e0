"""The physical model: an EVSE tells its station what changed, in no protocol's words."""

import asyncio
import random

from stations.engine.config import EvseConfig, StationConfig
from stations.engine.physical.ev import Ev
from stations.engine.physical.evse import Change, Evse
from stations.engine.physical.meter import Meter

from .conftest import wait_until


class Host:
    """The station side of an EVSE, keeping what it hears."""

    def __init__(self):
        self.config = StationConfig("CS-1", "ws://127.0.0.1:1")
        self.operative = True
        self.changes: list[tuple[Change, bool]] = []

    @property
    def rng(self) -> random.Random:
        return random.Random(1)

    def evse_changed(self, evse, change, *, end=False):
        self.changes.append((change, end))


def test_an_evse_reports_each_change_and_shows_it_in_its_state():
    host = Host()
    evse = Evse(host, EvseConfig(1))
    assert (evse.connector_status(1), evse.charging_state()) == ("Available", "Idle")
    evse.plug_in()
    assert (evse.connector_status(1), evse.charging_state()) == ("Occupied", "EVConnected")
    evse.authorize({"idToken": "TOKEN-1", "type": "ISO14443"})
    assert evse.charging_state() == "Charging"
    evse.set_ev_drawing(False)
    assert evse.charging_state() == "SuspendedEV"
    evse.deauthorize(Change.STOPPED)
    evse.unplug()
    assert evse.charging_state() == "Idle"
    assert host.changes == [
        (Change.PLUGGED_IN, False), (Change.AUTHORIZED, False), (Change.EV_DRAWING, False),
        (Change.STOPPED, False), (Change.UNPLUGGED, False),
    ]


def test_a_second_plug_in_or_an_unplug_of_nothing_is_refused_and_reports_nothing():
    host = Host()
    evse = Evse(host, EvseConfig(1))
    assert evse.unplug() == "no EV is plugged in"
    evse.plug_in()
    assert evse.plug_in() == "an EV is already plugged in"
    assert evse.plug_in(connector_id=7) == "EVSE 1 has no connector 7"
    assert host.changes == [(Change.PLUGGED_IN, False)]


async def test_an_authorization_without_an_ev_lapses_after_the_wait():
    host = Host()
    evse = Evse(host, EvseConfig(1))
    evse.authorize({"idToken": "TOKEN-1", "type": "ISO14443"}, remote=True)
    evse.wait_for_cable(0.05)
    await wait_until(lambda: evse.id_token is None, timeout=2)
    assert host.changes == [(Change.REMOTE_START, False), (Change.CONNECT_TIMEOUT, True)]


async def test_an_ev_plugged_in_in_time_keeps_the_authorization():
    host = Host()
    evse = Evse(host, EvseConfig(1))
    evse.authorize({"idToken": "TOKEN-1", "type": "ISO14443"})
    evse.wait_for_cable(0.05)
    evse.plug_in()
    await asyncio.sleep(0.1)
    assert evse.id_token is not None
    assert [change for change, _ in host.changes] == [Change.AUTHORIZED, Change.PLUGGED_IN]


def test_the_meter_register_rises_with_the_power_the_ev_takes():
    meter, ev = Meter(), Ev(capacity_kwh=60.0, soc=30.0, max_power_kw=11.0)
    meter.deliver(ev, limit_kw=22.0, seconds=1800)
    assert meter.register_wh == 5500.0
    assert meter.power_w == 11000.0
    readings = meter.readings(ev)
    assert readings["Energy.Active.Import.Register"] == 5500.0
    assert readings["SoC"] > 30.0
    assert "SoC" not in meter.readings(None)
