"""Durable intake: our own getUpdates loop (SPEC §4, last point).

Each batch is stored in the inbox before the next getUpdates confirms it (the offset), then
handed to `Application.process_update`. Updates of one person (or one group) run in order on
their own lane; different lanes run concurrently, so a burst of taps never queues behind one
slow handler. An update counts as processed when the first transaction its handlers commit
marks it (so a state change and "processed" are one commit), or when its handlers finish.
After a crash, every stored update that is not marked is processed again at start-up.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from telegram import Update
from telegram.error import Conflict, NetworkError, RetryAfter, TimedOut
from telegram.ext import Application

from bot import rawapi
from bot.ratelimit import retry_seconds
from storage.inbox import UpdateMark, current_update
from storage.store import Store

logger = logging.getLogger(__name__)
_Queued = tuple[int, dict[str, Any]]


def lane_of(raw: dict[str, Any]) -> int:
    """Updates sharing a lane are handled one after another, in order."""
    for key in ("message", "edited_message", "my_chat_member", "chat_member"):
        if key in raw:
            return raw[key]["chat"]["id"]
    for key in ("callback_query", "inline_query", "pre_checkout_query"):
        if key in raw:
            return raw[key]["from"]["id"]
    return 0


#: What handlers read of the message a button sits on: where it is, not what it says
#: (they rebuild texts and keyboards from the store).
_PRESSED_KEYS = ("message_id", "chat", "date", "message_thread_id", "is_topic_message")


def lean(raw: dict[str, Any]) -> dict[str, Any]:
    """The update with the message a button sits on cut to `_PRESSED_KEYS`: parsing its
    text, entities, sender and keyboard into objects was a fifth of a Submit's CPU. The
    inbox keeps the update whole."""
    query = raw.get("callback_query")
    message = query.get("message") if query else None
    if not message:
        return raw
    message = {k: message[k] for k in _PRESSED_KEYS if k in message}
    return {**raw, "callback_query": {**query, "message": message}}


class Intake:
    def __init__(self, app: Application, store: Store, *, poll_timeout: int = 25,
                 max_concurrent: int = 64) -> None:
        self.app = app
        self.store = store
        self.poll_timeout = poll_timeout
        self._slots = asyncio.Semaphore(max_concurrent)
        self._lanes: dict[int, asyncio.Queue[_Queued]] = {}
        self._workers: set[asyncio.Task[None]] = set()
        self._poller: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self._in_progress = 0
        self._seen: set[int] = set()

    async def start(self) -> None:
        for update_id, raw in await self.store.inbox.pending(limit=1_000_000):
            self._dispatch(update_id, raw)
        self._poller = asyncio.create_task(self._poll_forever(), name="gridhorn:intake")

    async def stop(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            await asyncio.gather(self._poller, return_exceptions=True)
            self._poller = None
        await self.drain()
        for task in list(self._workers):
            task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)

    def busy(self) -> bool:
        """Updates are being handled (the outbox lets its background posts wait)."""
        return self._in_progress > 0

    async def drain(self) -> None:
        """Wait until every dispatched update has been handled."""
        await self._idle.wait()

    async def _poll_forever(self) -> None:
        offset = await self.store.inbox.next_offset()
        failures = 0
        while True:
            try:
                # Telegram's JSON as it came: it is stored as it is, and each update is
                # parsed once, on its lane (`get_updates` would parse them all here, and
                # storing them would serialise them back)
                raws: list[dict[str, Any]] = await rawapi.call(
                    self.app.bot, "getUpdates",
                    {"offset": offset, "timeout": self.poll_timeout,
                     "allowed_updates": list(Update.ALL_TYPES)},
                    read_timeout=self.poll_timeout + 10)
                failures = 0
            except asyncio.CancelledError:
                raise
            except RetryAfter as exc:
                await asyncio.sleep(retry_seconds(exc))
                continue
            except (TimedOut, NetworkError, Conflict) as exc:
                failures += 1
                delay = min(30.0, 0.5 * 2 ** min(failures, 6))
                logger.warning("getUpdates failed (%s); retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                continue
            if not raws:
                continue
            await self.store.inbox.store(raws)
            offset = max(r["update_id"] for r in raws) + 1
            for raw in raws:
                self._dispatch(raw["update_id"], raw)

    def _dispatch(self, update_id: int, raw: dict[str, Any]) -> None:
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
                    async with self._slots:
                        await self._handle(update_id, raw)
                finally:
                    self._in_progress -= 1
                    if self._in_progress == 0:
                        self._idle.set()
        finally:
            if self._lanes.get(lane) is queue:
                del self._lanes[lane]

    async def _handle(self, update_id: int, raw: dict[str, Any]) -> None:
        mark = UpdateMark(update_id)
        token = current_update.set(mark)
        try:
            await self.app.process_update(Update.de_json(lean(raw), self.app.bot))
        except Exception:
            logger.exception("update %s could not be handled", update_id)
        finally:
            current_update.reset(token)
        if mark.lost:
            logger.error("update %s: its work could not be committed; it is handled again "
                         "at the next start", update_id)
        elif not mark.done:
            await self.store.inbox.mark_processed([update_id])
