import asyncio

import pytest
from channels.layers import get_channel_layer
from django.contrib.auth.models import Permission, User
from django.test import AsyncClient

from stations.api.models import ApiToken
from stations.sandbox import Policy, SandboxCsms
from stations.shard_host import ShardHost
from tests.waiting import eventually

PASSWORD = "correct-horse-battery"
STATION_PERMISSIONS = ("add_station", "add_evse", "add_connector", "delete_station")


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


class Api:
    """Django's async test client speaking JSON with a bearer token."""

    def __init__(self, token: str | None, keyword: str = "Bearer"):
        # Per request: AsyncClient(headers=...) loses them on the way to the ASGI scope.
        self.headers = {"Authorization": f"{keyword} {token}"} if token else {}
        self.client = AsyncClient()

    async def get(self, path, **params):
        return await self.client.get(f"/api/v1{path}", params, headers=self.headers)

    async def post(self, path, body=None):
        return await self.client.post(f"/api/v1{path}", body or {},
                                      content_type="application/json", headers=self.headers)

    async def delete(self, path):
        return await self.client.delete(f"/api/v1{path}", headers=self.headers)


def make_user(name: str, *, staff: bool = False, permissions=()) -> User:
    user = User.objects.create_user(name, password=PASSWORD, is_staff=staff)
    user.user_permissions.add(*Permission.objects.filter(codename__in=permissions))
    return user


@pytest.fixture
def operator_token(db):
    """A staff user who may create and delete stations, and a token of theirs."""
    user = make_user("ops", staff=True, permissions=STATION_PERMISSIONS)
    return ApiToken.create_for(user, "CI")[1]


@pytest.fixture
def api(operator_token):
    return Api(operator_token)


@pytest.fixture
async def engine(settings):
    """An embedded engine (every station in one ShardHost) and the sandbox CSMS."""
    settings.FLEET_STOP_TIMEOUT = 3
    csms = SandboxCsms(Policy(rejected_tokens={"0BADC0DE"}))
    url = await csms.start()
    stop = asyncio.Event()
    host = ShardHost(None, layer=get_channel_layer())
    task = asyncio.create_task(host.run(stop))
    await eventually(lambda: host._tasks, 5, "the host's tasks")
    yield csms, host, url
    stop.set()
    await asyncio.wait_for(task, 40)
    await csms.stop()
    assert csms.violations == []
