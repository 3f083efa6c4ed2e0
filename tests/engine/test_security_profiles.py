"""Security profiles 1-3 on loopback, with certificates made for each test."""

import ssl

import pytest
import trustme

from stations.sandbox import Policy, SandboxCsms

from .conftest import Fleet, wait_until

PASSWORD = "correct-horse-battery-staple"


@pytest.fixture
def ca():
    return trustme.CA()


def server_context(ca, require_client_cert=False):
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    if require_client_cert:
        context.verify_mode = ssl.CERT_REQUIRED
        ca.configure_trust(context)
    return context


async def serve(policy, context=None):
    csms = SandboxCsms(policy)
    csms.url = await csms.start(ssl=context)
    return csms


def connection_errors(fleet):
    return [data for _, kind, data in fleet.events if kind == "connection" and data.get("error")]


async def run_stations(csms, *configs):
    fleet = Fleet(csms)
    stations = [await fleet.start(config, boot=False) for config in configs]
    return fleet, stations


async def test_profile_1_sends_basic_auth_and_a_wrong_password_is_refused():
    csms = await serve(Policy(passwords={"CS-1": PASSWORD, "CS-2": PASSWORD}))
    fleet = Fleet(csms)
    good = fleet.config("CS-1", security_profile=1, password=PASSWORD)
    bad = fleet.config("CS-2", security_profile=1, password="not-the-password-at-all")
    fleet, (ok_station, _) = await run_stations(csms, good, bad)
    try:
        await wait_until(lambda: ok_station.online)
        await wait_until(lambda: connection_errors(fleet))
        assert connection_errors(fleet)[0]["status"] == 401
        assert csms.messages("CS-2") == []
    finally:
        await fleet.stop()
        await csms.stop()
    assert csms.violations == []


async def test_profile_2_verifies_the_csms_certificate(ca):
    csms = await serve(Policy(passwords={"CS-1": PASSWORD, "CS-2": PASSWORD}), server_context(ca))
    fleet = Fleet(csms)
    trusted = fleet.config(
        "CS-1", security_profile=2, password=PASSWORD, ca_cert=ca.cert_pem.bytes().decode()
    )
    other_ca = trustme.CA().cert_pem.bytes().decode()
    untrusted = fleet.config("CS-2", security_profile=2, password=PASSWORD, ca_cert=other_ca)
    assert csms.url.startswith("wss://")
    fleet, (station, _) = await run_stations(csms, trusted, untrusted)
    try:
        await wait_until(lambda: station.online)
        await wait_until(lambda: connection_errors(fleet))
        assert connection_errors(fleet)[0]["error"] == "tls"
        assert csms.messages("CS-2") == []
    finally:
        await fleet.stop()
        await csms.stop()


async def test_profile_3_presents_a_client_certificate(ca):
    csms = await serve(Policy(), server_context(ca, require_client_cert=True))
    fleet = Fleet(csms)
    issued = ca.issue_cert("CS-1")
    with_cert = fleet.config(
        "CS-1",
        security_profile=3,
        ca_cert=ca.cert_pem.bytes().decode(),
        client_cert=issued.cert_chain_pems[0].bytes().decode(),
        client_key=issued.private_key_pem.bytes().decode(),
    )
    without_cert = fleet.config("CS-2", security_profile=3, ca_cert=ca.cert_pem.bytes().decode())
    fleet, (station, _) = await run_stations(csms, with_cert, without_cert)
    try:
        await wait_until(lambda: station.online)
        await wait_until(lambda: connection_errors(fleet))
        assert csms.messages("CS-2") == []
    finally:
        await fleet.stop()
        await csms.stop()


@pytest.mark.parametrize("items, front", [([], []), ([], [9]), ([1], [7, 8]), ([1, 2, 3], [9])])
def test_the_short_queues_of_a_station_connection_behave_as_deques(items, front):
    from collections import deque

    from stations.engine.connection import _ShortQueue

    expected, queue = deque(items), _ShortQueue(items)
    # websockets puts frames back in front this way, then takes them one by one.
    expected.extendleft(reversed(front))
    queue.extendleft(reversed(front))
    assert [queue.popleft() for _ in range(len(queue))] == list(expected)
