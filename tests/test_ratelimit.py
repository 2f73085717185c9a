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
    for first, later in zip(sent, sent[30:], strict=False):  # each call and the 30th after it
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
    """The intake's storing of updates does not queue behind a burst of handlers: on SQLite
    it takes the next turn on the one writer; on PostgreSQL nobody waits for a turn."""
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
    if db.dialect == "postgresql":  # side by side: all done while the first still holds
        await asyncio.wait_for(asyncio.gather(*normal, urgent), 10)
        release.set()
        await first
        assert sorted(order[:4]) == ["normal0", "normal1", "normal2", "urgent"]
        assert order[4:] == ["holder"]
        return
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


async def test_a_direct_reply_to_a_chat_blocked_by_a_429_waits_out_a_short_block():
    """Telegram would answer a call inside the block with another 429 (and a longer wait);
    the answer to a tap is never held."""
    import time

    from bot.ratelimit import DirectReplyLimiter

    g = FloodGate(1000, 1000, 100000)
    limiter = DirectReplyLimiter(g)
    g.block(PERSON, g.clock() + 0.2)
    made: list[tuple[str, float]] = []

    async def call(endpoint: str) -> bool:
        made.append((endpoint, time.monotonic()))
        return True

    blocked_at = time.monotonic()
    assert await asyncio.gather(*(limiter.process_request(
        call, (endpoint,), {}, endpoint, {"chat_id": PERSON}, None)
        for endpoint in ("sendMessage", "answerCallbackQuery"))) == [True, True]
    at = dict(made)
    assert at["answerCallbackQuery"] - blocked_at < 0.1
    assert at["sendMessage"] - blocked_at >= 0.2 - 0.01
    assert [e for e, _ in made] == ["answerCallbackQuery", "sendMessage"]


async def test_a_direct_reply_to_a_chat_blocked_for_long_is_refused_without_a_call():
    from telegram.error import RetryAfter

    from bot.ratelimit import DIRECT_WAIT_MAX_S, DirectReplyLimiter

    clock = Clock()
    g = gate(clock, overall=1000, chat=1000)
    limiter = DirectReplyLimiter(g)
    g.block(PERSON, clock.now + DIRECT_WAIT_MAX_S + 20)
    made: list[str] = []

    async def call(endpoint: str) -> bool:
        made.append(endpoint)
        return True

    with pytest.raises(RetryAfter):
        await limiter.process_request(call, ("sendMessage",), {}, "sendMessage",
                                      {"chat_id": PERSON}, None)
    assert await limiter.process_request(call, ("other",), {}, "sendMessage",
                                         {"chat_id": GROUP}, None)
    assert made == ["other"]


async def test_a_429_on_a_direct_reply_blocks_the_chat_for_the_outbox_and_the_store():
    from datetime import timedelta

    from telegram.error import RetryAfter

    from bot.ratelimit import DirectReplyLimiter

    class Book:
        def __init__(self) -> None:
            self.kept: dict[int, float] = {}

        async def block_chat(self, chat_id: int, until: float) -> None:
            self.kept[chat_id] = until

        async def chat_blocks(self, now: float) -> dict[int, float]:
            return dict(self.kept)

    clock = Clock()
    g = gate(clock, overall=1000, chat=1000)
    book = Book()
    await g.keep_blocks_in(book)
    limiter = DirectReplyLimiter(g)

    async def flooded() -> bool:
        raise RetryAfter(timedelta(seconds=60))

    with pytest.raises(RetryAfter):
        await limiter.process_request(flooded, (), {}, "sendMessage", {"chat_id": GROUP}, None)
    assert g.chat_next_free(GROUP) >= clock.now + 60 and GROUP in book.kept
