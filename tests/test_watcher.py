"""DueWatcher: store-driven due times on APScheduler (recover, run what is due, arm the next)."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime

import pytest
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.watcher import DueWatcher

BOUND = 5.0   # seconds a test waits for something that should happen at once


class Store:
    """What the watcher asks: when is something due, and doing it (counted)."""

    def __init__(self) -> None:
        self.due: float | None = None
        self.runs = 0
        self.ran = asyncio.Event()
        self.fail = False
        self.events: list[str] = []

    async def run_due(self) -> None:
        self.events.append("run")
        self.runs += 1
        self.ran.set()
        if self.fail:
            raise RuntimeError("store unreachable")

    async def next_due(self) -> float | None:
        return self.due

    async def recover(self) -> None:
        self.events.append("recover")

    async def ran_again(self) -> None:
        self.ran.clear()
        await asyncio.wait_for(self.ran.wait(), BOUND)


@pytest.fixture
async def aps():
    scheduler = AsyncIOScheduler(timezone=UTC)
    scheduler.start()
    yield scheduler
    scheduler.shutdown(wait=False)


def armed_at(aps: AsyncIOScheduler, watcher: DueWatcher) -> float | None:
    job = aps.get_job(watcher.job_id)
    return None if job is None or job.next_run_time is None else job.next_run_time.timestamp()


async def settled(watcher: DueWatcher) -> None:
    """Wait until no check is running (the next one is armed by then)."""
    for _ in range(500):
        if not watcher._running:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the check did not finish")


async def test_start_recovers_then_checks_now_and_arms_the_next_due_time(aps):
    store = Store()
    store.due = time.time() + 30
    watcher = DueWatcher("horns", store.run_due, store.next_due, recover=store.recover)
    await watcher.start(aps)
    await asyncio.wait_for(store.ran.wait(), BOUND)
    await settled(watcher)
    assert store.events == ["recover", "run"]
    assert armed_at(aps, watcher) == pytest.approx(store.due, abs=0.01)
    await watcher.stop()
    assert aps.get_job(watcher.job_id) is None


async def test_nothing_due_checks_again_within_the_longest_sleep(aps):
    store = Store()
    watcher = DueWatcher("horns", store.run_due, store.next_due, max_sleep=40)
    await watcher.start(aps)
    await asyncio.wait_for(store.ran.wait(), BOUND)
    await settled(watcher)
    assert armed_at(aps, watcher) == pytest.approx(time.time() + 40, abs=2)
    store.due = time.time() + 3600                      # far away: still the longest sleep
    await watcher._tick()
    assert armed_at(aps, watcher) == pytest.approx(time.time() + 40, abs=2)
    store.due = time.time() - 100                       # overdue (a run fell behind): now
    await watcher._tick()
    await store.ran_again()
    await watcher.stop()


async def test_a_wake_arms_sooner_never_later(aps):
    store = Store()
    store.due = time.time() + 30
    watcher = DueWatcher("deadlines", store.run_due, store.next_due)
    await watcher.start(aps)
    await asyncio.wait_for(store.ran.wait(), BOUND)
    await settled(watcher)
    watcher.wake(time.time() + 50)                      # later than what is armed: kept
    assert armed_at(aps, watcher) == pytest.approx(store.due, abs=0.01)
    soon = time.time() + 10
    watcher.wake(soon)                                  # sooner: armed then
    assert armed_at(aps, watcher) == pytest.approx(soon, abs=0.01)
    watcher.wake()                                      # now
    await store.ran_again()
    assert store.runs == 2
    await watcher.stop()


async def test_a_failing_check_is_logged_and_tried_again(aps, caplog):
    store = Store()
    store.fail = True
    store.due = time.time()
    watcher = DueWatcher("horns", store.run_due, store.next_due, max_sleep=20)
    with caplog.at_level(logging.ERROR, logger="bot.watcher"):
        await watcher.start(aps)
        await asyncio.wait_for(store.ran.wait(), BOUND)
        await settled(watcher)
    assert "horns: checking what is due failed" in caplog.text
    assert armed_at(aps, watcher) == pytest.approx(time.time() + 20, abs=2)
    await watcher.stop()


async def test_a_failing_recovery_does_not_stop_the_start(aps, caplog):
    store = Store()

    async def broken() -> None:
        raise RuntimeError("no store")

    watcher = DueWatcher("horns", store.run_due, store.next_due, recover=broken)
    with caplog.at_level(logging.ERROR, logger="bot.watcher"):
        await watcher.start(aps)
        await asyncio.wait_for(store.ran.wait(), BOUND)
    assert "horns: recovery at start-up failed" in caplog.text
    await watcher.stop()


async def test_checks_never_overlap(aps):
    store = Store()
    inside = 0
    most = 0
    release = asyncio.Event()

    async def slow() -> None:
        nonlocal inside, most
        inside += 1
        most = max(most, inside)
        store.ran.set()
        await release.wait()
        inside -= 1

    watcher = DueWatcher("horns", slow, store.next_due)
    await watcher.start(aps)
    await asyncio.wait_for(store.ran.wait(), BOUND)
    second = asyncio.ensure_future(watcher._tick())     # a wake while a check runs
    await asyncio.sleep(0)
    release.set()
    await asyncio.wait_for(second, BOUND)
    assert most == 1
    await watcher.stop()


async def test_stop_cancels_a_running_check_and_wakes_do_nothing_after(aps):
    started = asyncio.Event()

    async def forever() -> None:
        started.set()
        await asyncio.Event().wait()

    async def never() -> float | None:
        return None

    watcher = DueWatcher("horns", forever, never)
    await watcher.start(aps)
    await asyncio.wait_for(started.wait(), BOUND)
    await asyncio.wait_for(watcher.stop(), BOUND)
    assert not watcher._running and aps.get_job(watcher.job_id) is None
    watcher.wake()
    assert aps.get_job(watcher.job_id) is None


def test_a_watcher_not_started_ignores_wakes():
    async def nothing() -> None:
        return None

    async def never() -> float | None:
        return None

    watcher = DueWatcher("horns", nothing, never)
    watcher.wake(datetime.now(UTC).timestamp())         # before the scheduler runs: no error
    assert watcher.job_id == "due:horns"
