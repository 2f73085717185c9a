"""The outbox sender (SPEC §7) against a fake Bot: order, windows, errors, restarts.

The fake records every call with the time it was made and can hold a call (an event) or
raise what Telegram would answer, so each test waits on events, never on sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from telegram.error import BadRequest, ChatMigrated, Forbidden, NetworkError, RetryAfter, TimedOut

from bot.outbox import OutboxSender
from bot.ratelimit import DirectReplyLimiter, FloodGate, Window
from bot.services.outbox import Outbox, Priority
from bot.settings import load_settings

pytestmark = pytest.mark.asyncio
GROUP, OTHER, NEW_GROUP = -1001, -2001, -9001


class FakeBot:
    """Stands in for telegram.Bot's raw API call: records calls; `hold` parks matching calls on an
    event; `fail` maps a chat to an exception raised once."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int, dict[str, Any], float]] = []
        self.hold: dict[int, asyncio.Event] = {}
        self.fail: dict[int, list[Exception]] = {}
        self.started: dict[int, asyncio.Event] = {}
        self.tried: list[tuple[int, float]] = []  # (chat, time) of every call, failed or not
        self.changed = asyncio.Event()
        self._next_id = 100

    def started_in(self, chat_id: int) -> asyncio.Event:
        return self.started.setdefault(chat_id, asyncio.Event())

    async def _answer(self, method: str, chat_id: int, kwargs: dict[str, Any]) -> Any:
        self.started_in(chat_id).set()
        gate = self.hold.get(chat_id)
        if gate is not None:
            await gate.wait()
        self.tried.append((chat_id, time.monotonic()))
        failures = self.fail.get(chat_id)
        if failures:
            raise failures.pop(0)
        self.calls.append((method, chat_id, kwargs, time.monotonic()))
        self.changed.set()
        if method == "pinChatMessage":
            return True
        self._next_id += 1
        return {"message_id": self._next_id, "date": int(time.time()),
                "chat": {"id": chat_id, "type": "group" if chat_id < 0 else "private"}}

    async def _post(self, endpoint: str, data: dict[str, Any]) -> Any:
        """What the sender calls: the Bot API method and its parameters, raw JSON back."""
        data = dict(data)
        return await self._answer(endpoint, data.pop("chat_id"), data)

    def texts(self, chat_id: int | None = None) -> list[str]:
        return [c[2].get("text", "") for c in self.calls if chat_id is None or c[1] == chat_id]

    async def wait_calls(self, n: int, timeout: float = 5) -> None:
        async def until() -> None:
            while len(self.calls) < n:
                self.changed.clear()
                await self.changed.wait()
        await asyncio.wait_for(until(), timeout)


def make(store, bot: FakeBot, *, chat_per_s: float = 1000, max_in_flight: int = 16
         ) -> tuple[OutboxSender, Outbox]:
    settings = load_settings(quiet_hours="")
    gate = FloodGate(1000, chat_per_s, 100000)
    outbox = Outbox(store, settings)
    sender = OutboxSender(bot, store, gate, settings, hooks=outbox.hooks,  # type: ignore[arg-type]
                          written=outbox.written, max_in_flight=max_in_flight)
    return sender, outbox


@contextlib.asynccontextmanager
async def running(sender: OutboxSender) -> AsyncIterator[None]:
    await sender.start()
    try:
        yield
    finally:
        await sender.stop()


async def run_to_idle(sender: OutboxSender) -> None:
    """Start the sender, let it send all that may go now, stop it."""
    async with running(sender):
        await sender.drain(5)


async def queue(store, outbox: Outbox, *posts: tuple[int, str, int]) -> None:
    async with store.transaction():
        for chat_id, text, priority in posts:
            await outbox.send(chat_id, text, priority=priority)


async def statuses(store) -> dict[str, str]:
    rows = await store.db.fetchall("SELECT payload, status FROM outbox ORDER BY id")
    import json
    return {json.loads(r["payload"]).get("text", ""): r["status"] for r in rows}


