"""What an idToken of each type looks like (OCPP 2.0.1 IdTokenEnumType), and valid ones made
to order.

A CSMS may refuse an idToken whose value does not fit its type: CitrineOS answers an
Authorize for an ISO14443 token that is not an RFID UID with a CALLERROR. So a value is
checked against its type wherever one comes in (dashboard, REST API, scenarios, demo
settings), and the sandbox CSMS checks what stations send the same way. Values made here
(`generate`) pass the check: load-test pools and demo stations use them.
"""

from __future__ import annotations

import re
import string

# IdTokenEnumType, in the schema's order.
TYPES = ("Central", "eMAID", "ISO14443", "ISO15693", "KeyCode", "Local", "MacAddress",
         "NoAuthorization")
DEFAULT_TYPE = "ISO14443"
# Types whose values are chosen by people or systems, not read from hardware: a load-test
# pool may give them a prefix of its own.
FREE_FORM = ("Central", "KeyCode", "Local")
MAX_LENGTH = 36  # IdTokenType.idToken

# OCPP 2.0.1 Part 2, primitive identifierString: the characters an identifier may hold.
_IDENTIFIER = re.compile(r"[a-zA-Z0-9*\-_=:+|@.]+")
_HEX = re.compile(r"[0-9A-Fa-f]+")
# Six bytes in hex, separated by ':' or '-' throughout, or not at all.
_MAC = re.compile(r"[0-9A-Fa-f]{2}([:-]?)[0-9A-Fa-f]{2}(?:\1[0-9A-Fa-f]{2}){4}")
# ISO 15118-1 Annex H (eMI³): country, provider, ID type C and an 8-character instance,
# then an optional check digit; '-' may separate the parts.
_EMAID = re.compile(r"([A-Z]{2})-?([A-Z0-9]{3})-?(C[A-Z0-9]{8})(?:-?([A-Z0-9]))?")

_IDENTIFIER_CHARS = "letters, digits and * - _ = : + | @ ."


def problem(token_type: str, value: str) -> str | None:
    """Why `value` is not an idToken of `token_type`, or None when it is one."""
    if token_type not in TYPES:
        return f"{token_type!r} is not an idToken type; one of: {', '.join(TYPES)}"
    if len(value) > MAX_LENGTH:
        return f"an idToken holds at most {MAX_LENGTH} characters"
    if token_type == "NoAuthorization":
        return None if value == "" else "NoAuthorization idTokens are empty"
    if value == "":
        return f"{token_type} idTokens are not empty"
    if token_type == "ISO14443":
        if len(value) in (8, 14) and _HEX.fullmatch(value):
            return None
        return ("ISO14443 idTokens are 4- or 7-byte RFID UIDs: 8 or 14 hexadecimal "
                "characters (0-9, A-F), such as 04A1B2C3")
    if token_type == "ISO15693":
        if len(value) == 16 and _HEX.fullmatch(value):
            return None
        return ("ISO15693 idTokens are 8-byte RFID UIDs: 16 hexadecimal characters "
                "(0-9, A-F), such as E004015012345678")
    if token_type == "eMAID":
        return _emaid_problem(value)
    if token_type == "MacAddress":
        if _MAC.fullmatch(value):
            return None
        return "MacAddress idTokens are 6 bytes in hexadecimal, such as 02:00:5E:10:00:01"
    if not _IDENTIFIER.fullmatch(value):
        return f"{token_type} idTokens hold only {_IDENTIFIER_CHARS}"
    return None


def _emaid_problem(value: str) -> str | None:
    match = _EMAID.fullmatch(value.upper())
    if match is None:
        return ("eMAIDs are a country code, a 3-character provider id, C and an 8-character "
                "instance, then an optional check digit, such as DE-8AA-C12345678-D")
    country, provider, instance, check = match.groups()
    if check is not None and check != check_digit(country + provider + instance):
        return (f"this eMAID's check digit is {check_digit(country + provider + instance)}, "
                f"not {check}")
    return None


