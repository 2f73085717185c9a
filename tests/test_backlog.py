"""The backlog (bot/backlog.py): flagged work runs in batches until none is left, waits for a
busy intake at most `max_deferral`, survives a failing batch, and a wake never gets lost."""

from __future__ import annotations

import asyncio
import time

import pytest

from bot.backlog import Backlog


class Work:
    """Batches to do: each run does one and says whether more is waiting."""

    def __init__(self, batches: int = 1) -> None:
        self.batches = batches
        self.runs = 0
        self.ran = asyncio.Event()

    async def __call__(self) -> bool:
        self.runs += 1
        self.batches -= 1
        self.ran.set()
        return self.batches > 0


@pytest.fixture
async def started():
    backlogs: list[Backlog] = []

    async def start(work, **options) -> Backlog:
        backlog = Backlog("test", work, **options)
        backlogs.append(backlog)
        await backlog.start()
        return backlog

    yield start
    for backlog in backlogs:
        await backlog.stop()


async def test_what_a_crash_left_flagged_runs_at_start(started):
    work = Work()
    backlog = await started(work)
    await backlog.drain(timeout=5)
    assert work.runs == 1


async def test_batches_run_until_none_is_left(started):
    work = Work(batches=0)
    backlog = await started(work)
    await backlog.drain(timeout=5)
    work.batches = 4
    backlog.wake()
    await backlog.drain(timeout=5)
    assert work.runs == 1 + 4


async def test_drain_returns_at_once_when_nothing_is_flagged():
    backlog = Backlog("idle", Work())
    await backlog.drain(timeout=0.5)


async def test_a_wake_during_a_batch_is_not_lost(started):
    backlog: Backlog | None = None
    runs = 0

    async def run() -> bool:
        nonlocal runs
        runs += 1
        if runs == 2:       # something flagged while this batch works
            assert backlog is not None
            backlog.wake()
        return False

    backlog = await started(run)
    await backlog.drain(timeout=5)
    backlog.wake()
    await backlog.drain(timeout=5)
    assert runs == 3


async def test_the_work_waits_for_a_busy_intake(started):
    asked = 0
    busy = True
    waited = asyncio.Event()

    def foreground_busy() -> bool:
        nonlocal asked
        asked += 1
        if asked >= 5:
            waited.set()
        return busy

    work = Work(batches=0)
    backlog = await started(work, max_deferral=30, poll=0.001)
    await backlog.drain(timeout=5)
    backlog.foreground_busy = foreground_busy
    work.batches = 1
    backlog.wake()
    await asyncio.wait_for(waited.wait(), 5)
    assert work.runs == 1              # only the start-up run: the intake is busy
    busy = False
    await backlog.drain(timeout=5)
    assert work.runs == 2


async def test_a_busy_intake_delays_the_work_at_most_max_deferral(started):
    work = Work(batches=0)
    backlog = await started(work, max_deferral=0.2, poll=0.001)
    await backlog.drain(timeout=5)
    backlog.foreground_busy = lambda: True
    work.batches = 1
    began = time.monotonic()
    backlog.wake()
    await asyncio.wait_for(work_ran_again(work), 5)
    assert 0.2 <= time.monotonic() - began < 5
    await backlog.drain(timeout=5)


async def work_ran_again(work: Work) -> None:
    work.ran.clear()
    await work.ran.wait()


async def test_a_failing_batch_is_logged_and_retried(started, monkeypatch, caplog):
    pauses: list[float] = []
    real_sleep = asyncio.sleep

    async def sleep(delay: float) -> None:
        pauses.append(delay)
        await real_sleep(0)

    monkeypatch.setattr("bot.backlog.asyncio.sleep", sleep)
    failures = 1

    async def run() -> bool:
        nonlocal failures
        if failures:
            failures -= 1
            raise RuntimeError("the store is locked")
        return False

    backlog = await started(run)
    await backlog.drain(timeout=5)
    assert failures == 0 and 5 in pauses
    assert "test: the backlog failed" in caplog.text


async def test_stop_ends_the_loop(started):
    backlog = await started(Work())
    await backlog.drain(timeout=5)
    assert any(task.get_name() == "gridhorn:test" for task in asyncio.all_tasks())
    await backlog.stop()
    assert not any(task.get_name() == "gridhorn:test" for task in asyncio.all_tasks())
    await backlog.stop()               # twice is harmless
