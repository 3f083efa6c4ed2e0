"""Validators for station settings, with the limits OCPP puts on them."""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
import string
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError

STATION_ID_MAX = 36
PASSWORD_MIN = 16
PASSWORD_MAX = 40

# Printable ASCII without space, ":" (it separates user and password in Basic auth) and "/"
# (the id is the last path segment of the websocket URL).
STATION_ID_RE = re.compile(rf"[!-.0-9;-~]{{1,{STATION_ID_MAX}}}")
_HOST_LABEL_RE = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")


def validate_station_id(value: str) -> None:
    if not STATION_ID_RE.fullmatch(value or ""):
        raise ValidationError(
            "Use 1-%(max)d printable ASCII characters without spaces, “:” or “/”.",
            code="invalid_station_id",
            params={"max": STATION_ID_MAX},
        )


def _valid_host(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    labels = host.rstrip(".").split(".")
    return len(host) <= 253 and all(_HOST_LABEL_RE.fullmatch(label) for label in labels)


def validate_csms_url(value: str) -> None:
    def fail(reason: str):
        raise ValidationError(
            "Enter a ws:// or wss:// URL with a host, e.g. wss://csms.example.com/ocpp (%(r)s).",
            code="invalid_csms_url",
            params={"r": reason},
        )

    if not value or any(ch.isspace() for ch in value):
        fail("no spaces allowed")
    try:
        parts = urlsplit(value)
    except ValueError:
        fail("the host is not a valid name or IP address")
    if parts.scheme.lower() not in ("ws", "wss"):
        fail("the scheme must be ws or wss")
    if not parts.hostname:
        fail("the host is missing")
    if "@" in parts.netloc:
        # Credentials travel in the Basic auth header, never in the URL.
        fail("no user or password in the URL")
    if not _valid_host(parts.hostname):
        fail("the host is not a valid name or IP address")
    try:
        parts.port  # noqa: B018 - raises ValueError for a malformed or out-of-range port
    except ValueError:
        fail("the port is invalid")
    if parts.query or parts.fragment or value.endswith(("?", "#")):
        # The engine appends "/<station id>" to the URL; a query would swallow it.
        fail("no query string or fragment")


def validate_password_string(value: str) -> None:
    if value and not (PASSWORD_MIN <= len(value) <= PASSWORD_MAX):
        raise ValidationError(
            "The OCPP Basic auth password must be %(min)d-%(max)d characters long.",
            code="invalid_password_length",
            params={"min": PASSWORD_MIN, "max": PASSWORD_MAX},
        )
    if value and not value.isprintable():
        raise ValidationError("The password contains control characters.", code="invalid")


_PEM_BLOCK_RE = re.compile(
    r"-----BEGIN ([A-Z0-9 ]+)-----\r?\n?(.*?)-----END ([A-Z0-9 ]+)-----", re.DOTALL
)
PRIVATE_KEY_LABELS = ("PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY")


def parse_pem(text: str) -> list[tuple[str, bytes]]:
    """The (label, DER bytes) of each PEM block; ValueError when the text is not valid PEM.

    Text between blocks is allowed (RFC 7468 explanatory text, as in CA bundles).
    """
    blocks = []
    for match in _PEM_BLOCK_RE.finditer(text):
        begin, body, end = match.groups()
        if begin != end:
            raise ValueError(f"“BEGIN {begin}” is closed by “END {end}”")
        if ":" in body:
            raise ValueError("encrypted (Proc-Type) PEM blocks are not supported")
        try:
            der = base64.b64decode("".join(body.split()), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(f"the {begin} block is not valid base64") from None
        # Every certificate and key is a DER SEQUENCE.
        if not der or der[0] != 0x30:
            raise ValueError(f"the {begin} block does not hold DER data")
        blocks.append((begin, der))
    if not blocks:
        raise ValueError("no “-----BEGIN …-----” block found")
    if text.count("-----BEGIN ") != len(blocks):
        raise ValueError("a “-----BEGIN …-----” line has no matching END line")
    return blocks


def _pem_blocks(value: str) -> list[tuple[str, bytes]]:
    try:
        return parse_pem(value)
    except ValueError as e:
        raise ValidationError("Malformed PEM: %(e)s.", code="invalid_pem", params={"e": e}) from e


def validate_certificate_pem(value: str) -> None:
    if not value:
        return
    blocks = _pem_blocks(value)
    labels = {label for label, _ in blocks}
    if labels != {"CERTIFICATE"}:
        raise ValidationError(
            "Expected only “-----BEGIN CERTIFICATE-----” blocks, found %(labels)s.",
            code="invalid_pem",
            params={"labels": ", ".join(sorted(labels))},
        )


def validate_private_key_pem(value: str) -> None:
    if not value:
        return
    blocks = _pem_blocks(value)
    if blocks[0][0] == "ENCRYPTED PRIVATE KEY":
        raise ValidationError(
            "Encrypted private keys are not supported; store the key without a passphrase.",
            code="invalid_pem",
        )
    if len(blocks) != 1 or blocks[0][0] not in PRIVATE_KEY_LABELS:
        raise ValidationError(
            "Expected a single “-----BEGIN PRIVATE KEY-----” block.", code="invalid_pem"
        )


def validate_id_pattern(value: str) -> None:
    try:
        fields = [name for _, name, _, _ in string.Formatter().parse(value) if name is not None]
    except ValueError as e:
        raise ValidationError(
            "Invalid format string: %(e)s.", code="invalid_pattern", params={"e": e}
        ) from e
    if not fields or set(fields) != {"n"}:
        raise ValidationError(
            "Use exactly one kind of placeholder, {n}, e.g. “CS-{n:05d}”.",
            code="invalid_pattern",
        )
    try:
        sample = value.format(n=1)
    except (ValueError, KeyError, IndexError, AttributeError, TypeError) as e:
        raise ValidationError(
            "The pattern cannot format a number: %(e)s.", code="invalid_pattern", params={"e": e}
        ) from e
    if sample == value.format(n=2):
        raise ValidationError("Different numbers must give different ids.", code="invalid_pattern")
    try:
        validate_station_id(sample)
    except ValidationError:
        raise ValidationError(
            "The pattern gives “%(id)s”, which is not a valid station id.",
            code="invalid_pattern",
            params={"id": sample},
        ) from None


def validate_positive(value) -> None:
    if value is not None and value <= 0:
        raise ValidationError("Must be greater than zero.", code="not_positive")
