"""The grammar the ticket service owns: its outbox refs and its buttons' callback data."""

from __future__ import annotations

import pytest

from bot.services.ticket_refs import (
    RefKind,
    TicketRef,
    about,
    card_ref,
    comment_ref,
    note_ref,
    parse_ref,
    relay_ref,
    topic_ref,
)
from bot.services.ticket_states import TicketAction
from bot.services.ticket_views import ACTION_CODES, action_of, press_data


def test_refs_read_back_as_they_were_built():
    assert parse_ref(card_ref(12, "head")) == TicketRef(RefKind.CARD, 12, "head")
    assert parse_ref(topic_ref(12)) == TicketRef(RefKind.TOPIC, 12)
    assert parse_ref(relay_ref(3)) == TicketRef(RefKind.RELAY, 3)
    assert parse_ref(comment_ref(4)) == TicketRef(RefKind.COMMENT, 4)
    assert parse_ref(note_ref(5)) == TicketRef(RefKind.NOTE, 5)
    assert card_ref(12, "head") == "tcard:12:head"  # as rows already in the outbox hold
    # what the sender's log lines name (SPEC §15)
    assert [about(r) for r in (card_ref(12, "head"), note_ref(5))] == \
        [{"ticket_id": 12}, {"ticket_id": 5}]


@pytest.mark.parametrize("ref", [None, "", "tcard:12", "ttopic:x", "hcopy:1:group",
                                 "relay:3:extra"])
def test_anything_else_is_not_a_ticket_ref(ref):
    with pytest.raises(ValueError):
        parse_ref(ref)


def test_every_action_but_a_reopening_has_one_short_code_that_reads_back():
    assert set(ACTION_CODES) == set(TicketAction) - {TicketAction.REOPEN}
    assert len(set(ACTION_CODES.values())) == len(ACTION_CODES)
    for action in ACTION_CODES:
        data = press_data(action, 123456789, "CGJ")
        assert len(data.encode()) <= 64
        assert action_of(data.split(":")[1]) == action
    assert action_of("nonsense") is None
