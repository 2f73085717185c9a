"""Telegram's flood limits as sliding windows, shared by the outbox and direct replies.

Each limit is "at most N calls in any window of W seconds", counted when a call starts, with a
small slack added to every window so that calls arriving a little late at Telegram still fit.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Coroutine, Sequence
from datetime import timedelta
from typing import Any, Protocol

from telegram.error import RetryAfter
from telegram.ext import BaseRateLimiter

logger = logging.getLogger(__name__)
#: What a Bot API call's callback returns (python-telegram-bot's `process_request`)
_Result = bool | dict[str, Any] | list[dict[str, Any]]

# Endpoints that count against the limits (every message sent or edited).
COUNTED = frozenset({
    "sendMessage", "sendPhoto", "sendDocument", "sendMediaGroup", "copyMessage",
    "forwardMessage", "editMessageText", "editMessageCaption", "editMessageReplyMarkup",
    "editMessageMedia", "pinChatMessage", "sendAnimation", "sendVideo", "sendLocation",
})
#: set while the outbox sender makes a call
OUTBOX_CALL: contextvars.ContextVar[bool] = contextvars.ContextVar("outbox_call", default=False)


def retry_seconds(exc: RetryAfter) -> float:
    """A 429's `retry_after` in seconds (python-telegram-bot gives int or timedelta)."""
    wait = exc.retry_after
    return wait.total_seconds() if isinstance(wait, timedelta) else float(wait)


#: seconds; pacing applies when calls are at least this far apart (30/s: 34.7 ms)
MIN_PACING_GAP = 0.005


class Window:
    """At most `capacity` events in any `span` seconds; a paced window also spaces them evenly.

    Events are kept in time order. A paced window (the overall limit) lets calls go one every
    `span / capacity` seconds instead of a burst of `capacity` at once: a burst leaves its
    calls queueing in the HTTP client, so they reach Telegram spread out by a varying delay,
    and the next burst, sent on an idle client, can overtake the window that Telegram counts.
    """

    __slots__ = ("capacity", "span", "gap", "events", "last")

    def __init__(self, rate: float, per: float, slack: float, paced: bool = False) -> None:
        """`rate` events per `per` seconds: a window of max(1, int(rate)) events (20 per
        minute stays 20 in 60 s, not 1 in 3 s), widened by `slack`."""
        self.capacity = max(1, int(rate))
        self.span = self.capacity * per / rate + slack
        gap = self.span / self.capacity
        # A gap shorter than a turn of a busy event loop would let one call out per turn
        # (measured: 25 a second under a burst of handlers, with the limit at 10,000):
        # such a high limit is not Telegram's, and the window alone keeps it.
        self.gap = gap if paced and gap >= MIN_PACING_GAP else 0.0
        self.events: deque[float] = deque()
        self.last = -math.inf  # the slot of the latest decision (pacing ignores restamps)

    def next_free(self, now: float) -> float:
        events = self.events
        while events and events[0] <= now - self.span:
            events.popleft()
        free = now
        if self.gap:
            free = max(free, self.last + self.gap)
        if len(events) >= self.capacity:
            free = max(free, events[len(events) - self.capacity] + self.span)
        return free

    def record(self, now: float) -> None:
        if self.gap:
            # The slot this call took: a call a little late (the loop woke late) keeps the
            # pace, so lateness does not add up; after a pause the pace starts afresh.
            self.last = max(now - self.gap / 2, self.last + self.gap)
        events = self.events
        if events and events[-1] > now:  # a restamped event lies ahead: keep the order
            self._insert(now)
        else:
            events.append(now)

    def move(self, old: float, new: float) -> None:
        """An event recorded at `old` really happened at `new` (later)."""
        events = self.events
        for index in range(len(events) - 1, -1, -1):
            if events[index] == old:
                del events[index]
                self._insert(new)
                return
            if events[index] < old:
                return  # already expired

    def _insert(self, when: float) -> None:
        events = self.events
        index = len(events)
        while index and events[index - 1] > when:
            index -= 1
        events.insert(index, when)


class Stamp:
    """A call's slot in the windows: when it counts, and for which chat."""

    __slots__ = ("at", "chat_id")

    def __init__(self, at: float, chat_id: int | None) -> None:
        self.at = at
        self.chat_id = chat_id