# -- the eMAID check digit -------------------------------------------------------------
# "Check Digit Calculation for Contract-IDs" (eMI³, the algorithm ISO 15118 Annex H points
# to): each of the 36 characters stands for a 2x2 matrix (q1 q2 / r1 r2), q over Z2 and r
# over Z3; row vectors of the 14 characters are weighted by powers of P1 (mod 2) and P2
# (mod 3), and the sums name the check character.

_ALPHANUMERIC = string.digits + string.ascii_uppercase
_P1 = (0, 1, 1, 1)
_P2 = (0, 1, 1, 2)
_NEG_P2_INV_15 = (0, 2, 2, 1)  # -(P2^15)^-1 mod 3


def _parts(char: str) -> tuple[int, int, int, int]:
    k = _ALPHANUMERIC.index(char)
    return (k // 18) % 2, (k // 9) % 2, (k // 3) % 3, k % 3


def _mat_mul(a, b, mod):
    return ((a[0] * b[0] + a[1] * b[2]) % mod, (a[0] * b[1] + a[1] * b[3]) % mod,
            (a[2] * b[0] + a[3] * b[2]) % mod, (a[2] * b[1] + a[3] * b[3]) % mod)


def _vec_mul(v, m, mod):
    return (v[0] * m[0] + v[1] * m[2]) % mod, (v[0] * m[1] + v[1] * m[3]) % mod


def check_digit(emaid14: str) -> str:
    """The check digit of an eMAID given as its 14 characters without separators."""
    t1, t2, p1, p2 = (0, 0), (0, 0), _P1, _P2
    for char in emaid14.upper():
        q1, q2, r1, r2 = _parts(char)
        a, b = _vec_mul((q1, q2), p1, 2), _vec_mul((r1, r2), p2, 3)
        t1 = ((t1[0] + a[0]) % 2, (t1[1] + a[1]) % 2)
        t2 = ((t2[0] + b[0]) % 3, (t2[1] + b[1]) % 3)
        p1, p2 = _mat_mul(p1, _P1, 2), _mat_mul(p2, _P2, 3)
    r = _vec_mul(t2, _NEG_P2_INV_15, 3)
    wanted = (t1[0], t1[1], r[0], r[1])
    return next(c for c in _ALPHANUMERIC if _parts(c) == wanted)


# -- valid values made to order ----------------------------------------------------------

_MIX = 0x9E3779B97F4B  # odd: multiplying by it permutes the numbers below 2^48


def _scramble(index: int, seed: int) -> int:
    """A 48-bit number for `index`: different for every index below 2^48 (for one seed),
    so a pool's cards look like cards and never repeat (and the first is not all zeros)."""
    return ((index + 1 + seed * 0x5DEECE66D) * _MIX) % (1 << 48)


def _base36(number: int, width: int) -> str:
    digits = []
    for _ in range(width):
        number, rest = divmod(number, 36)
        digits.append(_ALPHANUMERIC[rest])
    return "".join(reversed(digits))


def generate(token_type: str, index: int, *, seed: int = 0, prefix: str = "",
             width: int = 1) -> str:
    """A valid value of `token_type`, the `index`-th of a pool, different for each index.

    RFID UIDs start with 04 (ISO14443, the NXP manufacturer byte of most cards) or E004
    (ISO15693); eMAIDs are German test contracts (DE-SIM-C…) with their check digit; MAC
    addresses are locally administered. The free-form types are `prefix` and index + 1
    padded to `width` digits.
    """
    if token_type == "NoAuthorization":
        return ""
    number = _scramble(index, seed)
    if token_type == "ISO14443":
        return f"04{number:012X}"
    if token_type == "ISO15693":
        return f"E004{number:012X}"
    if token_type == "eMAID":
        body = "DESIMC" + _base36(number, 8)
        return body + check_digit(body)
    if token_type == "MacAddress":
        raw = f"02{number % (1 << 40):010X}"
        return ":".join(raw[i:i + 2] for i in range(0, 12, 2))
    if token_type in FREE_FORM:
        return f"{prefix}{index + 1:0{width}d}"
    raise ValueError(f"{token_type!r} is not an idToken type")
