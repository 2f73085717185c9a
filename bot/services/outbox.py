"""The outbox's writing side (SPEC §7): what services call, inside their transaction.

The sender (`bot/outbox.py`) reads the same table; nothing here knows Telegram.
"""

from __future__ import annotations

import base64
import contextvars
import time
from typing import Any

from bot.hooks import (
    AboutReader,
    ChatLostHook,
    FirstUseHook,
    MigratedHook,
    OutboxHooks,
    SentHook,
    Wakeup,
)
from bot.priority import Priority
from bot.settings import Settings
from storage.inbox import current_update
from storage.privacy import ERASED_BASE
from storage.store import Store

__all__ = ["Outbox", "Priority", "file_field"]  # Priority's home is bot/priority.py


def file_field(data: bytes, filename: str) -> dict[str, str]:
    """A file inside an outbox payload (kept in the store as base64)."""
    return {"_file_b64": base64.b64encode(data).decode("ascii"), "filename": filename}


#: The update a piece of deferred work is done for, outside that update's handling (the card
#: backlog queues a ticket's cards after the burst is answered): named as the origin of what
#: it queues when origins are traced.
QUEUED_FOR: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "gridhorn_queued_for", default=None)


class Outbox:
    """Writing side: what services call (inside their transaction), and where they register
    what the sender must tell them back (`hooks`)."""

    def __init__(self, store: Store, settings: Settings, trace_origins: bool = False) -> None:
        self.store = store
        self.settings = settings
        #: fired after each commit that queued something: the sender listens
        self.written = Wakeup()
        #: read by the sender; filled by the services' constructors
        self.hooks = OutboxHooks(trace_origins)

    def on_sent(self, prefix: str, hook: SentHook) -> None:
        """Run `hook(item, result)` when an item whose ref starts with `prefix:` is sent."""
        self.hooks.on_sent(prefix, hook)

    def on_about(self, prefix: str, reader: AboutReader) -> None:
        """`reader(ref)` tells the ticket or horn an item whose ref starts with `prefix:` is
        about (`{"ticket_id": 7}`): the sender's log lines name it (SPEC §15)."""
        self.hooks.on_about(prefix, reader)

    def on_chat_lost(self, hook: ChatLostHook) -> None:
        """Run `hook(chat_id, reason)` when Telegram refuses a chat for good (403)."""
        self.hooks.on_chat_lost(hook)

    def on_migrated(self, hook: MigratedHook) -> None:
        """Run `hook(old_id, new_id)` when a group turned into a supergroup."""
        self.hooks.on_migrated(hook)

    def on_first_use(self, hook: FirstUseHook) -> None:
        """Run `hook(chat_id)` before the first item goes to a group chat the store has no
        row for (once per chat while the sender runs)."""
        self.hooks.on_first_use(hook)

    async def call(self, chat_id: int, method: str, payload: dict[str, Any], *,
                   priority: int, quiet: bool = False, delay: float = 0.0,
                   dedupe_key: str | None = None, coalesce_key: str | None = None,
                   ref: str | None = None) -> int | None:
        if chat_id >= ERASED_BASE:  # an erased person (SPEC §14): nothing goes to them
            return None
        item_id = await self.store.outbox.enqueue(
            chat_id, method, payload, priority, quiet=quiet,
            not_before=time.time() + delay if delay else 0.0,
            dedupe_key=dedupe_key, coalesce_key=coalesce_key, ref=ref)
        origins = self.hooks.origins
        if origins is not None and item_id is not None:
            mark = current_update.get()
            origin = mark.update_id if mark is not None else QUEUED_FOR.get()
            if origin is not None:
                origins[item_id] = origin
        self.store.db.after_commit(self.written)
        return item_id

    async def send(self, chat_id: int, text: str, *, priority: int,
                   buttons: list[list[dict[str, str]]] | None = None, thread_id: int = 0,
                   quiet: bool = False, pin: bool = False, dedupe_key: str | None = None,
                   ref: str | None = None, reply_to: int | None = None,
                   force_reply: bool = False, delay: float = 0.0) -> int | None:
        """Queue an HTML text message; buttons are rows of {"text", "callback_data"|"url"}."""
        payload: dict[str, Any] = {"text": text, "parse_mode": "HTML",
                                   "link_preview_options": {"is_disabled": True}}
        if buttons:
            payload["reply_markup"] = {"inline_keyboard": buttons}
        elif force_reply:
            payload["reply_markup"] = {"force_reply": True, "selective": True}
        if thread_id:
            payload["message_thread_id"] = thread_id
        if reply_to:
            payload["reply_parameters"] = {"message_id": reply_to,
                                           "allow_sending_without_reply": True}
        if pin:
            payload["_pin"] = True
        return await self.call(chat_id, "sendMessage", payload, priority=priority, quiet=quiet,
                               dedupe_key=dedupe_key, ref=ref, delay=delay)

    async def edit(self, chat_id: int, message_id: int, text: str, *, priority: int,
                   buttons: list[list[dict[str, str]]] | None = None,
                   ref: str | None = None) -> int | None:
        """Queue an edit; a pending edit of the same message is replaced (coalesced).
        Without buttons the message's keyboard is removed (as editMessageText does)."""
        payload: dict[str, Any] = {"message_id": message_id, "text": text, "parse_mode": "HTML",
                                   "link_preview_options": {"is_disabled": True}}
        if buttons:
            payload["reply_markup"] = {"inline_keyboard": buttons}
        return await self.call(chat_id, "editMessageText", payload, priority=priority,
                               coalesce_key=f"edit:{chat_id}:{message_id}", ref=ref)
