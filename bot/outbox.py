"""The outbox sender (SPEC §7): one persistent queue, one sender that keeps Telegram's limits.

Services write messages with `bot.services.outbox.Outbox.send(...)` inside the transaction
that causes them; the sender wakes after the commit, picks the most urgent item whose chat may
receive now, waits for the overall window, and sends. Calls to one chat go one at a time, in
queue order; calls to different chats run concurrently. Outcomes: sent (recorded with its
message id, hooks run in the same transaction), retried (429 → retry_after, 5xx/network →
backoff), followed (chat migrated → the queue and the bindings move), dropped (chat gone, edit
moot) or failed (400).
Transient errors never end an item: an outage of any length only delays it.

Each item is sent in a log context of its own (`bot.logcontext`): every line written meanwhile
names the item, its chat, and the ticket or horn its `ref` is about (SPEC §15).
"""

from __future__ import annotations

import asyncio
import base64
import heapq
import itertools
import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from telegram import Bot, InputFile
from telegram.error import BadRequest, ChatMigrated, Forbidden, NetworkError, RetryAfter, TimedOut

from bot import logcontext, rawapi
from bot.hooks import OutboxHooks, Wakeup
from bot.http import ANSWERING
from bot.metrics import Metrics
from bot.priority import Priority
from bot.ratelimit import OUTBOX_CALL, FloodGate, Stamp, retry_seconds
from bot.settings import Settings
from storage.backoff import delay
from storage.leadership import StaleEpoch
from storage.models import OutboxItem
from storage.store import Store

logger = logging.getLogger(__name__)

#: with several replicas, outbox ids are taken in one order and committed in another: the
#: leader's poll reads the pending rows among the last this many ids again (`poll`)
GAP_IDS = 1000
#: seconds an id below the highest read is looked for at each load (then `poll`'s turn)
HOLE_S = 2.0


MOOT_ERRORS = ("message is not modified", "message to edit not found",
               "message to pin not found", "message to unpin not found",
               "message to delete not found",
               "message can't be deleted")


class _Lane:
    """One chat's queue: a heap of (priority, id), and the turn of its latest scheduling.

    Only the entry of the ready heap that carries the lane's current `turn` may send: an older
    entry whose item is again at the head (a more urgent item went first meanwhile) would
    otherwise send without the chat's window, retry time or quiet hours being checked again.
    """

    __slots__ = ("heap", "busy", "turn")

    def __init__(self) -> None:
        self.heap: list[tuple[int, int]] = []
        self.busy = False
        self.turn = 0


