"""Transaction-related messages, kept in order until the CSMS has answered them.

OCPP 2.0.1 (E11/E12) wants every TransactionEvent delivered, in order, even when the
connection drops: a message leaves the outbox only once the CSMS answered it, or once it
has failed `MessageAttempts` times while connected.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from .flag import Flag

LOGGER = logging.getLogger(__name__)


@dataclass
class Message:
    action: str
    payload: dict
    attempts: int = 0


Send = Callable[[Message], Awaitable[None]]


class Outbox:
    def __init__(self, messages: list[dict] | None = None):
        # A list, not a deque: an empty deque costs 600 bytes, and thousands of stations
        # each hold an outbox that is empty almost all the time.
        self._queue: list[Message] = [Message(**m) for m in messages or ()]
        self._ready = Flag()
        if self._queue:
            self._ready.set()
        # Called after a message left the queue, so the caller can save the new state.
        self.on_delivered: Callable[[], Awaitable[None]] | None = None
        # Called after a message joined it: the caller checkpoints it soon (a message made
        # offline must outlive the process as much as one about to be sent).
        self.on_queued: Callable[[], None] | None = None

    def __len__(self) -> int:
        return len(self._queue)

    def put(self, action: str, payload: dict) -> None:
        self._queue.append(Message(action, payload))
        self._ready.set()
        if self.on_queued is not None:
            self.on_queued()

    def snapshot(self) -> list[dict]:
        """The queued messages as plain data, so a restarted station can resume them."""
        return [{"action": m.action, "payload": m.payload} for m in self._queue]

    async def deliver(
        self, send: Send, *, attempts: Callable[[], int], interval: Callable[[], float],
        until_empty: bool = False,
    ) -> None:
        """Send queued messages one by one, for as long as the connection lasts, or with
        `until_empty` until none is left.

        `send` raises ConnectionError when the connection is gone: the message stays at
        the head and goes first after the reconnect. Any other failure (timeout,
        CALLERROR) is retried after `interval() * attempt` seconds, up to `attempts()`.
        """
        while True:
            if not self._queue:
                if until_empty:
                    return
                self._ready.clear()
                await self._ready.wait()
                continue
            message = self._queue[0]
            try:
                await send(message)
            except ConnectionError:
                raise
            except Exception as exc:  # noqa: BLE001 - any CSMS-side failure is retried
                message.attempts += 1
                if message.attempts >= attempts():
                    LOGGER.warning("gave up on %s after %d attempts: %s",
                                   message.action, message.attempts, exc)
                    self._queue.pop(0)
                    if self.on_delivered is not None:
                        await self.on_delivered()
                else:
                    await asyncio.sleep(interval() * message.attempts)
                continue
            self._queue.pop(0)
            if self.on_delivered is not None:
                await self.on_delivered()