async def test_more_urgent_posts_go_first(store):
    bot = FakeBot()
    sender, outbox = make(store, bot, max_in_flight=1)
    await queue(store, outbox, *[(GROUP - i, f"routine {i}", Priority.ROUTINE) for i in range(3)],
                (OTHER, "service", Priority.SERVICE),
                *[(GROUP - 10 - i, f"emergency {i}", Priority.EMERGENCY) for i in range(3)],
                (OTHER - 1, "major", Priority.MAJOR))  # every post to its own chat
    await run_to_idle(sender)
    assert bot.texts() == ["emergency 0", "emergency 1", "emergency 2", "major", "service",
                           "routine 0", "routine 1", "routine 2"]


async def test_background_posts_wait_while_updates_are_handled_but_not_for_long(store):
    """A staff card waits while people are being answered (their receipts do not), and
    goes after `max_deferral` even if the burst goes on."""
    bot = FakeBot()
    sender, outbox = make(store, bot)
    sender.foreground_busy = lambda: True
    sender.max_deferral = 0.3
    queued_at = time.monotonic()
    await queue(store, outbox, (GROUP, "card", Priority.CARD),
                (OTHER, "receipt", Priority.PERSONAL))
    async with running(sender):
        await bot.wait_calls(2)
    assert bot.texts() == ["receipt", "card"]
    assert bot.calls[1][3] - queued_at >= 0.29  # not before max_deferral after queueing


async def test_a_deferred_post_goes_as_soon_as_the_handlers_are_done(store):
    bot = FakeBot()
    sender, outbox = make(store, bot)
    busy = [True]
    sender.foreground_busy = lambda: busy[0]
    sender.max_deferral = 60
    await queue(store, outbox, (GROUP, "card", Priority.CARD),
                (OTHER, "receipt", Priority.PERSONAL))
    async with running(sender):
        await bot.wait_calls(1)
        busy[0] = False
        await bot.wait_calls(2, timeout=2)  # not the 60 s bound
    assert bot.texts() == ["receipt", "card"]


async def test_a_chat_window_is_kept_when_an_urgent_post_overtakes(store):
    """An older ready entry of a routine post must not send once the emergency post to the
    same chat went first: the chat's one-per-second window is checked again."""
    bot = FakeBot()
    span = 1 / 1.9 + 0.04  # chat_per_s=1.9: one call per 0.566 s
    sender, outbox = make(store, bot, chat_per_s=1.9, max_in_flight=1)
    bot.hold[OTHER] = asyncio.Event()
    await queue(store, outbox, (OTHER, "first elsewhere", Priority.PERSONAL),
                (GROUP, "routine", Priority.ROUTINE))
    async with running(sender):
        await bot.started_in(OTHER).wait()           # the only slot is on the wire;
        await queue(store, outbox, (GROUP, "emergency", Priority.EMERGENCY))  # routine is ready
        bot.hold[OTHER].set()
        await sender.drain(5)
    assert bot.texts(GROUP) == ["emergency", "routine"]
    times = [c[3] for c in bot.calls if c[1] == GROUP]
    assert times[1] - times[0] >= span - 0.05


async def test_a_pending_edit_is_replaced_not_queued_twice(store):
    bot = FakeBot()
    sender, outbox = make(store, bot)
    async with store.transaction():
        for n in range(5):
            await outbox.edit(GROUP, 7, f"报到 {n}/20", priority=Priority.PERSONAL)
    await run_to_idle(sender)
    assert bot.texts() == ["报到 4/20"]


async def test_an_edit_replaced_while_on_its_way_goes_out_again(store):
    bot = FakeBot()
    sender, outbox = make(store, bot)
    bot.hold[GROUP] = asyncio.Event()
    async with store.transaction():
        await outbox.edit(GROUP, 7, "报到 1/20", priority=Priority.PERSONAL)
    async with running(sender):
        await bot.started_in(GROUP).wait()
        async with store.transaction():  # the row is still pending: the writer replaces it
            await outbox.edit(GROUP, 7, "报到 2/20", priority=Priority.PERSONAL)
        bot.hold[GROUP].set()
        await bot.wait_calls(2)
        await sender.drain(5)
    assert bot.texts() == ["报到 1/20", "报到 2/20"]
    counts = await store.outbox.counts()
    assert counts == {"sent": 2}


