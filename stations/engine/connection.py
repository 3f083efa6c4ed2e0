"""Opening the OCPP-J websocket for a station under security profiles 0-3."""

from __future__ import annotations

import base64
import collections
import os
import ssl
import tempfile
from functools import lru_cache
from urllib.parse import quote

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidHandshake, InvalidStatus

from .config import StationConfig

SUBPROTOCOL = "ocpp2.0.1"


class ConnectFailed(Exception):
    """The CSMS could not be reached or refused the connection; `reason` says which."""

    def __init__(self, reason: str, detail: str, status: int | None = None):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.status = status


class _ShortQueue(list):
    """The deque operations websockets uses, on a list: an empty deque is 624 bytes, an
    empty list 56, and these queues hold a frame or a waiter at most."""

    __slots__ = ()

    def popleft(self):
        return self.pop(0)

    def extendleft(self, items) -> None:
        self[:0] = list(items)[::-1]


class StationConnection(ClientConnection):
    """A client connection that keeps less per connection than websockets' own.

    A shard holds thousands: the handshake's request and response headers (about 3 KB,
    never read after the handshake) are dropped, and two per-connection deques become
    lists (1.1 KB). Where a websockets version names these differently, they stay.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if isinstance(getattr(self, "drain_waiters", None), collections.deque):
            self.drain_waiters = _ShortQueue(self.drain_waiters)

    async def handshake(self, *args, **kwargs) -> None:
        await super().handshake(*args, **kwargs)
        self.request = None
        # The response object stays (the frame parser holds it); its headers need not.
        self.response.headers.clear()
        frames = getattr(getattr(self, "recv_messages", None), "frames", None)
        if isinstance(getattr(frames, "queue", None), collections.deque):
            frames.queue = _ShortQueue(frames.queue)


def station_url(config: StationConfig) -> str:
    # The identity is the last path segment; OCPP allows characters that need escaping.
    return f"{config.csms_url.rstrip('/')}/{quote(config.station_id, safe='')}"


def ssl_context(config: StationConfig) -> ssl.SSLContext | None:
    if config.security_profile < 2 and not config.csms_url.startswith("wss://"):
        return None
    client = config.security_profile == 3 and config.client_cert and config.client_key
    return _tls_context(config.ca_cert, config.client_cert if client else None,
                        config.client_key if client else None)


@lru_cache(maxsize=64)
def _tls_context(ca_cert: str | None, client_cert: str | None,
                 client_key: str | None) -> ssl.SSLContext:
    """One context per distinct set of certificates: a fleet made from one template shares
    it, instead of each station parsing the CA bundle again (and holding its own copy)."""
    context = ssl.create_default_context(purpose=ssl.Purpose.SERVER_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if ca_cert:
        context.load_verify_locations(cadata=ca_cert)
    if client_cert and client_key:
        # The ssl module only loads a certificate chain from files.
        with tempfile.TemporaryDirectory() as folder:
            cert_path = os.path.join(folder, "cert.pem")
            key_path = os.path.join(folder, "key.pem")
            with open(cert_path, "w") as f:
                f.write(client_cert)
            with open(os.open(key_path, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
                f.write(client_key)
            context.load_cert_chain(cert_path, key_path)
    return context


def auth_headers(config: StationConfig) -> dict[str, str]:
    if config.security_profile in (1, 2) and config.password:
        token = base64.b64encode(f"{config.station_id}:{config.password}".encode()).decode()
        return {"Authorization": f"Basic {token}"}
    return {}


async def open_connection(
    config: StationConfig, context: ssl.SSLContext | None, timeout: float = 10.0
) -> ClientConnection:
    """Connect, or raise ConnectFailed naming why (refused, HTTP status, subprotocol)."""
    try:
        ws = await connect(
            station_url(config),
            subprotocols=[SUBPROTOCOL],
            additional_headers=auth_headers(config),
            ssl=context,
            open_timeout=timeout,
            # OCPP has its own Heartbeat; compression costs CPU for small frames.
            ping_interval=None,
            compression=None,
            max_size=2**20,
            close_timeout=2,
            user_agent_header=None,
            # Stations dial the CSMS directly; reading proxy settings costs per connection.
            proxy=None,
            create_connection=StationConnection,
        )
    except InvalidStatus as exc:
        status = exc.response.status_code
        raise ConnectFailed("http_status", f"HTTP {status}", status) from exc
    except InvalidHandshake as exc:
        raise ConnectFailed("handshake", str(exc)) from exc
    except ssl.SSLError as exc:
        raise ConnectFailed("tls", str(exc)) from exc
    except (OSError, TimeoutError) as exc:
        raise ConnectFailed("unreachable", str(exc) or type(exc).__name__) from exc
    if ws.subprotocol != SUBPROTOCOL:
        await ws.close()
        raise ConnectFailed("subprotocol", f"CSMS chose {ws.subprotocol!r}, not {SUBPROTOCOL}")
    return ws