class BlockBook(Protocol):
    """Where a chat's 429 block is kept across restarts (the store's outbox repository)."""

    async def block_chat(self, chat_id: int, until: float) -> None: ...

    async def chat_blocks(self, now: float) -> dict[int, float]: ...


class FloodGate:
    """The limits of SPEC §7: overall per second, per chat per second, per group per minute.

    `record` reserves a slot when a call is decided; `restamp` moves it to the moment the call
    really leaves (after the outbox has read its row), so that the windows count what Telegram
    counts: arrivals, not decisions.
    """

    def __init__(self, overall_per_s: float, chat_per_s: float, group_per_min: float, *,
                 slack: float = 0.04, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._slack = slack
        self._chat_rate = chat_per_s
        self._group_rate = group_per_min
        self.overall = Window(overall_per_s, 1.0, slack, paced=True)
        self._chats: dict[int, Window] = {}
        self._groups: dict[int, Window] = {}
        self._blocked: dict[int, float] = {}  # chat -> end of a 429's retry_after
        self._book: BlockBook | None = None

    def _chat(self, chat_id: int) -> Window:
        window = self._chats.get(chat_id)
        if window is None:
            window = self._chats[chat_id] = Window(self._chat_rate, 1.0, self._slack)
        return window

    def _group(self, chat_id: int) -> Window:
        window = self._groups.get(chat_id)
        if window is None:
            window = self._groups[chat_id] = Window(self._group_rate, 60.0, self._slack * 10)
        return window

    def chat_next_free(self, chat_id: int, now: float | None = None) -> float:
        now = self.clock() if now is None else now
        free = self._chat(chat_id).next_free(now)
        if chat_id < 0:
            free = max(free, self._group(chat_id).next_free(now))
        blocked = self._blocked.get(chat_id)
        if blocked is not None:
            if blocked <= now:
                del self._blocked[chat_id]
            else:
                free = max(free, blocked)
        return free

    def block(self, chat_id: int, until: float) -> None:
        """A 429 in `chat_id`: Telegram takes no call to that chat before `until`."""
        self._blocked[chat_id] = max(until, self._blocked.get(chat_id, until))

    def blocked_for(self, chat_id: int, now: float | None = None) -> float:
        """Seconds left of a 429's block on `chat_id` (0: none)."""
        until = self._blocked.get(chat_id)
        if until is None:
            return 0.0
        return max(0.0, until - (self.clock() if now is None else now))

    async def hold(self, chat_id: int, seconds: float) -> None:
        """A 429 in `chat_id` said to wait `seconds`: blocked here and, with a book kept
        (`keep_blocks_in`), in the store, so that a restart within the wait keeps it too."""
        self.block(chat_id, self.clock() + seconds)
        if self._book is not None:
            await self._book.block_chat(chat_id, time.time() + seconds)

    async def keep_blocks_in(self, book: BlockBook) -> None:
        """Keep blocks in `book` from now on; those it holds apply again (after a restart)."""
        wall, now = time.time(), self.clock()
        for chat_id, until in (await book.chat_blocks(wall)).items():
            self.block(chat_id, now + until - wall)
        self._book = book

    def overall_next_free(self, now: float | None = None) -> float:
        return self.overall.next_free(self.clock() if now is None else now)

    def record(self, chat_id: int | None, now: float | None = None) -> Stamp:
        now = self.clock() if now is None else now
        self.overall.record(now)
        if chat_id is not None:
            self._chat(chat_id).record(now)
            if chat_id < 0:
                self._group(chat_id).record(now)
        return Stamp(now, chat_id)

    def restamp(self, stamp: Stamp, now: float | None = None) -> None:
        """The call reserved by `stamp` leaves at `now` (later than its stamp; default: now)."""
        now = self.clock() if now is None else now
        old = stamp.at
        if now <= old:
            return
        stamp.at = now
        self.overall.move(old, now)
        if stamp.chat_id is not None:
            for table in (self._chats, self._groups):
                window = table.get(stamp.chat_id)
                if window is not None:
                    window.move(old, now)

    def forget(self, chat_id: int) -> None:
        self._chats.pop(chat_id, None)
        self._groups.pop(chat_id, None)
        self._blocked.pop(chat_id, None)


#: Calls that never wait for a free HTTP slot: the answer to a tap must come within seconds.
UNCAPPED = frozenset({"answerCallbackQuery"})
#: Concurrent direct calls (besides answers to taps, the outbox's own and getUpdates).
MAX_CONCURRENT_CALLS = 24
#: The longest a direct reply waits for a chat's 429 block to end. A person who wrote or
#: tapped still wants the answer a few seconds late; a longer wait would hold the handler (and
#: the chat's updates behind it) for nothing the person can see, so the reply is refused at
#: once with the `RetryAfter` Telegram would answer, without a call that would prolong it.
DIRECT_WAIT_MAX_S = 10.0


class DirectReplyLimiter(BaseRateLimiter[dict[str, bool]]):
    """python-telegram-bot's hook: direct replies go out at once and take their share.

    The outbox marks its own calls (`OUTBOX_CALL`) because it has already waited
    for, and recorded, their slot. A chat blocked by a 429 (the outbox's or a reply's) holds
    a direct message or edit to it until the block ends, if that is within
    `DIRECT_WAIT_MAX_S`, and refuses it otherwise; the answer to a tap is never held. A 429
    on a direct reply blocks the chat for everyone and is waited out once when short.

    Every direct call but the answer to a tap also takes one of `max_concurrent` slots, so that
    a burst of handlers waits here, cheaply, instead of queueing in the HTTP client's
    connection pool (a call there cost about twice the CPU with 256 queued as with 16,
    docs/benchmarks.md).
    """

    def __init__(self, gate: FloodGate, max_concurrent: int = MAX_CONCURRENT_CALLS,
                 shared: SharedDirectSends | None = None) -> None:
        """`shared`: several replicas (PostgreSQL): each counted call is also written to
        the store, for the leader's gate."""
        self.gate = gate
        self._calls = asyncio.Semaphore(max_concurrent)
        self.shared = shared

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | dict[str, Any] | list[dict[str, Any]]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: dict[str, bool] | None,
    ) -> bool | dict[str, Any] | list[dict[str, Any]]:
        outbox = OUTBOX_CALL.get()
        try:
            return await self._once(callback, args, kwargs, endpoint, data, outbox)
        except RetryAfter as exc:
            if outbox:  # the outbox blocks the chat itself
                raise
            seconds = retry_seconds(exc)
            chat_id = data.get("chat_id")
            if isinstance(chat_id, int):
                await self.gate.hold(chat_id, seconds)
            if seconds > DIRECT_WAIT_MAX_S:
                raise
            logger.info("direct %s hit a flood limit; retrying in %s s", endpoint, seconds)
            if not isinstance(chat_id, int):
                await asyncio.sleep(math.ceil(seconds))
            return await self._once(callback, args, kwargs, endpoint, data, outbox)

    async def _once(self, callback: Callable[..., Coroutine[Any, Any, _Result]], args: Any,
                    kwargs: dict[str, Any], endpoint: str, data: dict[str, Any],
                    outbox: bool) -> _Result:
        if endpoint in UNCAPPED or outbox:  # the outbox has its own in-flight limit, and its
            return await callback(*args, **kwargs)  # slot is stamped: it must leave now
        chat_id = data.get("chat_id")
        chat = chat_id if isinstance(chat_id, int) else None
        if endpoint in COUNTED and chat is not None:
            await self._wait_out_block(chat, endpoint)
        async with self._calls:
            if endpoint in COUNTED:
                self.gate.record(chat)
                if self.shared is not None:
                    self.shared.note(chat)
            return await callback(*args, **kwargs)

    async def _wait_out_block(self, chat_id: int, endpoint: str) -> None:
        """Hold a call to a chat that a 429 blocks until the block ends; refuse it when
        that is more than `DIRECT_WAIT_MAX_S` away."""
        while (left := self.gate.blocked_for(chat_id)) > 0:
            if left > DIRECT_WAIT_MAX_S:
                logger.info("direct %s to %s refused: the chat is blocked for %.0f s more",
                            endpoint, chat_id, left)
                raise RetryAfter(timedelta(seconds=math.ceil(left)))
            await asyncio.sleep(left)