async def test_a_migrated_group_gets_its_queue_at_the_new_id(store):
    bot = FakeBot()
    sender, outbox = make(store, bot, max_in_flight=1)
    moved: list[tuple[int, int]] = []

    async def hook(old: int, new: int) -> None:
        moved.append((old, new))

    outbox.on_migrated(hook)
    bot.fail[GROUP] = [ChatMigrated(NEW_GROUP)]
    await queue(store, outbox, (GROUP, "one", Priority.PERSONAL),
                (GROUP, "two", Priority.PERSONAL))
    await run_to_idle(sender)
    assert moved == [(GROUP, NEW_GROUP)]
    assert bot.texts(NEW_GROUP) == ["one", "two"]
    assert bot.texts(GROUP) == []


async def test_a_chat_that_removed_the_bot_is_dropped_and_staff_told(store):
    bot = FakeBot()
    sender, outbox = make(store, bot, max_in_flight=1)
    lost: list[tuple[int, str]] = []

    async def hook(chat_id: int, reason: str) -> None:
        lost.append((chat_id, reason))

    outbox.on_chat_lost(hook)
    bot.fail[GROUP] = [Forbidden("Forbidden: bot was kicked from the group chat")]
    await queue(store, outbox, (GROUP, "one", Priority.PERSONAL),
                (GROUP, "two", Priority.PERSONAL), (OTHER, "elsewhere", Priority.PERSONAL))
    await run_to_idle(sender)
    assert [c for c, _ in lost] == [GROUP] and "kicked" in lost[0][1]
    assert bot.texts() == ["elsewhere"]
    assert await statuses(store) == {"one": "dropped", "two": "dropped", "elsewhere": "sent"}


async def test_retry_after_and_server_errors_are_retried_once_each(store):
    bot = FakeBot()
    sender, outbox = make(store, bot)
    bot.fail[GROUP] = [RetryAfter(timedelta(milliseconds=50))]
    bot.fail[OTHER] = [NetworkError("Bad Gateway")]
    await queue(store, outbox, (GROUP, "flooded", Priority.PERSONAL),
                (OTHER, "bad gateway", Priority.PERSONAL))
    async with running(sender):
        await bot.wait_calls(2)
        await sender.drain(5)
    assert sorted(bot.texts()) == ["bad gateway", "flooded"]
    assert await statuses(store) == {"flooded": "sent", "bad gateway": "sent"}


async def test_an_unexpected_error_is_retried_not_forgotten(store):
    bot = FakeBot()
    sender, outbox = make(store, bot)
    bot.fail[GROUP] = [ValueError("a bug in a payload")]
    await queue(store, outbox, (GROUP, "survives", Priority.PERSONAL))
    async with running(sender):
        await bot.wait_calls(1)
        await sender.drain(5)
    assert bot.texts() == ["survives"]


async def test_a_restart_sends_what_was_pending_and_nothing_sent_again(store):
    bot = FakeBot()
    sender, outbox = make(store, bot)
    await queue(store, outbox, (GROUP, "sent before", Priority.PERSONAL),
                (GROUP - 1, "also sent", Priority.PERSONAL))
    await sender.start()
    await sender.drain(5)
    bot.hold[OTHER] = asyncio.Event()  # still on its way when the process dies
    await queue(store, outbox, (OTHER, "in flight", Priority.PERSONAL))
    await bot.started_in(OTHER).wait()
    task = sender._task
    assert task is not None
    task.cancel()  # the loop dies; the held call never returns (as if the process died)
    await asyncio.gather(task, return_exceptions=True)
    for pending in list(sender._sending):
        pending.cancel()
    await asyncio.gather(*sender._sending, return_exceptions=True)
    await queue(store, outbox, (OTHER - 1, "queued while down", Priority.PERSONAL))

    again = FakeBot()
    restarted, _ = make(store, again)
    await run_to_idle(restarted)
    assert sorted(again.texts()) == ["in flight", "queued while down"]
    assert set((await statuses(store)).values()) == {"sent"}


