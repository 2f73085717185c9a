"""How one part tells another without importing it: a wake-up, and the outbox's hooks.

The composition root (`bot/app.py`) creates each of these before both sides and hands it to
both constructors: the service fires or registers, the machinery listens or runs. So a watcher
that runs a service's due work and the service that wakes that watcher need not know each
other, and nothing is wired by assigning attributes after construction.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from storage.models import OutboxItem


@dataclass(frozen=True)
class ChatInfo:
    """What Telegram says of a chat and of the bot's rights in it (an update, or getChat and
    getChatMember), as the chat service keeps it."""

    chat_id: int
    type: str
    title: str | None
    is_forum: bool = False
    bot_is_admin: bool = False
    can_pin: bool = False
    can_manage_topics: bool = False


Listener = Callable[[float | None], None]
SentHook = Callable[[OutboxItem, Any], Awaitable[None]]
ChatLostHook = Callable[[int, str], Awaitable[None]]
MigratedHook = Callable[[int, int], Awaitable[None]]
#: what an item's ref says it is about, for the sender's log lines (`bot.logcontext.tag`'s
#: `ticket_id` / `horn_id`); a ref it cannot read raises ValueError
AboutReader = Callable[[str], dict[str, int]]
#: before the first item the sender sends to a group chat the store has no row for
FirstUseHook = Callable[[int], Awaitable[None]]
#: asks Telegram about a chat (getChat, getChatMember); None: the bot is not in it. The
#: runtime provides it (bot/chatprobe.py); a transient failure raises.
ChatProbe = Callable[[int], Awaitable[ChatInfo | None]]


class Wakeup:
    """Something may be due, at `when` (None: now). Fired by whoever changed it (a service,
    an after-commit hook); heard by whoever runs the work (a watcher, a backlog, the sender).
    Calling it fires it, so it can stand wherever a plain callback is expected."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []

    def connect(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def fire(self, when: float | None = None) -> None:
        for listener in self._listeners:
            listener(when)

    def __call__(self, when: float | None = None) -> None:
        self.fire(when)


class OutboxHooks:
    """What the sender runs, in the transaction that records what it learned: a message of a
    ref sent (by the ref's prefix, before its first ':'), a chat lost, a group migrated; and,
    before it sends anything to a group chat the store knows nothing of, `first_use` (the
    chat service learns the chat: a chat bound through the map file is met there first).
    And what a ref is about (a ticket, a horn), which the sender's log lines name.

    Each service registers its own hooks, for the refs whose grammar it owns; the sender only
    looks them up."""

    def __init__(self, trace_origins: bool = False) -> None:
        self._sent: dict[str, SentHook] = {}
        #: the update each queued item was written for, by item id, while it waits: kept only
        #: when asked (the playground's inspector shows what a post answered); else None
        self.origins: dict[int, int] | None = {} if trace_origins else None
        self.chat_lost: list[ChatLostHook] = []
        self.migrated: list[MigratedHook] = []
        self.first_use: list[FirstUseHook] = []
        self._about: dict[str, AboutReader] = {}

    def on_sent(self, prefix: str, hook: SentHook) -> None:
        if prefix in self._sent:
            raise ValueError(f"the ref prefix {prefix!r} already has a hook")
        self._sent[prefix] = hook

    def on_chat_lost(self, hook: ChatLostHook) -> None:
        self.chat_lost.append(hook)

    def on_about(self, prefix: str, reader: AboutReader) -> None:
        if prefix in self._about:
            raise ValueError(f"the ref prefix {prefix!r} already has a reader")
        self._about[prefix] = reader

    def on_migrated(self, hook: MigratedHook) -> None:
        self.migrated.append(hook)

    def on_first_use(self, hook: FirstUseHook) -> None:
        self.first_use.append(hook)

    def sent_hook(self, ref: str | None) -> SentHook | None:
        """The hook of a sent item's ref, if a service registered its prefix."""
        return self._sent.get(ref.partition(":")[0]) if ref else None

    def about(self, ref: str | None) -> dict[str, int]:
        """The ticket or horn an item's ref names (`{"ticket_id": 7}`), for the log; empty when
        no service reads its prefix or the ref is not one it wrote."""
        reader = self._about.get(ref.partition(":")[0]) if ref else None
        if reader is None or ref is None:
            return {}
        try:
            return reader(ref)
        except ValueError:
            return {}
