"""The page's event stream: everything that happens in the playground, numbered, kept.

Server-sent events resume with `Last-Event-ID`: a client that reconnects names the last event
it saw and gets every later one, so nothing is lost and, since ids only grow, nothing is
doubled. A reset starts a new world: its `reset` event is the first of the new log, and a
client that saw only events of an older world starts from it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Event:
    id: int
    type: str
    data: dict[str, Any]


class Feed:
    def __init__(self) -> None:
        self._events: list[Event] = []
        self._next_id = 1
        self._changed = asyncio.Event()

    @property
    def last_id(self) -> int:
        return self._next_id - 1

    def publish(self, type_: str, data: dict[str, Any]) -> Event:
        event = Event(self._next_id, type_, data)
        self._next_id += 1
        self._events.append(event)
        self._changed.set()
        self._changed = asyncio.Event()
        return event

    def reset(self) -> Event:
        """Forget the old world's events; the `reset` event opens the new log."""
        self._events.clear()
        return self.publish("reset", {})

    def since(self, after: int) -> list[Event]:
        """The events after `after`; all of the current world's when `after` is from another
        world (before its reset, or from an earlier run of the server)."""
        if not self._events:
            return []
        first = self._events[0].id
        if after < first - 1 or after > self.last_id:
            after = first - 1
        return self._events[after - first + 1:]

    async def wait(self, after: int, timeout: float) -> list[Event]:
        """The events after `after`, waiting up to `timeout` seconds for one."""
        events = self.since(after)
        if events:
            return events
        changed = self._changed
        try:
            await asyncio.wait_for(changed.wait(), timeout)
        except TimeoutError:
            return []
        return self.since(after)
