"""Authorization: C01 an idToken presented at the station is authorized by the CSMS.

Offline, with no local list or cache yet, an idToken is refused unless
OfflineTxForUnknownIdEnabled lets any idToken start (C15).
"""

from __future__ import annotations

import logging

from ..block import Block
from ..protocol import CALL_FAILURES, CallErrorReceived

LOGGER = logging.getLogger(__name__)


class Authorization(Block):
    __slots__ = ()

    async def authorize(self, token: dict) -> str:
        """The idTokenInfo status for `token`: from the CSMS, or the offline rules."""
        return (await self.check(token))[0]

    async def check(self, token: dict) -> tuple[str, str]:
        """The idTokenInfo status for `token` and, when the CSMS did not answer with one,
        why: a CSMS that refuses the Authorize itself (CitrineOS does, for an idToken
        whose value does not fit its type) says so in its CALLERROR."""
        station = self.station
        dm = station.device_model
        if not dm.get_bool("AuthCtrlr", "Enabled"):
            return "Accepted", ""
        if not station.online:
            if dm.get_bool("AuthCtrlr", "OfflineTxForUnknownIdEnabled"):
                return "Accepted", ""
            return "Offline", "the station is offline and knows no idTokens itself"
        try:
            response = await station.call_action("Authorize", {"idToken": token})
        except ConnectionError:
            return "Offline", "the connection dropped during the Authorize"
        except CallErrorReceived as exc:
            LOGGER.warning("%s: Authorize refused: %s", station.id, exc)
            return "Failed", f"the CSMS refused the Authorize: {exc.code} {exc.description}"
        except CALL_FAILURES as exc:
            LOGGER.warning("%s: Authorize failed: %s", station.id, exc)
            return "Failed", f"Authorize failed: {exc or type(exc).__name__}"
        status = response["idTokenInfo"]["status"]
        station.emit("authorize", {"id_token": token["idToken"], "status": status})
        return status, "" if status == "Accepted" else "idToken not accepted"
