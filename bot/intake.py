"""Durable intake: our own getUpdates loop (SPEC §4, last point).

Each batch is stored in the inbox before the next getUpdates confirms it (the offset), then
handed to `Application.process_update`. In webhook mode (`bot.webhook`) there is no poller:
each update Telegram posts is stored by `accept` before it is answered, then handled the
same way. Updates of one person (or one group) run in order on
their own lane; different lanes run concurrently, so a burst of taps never queues behind one
slow handler. An update counts as processed when the first transaction its handlers commit
marks it (so a state change and "processed" are one commit), or when its handlers finish.
If that commit fails because its group's COMMIT failed (group commit: another transaction's
fault undoes it too), the update is handled again at once, its transactions each committed
alone. After a crash, every stored update that is not marked is processed again at start-up.

On PostgreSQL several replicas share the inbox (SPEC §16): an update is not handed to the
lane it was received on but claimed there. A lane's worker takes the lane's advisory lock
(`storage.inbox.LaneLocks`; held by another replica: that one handles the lane), handles the
lane's lowest unprocessed update, then the next, and gives the lock back when none is left;
then it looks once more (an update stored while another replica held the lock is then
found). A sweeper (every `SWEEP_S`) wakes the lanes with unprocessed updates, so that those
a replica stored and did not handle (it died after answering 200) are handled by another.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from telegram import Update
from telegram.error import Conflict, NetworkError, RetryAfter, TimedOut
from telegram.ext import Application

from bot import logcontext, rawapi
from bot.metrics import Metrics
from bot.ratelimit import retry_seconds
from storage.backoff import Backoff
from storage.groupcommit import Slots
from storage.inbox import LaneLocks, UpdateMark, current_update, lane_of
from storage.models import UpdateTaken
from storage.store import Store

logger = logging.getLogger(__name__)
#: the update types the bot asks for, by getUpdates and by setWebhook alike
ALLOWED_UPDATES: tuple[str, ...] = tuple(Update.ALL_TYPES)
_Queued = tuple[int, dict[str, Any]]
__all__ = ["ALLOWED_UPDATES", "Intake", "lane_of", "lean"]


#: What handlers read of the message a button sits on: where it is, not what it says
#: (they rebuild texts and keyboards from the store).
_PRESSED_KEYS = ("message_id", "chat", "date", "message_thread_id", "is_topic_message")


def lean(raw: dict[str, Any]) -> dict[str, Any]:
    """The update with the message a button sits on cut to `_PRESSED_KEYS`: parsing its
    text, entities, sender and keyboard into objects was a fifth of a Submit's CPU. The
    inbox keeps the update whole."""
    query: dict[str, Any] | None = raw.get("callback_query")
    if not query or not query.get("message"):
        return raw
    message = {k: v for k, v in query["message"].items() if k in _PRESSED_KEYS}
    return {**raw, "callback_query": {**query, "message": message}}


def is_tap(raw: dict[str, Any]) -> bool:
    """A button press: Telegram shows its spinner until we answer, and gives up after 15 s."""
    return "callback_query" in raw


class Intake:
    #: seconds `stop()` waits for the updates being handled; the rest are cancelled (their
    #: work is rolled back and, stored and unmarked, they are handled at the next start)
    STOP_GRACE_S = 10.0
    #: PostgreSQL: seconds between the sweeper's looks for updates nobody is handling
    SWEEP_S = 1.0
    #: PostgreSQL: a replica busy with its own updates takes another's only this old
    ORPHAN_S = 10.0
    #: a tap not answered this long after it came is answered empty: Telegram gives up on
    #: it after 15 s and shows the presser an error (its work is still done); the rest of
    #: the 15 s is for its way to us (a webhook's queue, a getUpdates batch) and back
    TAP_GUARD_S = 5.0

    def __init__(self, app: Application[Any, Any, Any, Any, Any, Any], store: Store, *,
                 poll_timeout: int = 25,
                 max_concurrent: int | None = None, metrics: Metrics | None = None) -> None:
        self.app = app
        self.store = store
        #: updates received and handled, the handlers' latency (SPEC §15)
        self.metrics = metrics or Metrics()
        # python-telegram-bot gives a handler's exception to the error handlers, not to
        # `process_update`'s caller: one more error handler notes the update as failed
        self._errors: set[int] = set()
        app.add_error_handler(self._handler_failed)
        self.poll_timeout = poll_timeout
        #: after getUpdates failed: 1 s, doubled after each further failure, up to 30 s
        self.backoff = Backoff(first=1.0, cap=30.0)
        self._failing_since = 0.0
        # PostgreSQL: fewer than the pool's connections, so that storing what arrives (and
        # the leader's sending) always finds one; SQLite's handlers wait for its one writer
        self._slots = Slots(max_concurrent or store.db.handler_slots)
        self._lanes: dict[int, asyncio.Queue[_Queued]] = {}
        self._workers: set[asyncio.Task[None]] = set()
        self._poller: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self._in_progress = 0
        self._seen: set[int] = set()
        # PostgreSQL (`store.inbox.shared`): lanes claimed across replicas
        self._shared = store.inbox.shared
        self._locks: LaneLocks | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._active: set[int] = set()  # lanes whose worker runs here
        self._again: set[int] = set()   # … and were woken meanwhile: they look once more
        self._given_up: set[int] = set()  # updates whose work could not be committed
        self._guards: dict[int, asyncio.TimerHandle] = {}  # taps waiting, by update_id
        self._guard_tasks: set[asyncio.Task[None]] = set()
        self._tap_marks: dict[int, UpdateMark] = {}  # guarded taps being handled here

    async def start(self, *, poll: bool = True) -> None:
        """Handle what was stored and not handled before; then poll, unless Telegram posts
        the updates (`poll=False`: the webhook server calls `accept`)."""
        if self._shared:
            self._locks = self.store.inbox.lane_locks()
            self._sweeper = asyncio.create_task(self._sweep_forever(), name="gridhorn:sweeper")
        else:
            for update_id, raw in await self.store.inbox.pending(limit=1_000_000):
                self._dispatch(update_id, raw)
        if poll:
            self._poller = asyncio.create_task(self._poll_forever(), name="gridhorn:intake")

    async def accept(self, raws: list[dict[str, Any]], *, polled: bool = True) -> None:
        """Store updates in the inbox (committed when this returns; an update_id stored before
        is kept once), then hand each to its lane. An update handled before (even by an
        earlier process) or on its way in this process is not handled again. `polled`: they
        came by getUpdates, whose next offset is kept with them."""
        fresh = await self.store.inbox.store(raws, polled=polled)
        self.metrics.updates_received.inc(len(raws))
        for raw in raws:
            if raw["update_id"] in fresh:
                self._guard_tap(raw)
                self._dispatch(raw["update_id"], raw)

    async def stop(self) -> None:
        """Stop polling; wait up to `STOP_GRACE_S` for the updates being handled."""
        for task in (self._poller, self._sweeper):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        self._poller = self._sweeper = None
        try:
            async with asyncio.timeout(self.STOP_GRACE_S):
                await self.drain()
        except TimeoutError:
            logger.warning("%d updates were still being handled after %.0f s; they are "
                           "handled again at the next start", self._in_progress,
                           self.STOP_GRACE_S)
        for handle in self._guards.values():
            handle.cancel()
        self._guards.clear()
        self._tap_marks.clear()
        for task in [*self._workers, *self._guard_tasks]:
            task.cancel()
        await asyncio.gather(*self._workers, *self._guard_tasks, return_exceptions=True)
        if self._locks is not None:
            await self._locks.close()  # the server frees what a cancelled worker held
            self._locks = None

    def _guard_tap(self, raw: dict[str, Any]) -> None:
        """A tap gets an empty answer (its spinner stops) if its handler has not answered it
        within `TAP_GUARD_S`: under a burst it may wait for a handler, or its handler for the
        store, longer than Telegram waits for the answer. The handler's own answer then comes
        too late, and its work (the edited card, the reply) is done all the same."""
        query = raw.get("callback_query")
        update_id = raw["update_id"]
        if not isinstance(query, dict) or "id" not in query or update_id in self._guards:
            return
        self._guards[update_id] = asyncio.get_running_loop().call_later(
            self.TAP_GUARD_S, self._answer_late, update_id, str(query["id"]))

    def _answer_late(self, update_id: int, query_id: str) -> None:
        self._guards.pop(update_id, None)
        mark = self._tap_marks.pop(update_id, None)
        if mark is not None and mark.answered:
            return
        task = asyncio.create_task(self._send_late_answer(update_id, query_id),
                                   name=f"gridhorn:late-answer:{update_id}")
        self._guard_tasks.add(task)
        task.add_done_callback(self._guard_tasks.discard)

    async def _send_late_answer(self, update_id: int, query_id: str) -> None:
        try:
            if self._shared and await self.store.inbox.is_processed(update_id):
                return  # another replica handled it (and answered)
            await self.answer_tap(query_id)
            logger.info("tap %s waited %.0f s for a handler; answered empty meanwhile",
                        update_id, self.TAP_GUARD_S)
        except Exception as exc:  # answered meanwhile, or Telegram unreachable: no matter
            logger.debug("tap %s: no late answer (%s)", update_id, exc)

    async def answer_tap(self, query_id: str) -> None:
        """Answer a tap with nothing (stops its spinner)."""
        await rawapi.call(self.app.bot, "answerCallbackQuery", {"callback_query_id": query_id})

    def busy(self) -> bool:
        """Updates are being handled (the outbox lets its background posts wait)."""
        return self._in_progress > 0

    async def drain(self) -> None:
        """Wait until every dispatched update has been handled."""
        await self._idle.wait()

    async def _poll_forever(self) -> None:
        offset = await self.store.inbox.next_offset()
        webhook_cleared = False
        while True:
            try:
                if not webhook_cleared:
                    # getUpdates answers 409 while a webhook is set (a former `run
                    # --webhook`); its pending updates stay queued for us
                    await rawapi.call(self.app.bot, "deleteWebhook",
                                      {"drop_pending_updates": False})
                    webhook_cleared = True
                # Telegram's JSON as it came: it is stored as it is, and each update is
                # parsed once, on its lane (`get_updates` would parse them all here, and
                # storing them would serialise them back)
                raws: list[dict[str, Any]] = await rawapi.call(
                    self.app.bot, "getUpdates",
                    {"offset": offset, "timeout": self.poll_timeout,
                     "allowed_updates": list(ALLOWED_UPDATES)},
                    read_timeout=self.poll_timeout + 10)
                self._answered()
            except asyncio.CancelledError:
                raise
            except RetryAfter as exc:
                await asyncio.sleep(retry_seconds(exc))
                continue
            except (TimedOut, NetworkError, Conflict) as exc:
                await asyncio.sleep(self._failed(exc))
                continue
            if not raws:
                continue
            await self.accept(raws)
            offset = max(r["update_id"] for r in raws) + 1

    def _failed(self, exc: Exception) -> float:
        """getUpdates failed: the seconds to wait. Logged when failing starts, not on every
        try (an outage of an hour would fill the log)."""
        if not self.backoff.failures:
            self._failing_since = time.monotonic()
            logger.warning("getUpdates failed (%s); retrying with backoff (at most %.0f s "
                           "apart) until it answers", exc, self.backoff.cap)
        seconds = self.backoff.next()
        logger.debug("getUpdates failed (%s), try %d; next in %.1f s", exc,
                     self.backoff.failures, seconds)
        return seconds

    def polling_failed_for(self) -> float:
        """How long getUpdates has been failing, in seconds (0: it answers; /healthz)."""
        return time.monotonic() - self._failing_since if self.backoff.failures else 0.0

    def _answered(self) -> None:
        if self.backoff.failures:
            logger.info("getUpdates answers again after %d failed tries in %.0f s",
                        self.backoff.failures, time.monotonic() - self._failing_since)
            self.backoff.reset()

    def _dispatch(self, update_id: int, raw: dict[str, Any]) -> None:
        if self._shared:
            self._wake(lane_of(raw), tap=is_tap(raw))
            return
        if update_id in self._seen:
            return
        self._seen.add(update_id)
        if len(self._seen) > 100_000:
            self._seen = {i for i in self._seen if i > update_id - 50_000}
        lane = lane_of(raw)
        queue = self._lanes.get(lane)
        self._in_progress += 1
        self._idle.clear()
        if queue is None:
            queue = asyncio.Queue()
            self._lanes[lane] = queue
            task = asyncio.create_task(self._run_lane(lane, queue), name=f"gridhorn:lane:{lane}")
            self._workers.add(task)
            task.add_done_callback(self._workers.discard)
        queue.put_nowait((update_id, raw))

    async def _run_lane(self, lane: int, queue: asyncio.Queue[_Queued]) -> None:
        try:
            while not queue.empty():
                update_id, raw = queue.get_nowait()
                try:
                    async with self._slots.taken(is_tap(raw)):
                        await self._handle(update_id, raw)
                finally:
                    self._in_progress -= 1
                    if self._in_progress == 0:
                        self._idle.set()
        finally:
            if self._lanes.get(lane) is queue:
                del self._lanes[lane]

    # --- PostgreSQL: lanes claimed across replicas ---

    def _wake(self, lane: int, tap: bool = False) -> None:
        """Run the lane's worker here (it was stored before: the worker finds it)."""
        if lane in self._active:
            self._again.add(lane)  # its worker may be past its last look: once more
            return
        self._active.add(lane)
        self._in_progress += 1
        self._idle.clear()
        task = asyncio.create_task(self._run_shared_lane(lane, tap),
                                   name=f"gridhorn:lane:{lane}")
        self._workers.add(task)
        task.add_done_callback(self._workers.discard)

    async def _run_shared_lane(self, lane: int, tap: bool) -> None:
        """The lane's updates while it has any, in a slot taken first (a tap woke it: before
        the messages waiting), so that what waits for a slot holds no lock and no query."""
        try:
            async with self._slots.taken(tap):
                await self._claim_lane(lane)
        finally:
            self._active.discard(lane)
            self._in_progress -= 1
            if self._in_progress == 0:
                self._idle.set()

    async def _claim_lane(self, lane: int) -> None:
        inbox, locks = self.store.inbox, self._locks
        assert locks is not None
        try:
            while True:
                self._again.discard(lane)
                if not await locks.try_lock(lane):
                    return  # another replica handles the lane; it looks again after
                try:
                    # the lowest unprocessed update first: 11 never before 10, wherever
                    # each was received
                    more = True
                    while more and (claimed := await inbox.claim(lane, self._given_up)):
                        update_id, raw, more = claimed
                        await self._handle(update_id, raw)
                finally:
                    await locks.unlock(lane)
                # stored while the lock was held elsewhere (that holder may have looked
                # before it was committed), or woken meanwhile: once more
                if lane not in self._again and not await inbox.has_pending(lane,
                                                                           self._given_up):
                    return
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("lane %s: its updates could not be claimed; the sweeper tries "
                             "again", lane)

    async def _sweep_forever(self) -> None:
        """Every `SWEEP_S`: wake the lanes with unprocessed updates. Those of this replica
        are being handled already; the others' lanes are locked by them or wait there for a
        slot; what is left was stored by a replica that stopped before handling it. A replica
        with updates of its own waiting for a slot takes only updates older than `ORPHAN_S`:
        taking a busy replica's waiting lanes would cost both a claim and add nothing."""
        failing = False
        while True:
            try:
                busy = self._slots.waiting > 0
                lanes = await self.store.inbox.pending_lanes(received_before=(
                    datetime.now(UTC) - timedelta(seconds=self.ORPHAN_S)
                ).isoformat(timespec="milliseconds") if busy else None)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not failing:
                    logger.warning("the inbox sweeper cannot read the store (%s); trying "
                                   "again every %.0f s", exc, self.SWEEP_S)
                failing = True
            else:
                failing = False
                for lane in lanes:
                    if lane not in self._active:  # those running here find their own
                        self._wake(lane)
            await asyncio.sleep(self.SWEEP_S)

    async def _handle(self, update_id: int, raw: dict[str, Any]) -> None:
        began = time.perf_counter()
        mark, ok = await self._process(update_id, raw)
        if mark.answered and (guard := self._guards.pop(update_id, None)) is not None:
            guard.cancel()
            self._tap_marks.pop(update_id, None)
        if mark.lost:
            # its group's COMMIT failed, perhaps for another's fault: once more, on its own
            logger.warning("update %s: its work was not committed; handling it again alone",
                           update_id)
            with self.store.db.alone():
                mark, ok = await self._process(update_id, raw)
        self.metrics.handled("lost" if mark.lost else "ok" if ok else "error",
                             time.perf_counter() - began)
        if mark.lost:
            logger.error("update %s: its work could not be committed; it is handled again "
                         "at the next start", update_id)
            if self._shared:
                self._given_up.add(update_id)  # its lane goes on meanwhile
        elif mark.done:
            pass
        elif self._shared:
            await self.store.inbox.mark_once(update_id)  # unless another replica has
        else:
            await self.store.inbox.mark_processed([update_id])

    async def _handler_failed(self, update: object, context: Any) -> None:
        """An error handler: the update's handler raised (counted `error`, SPEC §15)."""
        if isinstance(update, Update) and not isinstance(context.error, UpdateTaken):
            self._errors.add(update.update_id)

    async def _process(self, update_id: int, raw: dict[str, Any]) -> tuple[UpdateMark, bool]:
        """Handle the update; its mark, and False if a handler raised. Its log lines name
        it (`current_update`), and the ticket or horn it turns out to be about
        (`bot.logcontext`, emptied for each update: a lane handles many)."""
        mark = UpdateMark(update_id)
        if update_id in self._guards:
            self._tap_marks[update_id] = mark  # the guard looks whether it was answered
        token = current_update.set(mark)
        ok = True
        try:
            with logcontext.fresh():
                await self.app.process_update(Update.de_json(lean(raw), self.app.bot))
                logger.debug("update %s handled", update_id)  # with what it was about
        except UpdateTaken:
            logger.warning("update %s was handled by another replica (this one's lane lock "
                           "was lost); its work here is undone", update_id)
        except Exception:
            ok = False
            logger.exception("update %s could not be handled", update_id)
        finally:
            current_update.reset(token)
        if update_id in self._errors:
            self._errors.discard(update_id)
            ok = False
        return mark, ok
