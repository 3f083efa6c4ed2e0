"""Authorization: C01-C16, whether an idToken presented at the station may charge.

An idToken is decided in this order, as EVerest libocpp's validate_token does:

1. AuthCtrlr.Enabled false, or the start button's NoAuthorization idToken (C02): accepted,
   nobody asked.
2. The local authorization list (D01), where LocalAuthListCtrlr.Enabled, when offline with
   LocalAuthorizeOffline (C13) or online with LocalPreAuthorize (C14). An Accepted entry
   authorizes at once (C13.FR.01, C14.FR.02) and wins over the cache; any other status
   refuses offline (C13.FR.04) and online is asked of the CSMS (C14.FR.03) unless
   LocalAuthListCtrlr.DisablePostAuthorize or DisableRemoteAuthorization.
3. The authorization cache (auth_cache.py, C10-C12) under the same conditions: an Accepted
   entry authorizes at once (C12.FR.02), another is asked again (C10.FR.03, C12.FR.05)
   unless AuthCacheCtrlr.DisablePostAuthorize.
4. Offline: OfflineTxForUnknownIdEnabled lets any other idToken start (C15.FR.01);
   otherwise it is refused.
5. Online: an AuthorizeRequest, unless DisableRemoteAuthorization (then only the list and
   the cache decide); its answer goes to the cache (C10.FR.01).

A session authorized from the list or the cache is reported with its idToken, so the CSMS
still decides in its TransactionEvent answer (C12.FR.03); that answer updates the cache
(C10.FR.05, C12.FR.06) and, when not Accepted, ends the authorization (transactions.py) or,
with StopTxOnInvalidId false, lets it go on until TxCtrlr.MaxEnergyOnInvalidId.

What a decided idToken does at an EVSE (start a session, stop one, its group's or, as a
master pass, every one) is presenting.py's, a part of this block.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, NamedTuple

from ocpp.routing import on
from ocpp.v201 import call_result

from ..block import Block
from ..device_model.catalog import LOCAL_LIST_ENTRIES_MAX
from ..physical.evse import Change
from ..protocol import CALL_FAILURES, CallErrorReceived
from .auth_cache import AuthCache, same_token
from .presenting import Presenting

if TYPE_CHECKING:
    from ..physical.evse import Evse

LOGGER = logging.getLogger(__name__)

# idToken types whose idTokenInfo is never cached: the start button's (C02.FR.03) and the
# ones the CSMS or a payment terminal issue for one session (C03.FR.02, C05.FR.01).
UNCACHED_TYPES = frozenset({"NoAuthorization", "Central"})
# Seconds between looks at the energy a deauthorized idToken has used (MaxEnergyOnInvalidId).
ENERGY_CHECK_MAX_S = 1.0
ENERGY_CHECK_MIN_S = 0.05


class Verdict(NamedTuple):
    """What the station decided about an idToken and who decided it."""

    # idTokenInfo (camelCase), at least its status.
    info: dict
    # csms, local_list, cache, offline, unchecked (nobody asked), error
    source: str
    # C07: AuthorizeResponse.certificateStatus, for a contract presented with its certificate.
    certificate_status: str | None = None
    # Why nobody could say (source offline or error), in a driver's words.
    why: str = ""

    @property
    def accepted(self) -> bool:
        return self.info["status"] == "Accepted" and self.certificate_status in (None, "Accepted")

    @property
    def status(self) -> str:
        """What a driver is told: the status, or Offline / Failed when nobody could say."""
        if self.source == "error":
            return "Failed"
        if self.source == "offline" and self.info["status"] == "Unknown":
            return "Offline"
        if self.info["status"] == "Accepted" and self.certificate_status not in (None, "Accepted"):
            return self.certificate_status
        return self.info["status"]

    @property
    def detail(self) -> str:
        if self.accepted:
            return ""
        if self.why:
            return self.why
        if self.source == "offline":
            return "the station is offline and does not know this idToken"
        if self.source == "unchecked":
            return "DisableRemoteAuthorization: only the local list and the cache decide"
        if self.certificate_status not in (None, "Accepted"):
            return "the contract certificate was not accepted"
        return {"local_list": "idToken not accepted by the local list",
                "cache": "idToken not accepted by the authorization cache"}.get(
                    self.source, "idToken not accepted")

    @property
    def group(self) -> dict | None:
        return self.info.get("groupIdToken")


class Authorization(Presenting, Block):
    __slots__ = ("cache", "_sessions", "_energy_watch")
    # Made by the first idToken presented or ClearCache: stations that never authorize
    # (most of a heartbeat load test) never hold one.
    slot = "_authorization"

    def __init__(self, station):
        super().__init__(station)
        # C10: made by the first idTokenInfo stored while AuthCacheCtrlr.Enabled.
        self.cache: AuthCache | None = None
        # By EVSE id: the idToken authorized there and its groupIdToken, where the CSMS
        # gave one (C09); read to let another idToken of that group stop the session.
        self._sessions: dict[int, tuple[dict, dict]] | None = None
        # EVSE ids whose deauthorized idToken charges on until MaxEnergyOnInvalidId.
        self._energy_watch: set[int] | None = None

    # -- C01, C10-C15 deciding ------------------------------------------------------------

    async def authorize(self, token: dict) -> str:
        """The status a driver is told for `token` (see check)."""
        return (await self.check(token)).status

    async def check(self, token: dict, *, hash_data: list[dict] | None = None) -> Verdict:
        """Decide about `token` as the module docstring says; `hash_data` is a contract
        certificate's OCSP data (C07), sent to the CSMS with the idToken."""
        station = self.station
        dm = station.device_model
        if token["type"] == "NoAuthorization" or not dm.get_bool("AuthCtrlr", "Enabled"):
            return Verdict({"status": "Accepted"}, "unchecked")
        online = station.online
        remote_disabled = dm.get_bool("AuthCtrlr", "DisableRemoteAuthorization")
        if hash_data is not None:
            if not online:
                # C07.FR.07: without ContractValidationOffline (not simulated) a contract
                # is not validated offline, so it does not charge.
                return Verdict({"status": "Unknown"}, "offline")
            if remote_disabled:
                return Verdict({"status": "Unknown"}, "unchecked")
            return await self._ask_csms(token, hash_data)
        locally = (dm.get_bool("AuthCtrlr", "LocalPreAuthorize") if online
                   else dm.get_bool("AuthCtrlr", "LocalAuthorizeOffline"))
        if locally:
            known = self._local_answer(token, online, remote_disabled)
            if known is not None:
                return known
        if not online:
            if dm.get_bool("AuthCtrlr", "OfflineTxForUnknownIdEnabled"):
                return Verdict({"status": "Accepted"}, "offline")  # C15.FR.01
            return Verdict({"status": "Unknown"}, "offline")
        if remote_disabled:
            return Verdict({"status": "Unknown"}, "unchecked")
        return await self._ask_csms(token)

    def _local_answer(self, token: dict, online: bool, remote_disabled: bool) -> Verdict | None:
        """The local list's, then the cache's answer; None where the CSMS must say."""
        dm = self.station.device_model
        local_list = self.station._local_list
        if local_list is not None and dm.get_bool("LocalAuthListCtrlr", "Enabled"):
            info = local_list.lookup(token)
            if info is not None:
                # C13.FR.01/C14.FR.02 an Accepted entry; C13.FR.04 offline any other.
                if info.get("status") == "Accepted" or not online or remote_disabled:
                    return Verdict(info, "local_list")
                # C14.FR.03: online, another status is asked of the CSMS.
                if dm.get_bool("LocalAuthListCtrlr", "DisablePostAuthorize"):
                    return Verdict(info, "local_list")
                return None
        cache = self.cache
        if cache is not None and dm.get_bool("AuthCacheCtrlr", "Enabled"):
            now = time.time()
            size = cache.size
            info = cache.get(token, now, dm.get_int("AuthCacheCtrlr", "LifeTime"))
            if cache.size != size:
                self._cache_changed()  # the entry had lapsed
            if info is not None:
                if info.get("status") == "Accepted":
                    cache.used(token, now)
                    return Verdict(info, "cache")  # C12.FR.02
                # C10.FR.03/C12.FR.05: any other status is asked again, unless told not to.
                if not online or remote_disabled or dm.get_bool(
                        "AuthCacheCtrlr", "DisablePostAuthorize"):
                    return Verdict(info, "cache")
        return None

    async def _ask_csms(self, token: dict, hash_data: list[dict] | None = None) -> Verdict:
        station = self.station
        payload: dict = {"idToken": token}
        if hash_data is not None:
            # C07.FR.01/C07.FR.02: the contract's OCSP data goes with the eMAID.
            payload["iso15118CertificateHashData"] = hash_data
        unknown = {"status": "Unknown"}
        try:
            response = await station.call_action("Authorize", payload)
        except ConnectionError:
            return Verdict(unknown, "offline", why="the connection dropped during the Authorize")
        except CallErrorReceived as exc:
            # A CSMS may refuse the Authorize itself: CitrineOS does, for an idToken whose
            # value does not fit its type.
            LOGGER.warning("%s: Authorize refused: %s", station.id, exc)
            return Verdict(unknown, "error",
                           why=f"the CSMS refused the Authorize: {exc.code} {exc.description}")
        except CALL_FAILURES as exc:
            LOGGER.warning("%s: Authorize failed: %s", station.id, exc)
            return Verdict(unknown, "error",
                           why=f"Authorize failed: {exc or type(exc).__name__}")
        info = response["idTokenInfo"]
        certificate = response.get("certificateStatus")
        station.emit("authorize", {"id_token": token["idToken"], "status": info["status"]})
        if hash_data is None:
            self.remember(token, info)  # C10.FR.01
        return Verdict(info, "csms", certificate)

    # -- C10 storing ----------------------------------------------------------------------

    def remember(self, token: dict, info: dict) -> None:
        """Keep what the CSMS said about `token` in the cache, where there is one."""
        dm = self.station.device_model
        if token["type"] in UNCACHED_TYPES or not dm.get_bool("AuthCacheCtrlr", "Enabled"):
            return
        if self.cache is None:
            self.cache = AuthCache()
        self.cache.put(token, info, time.time(), dm.get("AuthCacheCtrlr", "Policy") or "LRU")
        self._cache_changed()

    def _cache_changed(self) -> None:
        station = self.station
        size = self.cache.size if self.cache is not None else 0
        station.device_model.set_internal("AuthCacheCtrlr", "Storage", str(size))
        station.save_soon()

    @on("ClearCache")
    def on_clear_cache(self, **_):
        # C11: the cache is emptied; a station whose cache is disabled answers Rejected
        # (ClearCacheStatusEnumType), as EVerest libocpp does.
        if not self.station.device_model.get_bool("AuthCacheCtrlr", "Enabled"):
            return call_result.ClearCache("Rejected")
        if self.cache is not None:
            self.cache.clear()
            self._cache_changed()
        return call_result.ClearCache("Accepted")

    def transaction_answered(self, evse: Evse, token: dict, info: dict) -> None:
        """A TransactionEvent that carried `token` was answered with `info`."""
        self.remember(token, info)  # C10.FR.05, C12.FR.06
        if evse.id_token is not None and same_token(evse.id_token, token):
            self.authorized(evse, token, info)

    # -- C15 MaxEnergyOnInvalidId -----------------------------------------------------------

    def allow_energy_on_invalid_id(self, evse: Evse) -> bool:
        """The CSMS did not accept the idToken of a running transaction and StopTxOnInvalidId
        is false: True if TxCtrlr.MaxEnergyOnInvalidId lets it charge on until that many Wh
        of the transaction were delivered; the authorization then ends (C15.FR.07)."""
        tx = evse.transaction
        limit = self.station.device_model.get_int("TxCtrlr", "MaxEnergyOnInvalidId")
        if tx is None or limit <= 0:
            return False
        evse.update_meter()
        if evse.meter.register_wh - tx.energy_at_start_wh >= limit:
            return False
        if self._energy_watch is None:
            self._energy_watch = set()
        if evse.id not in self._energy_watch:
            self._energy_watch.add(evse.id)
            self.station.spawn(self._watch_energy(evse, tx.transaction_id, limit))
        return True

    async def _watch_energy(self, evse: Evse, transaction_id: str, limit: int) -> None:
        # A task only while such a transaction charges: it sleeps until the limit could be
        # reached at the present power, and looks again.
        try:
            while True:
                tx = evse.transaction
                if (tx is None or tx.transaction_id != transaction_id or evse.id_token is None
                        or self.station._stopping):
                    return
                evse.update_meter()
                delivered = evse.meter.register_wh - tx.energy_at_start_wh
                if delivered >= limit:
                    evse.deauthorize(Change.ENERGY_LIMIT)
                    return
                rate = evse.meter.power_w / 3600 * self.station.config.time_scale  # Wh/s
                wait = (limit - delivered) / rate if rate > 0 else ENERGY_CHECK_MAX_S
                await asyncio.sleep(min(max(wait, ENERGY_CHECK_MIN_S), ENERGY_CHECK_MAX_S))
        finally:
            self._energy_watch.discard(evse.id)

    # -- what the station page shows -----------------------------------------------------

    def cache_view(self) -> dict:
        dm = self.station.device_model
        lifetime = dm.get_int("AuthCacheCtrlr", "LifeTime")
        cache = self.cache
        return {
            "enabled": dm.get_bool("AuthCacheCtrlr", "Enabled"),
            "policy": dm.get("AuthCacheCtrlr", "Policy"),
            "lifetime_s": lifetime,
            "entries": cache.rows(time.time(), lifetime) if cache is not None else [],
            "bytes": cache.size if cache is not None else 0,
        }

    # -- surviving a restart ----------------------------------------------------------------

    def export(self) -> list | None:
        return self.cache.export() if self.cache else None

    def restore(self, saved: list) -> None:
        self.cache = AuthCache.restore(saved)
        self.station.device_model.set_internal("AuthCacheCtrlr", "Storage", str(self.cache.size))


