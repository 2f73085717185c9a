"""The `ref`s the ticket service puts on its outbox items, and how they read back.

The sender calls the hook registered for a ref's prefix once the item went out
(`TicketService.sent_hooks`); only this module knows what follows the prefix.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class RefKind(StrEnum):
    """A ref's prefix: what the ticket learns when the item is sent."""

    CARD = "tcard"        # a card to edit later: `tcard:<ticket>:<card kind>`
    TOPIC = "ttopic"      # the ticket's forum topic: `ttopic:<ticket>`
    RELAY = "relay"       # staff words to the reporter, who may answer: `relay:<ticket>`
    COMMENT = "comment"   # the rating's thanks, which the reporter may comment: `comment:<ticket>`
    NOTE = "tnote"        # any other message about the ticket, nothing to learn: `tnote:<ticket>`


@dataclass(frozen=True)
class TicketRef:
    kind: RefKind
    ticket_id: int
    card_kind: str = ""


def card_ref(ticket_id: int, card_kind: str) -> str:
    return f"{RefKind.CARD}:{ticket_id}:{card_kind}"


def topic_ref(ticket_id: int) -> str:
    return f"{RefKind.TOPIC}:{ticket_id}"


def relay_ref(ticket_id: int) -> str:
    return f"{RefKind.RELAY}:{ticket_id}"


def comment_ref(ticket_id: int) -> str:
    return f"{RefKind.COMMENT}:{ticket_id}"


def note_ref(ticket_id: int) -> str:
    """A message about the ticket that tells it nothing when sent (its log lines name it)."""
    return f"{RefKind.NOTE}:{ticket_id}"


def parse_ref(ref: str | None) -> TicketRef:
    """A ref built above; anything else is a bug in the ticket service (ValueError)."""
    kind, _, rest = (ref or "").partition(":")
    ticket_id, _, card_kind = rest.partition(":")
    if not ticket_id.isdigit() or (kind == RefKind.CARD) != bool(card_kind):
        raise ValueError(f"not a ticket ref: {ref!r}")
    return TicketRef(RefKind(kind), int(ticket_id), card_kind)


def about(ref: str) -> dict[str, int]:
    """The ticket a ref names, for the sender's log lines (`OutboxHooks.about`)."""
    return {"ticket_id": parse_ref(ref).ticket_id}
