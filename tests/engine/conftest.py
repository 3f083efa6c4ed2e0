"""Engine tests run stations against a real, schema-validating CSMS on loopback."""

import asyncio
import contextlib

import pytest

from stations.engine.config import ConnectorConfig, EvseConfig, StationConfig
from stations.engine.station import Station
from stations.sandbox import Policy, SandboxCsms
from tests.waiting import eventually as wait_until

# Engine tests import the waiting helper and these small helpers from here, beside the
# fixtures.
__all__ = ["Fleet", "restart_csms", "tx_events", "variables", "wait_until"]


def variables(**values):
    """Device-model overrides for a station config: variables(**{"TxCtrlr.TxStartPoint": ..})."""
    return {f"{name.replace('.', '/')}/Actual": value for name, value in values.items()}


def tx_events(csms, station_id="CS-1"):
    return csms.messages(station_id, "TransactionEvent")


async def restart_csms(csms):
    """Start a stopped CSMS again on the port the stations know."""
    port = int(csms.url.rsplit(":", 1)[1])
    await csms.start(port=port)


@pytest.fixture
async def csms():
    """The CSMS peer; the test fails if any frame a station sent broke the schemas."""
    server = SandboxCsms(Policy())
    server.url = await server.start()
    yield server
    await server.stop()
    assert server.violations == [], "\n".join(server.violations)


class Fleet:
    """Starts stations against the CSMS and stops them all at the end of the test."""

    def __init__(self, csms):
        self.csms = csms
        self.running: list[tuple[Station, asyncio.Task]] = []
        self.events: list[tuple[str, str, dict]] = []

    def config(self, station_id="CS-1", evses=1, connectors=1, **overrides) -> StationConfig:
        defaults = dict(
            station_id=station_id,
            csms_url=self.csms.url,
            evses=tuple(
                EvseConfig(
                    evse_id=e,
                    max_power_kw=22.0,
                    connectors=tuple(ConnectorConfig(c) for c in range(1, connectors + 1)),
                )
                for e in range(1, evses + 1)
            ),
            reconnect_min=0.05,
            reconnect_max=0.2,
            response_timeout=3.0,
        )
        defaults.update(overrides)
        return StationConfig(**defaults)

    async def start(self, config: StationConfig | None = None, *, boot=True, **kw) -> Station:
        config = config or self.config(**kw)
        station = Station(config, sink=lambda *event: self.events.append(event))
        self.running.append((station, asyncio.create_task(station.run())))
        if boot:
            await self.csms.wait_for("BootNotification", config.station_id)
            await wait_until(lambda: station.online)
        return station

    async def stop(self):
        for station, _task in self.running:
            await station.stop()
        for _, task in self.running:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(task, 5)


@pytest.fixture
async def fleet(csms):
    fleet = Fleet(csms)
    yield fleet
    await fleet.stop()