async def test_a_pin_follows_its_post(store):
    bot = FakeBot()
    sender, outbox = make(store, bot)
    async with store.transaction():
        await outbox.send(GROUP, "紧急集结号", priority=Priority.EMERGENCY, pin=True)
        await outbox.send(OTHER, "routine", priority=Priority.ROUTINE)
    async with running(sender):
        await bot.wait_calls(3)
        await sender.drain(5)
    methods = [(c[0], c[1]) for c in bot.calls]
    assert methods.index(("sendMessage", GROUP)) < methods.index(("pinChatMessage", GROUP))
    pin = next(c for c in bot.calls if c[0] == "pinChatMessage")
    post = next(c for c in bot.calls if c[0] == "sendMessage" and c[1] == GROUP)
    assert pin[2]["message_id"] == 101 and post[2]["text"] == "紧急集结号"


async def test_a_failing_hook_never_makes_a_sent_message_go_out_again(store):
    """One hook raises: its message stays sent; the other hook's work (a write in the record's
    transaction, undone with the batch that failed and done again alone) commits once."""
    bot = FakeBot()
    sender, outbox = make(store, bot)

    async def boom(item, result) -> None:
        raise RuntimeError("a bug in a hook")

    async def fine(item, result) -> None:
        await store.db.execute("INSERT INTO meta (key, value) VALUES (?, ?)",
                               (f"seen:{result['message_id']}", "1"))

    outbox.on_sent("boom", boom)
    outbox.on_sent("fine", fine)
    async with store.transaction():
        await outbox.send(GROUP, "hook fails", priority=Priority.PERSONAL, ref="boom:1")
        await outbox.send(OTHER, "hook works", priority=Priority.PERSONAL, ref="fine:1")
    await run_to_idle(sender)
    seen = await store.db.fetchall("SELECT key FROM meta WHERE key LIKE 'seen:%'")
    assert sorted(bot.texts()) == ["hook fails", "hook works"] and len(seen) == 1
    assert await statuses(store) == {"hook fails": "sent", "hook works": "sent"}


async def test_a_stall_moves_the_calls_on_the_wire(store):
    """A garbage collection delays what is on its way: the windows count it that much later."""
    now = [100.0]
    settings = load_settings(quiet_hours="")
    gate = FloodGate(30, 1, 20, clock=lambda: now[0])
    sender = OutboxSender(FakeBot(), store, gate, settings)  # type: ignore[arg-type]
    on_the_wire = gate.record(GROUP)
    answered = gate.record(OTHER)
    sender._on_the_wire.add(on_the_wire)
    sender._stalled(0.05)
    assert on_the_wire.at == pytest.approx(100.05) and answered.at == 100.0
    assert gate.chat_next_free(GROUP) == pytest.approx(100.05 + 1.04)
    assert gate.chat_next_free(OTHER) == pytest.approx(100.0 + 1.04)


async def test_group_posts_wait_out_quiet_hours_but_urgent_and_private_ones_do_not(store):
    bot = FakeBot()
    now = datetime.now(load_settings().tz)
    window = f"{(now - timedelta(hours=1)):%H:%M}-{(now + timedelta(hours=1)):%H:%M}"
    settings = load_settings(quiet_hours=window)
    outbox = Outbox(store, settings)
    sender = OutboxSender(bot, store, FloodGate(1000, 1000, 100000), settings,  # type: ignore[arg-type]
                          hooks=outbox.hooks, written=outbox.written)
    async with store.transaction():
        await outbox.send(GROUP, "monthly theme", priority=Priority.ROUTINE, quiet=True)
        await outbox.send(OTHER, "emergency horn", priority=Priority.EMERGENCY)
        await outbox.send(42, "your receipt", priority=Priority.PERSONAL, quiet=True)
    await run_to_idle(sender)  # returns: what is left waits for the morning
    assert sorted(bot.texts()) == ["emergency horn", "your receipt"]
    assert (await statuses(store))["monthly theme"] == "pending"



