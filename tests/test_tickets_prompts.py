"""Prompts and relays (SPEC §4): words asked for with a prompt and given by replying to it,
staff replies relayed to the reporter and the reporter's answers and comments relayed back."""

from __future__ import annotations

import pytest

from bot.i18n import t
from bot.services.errors import Refused
from bot.services.ticket_states import TicketAction
from storage.models import TicketStatus
from tests.support.tickets import GRID_CHAT, HEAD, RESIDENT, WORKER, TicketWorld, ticket_world

PROMPT = 321  # the message id of a prompt in the grid chat


async def _world_with_a_ticket(store) -> tuple[TicketWorld, int]:
    world = await ticket_world(store)
    ticket = await world.submit()
    await world.tickets.post_pending_cards()
    await world.deliver()
    return world, ticket.id


async def test_a_prompt_is_answered_by_the_person_asked_and_only_once(store):
    world, ticket_id = await _world_with_a_ticket(store)
    tickets = world.tickets
    worker = await world.actor(WORKER)
    await tickets.ask(worker, ticket_id, TicketAction.RESOLVE)
    await tickets.remember_prompt(GRID_CHAT, PROMPT, WORKER, ticket_id, TicketAction.RESOLVE)
    assert (await tickets.prompt_for(GRID_CHAT, PROMPT)).action == "res"  # as stored before
    with pytest.raises(Refused) as caught:
        await tickets.answer_prompt(await world.actor(HEAD), GRID_CHAT, PROMPT, "修好了")
    assert caught.value.key == "prompt.not_yours"
    with pytest.raises(Refused) as caught:
        await tickets.answer_prompt(worker, GRID_CHAT, PROMPT, "  ")
    assert caught.value.key == "ticket.need_words"
    action, ticket = await tickets.answer_prompt(worker, GRID_CHAT, PROMPT, "修好了")
    assert (action, ticket.status, ticket.result_note) == \
        (TicketAction.RESOLVE, TicketStatus.RESOLVED, "修好了")
    assert await tickets.prompt_for(GRID_CHAT, PROMPT) is None
    assert await tickets.answer_prompt(worker, GRID_CHAT, PROMPT, "again") is None


async def test_a_prompt_row_of_an_unknown_action_is_not_an_answer(store):
    world, ticket_id = await _world_with_a_ticket(store)
    async with store.transaction():
        await store.tickets.add_prompt(GRID_CHAT, PROMPT, WORKER, ticket_id, "zzz")
    assert await world.tickets.answer_prompt(await world.actor(WORKER), GRID_CHAT, PROMPT,
                                             "words") is None


async def test_asking_checks_the_state_before_the_words(store):
    world, ticket_id = await _world_with_a_ticket(store)
    worker = await world.actor(WORKER)
    await world.tickets.reject(worker, ticket_id, "重复")
    for action in (TicketAction.RESOLVE, TicketAction.REJECT, TicketAction.MERGE):
        with pytest.raises(Refused) as caught:
            await world.tickets.ask(worker, ticket_id, action)
        assert caught.value.key == "ticket.closed"
    with pytest.raises(Refused) as caught:
        await world.tickets.ask(worker, ticket_id, TicketAction.DECLINE)
    assert caught.value.key == "ticket.not_allowed"  # not the department's
    await world.tickets.ask(worker, ticket_id, TicketAction.REPLY)  # a reply is always allowed


async def test_a_staff_reply_reaches_the_reporter_whose_answers_come_back_to_the_thread(store):
    world, ticket_id = await _world_with_a_ticket(store)
    tickets = world.tickets
    worker = await world.actor(WORKER)
    await tickets.remember_prompt(GRID_CHAT, PROMPT, WORKER, ticket_id, TicketAction.REPLY)
    await tickets.answer_prompt(worker, GRID_CHAT, PROMPT, "几号楼？")
    relayed = await world.pending(RESIDENT, "sendMessage")
    assert [i.ref for i in relayed] == [f"relay:{ticket_id}"] and "几号楼？" in \
        relayed[0].payload["text"]
    await world.deliver()
    relay_id = 1000 + relayed[0].id
    assert (await tickets.prompt_for(RESIDENT, relay_id)).action == "answer"
    resident = await world.actor(RESIDENT)
    card = next(c for c in await store.tickets.cards(ticket_id) if c.chat_id == GRID_CHAT)
    for words, photo in [("3号楼", None), ("这里", "PHOTO")]:
        action, _ = await tickets.answer_prompt(resident, RESIDENT, relay_id, words, photo)
        assert action == TicketAction.ANSWER
        notes = await world.pending(GRID_CHAT)
        assert notes[0].payload["reply_parameters"]["message_id"] == card.message_id
        assert words in notes[0].payload["text"]
        if photo:
            assert notes[1].method == "sendPhoto" and notes[1].payload["photo"] == photo
        await world.deliver()
    events = [(e.kind, e.note) for e in await store.tickets.events(ticket_id)]
    assert events[-3:] == [("replied", "几号楼？"), ("reporter_answered", "3号楼"),
                           ("reporter_answered", "这里")]


async def test_the_reporter_comments_on_a_rating_in_reply_to_its_thanks(store):
    world, ticket_id = await _world_with_a_ticket(store)
    tickets = world.tickets
    await tickets.resolve(await world.actor(WORKER), ticket_id, "修好了")
    await world.deliver()
    await tickets.rate(RESIDENT, ticket_id, 4)
    thanks = await world.pending(RESIDENT, "sendMessage")
    assert [i.ref for i in thanks] == [f"comment:{ticket_id}"]
    await world.deliver()
    resident = await world.actor(RESIDENT)
    action, ticket = await tickets.answer_prompt(resident, RESIDENT, 1000 + thanks[0].id,
                                                 "很快，谢谢")
    assert (action, ticket.rating, ticket.rating_comment) == \
        (TicketAction.COMMENT, 4, "很快，谢谢")
    opening = t(tickets.settings.default_locale, "staff.comment").split("{")[0]
    assert [i.payload["text"].startswith(opening) for i in await world.pending(GRID_CHAT)] \
        == [True]
    with pytest.raises(Refused) as caught:
        await tickets.rate(RESIDENT, ticket_id, 5)
    assert caught.value.key == "ticket.already_rated"
