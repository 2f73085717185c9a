"""The composition root: the runtime starts its parts in order and stops every one of them, the
last started first, even when one fails to stop or the start fails part-way."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from bot.backlog import Backlog
from bot.intake import Intake
from bot.outbox import OutboxSender
from bot.scheduler import Scheduler
from bot.watcher import DueWatcher
from storage.store import Store

pytestmark = pytest.mark.asyncio

#: what `Runtime.stop` must stop, in this order (the reverse of the start)
STOPPED = ["intake", "cards", "checkpoints", "meetings", "codes", "horns", "deadlines",
           "scheduler", "sender", "store"]


def record_stops(monkeypatch: pytest.MonkeyPatch, stopped: list[str]) -> None:
    """Each part's real stop, noted by its name once it returns (or raises)."""

    def noted(name: Callable[[Any], str], real: Callable[[Any], Awaitable[None]]
              ) -> Callable[[Any], Awaitable[None]]:
        async def stop(self: Any) -> None:
            try:
                await real(self)
            finally:
                stopped.append(name(self))
        return stop

    for cls, method, name in ((Intake, "stop", lambda _: "intake"),
                              (Backlog, "stop", lambda part: part.name),
                              (DueWatcher, "stop", lambda part: part.name),
                              (Scheduler, "stop", lambda _: "scheduler"),
                              (OutboxSender, "stop", lambda _: "sender"),
                              (Store, "close", lambda _: "store")):
        monkeypatch.setattr(cls, method, noted(name, getattr(cls, method)))


async def test_a_part_that_fails_to_stop_does_not_keep_the_others_running(harness, monkeypatch):
    stopped: list[str] = []
    record_stops(monkeypatch, stopped)
    stop_scheduler = Scheduler.stop

    async def stuck(self: Scheduler) -> None:
        await stop_scheduler(self)
        raise RuntimeError("the scheduler would not stop")

    monkeypatch.setattr(Scheduler, "stop", stuck)
    runtime = await harness.start_bot()
    with pytest.raises(RuntimeError, match="would not stop"):
        await runtime.stop()
    assert stopped == STOPPED
    assert not runtime.app.running
    await runtime.stop()  # stopping again does nothing more
    assert stopped == STOPPED


async def test_a_start_that_fails_part_way_stops_what_it_had_started(harness, monkeypatch):
    stopped: list[str] = []
    record_stops(monkeypatch, stopped)

    async def refuses(self: Backlog) -> None:
        raise RuntimeError("the backlog cannot start")

    monkeypatch.setattr(Backlog, "start", refuses)
    with pytest.raises(RuntimeError, match="cannot start"):
        await harness.start_bot()
    # the backlog and the intake never started: only what did is stopped
    assert stopped == ["checkpoints", "meetings", "codes", "horns", "deadlines", "scheduler",
                       "sender", "store"]
    assert not harness.runtime.app.running
    harness.runtime = None


async def test_what_handlers_see_comes_from_the_same_parts(harness):
    """`context.services` holds the very services the runtime's machinery runs."""
    runtime = await harness.start_bot()
    services = runtime.services
    assert runtime.app.bot_data["gridhorn.services"] is services
    assert services.tickets.outbox is runtime.outbox is services.horns.outbox
    assert services.bot_username == "gridhorn_bot"
    assert services.now().tzinfo is not None
