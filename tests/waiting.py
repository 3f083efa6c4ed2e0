"""Waiting for something a test expects to happen, with a bound."""

import asyncio
import inspect


async def eventually(predicate, timeout: float = 5.0, what: str = "condition",
                     every: float = 0.02) -> None:
    """Until `predicate()` is true; it may be a coroutine function (say, one that asks an
    API), which is why `every` can space the calls out."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        met = predicate()
        if inspect.isawaitable(met):
            met = await met
        if met:
            return
        if loop.time() > deadline:
            raise AssertionError(f"{what} not met within {timeout} s")
        await asyncio.sleep(every)
