"""What a driver or technician does at a station: plug in, present a card, fault, reboot.

Each action returns an Outcome, so whoever asked (a dashboard button, a load-test
scenario, a test) learns whether it was done and, if not, why. The actions speak of what
people do, in no protocol's words: the station's blocks turn them into its messages.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from .id_tokens import DEFAULT_TYPE
from .physical.evse import Change
from .v201.auth_cache import same_token

if TYPE_CHECKING:
    from .physical.evse import Evse

# Reset(Immediate) waits this long for Ended events to go out before rebooting.
RESET_FLUSH_S = 10.0


@dataclass
class Outcome:
    """The answer to a driver or technician action: done, or rejected and why."""

    ok: bool
    status: str
    detail: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


class DriverActions:
    """Mixin for Station: the actions of people at the station."""

    def _evse(self, evse_id: int) -> Evse:
        try:
            return self.evses[evse_id]
        except KeyError:
            raise LookupError(f"{self.id} has no EVSE {evse_id}") from None

    def _done(self, problem: str | None) -> Outcome:
        return Outcome(False, "Rejected", problem) if problem else Outcome(True, "Accepted")

    async def plug_in(self, evse_id: int, connector_id: int | None = None) -> Outcome:
        return self._done(self._evse(evse_id).plug_in(connector_id))

    async def unplug(self, evse_id: int) -> Outcome:
        return self._done(self._evse(evse_id).unplug())

    async def set_ev_drawing(self, evse_id: int, drawing: bool) -> Outcome:
        return self._done(self._evse(evse_id).set_ev_drawing(drawing))

    async def set_fault(self, evse_id: int, faulted: bool) -> Outcome:
        self._evse(evse_id).set_fault(faulted)
        return Outcome(True, "Accepted")

    # -- C01-C09, C16: what a driver presents; the authorization block decides -----------

    async def present_id_token(
        self, evse_id: int, id_token: str, token_type: str = DEFAULT_TYPE
    ) -> Outcome:
        """C01/E03/E07: a driver holds a card (or phone, or key fob) to an EVSE's reader;
        `token_type` says what it is: ISO14443 or ISO15693 (RFID, C01), KeyCode (C04),
        Local (C06), eMAID (C08, external identification), Central, MacAddress."""
        token = {"idToken": id_token, "type": token_type}
        return Outcome(*await self.authorization.present(self._evse(evse_id), token))

    async def enter_pin(self, evse_id: int, pin: str) -> Outcome:
        """C04: a driver types a PIN code on the station's keypad."""
        if not pin.isdigit() or len(pin) > 36:
            return Outcome(False, "Rejected", "a PIN is 1-36 digits")
        return await self.present_id_token(evse_id, pin, "KeyCode")

    async def press_start_button(self, evse_id: int) -> Outcome:
        """C02: a driver presses the EVSE's start button (again: its stop button)."""
        return Outcome(*await self.authorization.start_button(self._evse(evse_id)))

    async def pay_by_card(self, evse_id: int) -> Outcome:
        """C03: a driver pays with a credit or debit card at the payment terminal."""
        return Outcome(*self.authorization.card_payment(self._evse(evse_id)))

    async def present_contract(self, evse_id: int, emaid: str) -> Outcome:
        """C07 Plug and Charge: the EV, plugged in (now, if not yet), presents its
        contract."""
        evse = self._evse(evse_id)
        if evse.plugged_connector is None and evse.id_token is None:
            problem = evse.plug_in()
            if problem:
                return Outcome(False, "Rejected", problem)
        return Outcome(*await self.authorization.contract(evse, emaid))

    async def start_charging(
        self, evse_id: int, id_token: str, token_type: str = DEFAULT_TYPE
    ) -> Outcome:
        """A driver plugs in (if not yet) and presents a card."""
        evse = self._evse(evse_id)
        if evse.id_token is not None and same_token(
            evse.id_token, {"idToken": id_token, "type": token_type}
        ):
            return Outcome(True, "Accepted", "already authorized")
        if evse.plugged_connector is None:
            problem = evse.plug_in()
            if problem:
                return Outcome(False, "Rejected", problem)
        return await self.present_id_token(evse_id, id_token, token_type)

    async def stop_charging(self, evse_id: int) -> Outcome:
        evse = self._evse(evse_id)
        if evse.id_token is None:
            return Outcome(False, "Rejected", "nothing is authorized on this EVSE")
        evse.deauthorize(Change.STOPPED)
        return Outcome(True, "Accepted")

    def set_wanted_online(self, online: bool) -> None:
        """Before the first connection: start connected or not."""
        if online:
            self._wanted_online.set()
        else:
            self._wanted_online.clear()

    async def go_offline(self) -> Outcome:
        self._wanted_online.clear()
        self.end_session()
        return Outcome(True, "Accepted")

    async def go_online(self) -> Outcome:
        self._wanted_online.set()
        self._wake.set()
        return Outcome(True, "Accepted")

    async def reboot(self, reason: str = "LocalReset", flush: bool = False) -> Outcome:
        """Restart the station; running transactions end first, as on a real reset."""
        for evse in self.evses.values():
            if evse.transaction is not None:
                evse.deauthorize(Change.RESET, end=True)
        if flush and self.online:
            deadline = asyncio.get_running_loop().time() + RESET_FLUSH_S
            while len(self.outbox) and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.05)
        self._reboot_reason = reason
        self.end_session()
        return Outcome(True, "Accepted")
