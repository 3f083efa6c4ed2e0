"""Authorization: C01 an idToken presented at the station is authorized by the CSMS.

Offline, with no local list or cache yet, an idToken is refused unless
OfflineTxForUnknownIdEnabled lets any idToken start (C15).
"""

from __future__ import annotations

import logging

from ..block import Block
from ..protocol import CALL_FAILURES

LOGGER = logging.getLogger(__name__)


class Authorization(Block):
    __slots__ = ()

    async def authorize(self, token: dict) -> str:
        """The idTokenInfo status for `token`: from the CSMS, or the offline rules."""
        station = self.station
        dm = station.device_model
        if not dm.get_bool("AuthCtrlr", "Enabled"):
            return "Accepted"
        if not station.online:
            if dm.get_bool("AuthCtrlr", "OfflineTxForUnknownIdEnabled"):
                return "Accepted"
            return "Offline"
        try:
            response = await station.call_action("Authorize", {"idToken": token})
        except ConnectionError:
            return "Offline"
        except CALL_FAILURES as exc:
            LOGGER.warning("%s: Authorize failed: %s", station.id, exc)
            return "Failed"
        status = response["idTokenInfo"]["status"]
        station.emit("authorize", {"id_token": token["idToken"], "status": status})
        return status
