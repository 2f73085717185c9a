"""The flood windows (SPEC §7) and the write lock's urgent turn, on a fake clock."""

from __future__ import annotations

import asyncio

import pytest

from bot.ratelimit import FloodGate, Window

GROUP = -1001
PERSON = 42


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def gate(clock: Clock, overall: float = 30, chat: float = 1, group: float = 20) -> FloodGate:
    return FloodGate(overall, chat, group, slack=0.04, clock=clock)


def test_overall_window_is_paced_not_a_burst():
    clock = Clock()
    g = gate(clock)
    gap = 1.04 / 30
    g.record(None)                        # after a pause: the next may follow half a gap on
    assert g.overall_next_free() == pytest.approx(clock.now + gap / 2)
    clock.now = g.overall_next_free()
    g.record(None)
    slot = g.overall_next_free()
    assert slot == pytest.approx(clock.now + gap)
    clock.now = slot + 0.005              # a call a little late keeps the pace:
    g.record(None)                        # lateness does not add up
    assert g.overall_next_free() == pytest.approx(slot + gap)
    clock.now += 10                       # after a pause the pace starts afresh
    g.record(None)
    assert g.overall_next_free() == pytest.approx(clock.now + gap / 2)


def test_a_limit_far_above_telegrams_is_kept_by_the_window_alone():
    """Regression: paced at 0.1 ms (10,000/s), the sender let one call out per turn of a
    busy event loop, 25 a second. Below the pacing gap the window alone counts."""
    clock = Clock()
    g = gate(clock, overall=10_000, chat=1000, group=100_000)
    for _ in range(100):
        g.record(None)
    assert g.overall_next_free() == clock.now  # no pacing: the next may go now
    capacity = g.overall.capacity
    for _ in range(capacity - 100):
        g.record(None)
    assert g.overall_next_free() > clock.now  # the window is full


def test_thirty_calls_in_any_window_of_a_second_plus_slack():
    clock = Clock()
    g = gate(clock)
    sent = []
    for _ in range(61):
        clock.now = max(clock.now, g.overall_next_free())
        g.record(None)
        sent.append(clock.now)
    for first, later in zip(sent, sent[30:]):
        assert later - first >= 1.04 - 1e-9
    assert sent[60] - sent[0] == pytest.approx(2 * 1.04)


def test_one_call_per_chat_per_second():
    clock = Clock()
    g = gate(clock, overall=1000, chat=1)
    g.record(PERSON)
    assert g.chat_next_free(PERSON) == pytest.approx(clock.now + 1.04)
    assert g.chat_next_free(PERSON + 1) == clock.now


def test_group_takes_twenty_per_minute_not_one_per_three_seconds():
    clock = Clock()
    g = gate(clock, overall=1000, chat=1000, group=20)
    start = clock.now
    for _ in range(20):  # a burst of staff cards into one grid chat fits
        assert g.chat_next_free(GROUP) <= clock.now + 1e-9
        g.record(GROUP)
        clock.now += 0.1
    assert g.chat_next_free(GROUP) == pytest.approx(start + 60 + 0.4)


def test_a_blocked_chat_is_free_only_after_its_retry_time():
    clock = Clock()
    g = gate(clock)
    g.block(GROUP, clock.now + 5)
    assert g.chat_next_free(GROUP) == pytest.approx(clock.now + 5)
    assert g.chat_next_free(PERSON) == clock.now
    g.block(GROUP, clock.now + 2)  # an earlier end does not shorten the wait
    assert g.chat_next_free(GROUP) == pytest.approx(clock.now + 5)
    clock.now += 5
    assert g.chat_next_free(GROUP) == clock.now


def test_restamp_counts_a_call_when_it_leaves():
    clock = Clock()
    g = gate(clock, overall=1000, chat=1)
    stamp = g.record(PERSON)
    clock.now += 0.3                      # the row was read, the call leaves now
    g.restamp(stamp)
    assert stamp.at == clock.now
    assert g.chat_next_free(PERSON) == pytest.approx(clock.now + 1.04)
    g.restamp(stamp, clock.now - 1)       # never earlier
    assert stamp.at == clock.now


def test_window_keeps_events_in_order_when_moved():
    window = Window(3, 1.0, 0.0)
    for t in (1.0, 2.0, 3.0):
        window.record(t)
    window.move(1.0, 2.5)
    assert list(window.events) == [2.0, 2.5, 3.0]
    window.move(0.5, 9.0)                 # already gone: nothing moves
    assert list(window.events) == [2.0, 2.5, 3.0]


async def test_urgent_transactions_take_the_next_turn(store):
    """The intake's storing of updates does not queue behind a burst of handlers."""
    db = store.db
    order: list[str] = []
    holding = asyncio.Event()
    release = asyncio.Event()

    async def holder() -> None:
        async with db.transaction():
            holding.set()
            await release.wait()
            order.append("holder")  # (leaving the block waits for the group's commit)

    async def writer(name: str, urgent: bool) -> None:
        async with db.transaction(urgent=urgent):
            order.append(name)

    first = asyncio.create_task(holder())
    await holding.wait()
    normal = [asyncio.create_task(writer(f"normal{i}", False)) for i in range(3)]
    urgent = asyncio.create_task(writer("urgent", True))
    await asyncio.sleep(0)  # let them queue
    release.set()
    await asyncio.gather(first, *normal, urgent)
    assert order == ["holder", "urgent", "normal0", "normal1", "normal2"]


async def test_a_cancelled_waiter_does_not_keep_the_lock(store):
    db = store.db
    holding = asyncio.Event()
    release = asyncio.Event()

    async def holder() -> None:
        async with db.transaction():
            holding.set()
            await release.wait()

    async def waiter() -> None:
        async with db.transaction():
            pass

    first = asyncio.create_task(holder())
    await holding.wait()
    cancelled = asyncio.create_task(waiter())
    await asyncio.sleep(0)
    cancelled.cancel()
    release.set()
    await first
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    await asyncio.wait_for(waiter(), 2)  # the lock is free again


async def test_direct_calls_wait_for_a_slot_but_answers_and_the_outbox_never_do():
    from bot.ratelimit import OUTBOX_CALL, DirectReplyLimiter

    clock = Clock()
    g = gate(clock, overall=1000, chat=1000)
    limiter = DirectReplyLimiter(g, max_concurrent=2)
    release = asyncio.Event()
    started: list[str] = []

    async def call(name: str) -> bool:
        started.append(name)
        await release.wait()
        return True

    def run(name: str, endpoint: str, outbox: bool = False) -> asyncio.Task:
        token = OUTBOX_CALL.set(outbox)  # a task runs in a copy of the context it starts in
        try:
            return asyncio.create_task(limiter.process_request(
                call, (name,), {}, endpoint, {"chat_id": PERSON}, None))
        finally:
            OUTBOX_CALL.reset(token)

    tasks = [run(f"reply{i}", "sendMessage") for i in range(3)]
    tasks.append(run("answer", "answerCallbackQuery"))
    tasks.append(run("outbox", "sendMessage", outbox=True))
    for _ in range(5):
        await asyncio.sleep(0)
    assert sorted(started) == ["answer", "outbox", "reply0", "reply1"]  # reply2 waits
    assert len(g.overall.events) == 2  # direct replies take their share when they leave
    release.set()
    assert await asyncio.gather(*tasks) == [True] * 5
    assert "reply2" in started and len(g.overall.events) == 3
