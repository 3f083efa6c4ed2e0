"""A lighter asyncio.Event: no waiter queue until someone waits.

Every station holds a handful of these; asyncio.Event allocates a deque for each at once,
which over 10,000 stations is tens of megabytes for waiters that rarely exist.
"""

from __future__ import annotations

import asyncio


class Flag:
    __slots__ = ("_is_set", "_waiter")

    def __init__(self) -> None:
        self._is_set = False
        self._waiter: asyncio.Future | None = None

    def is_set(self) -> bool:
        return self._is_set

    def set(self) -> None:
        self._is_set = True
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def clear(self) -> None:
        self._is_set = False

    async def wait(self) -> bool:
        if self._is_set:
            return True
        if self._waiter is None:
            self._waiter = asyncio.get_running_loop().create_future()
        # Shielded: one cancelled waiter must not cancel the future the others share.
        await asyncio.shield(self._waiter)
        return True
