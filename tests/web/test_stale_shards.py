"""Shards no engine worker runs: stale on the dashboard, and said to wait for a slot."""

import asyncio
import logging
from datetime import timedelta

import pytest
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.utils import timezone

from fleet.asgi import application
from stations import consumers, tasks
from stations.shard_models import ShardRun
from stations.shard_status import stale_summary

from .test_consumers import delta, session_headers

pytestmark = pytest.mark.django_db(transaction=True)

SINCE = "2026-12-01T10:00:00+00:00"


@pytest.fixture
def shard_0_runs_nowhere(monkeypatch):
    states = {0: {"stations": 25, "running": False, "waiting_since": SINCE},
              1: {"stations": 30, "running": True, "waiting_since": None}}
    monkeypatch.setattr(consumers, "cached_shard_states", lambda: states)
    return states


@pytest.fixture(autouse=True)
def fresh_fleet_series():
    from stations import series

    series.forget_fleet_series()
    yield
    series.forget_fleet_series()


async def test_stations_of_a_shard_no_worker_runs_are_stale_not_connected(shard_0_runs_nowhere):
    user = await get_user_model().objects.acreate(username="operator")
    communicator = WebsocketCommunicator(
        application, "/ws/fleet/", headers=await asyncio.to_thread(session_headers, user))
    assert (await communicator.connect())[0]
    snapshot = await communicator.receive_json_from()
    assert snapshot["shards"] == {"stale": [0], "stale_stations": 25, "waiting": [
        {"shard": 0, "stations": 25, "since": SINCE}]}
    assert snapshot["totals"]["stale"] == 25
    # The dead shard's last totals still arrive (or linger): they are not counted.
    await delta([], totals={"stations": 25, "connected": 25}, shard="0")
    await delta([], totals={"stations": 30, "connected": 30}, shard="1")
    await asyncio.sleep(0.6)
    totals = None
    while not await communicator.receive_nothing(timeout=0.2):
        totals = (await communicator.receive_json_from())["totals"]
    assert totals["connected"] == 30 and totals["stale"] == 25
    await communicator.disconnect()


def test_a_summary_names_the_waiting_shards_only_among_the_stale():
    states = {0: {"stations": 5, "running": False, "waiting_since": None},  # taking over
              2: {"stations": 7, "running": False, "waiting_since": SINCE},
              3: {"stations": 9, "running": True, "waiting_since": None}}
    assert stale_summary(states) == {"stale": [0, 2], "stale_stations": 12, "waiting": [
        {"shard": 2, "stations": 7, "since": SINCE}]}
    assert stale_summary(None)["stale"] == [], "Redis away: nothing is called stale"


def test_beat_logs_once_a_minute_which_shard_waits_for_a_worker_slot(caplog, monkeypatch):
    monkeypatch.setattr(tasks, "_told", {})
    tasks._record_waiting([4], held=[1])
    row = ShardRun.objects.get(shard=4)
    assert row.waiting_since is not None
    # Queued a while ago and still without a copy: every slot is taken.
    ShardRun.objects.filter(shard=4).update(waiting_since=timezone.now() - timedelta(minutes=2))
    with caplog.at_level(logging.WARNING, logger="stations.tasks"):
        for _ in range(5):
            tasks._record_waiting([4], held=[1])
    said = [r.getMessage() for r in caplog.records if "free engine worker slot" in r.getMessage()]
    assert len(said) == 1, said
    assert "shard 4 waits for a free engine worker slot since" in said[0]
    tasks._record_waiting([], held=[4])
    assert ShardRun.objects.get(shard=4).waiting_since is None, "running again"
