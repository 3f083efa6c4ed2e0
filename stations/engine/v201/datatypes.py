"""2.0.1 datatypes that more than one block puts in its messages (Part 2, chapter 2)."""

from __future__ import annotations

# StatusInfoType.additionalInfo maxLength.
_MAX_INFO = 512


def status_info(reason: str, text: str = "") -> dict:
    """StatusInfoType, snake_case as the ocpp library's call_result dataclasses take it."""
    info = {"reason_code": reason}
    if text:
        info["additional_info"] = text[:_MAX_INFO]
    return info


def id_token(token: dict) -> dict:
    """IdTokenType as the station keeps and sends it (camelCase), from a handler's argument."""
    return {"idToken": token["id_token"], "type": token["type"]}
