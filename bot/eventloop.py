"""The event loop the bot runs on: asyncio's own (the default) or uvloop (opt-in).

`GRIDHORN_EVENT_LOOP=uvloop` (with the `uvloop` extra installed) runs the bot on uvloop's
loop, written in C on libuv; whether it wins under a burst is measured by the benchmarks'
`--event-loop` flag (docs/benchmarks.md). Only the bot's own loop changes: its HTTP worker
child keeps asyncio's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, Literal, TypeVar

EventLoop = Literal["asyncio", "uvloop"]
T = TypeVar("T")
UVLOOP_MISSING = "uvloop is not installed (pip install 'gridhorn[uvloop]')"


def loop_factory(kind: EventLoop) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """What makes the loop (None: asyncio's default)."""
    if kind == "asyncio":
        return None
    try:
        import uvloop  # an optional extra: imported only when asked for
    except ImportError:
        raise RuntimeError(UVLOOP_MISSING) from None
    return uvloop.new_event_loop


def available(kind: EventLoop) -> bool:
    try:
        loop_factory(kind)
    except RuntimeError:
        return False
    return True


def run(main: Coroutine[Any, Any, T], kind: EventLoop = "asyncio") -> T:
    """`asyncio.run(main)` on the chosen loop."""
    with asyncio.Runner(loop_factory=loop_factory(kind)) as runner:
        return runner.run(main)
