"""Flag behaves like asyncio.Event for the ways stations use it."""

import asyncio

import pytest

from stations.engine.flag import Flag


async def test_waiters_wake_when_set_and_a_set_flag_does_not_block():
    flag = Flag()
    waiters = [asyncio.create_task(flag.wait()) for _ in range(3)]
    await asyncio.sleep(0)
    assert not any(w.done() for w in waiters)
    flag.set()
    assert await asyncio.gather(*waiters) == [True, True, True]
    assert await asyncio.wait_for(flag.wait(), 0.1)


async def test_a_cancelled_waiter_leaves_the_others_waiting():
    flag = Flag()
    first, second = asyncio.create_task(flag.wait()), asyncio.create_task(flag.wait())
    await asyncio.sleep(0)
    first.cancel()
    await asyncio.sleep(0)
    assert not second.done()
    flag.set()
    assert await second


async def test_wait_times_out_after_clear():
    flag = Flag()
    flag.set()
    flag.clear()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(flag.wait(), 0.05)
    assert not flag.is_set()
