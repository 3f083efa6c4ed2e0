"""Who gets in: tokens for machines (hashed, revocable, expiring), the session for browsers."""

import asyncio
from datetime import timedelta

import pytest
from django.db import connection
from django.test import AsyncClient, Client
from django.utils import timezone

from stations.api.models import ApiToken, token_digest

from .conftest import PASSWORD, Api, make_user

pytestmark = pytest.mark.django_db(transaction=True)


async def answer(api, path="/stations/"):
    response = await api.get(path)
    return response.status_code, response.json()


async def test_a_request_without_a_token_gets_401_with_a_json_error():
    status, body = await answer(Api(None))
    assert status == 401 and "credentials were not provided" in body["detail"]


@pytest.mark.parametrize("method,path", [
    ("get", "/stations/"), ("get", "/stations/CS-1/"), ("post", "/stations/"),
    ("delete", "/stations/CS-1/"), ("post", "/stations/CS-1/commands/"),
    ("get", "/stations/CS-1/variables/"), ("get", "/fleet/"), ("post", "/fleet/commands/"),
    ("get", "/templates/"), ("post", "/templates/1/create-stations/"),
])
async def test_every_endpoint_needs_a_valid_token(method, path):
    for api in (Api(None), Api("fleet_wrong")):
        response = await getattr(api, method)(path)
        assert response.status_code == 401, (path, response.content)
        assert "detail" in response.json()


async def test_a_wrong_token_gets_401():
    status, body = await answer(Api("fleet_not-a-real-token"))
    assert (status, body) == (401, {"detail": "Invalid, revoked or expired token."})


async def test_a_malformed_authorization_header_gets_401():
    response = await AsyncClient().get("/api/v1/stations/",
                                       headers={"Authorization": "Bearer two words"})
    assert response.status_code == 401 and "Bearer <token>" in response.json()["detail"]


async def test_the_401_tells_a_client_how_to_authenticate():
    response = await Api(None).get("/stations/")
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


async def test_a_revoked_token_gets_401(api, operator_token):
    assert (await api.get("/stations/")).status_code == 200
    token = await ApiToken.objects.aget(key_hash=token_digest(operator_token))
    await asyncio.to_thread(token.revoke)
    assert (await api.get("/stations/")).status_code == 401


async def test_an_expired_token_gets_401(api, operator_token):
    await ApiToken.objects.filter(key_hash=token_digest(operator_token)).aupdate(
        expires_at=timezone.now() - timedelta(seconds=1))
    assert (await api.get("/stations/")).status_code == 401


async def test_a_token_of_a_deactivated_user_gets_401(api, operator_token):
    token = await ApiToken.objects.select_related("user").aget(
        key_hash=token_digest(operator_token))
    token.user.is_active = False
    await token.user.asave()
    assert (await api.get("/stations/")).status_code == 401


async def test_the_keyword_token_works_as_well_as_bearer(operator_token):
    assert (await Api(operator_token, "Token").get("/stations/")).status_code == 200


async def test_the_last_use_of_a_token_is_recorded(api, operator_token):
    token = await ApiToken.objects.aget(key_hash=token_digest(operator_token))
    assert token.last_used_at is None
    before = timezone.now()
    await api.get("/stations/")
    await token.arefresh_from_db()
    assert token.last_used_at >= before


def test_a_token_is_stored_only_as_its_hash(operator_token):
    token = ApiToken.objects.get()
    assert token.key_hash == token_digest(operator_token) and len(token.key_hash) == 64
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM stations_apitoken")
        stored = " ".join(str(value) for row in cursor.fetchall() for value in row)
    assert operator_token not in stored
    assert operator_token[len(token.prefix):] not in stored, "nothing past the shown prefix"


def test_the_admin_shows_a_new_token_once_and_it_works(db):
    admin = make_user("root", staff=True)
    admin.is_superuser = True
    admin.save()
    browser = Client()
    browser.force_login(admin)
    response = browser.post("/admin/stations/apitoken/add/",
                            {"user": admin.pk, "name": "pipeline", "expires_at_0": "",
                             "expires_at_1": ""})
    assert response.status_code == 200, response.content[:2000]
    assert "no-store" in response["Cache-Control"]
    page = response.content.decode()
    plain = page.split('id="api-token"', 1)[0].rsplit('value="', 1)[1].split('"', 1)[0]
    assert plain.startswith("fleet_") and "not shown again" in page
    token = ApiToken.objects.get()
    assert token.user == admin and token.key_hash == token_digest(plain)
    # Never again: neither the list nor the token's own page carries it.
    for path in ("/admin/stations/apitoken/", f"/admin/stations/apitoken/{token.pk}/change/"):
        shown = browser.get(path).content.decode()
        assert token.prefix in shown and plain not in shown
    assert Client(headers={"Authorization": f"Bearer {plain}"}).get(
        "/api/v1/stations/").status_code == 200


def test_revoking_in_the_admin_shuts_the_token_out(db):
    admin = make_user("root", staff=True)
    admin.is_superuser = True
    admin.save()
    _, plain = ApiToken.create_for(admin, "pipeline")
    browser = Client()
    browser.force_login(admin)
    browser.post("/admin/stations/apitoken/", {
        "action": "revoke", "_selected_action": [ApiToken.objects.get().pk]})
    assert ApiToken.objects.get().state == "revoked"
    assert Client(headers={"Authorization": f"Bearer {plain}"}).get(
        "/api/v1/stations/").status_code == 401


def test_a_staff_user_issues_tokens_only_for_themselves(db):
    other = make_user("other")
    clerk = make_user("clerk", staff=True, permissions=("add_apitoken", "view_apitoken"))
    browser = Client()
    browser.force_login(clerk)
    response = browser.post("/admin/stations/apitoken/add/",
                            {"user": other.pk, "name": "sneaky"})
    assert response.status_code == 200
    assert not ApiToken.objects.filter(user=other).exists()
    assert "Select a valid choice" in response.content.decode()


def test_the_browser_keeps_its_session_login_with_csrf(db):
    user = make_user("viewer")
    browser = Client(enforce_csrf_checks=True)
    assert browser.login(username="viewer", password=PASSWORD)
    assert browser.get("/api/v1/stations/").status_code == 200
    response = browser.post("/api/v1/fleet/commands/", {"command": "connect_all"},
                            content_type="application/json")
    assert response.status_code == 403 and "CSRF" in response.json()["detail"]
    assert user.is_authenticated


def test_a_pipeline_issues_its_token_from_the_command_line(db):
    from io import StringIO

    from django.core.management import CommandError, call_command

    make_user("ci")
    out = StringIO()
    call_command("createapitoken", "ci", "--name", "nightly", "--expires-days", "1", stdout=out)
    plain = out.getvalue().strip()
    token = ApiToken.objects.get()
    assert token.key_hash == token_digest(plain) and token.name == "nightly"
    assert timedelta(hours=23) < token.expires_at - timezone.now() <= timedelta(days=1)
    assert Client().get("/api/v1/fleet/", headers={"Authorization": f"Bearer {plain}"}
                        ).status_code == 200
    with pytest.raises(CommandError, match="no user 'nobody'"):
        call_command("createapitoken", "nobody")
    with pytest.raises(CommandError, match="above 0"):
        call_command("createapitoken", "ci", "--expires-days", "nan")
