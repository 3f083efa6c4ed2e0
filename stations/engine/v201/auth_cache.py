"""The authorization cache (C10-C12): the idTokenInfo the CSMS last gave for each idToken.

The station stores what Authorize and TransactionEvent responses say about an idToken and,
where AuthCtrlr allows it, authorizes from here without asking the CSMS (C12). An entry
lapses AuthCacheCtrlr.LifeTime seconds after it was last stored or used (C10.FR.10), or at
its idTokenInfo.cacheExpiryDateTime (C10.FR.13). The cache holds at most STORAGE_MAX_BYTES
(AuthCacheCtrlr.Storage's maxLimit); a new entry that does not fit evicts others by
AuthCacheCtrlr.Policy: LRU (least recently used), LFU (least frequently used) or FIFO (the
oldest stored). Part 2 names no other policy; CUSTOM would have no defined meaning, so it is
not offered.

Entries are kept by (type, idToken): C01.FR.25 calls two idTokens equal when both fields are
equal (the value a case-insensitive string), whatever their additionalInfo. Times are
wall-clock seconds, as the cache outlives the process and cacheExpiryDateTime is a date.
"""

from __future__ import annotations

import json
from datetime import datetime

from ..device_model.catalog import AUTH_CACHE_STORAGE_MAX as STORAGE_MAX_BYTES


def token_key(token: dict) -> tuple[str, str]:
    """What makes two idTokens the same one: type and value (C01.FR.25), the value case-
    insensitively, as IdTokenType.idToken is a CiString."""
    return (token["type"], token["idToken"].casefold())


def same_token(a: dict, b: dict) -> bool:
    """C01.FR.25: equal idToken and type, whatever additionalInfo says."""
    return token_key(a) == token_key(b)


def parse_date_time(value: str | None) -> float | None:
    """An RFC 3339 date-time as epoch seconds; None for none or an unreadable one."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def entry_bytes(token: dict, info: dict) -> int:
    return len(json.dumps([token, info], separators=(",", ":")))


class CacheEntry:
    __slots__ = ("token", "info", "stored", "used", "uses", "expires", "size")

    def __init__(self, token: dict, info: dict, stored: float, used: float | None = None,
                 uses: int = 0):
        self.token = token
        self.info = info
        # When the CSMS last said this; when and how often a driver used it since.
        self.stored = stored
        self.used = stored if used is None else used
        self.uses = uses
        # idTokenInfo.cacheExpiryDateTime, if any (C10.FR.13).
        self.expires = parse_date_time(info.get("cacheExpiryDateTime"))
        self.size = entry_bytes(token, info)

    def lapses_at(self, lifetime: int) -> float | None:
        """When the entry leaves the cache unless used again: C10.FR.13, else C10.FR.10."""
        if self.expires is not None:
            return self.expires
        return max(self.stored, self.used) + lifetime if lifetime > 0 else None


class AuthCache:
    __slots__ = ("_entries", "size")

    def __init__(self) -> None:
        # By token_key, oldest stored first (what FIFO evicts).
        self._entries: dict[tuple[str, str], CacheEntry] = {}
        # AuthCacheCtrlr.Storage: the bytes the entries take.
        self.size = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, token: dict, now: float, lifetime: int) -> dict | None:
        """The cached idTokenInfo, or None; a lapsed entry is removed (C10.FR.10/13)."""
        key = token_key(token)
        entry = self._entries.get(key)
        if entry is None:
            return None
        lapses = entry.lapses_at(lifetime)
        if lapses is not None and now >= lapses:
            self._drop(key)
            return None
        return entry.info

    def used(self, token: dict, now: float) -> None:
        """A driver was authorized from this entry: LRU and LFU count it."""
        entry = self._entries.get(token_key(token))
        if entry is not None:
            entry.used = now
            entry.uses += 1

    def put(self, token: dict, info: dict, now: float, policy: str) -> bool:
        """Store what the CSMS said; False if it was not kept. An idTokenInfo whose
        cacheExpiryDateTime has passed is not stored, and removes an older entry."""
        key = token_key(token)
        old = self._entries.get(key)
        entry = CacheEntry({"idToken": token["idToken"], "type": token["type"]}, info, now,
                           used=old.used if old else None, uses=old.uses if old else 0)
        expired = entry.expires is not None and entry.expires <= now
        if expired or entry.size > STORAGE_MAX_BYTES:
            if old is not None:
                self._drop(key)
            return False
        if old is not None:
            self.size -= old.size
        # A renewed entry keeps its place: FIFO counts from when it was first stored.
        self._entries[key] = entry
        self.size += entry.size
        while self.size > STORAGE_MAX_BYTES:
            self._drop(self._victim(policy, keep=key))
        return True

    def _victim(self, policy: str, keep: tuple[str, str]) -> tuple[str, str]:
        candidates = [(key, e) for key, e in self._entries.items() if key != keep]
        if policy == "FIFO":
            return candidates[0][0]
        if policy == "LFU":
            # Ties go to the least recently used.
            return min(candidates, key=lambda item: (item[1].uses, item[1].used))[0]
        return min(candidates, key=lambda item: item[1].used)[0]

    def _drop(self, key: tuple[str, str]) -> None:
        entry = self._entries.pop(key)
        self.size -= entry.size

    def clear(self) -> None:
        self._entries.clear()
        self.size = 0

    def prune(self, now: float, lifetime: int) -> None:
        for key, entry in list(self._entries.items()):
            lapses = entry.lapses_at(lifetime)
            if lapses is not None and now >= lapses:
                self._drop(key)

    def rows(self, now: float, lifetime: int) -> list[dict]:
        """What the dashboard shows: every live entry and when it lapses."""
        self.prune(now, lifetime)
        return [
            {"id_token": e.token["idToken"], "type": e.token["type"],
             "status": e.info.get("status"),
             "group": (e.info.get("groupIdToken") or {}).get("idToken"),
             "lapses_at": e.lapses_at(lifetime), "uses": e.uses}
            for e in self._entries.values()
        ]

    # -- surviving a restart ------------------------------------------------------------

    def export(self) -> list[list]:
        return [[e.token, e.info, e.stored, e.used, e.uses] for e in self._entries.values()]

    @classmethod
    def restore(cls, saved: list) -> AuthCache:
        cache = cls()
        for token, info, stored, used, uses in saved:
            entry = CacheEntry(token, info, stored, used, uses)
            cache._entries[token_key(token)] = entry
            cache.size += entry.size
        return cache