class DirectSendBook(Protocol):
    """Where the replicas' direct calls are kept (the store's leadership repository)."""

    async def record_direct(self, replica: str,
                            sends: Sequence[tuple[int | None, float]]) -> None: ...

    async def direct_recent(self, since: float) -> list[tuple[int, int | None, float, str]]: ...

    async def prune_direct(self, before: float) -> int: ...


class SharedDirectSends:
    """Flood limits across replicas (SPEC §7, §16): the direct replies every replica makes
    are written to the store in batches (`flush_every` s), and the leader's gate reads the
    other replicas' every `poll_every` s into its windows (overall, per chat, per group), at
    the time they were made. Rows older than the longest window are pruned by the leader.
    SQLite does not use this: its one process counts in memory."""

    #: the longest window (a group's minute) and its slack: older rows count for nothing
    KEEP_S = 65.0
    #: a row may be committed this long after it was made (a flush, a slow transaction)
    LOOKBACK_S = 5.0

    def __init__(self, book: DirectSendBook, gate: FloodGate, replica: str, *,
                 flush_every: float = 0.2, poll_every: float = 0.25) -> None:
        self.book = book
        self.gate = gate
        self.replica = replica
        self.flush_every = flush_every
        self.poll_every = poll_every
        self._buffer: list[tuple[int | None, float]] = []
        self._seen: dict[int, float] = {}   # ids counted, and their time
        self._flusher: asyncio.Task[None] | None = None
        self._counter: asyncio.Task[None] | None = None
        self.counted = 0  # the other replicas' calls counted (tests, metrics)

    def note(self, chat_id: int | None) -> None:
        """A direct call of this replica counted now (written at the next flush)."""
        self._buffer.append((chat_id, time.time()))

    async def start(self) -> None:
        """Every replica: write its direct calls."""
        self._flusher = asyncio.create_task(self._flush_forever(), name="gridhorn:direct-sends")

    async def stop(self) -> None:
        await _cancel(self._flusher)
        self._flusher = None
        try:
            await self.flush()
        except Exception:
            logger.warning("the last direct sends could not be written", exc_info=True)

    async def flush(self) -> None:
        batch, self._buffer = self._buffer, []
        if batch:
            try:
                await self.book.record_direct(self.replica, batch)
            except BaseException:
                self._buffer[:0] = batch  # written at the next try
                raise

    async def _flush_forever(self) -> None:
        while True:
            await asyncio.sleep(self.flush_every)
            try:
                await self.flush()
            except Exception:
                logger.warning("direct sends could not be written", exc_info=True)
                self._buffer = self._buffer[-10_000:]  # a long outage: keep the recent

    async def start_counting(self) -> None:
        """The leader: count the other replicas' calls in its gate from now on."""
        self._seen.clear()
        self._counter = asyncio.create_task(self._count_forever(),
                                            name="gridhorn:direct-counts")

    async def stop_counting(self) -> None:
        await _cancel(self._counter)
        self._counter = None

    async def count(self) -> int:
        """Read the other replicas' new calls into the gate; how many."""
        wall = time.time()
        fresh = 0
        for row_id, chat_id, at, replica in await self.book.direct_recent(
                wall - self.LOOKBACK_S):
            if row_id in self._seen:
                continue
            self._seen[row_id] = at
            if replica == self.replica:
                continue  # counted when it was made
            self.gate.record(chat_id, now=self.gate.clock() - max(0.0, wall - at))
            fresh += 1
        horizon = wall - 2 * self.LOOKBACK_S
        if len(self._seen) > 1000:
            self._seen = {i: at for i, at in self._seen.items() if at > horizon}
        self.counted += fresh
        return fresh

    async def _count_forever(self) -> None:
        pruned = time.monotonic()
        while True:
            try:
                await self.count()
                if time.monotonic() - pruned > 10.0:
                    pruned = time.monotonic()
                    await self.book.prune_direct(time.time() - self.KEEP_S)
            except Exception:
                logger.warning("the other replicas' direct sends could not be read",
                               exc_info=True)
            await asyncio.sleep(self.poll_every)


async def _cancel(task: asyncio.Task[None] | None) -> None:
    if task is not None:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
