"""Websockets only from this site's own pages: scheme, host and port, not the host alone.

Channels' AllowedHostsOriginValidator compares the Origin's host with ALLOWED_HOSTS and
ignores its port, so any other web page served from the same host (another app on
127.0.0.1:3000, say) could open the dashboard's sockets with the user's cookies, which
browsers share between ports. Here, as Django's CSRF check does for forms, the Origin must
be the origin the socket was opened to (the Host header, over http for ws and https for
wss), or be listed in CSRF_TRUSTED_ORIGINS; the host must also be in ALLOWED_HOSTS.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import split_domain_port, validate_host

DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(scheme: str, netloc: str) -> tuple[str, str, int] | None:
    host, port = split_domain_port(netloc)
    if not host or scheme not in DEFAULT_PORTS:
        return None
    return scheme, host, int(port) if port else DEFAULT_PORTS[scheme]


def same_origin(origin: str, host: str, websocket_scheme: str) -> bool:
    if origin in settings.CSRF_TRUSTED_ORIGINS:
        return True
    parsed = urlsplit(origin)
    page = _origin(parsed.scheme, parsed.netloc.lower())
    scheme = "https" if websocket_scheme == "wss" else "http"
    served = _origin(scheme, host.lower())
    if page is None or served is None or page != served:
        return False
    return validate_host(served[1], settings.ALLOWED_HOSTS)


class SameOriginValidator:
    """ASGI middleware for websocket routes: denies a socket from another origin."""

    def __init__(self, application):
        self.application = application

    async def __call__(self, scope, receive, send):
        headers = dict(scope.get("headers", []))
        try:
            origin = headers.get(b"origin", b"").decode("latin1")
            host = headers.get(b"host", b"").decode("latin1")
        except UnicodeDecodeError:
            origin = host = ""
        if origin and host and same_origin(origin, host, scope.get("scheme", "ws")):
            return await self.application(scope, receive, send)
        return await WebsocketDenier()(scope, receive, send)