class OutboxSender:
    """Reading side: the one loop that sends."""

    LOAD_GAP_S = 0.005

    def __init__(self, bot: Bot, store: Store, gate: FloodGate, settings: Settings, *,
                 hooks: OutboxHooks | None = None, written: Wakeup | None = None,
                 foreground_busy: Callable[[], bool] = lambda: False,
                 max_in_flight: int = 64, notified: Wakeup | None = None,
                 polled: Wakeup | None = None, metrics: Metrics | None = None) -> None:
        """`hooks`: what the services asked to be told (the writer's registry); `written`:
        fired after each commit that queued rows; `foreground_busy`: true while people's
        updates are being handled (the intake), see `_deferred`. Several replicas:
        `notified` fires when another's commit queued rows, `polled` every second (`poll`)."""
        self.bot = bot
        self.store = store
        self.gate = gate
        #: the items' outcomes (SPEC §15; the calls themselves are counted by the request)
        self.metrics = metrics or Metrics()
        self.settings = settings
        #: seconds before the first retry of a transient failure; doubled after each further
        #: failure of the item, up to the cap
        self.backoff_base = 0.5
        self.backoff_cap = 300.0
        # transient failures since the Bot API last answered, and since when (logged once)
        self._failures = 0
        self._failing_since = 0.0
        self._max_in_flight = max_in_flight
        self._slots = asyncio.Semaphore(max_in_flight)
        self._epoch: int | None = None
        self._on_fenced: Callable[[str], None] = lambda reason: None
        self._fenced = False
        self._gaps = False  # `poll`: read the recent ids again
        self._gone: set[int] = set()  # ids done with while leading (not read again by poll)
        self._items: dict[int, OutboxItem] = {}
        self._lanes: dict[int, _Lane] = {}
        self._ready: list[tuple[int, int, int, int]] = []   # (priority, id, chat, turn)
        self._turns = itertools.count(1)
        self._timed: list[tuple[float, int]] = []      # (monotonic time, chat)
        self._wake = asyncio.Event()
        self._dirty = True  # rows may have been committed since the last load
        self._loaded_up_to = 0
        self._holes: dict[int, float] = {}  # ids below `_loaded_up_to` not read: since when
        self._task: asyncio.Task[None] | None = None
        self._sending: set[asyncio.Task[None]] = set()
        self._on_the_wire: set[Stamp] = set()  # calls sent and not answered yet
        self._results: list[tuple[OutboxItem, Any, asyncio.Future[None]]] = []
        self._recorder: asyncio.Task[None] | None = None
        self.load_gap = 0.0
        self._next_load = 0.0
        self._checks: list[tuple[OutboxItem, asyncio.Future[OutboxItem | None]]] = []
        self._checker: asyncio.Task[None] | None = None
        self.stall_threshold = 0.005
        self._idle = asyncio.Event()
        self._idle.set()
        self.foreground_busy = foreground_busy
        self.max_deferral = 2.0  # seconds
        self.hooks = hooks or OutboxHooks()
        self._met: set[int] = set()  # group chats whose first use was seen to (`_first_use`)
        for wakeup in (written, notified):
            if wakeup is not None:
                wakeup.connect(self.wake)
        if polled is not None:
            polled.connect(self.poll)

    def wake(self, when: float | None = None) -> None:
        """New rows were committed (the writer's after-commit hook, or another replica's
        notification); `when` is not used: the rows themselves say when they may go."""
        self._dirty = True
        self._wake.set()

    def poll(self, when: float | None = None) -> None:
        """The leader's safety net (every second): read again the pending rows among the
        last `GAP_IDS` ids, which another replica may have committed after a higher id
        was read, or whose notification was lost."""
        self._gaps = True
        self.wake()

    async def start(self, epoch: int | None = None,
                    on_fenced: Callable[[str], None] = lambda reason: None) -> None:
        """Send as the leader of `epoch` (None: the one process, no fencing): every claim
        checks it, and the first that finds another epoch stops this sender and calls
        `on_fenced`. A sender stopped may be started again (the lead won back)."""
        self._epoch = epoch
        #: several replicas (PostgreSQL): each commit that queues a message notifies the
        #: leader, and a read of the queue costs a round trip; one read per this many
        #: seconds serves a burst's commits (a receipt waits at most this much longer)
        self.load_gap = 0.0 if epoch is None else self.LOAD_GAP_S
        self._next_load = 0.0
        self._on_fenced = on_fenced
        self._fenced = False
        self._items.clear()
        self._lanes.clear()
        self._ready.clear()
        self._timed.clear()
        self._gone.clear()
        self._met.clear()
        self._slots = asyncio.Semaphore(self._max_in_flight)
        await self.gate.keep_blocks_in(self.store.outbox)  # a 429's wait outlives a restart
        self._task = asyncio.create_task(self._run(), name="gridhorn:outbox")

    async def stop(self, cancel: bool = False) -> None:
        """Stop choosing; the calls in flight finish and are recorded, or with `cancel`
        (leadership lost) are cut short: their outcome stays unknown, as a crash leaves it."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        sending = list(self._sending)
        if cancel:
            for task in sending:
                task.cancel()
        await asyncio.gather(*sending, return_exceptions=True)
        checker, self._checker = self._checker, None
        if checker is not None:  # its sends are over: nobody waits for its answer
            checker.cancel()
            await asyncio.gather(checker, return_exceptions=True)
        self._checks = []
        recorder, self._recorder = self._recorder, None
        if recorder is not None and not recorder.done():
            # what went out is still recorded (fewer doubles for the next leader), unless
            # the store does not answer either
            try:
                async with asyncio.timeout(2.0 if cancel else None):
                    await asyncio.shield(recorder)
            except TimeoutError:
                recorder.cancel()
                await asyncio.gather(recorder, return_exceptions=True)
            except Exception:
                pass  # logged by the recorder
        self._results = []

    def _fence(self, reason: str) -> None:
        """Another replica leads now: choose nothing more, tell the leadership (once)."""
        if self._fenced:
            return
        self._fenced = True
        logger.warning("outbox sender of epoch %s stops: %s", self._epoch, reason)
        if self._task is not None:
            self._task.cancel()
        self._on_fenced(reason)

    async def drain(self, timeout: float | None = None) -> None:
        """Wait until nothing is pending that could go out now (tests, shutdown)."""
        async def _wait() -> None:
            while True:
                await self._load()
                if not self._sending and all(self._quiet_wait(item) > 0
                                             for item in self._items.values()):
                    return  # what is left waits for the end of quiet hours
                self._idle.clear()
                await self._idle.wait()
        async with asyncio.timeout(timeout):
            await _wait()

    # loop

    async def _run(self) -> None:
        await self._load(reset=True)
        while True:
            self._wake.clear()
            if self._dirty and self.gate.clock() >= self._next_load:
                self._dirty = False
                gaps, self._gaps = self._gaps, False
                await self._load(gaps=gaps)
                self._next_load = self.gate.clock() + self.load_gap
            self._promote_timed()
            if not self._ready:
                self._signal_idle()
                if self._dirty:  # read a moment ago: this moment's commits are read together
                    # (a plain sleep: a late wake here says nothing of calls on the wire)
                    await asyncio.sleep(max(0.0, self._next_load - self.gate.clock()))
                    continue
                await self._sleep_until(self._timed[0][0] if self._timed else None)
                continue
            wait = self._deferred()
            if wait > 0:
                await self._sleep_until(self.gate.clock() + min(wait, 0.05))
                continue
            free_at = self.gate.overall_next_free()
            if free_at > self.gate.clock():
                await self._sleep_until(free_at, wakeable=False)
                continue  # something more urgent may have arrived meanwhile
            if self._slots.locked():
                # every slot is on the wire: wait for one, then choose again (the most urgent
                # item may have changed meanwhile)
                await self._slots.acquire()
                self._slots.release()
                continue
            priority, item_id, chat_id, turn = heapq.heappop(self._ready)
            lane = self._lanes.get(chat_id)
            if lane is None or lane.busy or lane.turn != turn or not lane.heap \
                    or lane.heap[0][1] != item_id:
                continue  # stale entry
            if self.gate.chat_next_free(chat_id) > self.gate.clock():
                # a direct reply took the chat's (or group's) window since the item was found
                # ready: it waits for the window again
                self._schedule(chat_id)
                continue
            await self._slots.acquire()  # free: checked above, nothing awaited since
            lane.busy = True
            stamp = self.gate.record(chat_id)
            task = asyncio.create_task(self._deliver(item_id, chat_id, stamp))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    def _deferred(self) -> float:
        """Seconds the most urgent ready item may still wait for the people being answered.

        Sending takes CPU that the handlers of a burst need: while updates are being handled,
        what nobody is waiting for at the phone (staff cards, edits of old cards, routine
        posts: below PERSONAL) waits, up to `max_deferral` after it was queued. Horns and
        receipts never wait."""
        if not self._ready or self._ready[0][0] <= Priority.PERSONAL or \
                not self.foreground_busy():
            return 0.0
        item = self._items.get(self._ready[0][1])
        if item is None:
            return 0.0
        return item.created_at + self.max_deferral - time.time()

    async def _sleep_until(self, when: float | None, wakeable: bool = True) -> None:
        """Sleep until `when` (gate clock; None: until woken), or until woken if `wakeable`.

        Not `asyncio.wait_for`: on Python 3.11 it returns the result of an event set in the
        same turn as a cancellation and drops the cancellation, so `stop()` hung."""
        timeout = None if when is None else max(0.0, when - self.gate.clock())
        if not wakeable:
            assert timeout is not None
            await asyncio.sleep(timeout)
        else:
            try:
                async with asyncio.timeout(timeout):
                    await self._wake.wait()
                return
            except TimeoutError:
                pass
        late = self.gate.clock() - when  # type: ignore[operator]
        if late > self.stall_threshold:
            self._stalled(late)

    def _stalled(self, late: float) -> None:
        """The loop woke `late` seconds after its timer: the process stalled (a garbage
        collection, a slow callback). A call that was on its way may have left that much later
        than stamped, so it counts that much later: Telegram counts arrivals."""
        for stamp in self._on_the_wire:
            self.gate.restamp(stamp, stamp.at + late)

    def _signal_idle(self) -> None:
        if not self._sending and not self._ready:
            self._idle.set()

    async def _load(self, reset: bool = False, gaps: bool = False) -> None:
        """Read the pending rows above the highest id read, and the holes: ids below it not
        read yet. Transactions side by side (PostgreSQL) take ids in one order and commit in
        another, so a receipt's row may commit just after a higher id was read; it is read
        with the next notification's load, not a second later by `poll`."""
        if reset:
            self._loaded_up_to = 0
            self._holes.clear()
        top = after = self._loaded_up_to
        if gaps:
            after = max(0, after - GAP_IDS)
            floor = after
            self._gone = {i for i in self._gone if i > floor}
        now = time.monotonic()
        for hole, since in list(self._holes.items()):
            if now - since > HOLE_S:
                del self._holes[hole]  # never came (rolled back, a dedupe): `poll` looks
        read: set[int] = set()
        for item in await self.store.outbox.pending(after_id=after, also=list(self._holes)):
            read.add(item.id)
            self._holes.pop(item.id, None)
            self._loaded_up_to = max(self._loaded_up_to, item.id)
            self._add(item)
        if top < self._loaded_up_to <= top + GAP_IDS:
            for missing in range(top + 1, self._loaded_up_to):
                if missing not in read:
                    self._holes[missing] = now

    def _add(self, item: OutboxItem) -> None:
        if item.id in self._items or item.id in self._gone:
            return
        self._items[item.id] = item
        lane = self._lanes.setdefault(item.chat_id, _Lane())
        heapq.heappush(lane.heap, (item.priority, item.id))
        self._schedule(item.chat_id)

    def _schedule(self, chat_id: int) -> None:
        """Place a chat's head item in the ready heap now, or in the timed heap for later."""
        lane = self._lanes.get(chat_id)
        if lane is None or lane.busy:
            return
        while lane.heap and lane.heap[0][1] not in self._items:
            heapq.heappop(lane.heap)
        if not lane.heap:
            del self._lanes[chat_id]
            return
        priority, item_id = lane.heap[0]
        item = self._items[item_id]
        now = self.gate.clock()
        at = self.gate.chat_next_free(chat_id, now)
        wall = time.time()
        if item.not_before > wall:
            at = max(at, now + item.not_before - wall)
        quiet_wait = self._quiet_wait(item)
        if quiet_wait:
            at = max(at, now + quiet_wait)
        lane.turn = next(self._turns)
        if at <= now:
            heapq.heappush(self._ready, (priority, item_id, chat_id, lane.turn))
        else:
            heapq.heappush(self._timed, (at, chat_id))
        self._wake.set()

    def _promote_timed(self) -> None:
        now = self.gate.clock()
        while self._timed and self._timed[0][0] <= now:
            _, chat_id = heapq.heappop(self._timed)
            self._schedule(chat_id)

    def _quiet_wait(self, item: OutboxItem) -> float:
        """Seconds a quiet-sensitive group post must still wait (0 outside quiet hours)."""
        quiet = self.settings.quiet_hours
        if not item.quiet or quiet is None or item.chat_id > 0:
            return 0.0
        local = datetime.now(self.settings.tz)
        if not quiet.contains(local.time().replace(tzinfo=None)):
            return 0.0
        end = local.replace(hour=quiet.end.hour, minute=quiet.end.minute, second=0,
                            microsecond=0)
        if end <= local:
            end += timedelta(days=1)
        return (end - local).total_seconds()

    # delivery

    def _tag(self, item_id: int, chat_id: int, ref: str | None) -> None:
        """The log lines of this context are about this item (SPEC §15): its id, its chat, and
        the ticket or horn its ref names (read by the service that wrote it)."""
        logcontext.tag(outbox_id=item_id, chat_id=chat_id, **self.hooks.about(ref))

    async def _deliver(self, item_id: int, chat_id: int, stamp: Stamp) -> None:
        item = self._items.get(item_id)
        with logcontext.fresh():
            self._tag(item_id, chat_id, item.ref if item is not None else None)
            await self._deliver_item(item_id, chat_id, stamp, item)

    async def _deliver_item(self, item_id: int, chat_id: int, stamp: Stamp,
                            item: OutboxItem | None) -> None:
        next_chat = chat_id
        held = [True]

        def free_slot() -> None:
            """The call is answered: its in-flight slot goes to the next send even while the
            answer is still being recorded (the chat's lane stays busy until then)."""
            if held[0]:
                held[0] = False
                self._slots.release()

        try:
            await self._first_use(chat_id)
            # fresh: a newer edit may have replaced it; a service may have dropped the chat's
            # queue (the bot was removed) or moved it (the group migrated) meanwhile
            try:
                item = await self._current(item) \
                    if item is not None and not self._fenced else None
            except StaleEpoch as exc:
                self._fence(str(exc))
                item = None
            if item is None:
                self._forget(item_id)
                return
            self.gate.restamp(stamp)  # the windows count when the call leaves, not the pick
            next_chat = await self._attempt(item, stamp, free_slot)
        except Exception as exc:
            # Not a Telegram answer (those are handled in _attempt): a bug, a broken payload or
            # the store failing. Retried with backoff like a network error, never given up (a
            # fixed bot sends it); logged at a falling rate (tries 1, 2, 4, 8…).
            tries = item.attempts + 1 if item is not None else 1
            if tries & (tries - 1) == 0:
                logger.exception("outbox item %s could not be processed (try %d)", item_id,
                                 tries)
            try:
                if item is not None:
                    await self._retry(item, None, repr(exc), count=True)
                else:
                    self._forget(item_id)
            except Exception:
                logger.exception("outbox item %s could not be rescheduled", item_id)
                self._forget(item_id)
        finally:
            free_slot()
            lane = self._lanes.get(chat_id)
            if lane is not None:
                lane.busy = False
            self._schedule(chat_id)
            if next_chat != chat_id:
                self._schedule(next_chat)
            task = asyncio.current_task()
            if task is not None:
                self._sending.discard(task)
            self._signal_idle()
            self._wake.set()

    async def _first_use(self, chat_id: int) -> None:
        """Before the first item to a group chat the store knows nothing of (bound through
        the map file), the services learn it (`OutboxHooks.first_use`): its type, forum flag
        and the bot's rights, as /bind records them; once per chat while the sender runs."""
        if chat_id > 0 or chat_id in self._met or not self.hooks.first_use:
            return
        self._met.add(chat_id)
        if await self.store.map.chat(chat_id) is not None:
            return
        for hook in self.hooks.first_use:
            try:
                await hook(chat_id)
            except Exception:
                logger.exception("learning chat %s before its first item failed", chat_id)

    async def _attempt(self, item: OutboxItem, stamp: Stamp,
                       answered: Callable[[], None] = lambda: None) -> int:
        """Send once; returns the chat the item's lane now lives in."""
        self._on_the_wire.add(stamp)
        try:
            try:
                result = await self._call(item)
            finally:
                self._on_the_wire.discard(stamp)
                answered()
        except RetryAfter as exc:
            self._reachable()
            seconds = retry_seconds(exc)
            logger.warning("429 on %s to %s: retry after %s s", item.method, item.chat_id, seconds)
            # the chat's whole lane waits, not only this item: a more urgent one queued
            # meanwhile would earn another 429
            await self.gate.hold(item.chat_id, seconds)
            await self._retry(item, seconds, f"429 retry after {seconds}", count=False)
            self.metrics.outbox_items.labels("retried").inc()
        except ChatMigrated as exc:
            self._reachable()
            new_id = exc.new_chat_id
            async with self.store.transaction():
                await self.store.outbox.migrate_chat(item.chat_id, new_id)
                for migrated in self.hooks.migrated:
                    await migrated(item.chat_id, new_id)
            self._move_lane(item.chat_id, new_id)
            logger.info("chat %s became %s: outbox item %s and the chat's queue follow",
                        item.chat_id, new_id, item.id)
            self.metrics.outbox_items.labels("migrated").inc()
            return new_id
        except Forbidden as exc:
            self._reachable()
            reason = exc.message
            async with self.store.transaction():
                dropped = await self.store.outbox.drop_chat(item.chat_id, reason)
                for lost in self.hooks.chat_lost:
                    await lost(item.chat_id, reason)
            for dropped_id in dropped:
                self._forget(dropped_id)
            logger.warning("chat %s refused outbox item %s (%s): the chat's %d queued items "
                           "are dropped", item.chat_id, item.id, reason, len(dropped))
            self.metrics.outbox_items.labels("chat_lost").inc()
        except BadRequest as exc:
            self._reachable()
            text = exc.message.lower()
            status = "dropped" if any(m in text for m in MOOT_ERRORS) else "failed"
            if status == "failed":
                logger.error("outbox item %s (%s to %s) failed: %s", item.id, item.method,
                             item.chat_id, exc.message)
            else:
                logger.debug("outbox item %s (%s to %s) dropped: %s", item.id, item.method,
                             item.chat_id, exc.message)
            await self.store.outbox.finish(item.id, status, exc.message)
            self._forget(item.id)
            self.metrics.outbox_items.labels(status).inc()
        except (TimedOut, NetworkError) as exc:  # 5xx, timeouts, no connection
            seconds = self._failed_transiently(item, exc)
            await self._retry(item, seconds, str(exc), count=True)
            self.metrics.outbox_items.labels("retried").inc()
        else:
            self._reachable()
            await self._record_sent(item, result)
            logger.debug("outbox item %s (%s to %s) sent", item.id, item.method, item.chat_id)
            self.metrics.outbox_items.labels("sent").inc()
        return item.chat_id

    def backoff(self, attempts: int) -> float:
        """Seconds to wait after an item's call failed for the `attempts + 1`-th time."""
        return delay(attempts + 1, self.backoff_base, self.backoff_cap)

    def _failed_transiently(self, item: OutboxItem, exc: Exception) -> float:
        """A 5xx, a timeout or no connection: the item waits its backoff. The first such
        failure after an answer is logged as a warning; the rest of an outage only at debug
        level (one line per item and try would flood the log of a long outage)."""
        seconds = self.backoff(item.attempts)
        if self._failures == 0:
            self._failing_since = time.monotonic()
            logger.warning("the Bot API call %s to %s failed (%s); retrying with backoff "
                           "(at most %.0f s apart) until it answers", item.method,
                           item.chat_id, exc, self.backoff_cap)
        self._failures += 1
        logger.debug("outbox item %s (%s to %s) failed (%s), try %d; next in %.2f s", item.id,
                     item.method, item.chat_id, exc, item.attempts + 1, seconds)
        return seconds

    def _reachable(self) -> None:
        """Telegram answered (sent, or an error of its own): an outage, if any, is over."""
        if self._failures:
            logger.info("the Bot API answers again after %d failed calls in %.0f s",
                        self._failures, time.monotonic() - self._failing_since)
            self._failures = 0

    async def _retry(self, item: OutboxItem, seconds: float | None, error: str,
                     count: bool) -> None:
        """Try again after `seconds` (None: the backoff of its attempts so far). Never gives
        up: only Telegram's own refusals (400, 403) end an item."""
        if seconds is None:
            seconds = self.backoff(item.attempts)
        not_before = time.time() + seconds
        await self.store.outbox.retry_later(item.id, not_before, error, count_attempt=count)
        self._items[item.id] = item.model_copy(
            update={"not_before": not_before, "attempts": item.attempts + int(count)})

    async def _current(self, item: OutboxItem) -> OutboxItem | None:
        """`store.outbox.current` of an item about to go out. The sends that start while one
        look is on its way are looked at together in the next: in a burst, one statement for
        many sends instead of one each."""
        done: asyncio.Future[OutboxItem | None] = asyncio.get_running_loop().create_future()
        self._checks.append((item, done))
        if self._checker is None or self._checker.done():
            self._checker = asyncio.create_task(self._check_batches(),
                                                name="gridhorn:outbox-checker")
        return await done

    async def _check_batches(self) -> None:
        while self._checks:
            batch, self._checks = self._checks[:500], self._checks[500:]
            try:
                found = await self.store.outbox.current_many([i for i, _ in batch],
                                                             self._epoch)
            except Exception as exc:  # StaleEpoch, the store failing: each send is told
                for _, done in batch:
                    if not done.done():
                        done.set_exception(exc)
            else:
                for item, done in batch:
                    if not done.done():
                        done.set_result(found[item.id])

    async def _record_sent(self, item: OutboxItem, result: Any) -> None:
        """Record a sent item (its message id, its hooks) and wait until that is committed.

        Results are committed in batches: whatever came back while the previous batch was
        being written goes into the next transaction (a group commit), so a burst of sends
        costs a few transactions instead of one each. The chat's lane stays busy until its
        item is recorded, so calls to one chat keep their order.
        """
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._results.append((item, result, done))
        if self._recorder is None or self._recorder.done():
            self._recorder = asyncio.create_task(self._record_batches(),
                                                 name="gridhorn:outbox-recorder")
        await done

    async def _record_batches(self) -> None:
        with logcontext.fresh():  # not the context of the send that started it
            await self._record_each_batch()

    async def _record_each_batch(self) -> None:
        while self._results:
            if self.load_gap:  # several replicas: the answers of this moment in one commit
                await asyncio.sleep(self.load_gap)
            batch, self._results = self._results[:500], self._results[500:]
            try:
                await self._record(batch)
            except Exception:
                with logcontext.fresh():
                    if len(batch) == 1:
                        self._tag(batch[0][0].id, batch[0][0].chat_id, batch[0][0].ref)
                    logger.exception("recording %d sent items failed; recording one by one",
                                     len(batch))
                for entry in batch:
                    with logcontext.fresh():
                        self._tag(entry[0].id, entry[0].chat_id, entry[0].ref)
                        await self._record_alone(entry)
            finally:
                for item, _, done in batch:
                    self._forget(item.id)
                    if not done.done():
                        done.set_result(None)

    async def _record_alone(self, entry: tuple[OutboxItem, Any, asyncio.Future[None]]
                            ) -> None:
        try:
            await self._record([entry])
        except Exception:
            # the message went out: never send it again, even if a hook failed
            logger.exception("hook of sent outbox item %s failed", entry[0].id)
            try:
                await self._record([entry], hooks=False)
            except Exception:
                logger.exception("sent outbox item %s could not be recorded", entry[0].id)

    async def _record(self, batch: list[tuple[OutboxItem, Any, asyncio.Future[None]]],
                      hooks: bool = True) -> None:
        outbox = self.store.outbox
        async with self.store.transaction():
            rows = []
            for item, result, _ in batch:
                message_id = result.get("message_id") if isinstance(result, dict) else None
                # a message's echo is not kept (its id is); other answers are small
                rows.append((item.id, message_id, None if message_id is not None else result))
            coalescing = [item for item, _, _ in batch if item.coalesce_key is not None]
            now = await outbox.payloads_of([item.id for item in coalescing])
            newer = [(item, now[item.id]) for item in coalescing  # replaced on its way
                     if item.id in now and now[item.id] != item.payload]
            await outbox.mark_sent_many(rows)
            queued = bool(newer)
            for item, payload in newer:
                await outbox.set_payload(item.id, item.payload)  # what really went out
                await outbox.enqueue(item.chat_id, item.method, payload, item.priority,
                                     coalesce_key=item.coalesce_key, ref=item.ref)
            for (item, result, _), (_, message_id, _) in zip(batch, rows, strict=True):
                if item.payload.get("_pin") and message_id is not None:
                    queued = True
                    await outbox.enqueue(
                        item.chat_id, "pinChatMessage",
                        {"message_id": message_id, "disable_notification": False},
                        item.priority + Priority.PIN_DELAY, dedupe_key=f"pin:{item.id}")
                hook = self.hooks.sent_hook(item.ref) if hooks else None
                if hook is not None:
                    await hook(item, result)
            if queued:
                self.store.db.after_commit(self.wake)

    def _forget(self, item_id: int) -> None:
        if self._items.pop(item_id, None) is not None and self._epoch is not None:
            self._gone.add(item_id)  # a poll must not read it again while its row changes

    def _move_lane(self, old_id: int, new_id: int) -> None:
        lane = self._lanes.pop(old_id, None)
        if lane is None:
            return
        target = self._lanes.setdefault(new_id, _Lane())
        for priority, item_id in lane.heap:
            item = self._items.get(item_id)
            if item is not None:
                self._items[item_id] = item.model_copy(update={"chat_id": new_id})
                heapq.heappush(target.heap, (priority, item_id))
        self.gate.forget(old_id)

    async def _call(self, item: OutboxItem) -> Any:
        """The stored payload is already the Bot API's parameters: it goes out as it is and
        the answer comes back as Telegram's JSON (a dict, or True). Through the typed methods
        it would be rebuilt into objects, serialised again, and the echoed message (a card's
        whole keyboard) parsed into objects only for its id: a third of a send's CPU."""
        if item.method not in METHODS:
            raise BadRequest(f"unknown outbox method {item.method}")
        data = {k: _decode(v) for k, v in item.payload.items() if not k.startswith("_")}
        data["chat_id"] = item.chat_id
        token = OUTBOX_CALL.set(True)
        origins = self.hooks.origins
        answering = ANSWERING.set(origins.get(item.id) if origins is not None else None)
        try:
            result = await rawapi.call(self.bot, item.method, data)
        finally:
            ANSWERING.reset(answering)
            OUTBOX_CALL.reset(token)
        if origins is not None:
            origins.pop(item.id, None)
        return result


def _decode(value: Any) -> Any:
    if isinstance(value, dict) and "_file_b64" in value:
        return InputFile(base64.b64decode(value["_file_b64"]), filename=value["filename"])
    return value


#: what the outbox sends
METHODS = frozenset({"sendMessage", "editMessageText", "pinChatMessage", "unpinChatMessage",
                     "sendPhoto",
                     "sendDocument", "copyMessage", "createForumTopic"})