# Shown with the cache and the list: what decides an idToken at this station.
_SETTINGS = (("AuthCtrlr", "Enabled"), ("AuthCtrlr", "LocalPreAuthorize"),
             ("AuthCtrlr", "LocalAuthorizeOffline"), ("AuthCtrlr", "OfflineTxForUnknownIdEnabled"),
             ("AuthCtrlr", "DisableRemoteAuthorization"), ("AuthCtrlr", "AuthorizeRemoteStart"))


def authorization_view(station) -> dict:
    """The station page's authorization panel: the cache, the local list, the master pass
    and the settings that decide, read without making a block the station does not have."""
    dm = station.device_model
    block = station._authorization
    local_list = station._local_list
    master = dm.get("AuthCtrlr", "MasterPassGroupId") or None
    return {
        "evses": list(station.evses),
        "online": station.online,
        "settings": {f"{c}.{v}": dm.get_bool(c, v) for c, v in _SETTINGS},
        "cache": (block or Authorization(station)).cache_view(),
        "local_list": {
            "enabled": dm.get_bool("LocalAuthListCtrlr", "Enabled"),
            "version": local_list.version if local_list is not None else 0,
            "entries": local_list.rows() if local_list is not None else [],
            "max_entries": LOCAL_LIST_ENTRIES_MAX,
        },
        "master_pass": {
            "group": master,
            # C16.FR.01: a master pass would stop these (the station stops them all).
            "would_stop": Authorization(station).master_pass_would_stop() if master else [],
        },
    }
