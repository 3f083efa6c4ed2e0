"""Every page's /favicon.ico: served from the app's static files, no login, no CDN."""

from django.test import Client


def test_the_favicon_is_an_icon_served_without_a_login():
    response = Client().get("/favicon.ico")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/x-icon"
    assert b"".join(response.streaming_content)[:4] == b"\x00\x00\x01\x00"
