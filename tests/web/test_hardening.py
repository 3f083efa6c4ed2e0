"""Hardening: the secret key, the login limit, websockets only from the site's own pages."""

import os
import stat
import time

import pytest
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from django.test import Client

from fleet.asgi import application
from fleet.secret_key import secret_key

from .test_consumers import session_headers

PASSWORD = "correct horse battery"


# -- SECRET_KEY ---------------------------------------------------------------------------

def test_the_embedded_demo_makes_a_random_key_once_and_keeps_it_private(tmp_path, monkeypatch):
    monkeypatch.delenv("DJANGO_SECRET_KEY", raising=False)
    first = secret_key(tmp_path, scale_out=False, debug=False)
    again = secret_key(tmp_path, scale_out=False, debug=False)
    other = secret_key(tmp_path / "..", scale_out=False, debug=False)
    assert first == again and len(first) >= 50
    assert other != first, "each installation its own"
    mode = stat.S_IMODE(os.stat(tmp_path / "secret-key.txt").st_mode)
    assert mode == 0o600


@pytest.mark.parametrize("key", [None, "change-me-in-production", "short"])
def test_scale_out_refuses_to_start_without_a_strong_key(tmp_path, monkeypatch, key):
    if key is None:
        monkeypatch.delenv("DJANGO_SECRET_KEY", raising=False)
    else:
        monkeypatch.setenv("DJANGO_SECRET_KEY", key)
    with pytest.raises(ImproperlyConfigured, match="DJANGO_SECRET_KEY"):
        secret_key(tmp_path, scale_out=True, debug=False)
    assert not (tmp_path / "secret-key.txt").exists()


def test_scale_out_takes_the_operators_key(tmp_path, monkeypatch):
    key = "a-long-operator-chosen-key-0123456789"
    monkeypatch.setenv("DJANGO_SECRET_KEY", key)
    assert secret_key(tmp_path, scale_out=True, debug=False) == key


# -- the login limit ------------------------------------------------------------------------

@pytest.fixture
def limited(settings, db):
    settings.FLEET_LOGIN_FAILURES = 3
    settings.FLEET_LOGIN_WINDOW = 2
    # Fast hashing: the attempts fit well inside the window on a loaded machine.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    cache.clear()
    get_user_model().objects.create_superuser("operator", password=PASSWORD)
    yield
    cache.clear()


@pytest.mark.parametrize("path", ["/login/", "/admin/login/"])
def test_logins_past_the_failure_limit_are_refused_until_the_window_ends(limited, path):
    client = Client()
    for _ in range(3):
        wrong = client.post(path, {"username": "operator", "password": "guess"})
        assert wrong.status_code == 200, "a wrong password gets the form again"
    refused = client.post(path, {"username": "operator", "password": PASSWORD})
    assert refused.status_code == 429, "even the right password, from here, for now"
    assert "Too many failed logins" in refused.content.decode()
    assert int(refused["Retry-After"]) >= 1
    time.sleep(2.1)
    allowed = client.post(path, {"username": "operator", "password": PASSWORD})
    assert allowed.status_code == 302, "after the window the right password works"


def test_another_address_is_not_refused_for_someone_elses_failures(limited):
    attacker = Client(REMOTE_ADDR="203.0.113.9")
    for _ in range(3):
        attacker.post("/login/", {"username": "operator", "password": "guess"})
    assert attacker.post("/login/", {"username": "operator", "password": PASSWORD}
                         ).status_code == 429
    operator = Client(REMOTE_ADDR="198.51.100.7")
    assert operator.post("/login/", {"username": "operator", "password": PASSWORD}
                         ).status_code == 302


def test_one_address_trying_many_usernames_is_refused(limited):
    client = Client()
    for n in range(12):
        client.post("/login/", {"username": f"user{n}", "password": "guess"})
    assert client.post("/login/", {"username": "operator", "password": PASSWORD}
                       ).status_code == 429


# -- websocket origins ----------------------------------------------------------------------

@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("origin", "host", "accepted"), [
    (b"http://localhost:8000", b"localhost:8000", True),
    (b"http://localhost:9999", b"localhost:8000", False),  # another app on the same host
    (b"http://localhost", b"localhost:8000", False),
    (b"https://localhost:8000", b"localhost:8000", False),  # ws:// is served over http
    (b"http://evil.example:8000", b"localhost:8000", False),
])
async def test_dashboard_sockets_open_only_from_the_sites_own_origin(origin, host, accepted):
    user = await get_user_model().objects.acreate(username="operator")
    headers = [h for h in await _session(user) if h[0] == b"cookie"]
    communicator = WebsocketCommunicator(application, "/ws/fleet/",
                                         headers=[(b"origin", origin), (b"host", host), *headers])
    connected, _ = await communicator.connect()
    assert connected is accepted
    await communicator.disconnect()


async def _session(user):
    from asgiref.sync import sync_to_async
    return await sync_to_async(session_headers)(user)


@pytest.mark.django_db(transaction=True)
async def test_the_limit_holds_for_requests_served_asynchronously(limited):
    from django.test import AsyncClient

    client = AsyncClient()
    for _ in range(3):
        assert (await client.post("/login/", {"username": "operator", "password": "guess"})
                ).status_code == 200
    refused = await client.post("/login/", {"username": "operator", "password": PASSWORD})
    assert refused.status_code == 429
