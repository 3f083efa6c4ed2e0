"""The OpenAPI schema is valid and complete, and its docs page comes from this server."""

import re

import pytest
import yaml
from django.contrib.staticfiles import finders
from django.core.management import call_command
from django.test import Client

pytestmark = pytest.mark.django_db

URL_ATTRIBUTES = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']""")


def test_the_schema_validates_without_warnings(tmp_path):
    path = tmp_path / "schema.yaml"
    # --fail-on-warn: an endpoint spectacular cannot describe fails here, not in a client.
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(path))
    schema = yaml.safe_load(path.read_text())
    assert schema["openapi"].startswith("3.")
    assert {"/api/v1/stations/", "/api/v1/stations/{station_id}/",
            "/api/v1/stations/{station_id}/commands/", "/api/v1/stations/{station_id}/variables/",
            "/api/v1/fleet/", "/api/v1/fleet/commands/", "/api/v1/templates/",
            "/api/v1/templates/{id}/create-stations/"} <= set(schema["paths"])
    station = schema["components"]["schemas"]["Station"]["properties"]
    assert "password" not in station and "client_key" not in station, "write-only"
    request = schema["components"]["schemas"]["StationRequest"]["properties"]
    assert {"password", "client_key"} <= set(request)
    assert schema["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"


def test_the_schema_is_served_to_anyone():
    response = Client().get("/api/v1/schema/", headers={"Accept": "application/json"})
    assert response.status_code == 200
    assert "/api/v1/stations/" in response.content.decode()


def test_the_docs_page_links_nothing_from_elsewhere():
    response = Client().get("/api/v1/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    urls = URL_ATTRIBUTES.findall(html)
    assert urls, "the page loads its scripts"
    external = [u for u in urls if re.match(r"(https?:)?//", u)]
    assert external == []
    assert "cdn" not in html.lower()
    assert '"validatorUrl": null' in html, "no badge from the public validator"
    for url in urls:
        if url.startswith("/static/"):
            assert finders.find(url.removeprefix("/static/")), f"{url} is served by the app"


@pytest.mark.django_db(transaction=True)
def test_the_docs_page_renders_in_a_browser_that_may_reach_nothing_else(live_server):
    from playwright.sync_api import sync_playwright

    elsewhere = []

    def only_this_server(route):
        if route.request.url.startswith(live_server.url):
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium")
        try:
            page = browser.new_page()
            page.route("**/*", only_this_server)
            page.goto(f"{live_server.url}/api/v1/docs/")
            page.locator(".opblock").first.wait_for(timeout=15_000)
            paths = page.locator(".opblock-summary-path").all_inner_texts()
        finally:
            browser.close()
    assert "/api/v1/stations/{station_id}/commands/" in [p.replace("\u200b", "") for p in paths]
    assert elsewhere == []
