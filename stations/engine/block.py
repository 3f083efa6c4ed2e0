"""Functional blocks: each part of a station that answers one group of OCPP use cases.

A block is a small class that owns its `@on`/`@after` handlers (the ocpp library's routing
decorators), its state and the device-model variables it reads, and reaches the rest of the
station through `self.station`. A station class lists its blocks; `route_map` finds, once per
class, which block answers each action, and a CALL is answered by that station's own
instance of the block.

A shard holds thousands of stations, so a block costs a station nothing until it is used:
one that keeps no state (`slot` None) is made for the call it answers and dropped after; one
with state lives in the station's attribute named by `slot`, made on first use unless the
station makes it at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, ClassVar, NamedTuple

from ocpp.routing import create_route_map


class Block:
    __slots__ = ("station",)
    # The station attribute that keeps this block between uses; None: it keeps no state.
    slot: ClassVar[str | None] = None

    def __init__(self, station: Any):
        self.station = station

    @classmethod
    def of(cls, station: Any) -> Block:
        """The station's instance of this block, made if it has none yet."""
        name = cls.slot
        if name is None:
            return cls(station)
        block = getattr(station, name)
        if block is None:
            block = cls(station)
            setattr(station, name, block)
        return block


class Route(NamedTuple):
    """Who answers one action: the block class, its `@on` handler, its `@after` handler."""

    block: type[Block]
    on: Callable
    after: Callable | None


def route_map(blocks: Iterable[type[Block]]) -> dict[str, Route]:
    """The route of every action the blocks handle; an action handled twice is a mistake."""
    routes: dict[str, Route] = {}
    for block in blocks:
        for action, handlers in create_route_map(block).items():
            if action in routes:
                raise TypeError(f"{action} is handled by both {routes[action].block.__name__} "
                                f"and {block.__name__}")
            if "_on_action" not in handlers:
                raise TypeError(f"{block.__name__} has @after({action!r}) without @on")
            routes[action] = Route(block, handlers["_on_action"], handlers.get("_after_action"))
    return routes
