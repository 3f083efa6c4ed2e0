"""Local authorization list: D01 SendLocalList and D02 GetLocalListVersion.

The CSMS installs idTokens with their idTokenInfo, all at once (Full) or as changes to the
list it installed before (Differential), each time with the version the station must then
report. The authorization block looks idTokens up here before it looks in the cache, and
uses the list offline (C13) or online with LocalPreAuthorize (C14). LocalAuthListCtrlr
says whether the list is used (Enabled) and bounds it: Entries (maxLimit), ItemsPerMessage
and BytesPerMessage per SendLocalList, Storage. The list survives restarts with the rest of
the station's saved state.
"""

from __future__ import annotations

import json

from ocpp.charge_point import snake_to_camel_case
from ocpp.routing import on
from ocpp.v201 import call_result

from ..block import Block
from ..device_model.catalog import (
    LOCAL_LIST_BYTES_PER_MESSAGE,
    LOCAL_LIST_ENTRIES_MAX,
    LOCAL_LIST_ITEMS_PER_MESSAGE,
    LOCAL_LIST_STORAGE_MAX,
)
from ..protocol import ProtocolViolation
from .auth_cache import entry_bytes, token_key
from .datatypes import status_info

CTRLR = "LocalAuthListCtrlr"


class LocalListRefused(Exception):
    """Why a SendLocalList cannot be applied: its status, reasonCode and a sentence."""

    def __init__(self, status: str, reason: str, text: str):
        super().__init__(text)
        self.status = status
        self.reason = reason
        self.text = text


