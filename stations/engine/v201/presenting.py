"""An idToken presented at an EVSE: it starts a session there, stops the one it (or its
group) started, or, as a master pass, stops them all; and the other ways a driver asks to
charge (start button, payment terminal, Plug and Charge).

A mixin of the authorization block (authorization.py), which decides each idToken; this
says what a decided idToken does at the EVSE. A session stops for the idToken that started
it (E07, C01.FR.25: same value and type), for another of the same groupIdToken (C09.FR.03),
or for one of the group AuthCtrlr.MasterPassGroupId names, which stops every transaction
and starts none (C16). The groups come from the idTokenInfo that authorized each session.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from ..physical.evse import Change
from .auth_cache import same_token

if TYPE_CHECKING:
    from ..physical.evse import Evse
    from .authorization import Verdict


def contract_hash_data(emaid: str) -> list[dict]:
    """C07: the OCSPRequestData an EV's contract certificate chain gives (ISO 15118-2 PnC).

    Simulated: hashes derived from the eMAID's provider (its first five characters, e.g.
    DE8AA) and the whole eMAID, so one contract always presents the same certificate."""
    provider = emaid.replace("-", "")[:5].upper()
    digest = hashlib.sha256
    return [{
        "hashAlgorithm": "SHA256",
        "issuerNameHash": digest(f"CN={provider} Contract Sub-CA".encode()).hexdigest(),
        "issuerKeyHash": digest(f"{provider} issuer key".encode()).hexdigest(),
        "serialNumber": digest(emaid.encode()).hexdigest()[:20],
        "responderURL": f"http://ocsp.{provider.lower()}.example/",
    }]


class Presenting:
    """What a decided idToken does at an EVSE (mixed into the Authorization block)."""

    __slots__ = ()

    # -- what a driver presents (driver.py); each answers (ok, status, detail) -------------

    async def present(self, evse: Evse, token: dict, *,
                      hash_data: list[dict] | None = None) -> tuple[bool, str, str]:
        """An idToken at an EVSE starts a session there, stops one, or is refused."""
        current = evse.id_token
        if current is not None and same_token(current, token):
            # E07: the same idToken again stops the session without asking the CSMS.
            evse.deauthorize(Change.STOPPED)
            return True, "Stopped", ""
        if current is None and not self._usable(evse):
            return False, "Rejected", "EVSE is not available"
        verdict = await self.check(token, hash_data=hash_data)
        if not verdict.accepted:
            return False, verdict.status, verdict.detail
        if self.is_master_pass(verdict):
            # C16: a master pass stops every transaction and starts none.
            stopped = self.stop_with_master_pass(token)
            if not stopped:
                return False, "Rejected", "a master pass starts no session"
            return True, "Stopped", f"master pass: {stopped} transaction(s) stopped"
        if evse.id_token is not None:
            if self.may_stop(evse, verdict):
                self.stop_by_group(evse, token)  # C09.FR.03
                return True, "Stopped", "stopped by an idToken of the same group"
            return False, "Rejected", "EVSE is in use by another idToken"
        self.authorized(evse, token, verdict.info)
        evse.authorize(token)
        return True, "Accepted", ""

    async def start_button(self, evse: Evse) -> tuple[bool, str, str]:
        """C02: only a station that authorizes nobody (AuthCtrlr.Enabled false) has a start
        button; its sessions carry the NoAuthorization idToken, which has no value."""
        if self.station.device_model.get_bool("AuthCtrlr", "Enabled"):
            return False, "Rejected", "this station authorizes idTokens (AuthCtrlr.Enabled)"
        return await self.present(evse, {"idToken": "", "type": "NoAuthorization"})

    def card_payment(self, evse: Evse) -> tuple[bool, str, str]:
        """C03: the payment terminal has a card payment approved (simulated: always) and
        issues a reference for the session, a Central idToken. The payment authorized it,
        so no Authorize is sent (C03.FR.01 as libocpp reads it); the CSMS learns it from
        the TransactionEvents, and it is never cached (C03.FR.02)."""
        if evse.id_token is not None:
            return False, "Rejected", "EVSE is in use"
        if not self._usable(evse):
            return False, "Rejected", "EVSE is not available"
        reference = f"PAY-{self.station.rng.getrandbits(48):012X}"
        token = {"idToken": reference, "type": "Central"}
        evse.authorize(token)
        return True, "Accepted", f"payment {reference} approved"

    async def contract(self, evse: Evse, emaid: str) -> tuple[bool, str, str]:
        """C07: the EV presents its contract (eMAID) and certificate over ISO 15118."""
        return await self.present(evse, {"idToken": emaid, "type": "eMAID"},
                                  hash_data=contract_hash_data(emaid))

    def _usable(self, evse: Evse) -> bool:
        return evse.operative and self.station.operative and not evse.faulted

    # -- C09, C16 who may stop ------------------------------------------------------------

    def authorized(self, evse: Evse, token: dict, info: dict) -> None:
        """`token` is authorized at `evse`: remember its group, if it has one (C09)."""
        group = info.get("groupIdToken")
        if group:
            if self._sessions is None:
                self._sessions = {}
            self._sessions[evse.id] = (token, group)
        elif self._sessions:
            self._sessions.pop(evse.id, None)

    def group_of(self, evse: Evse) -> dict | None:
        """The groupIdToken of the authorization at `evse`, if the CSMS gave one."""
        session = self._sessions.get(evse.id) if self._sessions else None
        if session is None or evse.id_token is None or not same_token(session[0], evse.id_token):
            return None
        return session[1]

    def may_stop(self, evse: Evse, verdict: Verdict) -> bool:
        """C09.FR.03: another valid idToken with the same groupIdToken may stop a session."""
        group = self.group_of(evse)
        return (verdict.accepted and group is not None and verdict.group is not None
                and same_token(group, verdict.group))

    def is_master_pass(self, verdict: Verdict) -> bool:
        """C16: an accepted idToken whose group is AuthCtrlr.MasterPassGroupId."""
        master = self.station.device_model.get("AuthCtrlr", "MasterPassGroupId")
        group = verdict.group
        return bool(master) and verdict.accepted and group is not None \
            and group.get("idToken") == master

    def master_pass_would_stop(self) -> list[dict]:
        """What a master pass would stop now, for the station's display (C16.FR.01)."""
        return [{"evse_id": evse.id, "transaction_id": evse.transaction.transaction_id,
                 "id_token": evse.id_token["idToken"] if evse.id_token else None}
                for evse in self.station.evses.values() if evse.transaction is not None]

    def stop_with_master_pass(self, token: dict) -> int:
        """C16.FR.02: every ongoing transaction stops as in E07, stoppedReason MasterPass;
        the Ended events carry the master pass. Returns how many stopped."""
        stopped = 0
        for evse in self.station.evses.values():
            if evse.transaction is None:
                continue
            self.station.transactions.stopping_id_token(evse, token)
            evse.deauthorize(Change.MASTER_PASS, end=True)
            stopped += 1
        return stopped

    def stop_by_group(self, evse: Evse, token: dict) -> None:
        """C09.FR.03: a session stops for an idToken of its group, which the event names."""
        self.station.transactions.stopping_id_token(evse, token)
        evse.deauthorize(Change.STOPPED)
