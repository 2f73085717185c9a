"""What a log line is about (SPEC §15, `GRIDHORN_LOG_FORMAT`): the ticket or horn the update
being handled turned out to concern. The update's own id is `storage.inbox.current_update`, set
by the intake; the intake also opens a `fresh()` context for each update (a lane handles many,
one after the other), and the services `tag` it once they know.

The outbox sender opens one for each item it sends (`bot.outbox`), tagged with the item's id,
its chat, and the ticket or horn its `ref` names (read by the service that wrote it).

Below the services and the machinery alike (only the standard library): a service may tag, the
log formatter (`bot.logs`) reads.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager

_FIELDS: contextvars.ContextVar[dict[str, int] | None] = contextvars.ContextVar(
    "gridhorn_log_fields", default=None)


@contextmanager
def fresh() -> Iterator[None]:
    """A context of its own for one update's log lines (the tasks it starts share it)."""
    token = _FIELDS.set({})
    try:
        yield
    finally:
        _FIELDS.reset(token)


def tag(*, ticket_id: int | None = None, horn_id: int | None = None,
        outbox_id: int | None = None, chat_id: int | None = None) -> None:
    """The update (or outbox item) being handled is about this ticket or horn, item, chat
    (nothing outside a `fresh()` context)."""
    fields = _FIELDS.get()
    if fields is None:
        return
    for key, value in (("ticket_id", ticket_id), ("horn_id", horn_id),
                       ("outbox_id", outbox_id), ("chat_id", chat_id)):
        if value is not None:
            fields[key] = value


def fields() -> dict[str, int]:
    """The ids tagged so far in this update (a copy; empty outside one)."""
    return dict(_FIELDS.get() or {})
