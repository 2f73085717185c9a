"""The page's event log: resuming after any event gives every later one once."""

from __future__ import annotations

import asyncio

from playground.feed import Feed


def test_resume_gives_every_later_event_once() -> None:
    feed = Feed()
    feed.reset()
    ids = [feed.publish("message", {"n": n}).id for n in range(5)]
    assert [e.data["n"] for e in feed.since(ids[1])] == [2, 3, 4]
    assert feed.since(ids[-1]) == []


def test_a_client_of_an_older_world_starts_from_the_reset() -> None:
    feed = Feed()
    feed.reset()
    old = feed.publish("message", {"n": 1}).id
    reset = feed.reset()
    new = feed.publish("message", {"n": 2})
    assert [e.id for e in feed.since(old)] == [reset.id, new.id]
    assert feed.since(reset.id) == [new]
    # an id from an earlier run of the server (beyond this log) also starts at the reset
    assert [e.type for e in feed.since(new.id + 100)] == ["reset", "message"]


async def test_wait_returns_what_is_published_while_waiting() -> None:
    feed = Feed()
    first = feed.reset()
    assert await feed.wait(first.id, timeout=0.01) == []
    waiting = asyncio.ensure_future(feed.wait(first.id, timeout=5))
    await asyncio.sleep(0)
    event = feed.publish("message", {"n": 1})
    assert await waiting == [event]