class LocalAuthList(Block):
    __slots__ = ("version", "entries", "size")
    # Made by the first SendLocalList or GetLocalListVersion: most stations never get one.
    slot = "_local_list"

    def __init__(self, station):
        super().__init__(station)
        # 0 means no list is installed (D01.FR.18), so it is never a list's version.
        self.version = 0
        # By (type, idToken): the idToken as the CSMS sent it and its idTokenInfo.
        self.entries: dict[tuple[str, str], tuple[dict, dict]] = {}
        # LocalAuthListCtrlr.Storage: bytes of the entries as JSON.
        self.size = 0

    # -- what the authorization block asks ------------------------------------------------

    def lookup(self, token: dict) -> dict | None:
        """The idTokenInfo the list holds for `token`, or None."""
        entry = self.entries.get(token_key(token))
        return entry[1] if entry is not None else None

    def rows(self) -> list[dict]:
        return [
            {"id_token": token["idToken"], "type": token["type"], "status": info.get("status"),
             "group": (info.get("groupIdToken") or {}).get("idToken"),
             "expires": info.get("cacheExpiryDateTime")}
            for token, info in self.entries.values()
        ]

    # -- D01 SendLocalList ----------------------------------------------------------------

    @on("SendLocalList")
    def on_send_local_list(self, version_number, update_type, local_authorization_list=None,
                           **_):
        items = snake_to_camel_case(local_authorization_list or [])
        # D01.FR.11 asks the CSMS to split a list over ItemsPerMessage and BytesPerMessage;
        # a request that does not gets the CALLERRORs B06.FR.16/17 give GetVariables.
        if len(items) > LOCAL_LIST_ITEMS_PER_MESSAGE:
            raise ProtocolViolation(
                "OccurrenceConstraintViolation",
                f"{len(items)} items; LocalAuthListCtrlr.ItemsPerMessage is "
                f"{LOCAL_LIST_ITEMS_PER_MESSAGE}")
        size = len(json.dumps({"versionNumber": version_number, "updateType": update_type,
                               "localAuthorizationList": items}, separators=(",", ":")))
        if size > LOCAL_LIST_BYTES_PER_MESSAGE:
            raise ProtocolViolation(
                "FormatViolation",
                f"{size} bytes; LocalAuthListCtrlr.BytesPerMessage is "
                f"{LOCAL_LIST_BYTES_PER_MESSAGE}")
        try:
            self._apply(version_number, update_type, items)
        except LocalListRefused as refused:
            return call_result.SendLocalList(refused.status,
                                             status_info(refused.reason, refused.text))
        return call_result.SendLocalList("Accepted")

    def _apply(self, version: int, update_type: str, items: list[dict]) -> None:
        station = self.station
        if not station.device_model.get_bool(CTRLR, "Enabled"):
            raise LocalListRefused("Failed", "NotEnabled", "LocalAuthListCtrlr.Enabled is false")
        if version <= 0:
            # D01.FR.18: 0 is what GetLocalListVersion says when no list is installed.
            raise LocalListRefused("Failed", "InvalidValue", "versionNumber must be above 0")
        keys = [token_key(item["idToken"]) for item in items]
        if len(set(keys)) != len(keys):
            # D01.FR.06: every idToken in the list is unique.
            raise LocalListRefused("Failed", "InvalidValue", "an idToken appears twice")
        if update_type == "Full":
            if any("idTokenInfo" not in item for item in items):
                raise LocalListRefused("Failed", "InvalidValue",
                                       "a Full list needs idTokenInfo for every idToken")
            # D01.FR.04/D01.FR.15: the list is replaced; an empty one empties it.
            entries = {}
        else:
            if version <= self.version:
                # D01.FR.19: a Differential update builds on an older version only.
                raise LocalListRefused("VersionMismatch", "InvalidValue",
                                       f"the installed list has version {self.version}")
            entries = dict(self.entries)
        for key, item in zip(keys, items, strict=True):
            if "idTokenInfo" in item:
                # D01.FR.16: added, or replacing the entry for the same idToken.
                entries[key] = (item["idToken"], item["idTokenInfo"])
            else:
                # D01.FR.17: an entry without idTokenInfo leaves the list.
                entries.pop(key, None)
        size = sum(entry_bytes(token, info) for token, info in entries.values())
        if len(entries) > LOCAL_LIST_ENTRIES_MAX or size > LOCAL_LIST_STORAGE_MAX:
            # The update would not fit: LocalAuthListCtrlr.Entries/Storage maxLimit.
            raise LocalListRefused(
                "Failed", "TooManyElements",
                f"the list would hold {len(entries)} idTokens ({size} bytes); the station "
                f"holds {LOCAL_LIST_ENTRIES_MAX} ({LOCAL_LIST_STORAGE_MAX} bytes)")
        # D01.FR.01: the list now has the version the request gave (D01.FR.05: also when a
        # Differential update changed nothing).
        self.version, self.entries, self.size = version, entries, size
        self._changed()

    def _changed(self) -> None:
        station = self.station
        dm = station.device_model
        dm.set_internal(CTRLR, "Entries", str(len(self.entries)))
        dm.set_internal(CTRLR, "Storage", str(self.size))
        station.save_soon()

    # -- D02 GetLocalListVersion ----------------------------------------------------------

    @on("GetLocalListVersion")
    def on_get_local_list_version(self, **_):
        # 0 says no list is installed (D01.FR.18); a disabled list is not used, so the
        # station reports none, as EVerest libocpp does.
        enabled = self.station.device_model.get_bool(CTRLR, "Enabled")
        return call_result.GetLocalListVersion(self.version if enabled else 0)

    # -- surviving a restart ----------------------------------------------------------------

    def export(self) -> dict:
        return {"version": self.version, "entries": [list(e) for e in self.entries.values()]}

    def restore(self, saved: dict) -> None:
        self.version = saved.get("version", 0)
        self.entries = {token_key(token): (token, info) for token, info in saved.get("entries", [])}
        self.size = sum(entry_bytes(token, info) for token, info in self.entries.values())
        dm = self.station.device_model
        dm.set_internal(CTRLR, "Entries", str(len(self.entries)))
        dm.set_internal(CTRLR, "Storage", str(self.size))