@pytest.mark.parametrize("woken", [False, True], ids=["asleep", "woken-as-stopped"])
async def test_stop_returns_promptly_while_the_sender_sleeps(store, woken):
    """The sender sleeps until its next timed item; stop() must end it even when a wake-up
    (a commit) lands in the same turn of the loop as the cancellation, which
    `asyncio.wait_for` on Python 3.11 would swallow (the sender then slept on)."""
    bot = FakeBot()
    sender, outbox = make(store, bot)
    async with store.transaction():
        await outbox.send(GROUP, "later", priority=Priority.PERSONAL, delay=60)
    sender._idle.clear()
    await sender.start()
    await sender._idle.wait()  # loaded, nothing ready: it went to sleep until the item is due
    if woken:
        sender.wake()
    await asyncio.wait_for(sender.stop(), 2)
    assert bot.calls == []
    assert await statuses(store) == {"later": "pending"}


async def test_network_errors_are_retried_with_growing_backoff_and_never_given_up(store, caplog):
    """An outage longer than any fixed number of tries: the item waits longer after each
    failure (up to the cap) and goes out when the Bot API answers again. The log says once
    that sending fails and once that it works again, not once per try."""
    caplog.set_level(logging.DEBUG, logger="bot.outbox")
    bot = FakeBot()
    sender, outbox = make(store, bot)
    sender.backoff_base, sender.backoff_cap = 0.01, 0.08
    outage = [NetworkError("Bad Gateway"), TimedOut(), NetworkError("Internal Server Error (500)")]
    bot.fail[GROUP] = [outage[n % 3] for n in range(12)]
    await queue(store, outbox, (GROUP, "after the outage", Priority.PERSONAL))
    async with running(sender):
        await bot.wait_calls(1)  # 0.01 * 2**11 s = 20 s if the backoff were not capped
        await sender.drain(5)
    assert bot.texts() == ["after the outage"]
    assert await statuses(store) == {"after the outage": "sent"}
    times = [at for chat, at in bot.tried if chat == GROUP]
    assert len(times) == 13
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]  # neighbours: one pair fewer
    for attempt, gap in enumerate(gaps):
        assert gap >= 0.95 * min(0.08, 0.01 * 2 ** attempt), (attempt, gaps)
    outbox_log = [r for r in caplog.records if r.name == "bot.outbox"]
    warnings = [r for r in outbox_log if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "Bad Gateway" in warnings[0].getMessage()
    recovered = [r for r in outbox_log if r.levelno == logging.INFO]
    assert len(recovered) == 1 and "12" in recovered[0].getMessage()


async def test_a_bad_request_ends_only_its_own_item(store):
    """400 is permanent: the item fails at once (no retry); the chat's next item goes."""
    bot = FakeBot()
    sender, outbox = make(store, bot)
    bot.fail[GROUP] = [BadRequest("Can't parse entities: unsupported start tag")]
    await queue(store, outbox, (GROUP, "<broken>", Priority.PERSONAL),
                (GROUP, "fine", Priority.PERSONAL))
    await run_to_idle(sender)
    assert bot.texts() == ["fine"]
    assert len(bot.tried) == 2
    assert await statuses(store) == {"<broken>": "failed", "fine": "sent"}


class ShortGroupWindow(FloodGate):
    """Per-group limit of 2 calls in 0.3 s: Telegram's 20 in 60 s, shortened for a test."""

    def _group(self, chat_id: int) -> Window:
        return self._groups.setdefault(chat_id, Window(2, 0.3, 0.0))


@pytest.mark.parametrize("window", ["chat", "group"])
async def test_a_direct_reply_that_took_the_window_makes_a_ready_post_wait(store, window):
    """Direct replies go out at once and take their share of the windows: a post that was
    ready before they went must check its chat's (or group's) window again when it is
    picked, or it arrives as Telegram's 2nd call to that chat within the window (a 429)."""
    bot = FakeBot()
    settings = load_settings(quiet_hours="")
    if window == "chat":
        gate, span, replies = FloodGate(1000, 1.9, 100000), 1 / 1.9 + 0.04, 1
    else:
        gate, span, replies = ShortGroupWindow(1000, 1000, 20), 0.3, 2
    outbox = Outbox(store, settings)
    sender = OutboxSender(bot, store, gate, settings, hooks=outbox.hooks,  # type: ignore[arg-type]
                          written=outbox.written, max_in_flight=1)
    limiter = DirectReplyLimiter(gate)
    replied: list[float] = []

    async def direct_reply() -> dict[str, Any]:
        replied.append(time.monotonic())
        return {}

    bot.hold[OTHER] = asyncio.Event()
    await queue(store, outbox, (OTHER, "first elsewhere", Priority.PERSONAL),
                (GROUP, "queued", Priority.PERSONAL))
    async with running(sender):
        await bot.started_in(OTHER).wait()  # the only slot is on the wire; GROUP's is ready
        for _ in range(replies):
            await limiter.process_request(direct_reply, (), {}, "sendMessage",
                                          {"chat_id": GROUP}, None)
        bot.hold[OTHER].set()
        await sender.drain(5)
    assert bot.texts(GROUP) == ["queued"]
    sent_at = next(c[3] for c in bot.calls if c[1] == GROUP)
    assert sent_at - replied[0] >= span - 0.01


async def test_a_429_holds_every_post_to_that_chat_until_the_retry_time(store):
    """Telegram answers 429 for the chat, not for the one message: a more urgent post to the
    same chat queued during the wait must not go before `retry_after` either."""
    bot = FakeBot()
    sender, outbox = make(store, bot)
    bot.fail[GROUP] = [RetryAfter(timedelta(milliseconds=400))]
    await queue(store, outbox, (GROUP, "routine", Priority.ROUTINE))
    async with running(sender):
        await bot.started_in(GROUP).wait()
        await queue(store, outbox, (GROUP, "emergency", Priority.EMERGENCY),
                    (OTHER, "other chat", Priority.ROUTINE))
        await bot.wait_calls(3)
        await sender.drain(5)
    flooded_at = bot.tried[0][1]
    assert bot.texts(GROUP) == ["emergency", "routine"]
    times = {c[2]["text"]: c[3] for c in bot.calls}
    assert times["emergency"] - flooded_at >= 0.4 - 0.01
    assert times["other chat"] < flooded_at + 0.4  # only that chat waits


async def test_a_429_block_outlives_a_restart(store):
    """The bot restarts within a 429's wait: after the restart the chat is still blocked, for
    the outbox and for direct replies (Telegram would answer with another 429)."""
    bot = FakeBot()
    sender, outbox = make(store, bot)
    bot.fail[GROUP] = [RetryAfter(timedelta(seconds=30))]
    await queue(store, outbox, (GROUP, "routine", Priority.ROUTINE))
    async with running(sender):
        await bot.started_in(GROUP).wait()
        async with asyncio.timeout(5):
            while sender.gate.chat_next_free(GROUP) <= sender.gate.clock():
                await asyncio.sleep(0.01)
    restarted, outbox = make(store, FakeBot())
    await queue(store, outbox, (GROUP, "emergency", Priority.EMERGENCY))
    async with running(restarted):
        gate = restarted.gate
        assert gate.chat_next_free(GROUP) - gate.clock() > 25
        assert restarted.bot.calls == []


async def test_several_items_are_looked_at_in_one_statement_as_they_stand_now(store):
    """The sender looks at the items it is about to send together (`current_many`): a sent
    one is None, a pending edit replaced meanwhile comes with its newer payload, the rest as
    they were; a leader whose epoch is over gets StaleEpoch and sends none of them."""
    from storage.leadership import StaleEpoch

    outbox = store.outbox
    a = await outbox.enqueue(1, "sendMessage", {"text": "a"}, 1)
    b = await outbox.enqueue(2, "sendMessage", {"text": "b"}, 1)
    c = await outbox.enqueue(3, "editMessageText", {"text": "3 in"}, 1, coalesce_key="horn:1")
    items = {i.id: i for i in await outbox.pending()}
    await outbox.mark_sent(b, 77, {"message_id": 77})
    assert await outbox.enqueue(3, "editMessageText", {"text": "4 in"}, 1,
                                coalesce_key="horn:1") == c
    now = await outbox.current_many([items[a], items[b], items[c]])
    assert now[a] == items[a] and now[b] is None
    assert now[c] is not None and now[c].payload == {"text": "4 in"}
    epoch = await store.leadership.epoch()
    assert (await outbox.current_many([items[a]], epoch))[a] == items[a]
    with pytest.raises(StaleEpoch):
        await outbox.current_many([items[a], items[c]], epoch + 1)


async def test_a_leader_reads_the_queue_once_for_the_commits_of_a_moment(store):
    """Several replicas: each commit that queues a message wakes the leader, and each read
    of the queue is a round trip. The leader reads at most once per `LOAD_GAP_S` (the
    commits of that moment together) and records the answers of a moment in one commit;
    every message still goes out once."""
    bot = FakeBot()
    sender, outbox = make(store, bot)
    sender.LOAD_GAP_S = 0.05
    reads, records = [], []
    pending, record = store.outbox.pending, sender._record

    async def counting_pending(after_id: int = 0, also=None):
        reads.append(after_id)
        return await pending(after_id, also)

    async def counting_record(batch, hooks=True):
        records.append(len(batch))
        return await record(batch, hooks)

    store.outbox.pending = counting_pending
    sender._record = counting_record
    await sender.start(epoch=await store.leadership.epoch())
    try:
        began, reads[:] = time.monotonic(), []
        for n in range(40):  # forty commits, each waking the sender
            await queue(store, outbox, (1000 + n, f"receipt {n}", Priority.PERSONAL))
        await bot.wait_calls(40)
        took, read = time.monotonic() - began, len(reads)
        await sender.drain(5)
    finally:
        await sender.stop()
    assert sorted(bot.texts()) == sorted(f"receipt {n}" for n in range(40))
    assert set((await statuses(store)).values()) == {"sent"} and sum(records) == 40
    most = 2 + took / sender.LOAD_GAP_S  # one read per gap, and one at each end
    assert read <= most and len(records) <= most, (read, len(records), took)


async def test_a_row_committed_after_a_higher_id_was_read_goes_with_the_next_load(store):
    """PostgreSQL: transactions side by side take ids in one order and commit in another.
    A receipt whose row commits just after a later row was read is read with the load its
    own commit wakes (an id below the highest read: a hole), not a second later."""
    if store.db.dialect != "postgresql":
        pytest.skip("SQLite's writes take turns: ids commit in order")
    bot = FakeBot()
    sender, outbox = make(store, bot)
    first_in, release = asyncio.Event(), asyncio.Event()

    async def slow() -> None:
        async with store.transaction():
            await outbox.send(1001, "first", priority=Priority.PERSONAL)
            first_in.set()
            await release.wait()

    await sender.start(epoch=await store.leadership.epoch())
    try:
        task = asyncio.create_task(slow())
        await first_in.wait()
        await queue(store, outbox, (1002, "second", Priority.PERSONAL))  # a higher id, first
        await bot.wait_calls(1)
        assert bot.texts() == ["second"]
        release.set()
        await task
        await bot.wait_calls(2, timeout=0.9)  # before the leader's poll of every second
    finally:
        await sender.stop()
    assert bot.texts() == ["second", "first"]
