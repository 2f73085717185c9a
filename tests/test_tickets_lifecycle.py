"""The lifecycle table, action by action and state by state: a legal step moves the state,
writes its timeline event and queues the notices the table names; an illegal one is refused
and changes nothing (state, timeline, outbox)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from bot import labels
from bot.i18n import t
from bot.services.errors import Refused
from bot.services.ticket_states import LIFECYCLE, TicketAction, refusal_key
from storage.models import Ticket, TicketStatus
from tests.support.tickets import (
    ADMIN,
    DEPT_CHAT,
    GRID_CHAT,
    LIAISON,
    NEIGHBOUR,
    RESIDENT,
    VOLUNTEER,
    TicketWorld,
    ticket_world,
)

Act = Callable[[TicketWorld, Ticket], Awaitable[object]]
S = TicketStatus
OPEN = {S.NEW, S.ACKNOWLEDGED, S.ESCALATED, S.WHISTLED, S.ACCEPTED}
ANY = set(TicketStatus)

#: SPEC §4 as this test reads it, written out apart from the code's table:
#: action → (states it is allowed from, state after (None: unchanged), timeline event,
#:           what the reporter / the staff thread / the department's liaisons are told)
EXPECTED: dict[TicketAction, tuple[set[S], S | None, str | None,
                                   str | None, str | None, str | None]] = {
    TicketAction.ACKNOWLEDGE: ({S.NEW}, S.ACKNOWLEDGED, "acknowledged",
                               "notice.acknowledged", None, None),
    TicketAction.SET_URGENCY: (OPEN, None, "urgency", None, None, None),
    TicketAction.ESCALATE: ({S.NEW, S.ACKNOWLEDGED}, S.ESCALATED, "escalated",
                            "notice.escalated", "staff.escalated", None),
    TicketAction.WHISTLE: ({S.NEW, S.ACKNOWLEDGED, S.ESCALATED}, S.WHISTLED, "whistled",
                           "notice.whistled", None, "dept.whistled"),
    TicketAction.ACCEPT: ({S.WHISTLED}, S.ACCEPTED, "accepted",
                          "notice.accepted", "staff.accepted", None),
    TicketAction.DECLINE: ({S.WHISTLED}, S.ESCALATED, "declined",
                           "notice.declined", "staff.declined", None),
    TicketAction.RESOLVE: (OPEN, S.RESOLVED, "resolved", "notice.resolved", "staff.resolved",
                           None),
    TicketAction.REJECT: (OPEN, S.REJECTED, "rejected", "notice.rejected", None, None),
    TicketAction.MERGE: (OPEN, S.MERGED, "merged", "notice.merged", None, None),
    TicketAction.REPLY: (ANY, None, "replied", "notice.reply", None, None),
    TicketAction.OFFER: (OPEN, None, "offered", None, None, None),
    TicketAction.POST_TO_BUILDING: (OPEN, None, "posted_to_building", None, None, None),
    TicketAction.ME_TOO: (OPEN, None, None, None, None, None),
    TicketAction.TAKE: (OPEN, None, "taken", "notice.taken", None, None),
    TicketAction.RATE: ({S.RESOLVED}, S.RATED, "rated", "notice.rated", None, None),
    TicketAction.REOPEN: ({S.RESOLVED}, S.ESCALATED, "reopened", "notice.reopened",
                          "staff.reopened", None),
    TicketAction.ANSWER: (ANY, None, "reporter_answered", "notice.answer_passed",
                          "staff.reporter_answer", None),
    TicketAction.COMMENT: (ANY, None, "commented", None, "staff.comment", None),
    # whether a whistle may be rated is read from the timeline, not the state (SPEC §11)
    TicketAction.RATE_DEPARTMENT: (ANY, None, "department_rated", None, None, None),
    TicketAction.COMMENT_DEPARTMENT: (ANY, None, "department_commented", None, None, None),
    # 点将 (SPEC §10): accepting makes the assignee as Take does
    TicketAction.ASSIGN: (OPEN, None, "assigned", None, None, None),
    TicketAction.ASSIGN_ACCEPT: (OPEN, None, "taken", "notice.taken", "assign.staff_accepted",
                                 None),
    TicketAction.ASSIGN_DECLINE: (OPEN, None, "assign_declined", None, "assign.staff_declined",
                                  None),
    TicketAction.PROGRESS: (OPEN, None, "progress", None, "assign.staff_progress", None),
}
#: how an illegal step is refused: a closed ticket as closed, a wrong open state as such
CLOSED_REFUSAL = {TicketAction.SET_URGENCY, TicketAction.RESOLVE, TicketAction.REJECT,
                  TicketAction.MERGE, TicketAction.OFFER, TicketAction.POST_TO_BUILDING,
                  TicketAction.ME_TOO, TicketAction.TAKE, TicketAction.ASSIGN,
                  TicketAction.ASSIGN_ACCEPT, TicketAction.ASSIGN_DECLINE, TicketAction.PROGRESS}


def expected_refusal(action: TicketAction, status: S) -> str | None:
    if status in EXPECTED[action][0]:
        return None
    if action in (TicketAction.RATE, TicketAction.REOPEN) and status == S.RATED:
        return "ticket.already_rated"
    if action in (TicketAction.ASSIGN_ACCEPT, TicketAction.ASSIGN_DECLINE):
        return "assign.closed"   # the ask ended with the ticket: said so, and how
    return "ticket.closed" if action in CLOSED_REFUSAL else "ticket.bad_state"


ACTS: dict[TicketAction, Act] = {
    TicketAction.ACKNOWLEDGE: lambda w, x: _staff(w, lambda a: w.tickets.acknowledge(a, x.id)),
    TicketAction.SET_URGENCY: lambda w, x: _staff(
        w, lambda a: w.tickets.set_urgency(a, x.id, "urgent")),
    TicketAction.ESCALATE: lambda w, x: _staff(w, lambda a: w.tickets.escalate(a, x.id)),
    TicketAction.WHISTLE: lambda w, x: _staff(w, lambda a: w.tickets.whistle(a, x.id, "MZJ")),
    TicketAction.ACCEPT: lambda w, x: _staff(w, lambda a: w.tickets.accept(a, x.id)),
    TicketAction.DECLINE: lambda w, x: _staff(w, lambda a: w.tickets.decline(a, x.id, "不归我们")),
    TicketAction.RESOLVE: lambda w, x: _staff(w, lambda a: w.tickets.resolve(a, x.id, "修好了")),
    TicketAction.REJECT: lambda w, x: _staff(w, lambda a: w.tickets.reject(a, x.id, "重复")),
    TicketAction.MERGE: lambda w, x: _staff(w, lambda a: w.tickets.merge(a, x.id, "#2")),
    TicketAction.REPLY: lambda w, x: _staff(
        w, lambda a: w.tickets.reply_to_reporter(a, x.id, "几号楼？")),
    TicketAction.OFFER: lambda w, x: _staff(w, lambda a: w.tickets.offer(a, x.id)),
    TicketAction.POST_TO_BUILDING: lambda w, x: _staff(
        w, lambda a: w.tickets.post_to_building(a, x.id)),
    TicketAction.ME_TOO: lambda w, x: w.tickets.me_too(NEIGHBOUR, x.id),
    TicketAction.TAKE: lambda w, x: _staff(w, lambda a: w.tickets.take(a, x.id)),
    TicketAction.RATE: lambda w, x: w.tickets.rate(RESIDENT, x.id, 5),
    TicketAction.REOPEN: lambda w, x: w.tickets.rate(RESIDENT, x.id, 1),
    TicketAction.ANSWER: lambda w, x: w.tickets.reporter_answer(RESIDENT, x.id, "3号楼"),
    TicketAction.COMMENT: lambda w, x: w.tickets.comment(RESIDENT, x.id, "谢谢"),
    TicketAction.RATE_DEPARTMENT: lambda w, x: _staff(
        w, lambda a: w.tickets.rate_department(a, x.id, 4, ADMIN, 77)),
    TicketAction.COMMENT_DEPARTMENT: lambda w, x: _staff(
        w, lambda a: w.tickets.comment_department(a, x.id, "很及时")),
    TicketAction.ASSIGN: lambda w, x: _staff(
        w, lambda a: w.tickets.assign(a, x.id, f"p{VOLUNTEER}")),
    TicketAction.ASSIGN_ACCEPT: lambda w, x: _volunteer(
        w, lambda a: w.tickets.answer_assignment(a, x.id, True)),
    TicketAction.ASSIGN_DECLINE: lambda w, x: _volunteer(
        w, lambda a: w.tickets.answer_assignment(a, x.id, False)),
    TicketAction.PROGRESS: lambda w, x: _volunteer(
        w, lambda a: w.tickets.progress(a, x.id, "已联系物业")),
}
#: the actions that need the volunteer asked first (and, for progress, accepted)
ASKED = {TicketAction.ASSIGN_ACCEPT, TicketAction.ASSIGN_DECLINE, TicketAction.PROGRESS}


async def _volunteer(world: TicketWorld, act: Callable[..., Awaitable[object]]) -> object:
    return await act(await world.actor(VOLUNTEER))


async def _staff(world: TicketWorld, act: Callable[..., Awaitable[object]]) -> object:
    return await act(await world.actor(ADMIN))


async def _ticket_in(world: TicketWorld, status: TicketStatus, action: TicketAction) -> Ticket:
    """Ticket #1 in `status` (at building level, whistled to MZJ where the state says so,
    offered where Take needs it, rated so that a comment has a rating, whistled by ADMIN,
    accepted and resolved in its timeline where the department's work is rated, and rated so
    where it is commented), #2 to merge into; everything queued so far is sent."""
    ticket = await world.submit()
    await world.submit(user_id=NEIGHBOUR, text="同一盏灯")
    await world.tickets.post_pending_cards()
    fields: dict[str, object] = {"status": status, "rating": 3}
    if status in (TicketStatus.WHISTLED, TicketStatus.ACCEPTED):
        fields["department_code"] = "MZJ"
    if action == TicketAction.TAKE:
        fields["service_request"] = 1
    async with world.store.transaction():
        await world.store.tickets.update(ticket.id, **fields)
        if action in (TicketAction.RATE_DEPARTMENT, TicketAction.COMMENT_DEPARTMENT):
            await world.store.tickets.add_event(ticket.id, ADMIN, "whistled", "县民政局",
                                                {"department": "MZJ"})
            await world.store.tickets.add_event(ticket.id, LIAISON, "accepted")
            await world.store.tickets.add_event(ticket.id, LIAISON, "resolved", "修好了")
    if action in ASKED:
        async with world.store.transaction():
            asked = await world.store.assignments.add(ticket.id, VOLUNTEER, None, ADMIN, 0)
            assert asked is not None
            if action == TicketAction.PROGRESS:
                await world.store.assignments.move(asked.id, "offered", "accepted", 0)
                await world.store.tickets.update(ticket.id, assignee_id=VOLUNTEER)
    if action == TicketAction.COMMENT_DEPARTMENT:
        await world.tickets.rate_department(await world.actor(ADMIN), ticket.id, 4, ADMIN, 77)
    await world.deliver()
    return await world.store.tickets.get(ticket.id)


async def _state(world: TicketWorld, ticket_id: int) -> tuple[object, ...]:
    ticket = await world.store.tickets.get(ticket_id)
    return (ticket.status, ticket.level, ticket.due_at, ticket.rating, ticket.service_request,
            ticket.assignee_id, ticket.me_too, len(await world.store.tickets.events(ticket_id)),
            len(await world.store.outbox.pending()))


def test_the_table_is_the_lifecycle_of_the_spec():
    assert set(LIFECYCLE) == set(TicketAction) == set(EXPECTED)
    for action, step in LIFECYCLE.items():
        assert (step.allowed, step.to, step.event, step.reporter, step.staff,
                step.liaisons) == EXPECTED[action], action
        for status in TicketStatus:
            assert refusal_key(action, status) == expected_refusal(action, status)


@pytest.mark.parametrize("status", list(TicketStatus))
@pytest.mark.parametrize("action", list(TicketAction))
async def test_each_action_from_each_state(store, action, status):
    world = await ticket_world(store)
    ticket = await _ticket_in(world, status, action)
    refused = expected_refusal(action, status)
    before = await _state(world, ticket.id)
    if refused is not None:
        with pytest.raises(Refused) as caught:
            await ACTS[action](world, ticket)
        assert caught.value.key == refused
        assert caught.value.values["state"] == labels.STATUS[status]
        assert await _state(world, ticket.id) == before
        return
    await ACTS[action](world, ticket)
    _, to, event, reporter, staff, liaisons = EXPECTED[action]
    after = await world.store.tickets.get(ticket.id)
    assert after.status == (to or status)
    events = await world.store.tickets.events(ticket.id)
    if event is None:
        assert len(events) == before[7]
    else:
        assert len(events) == before[7] + 1 and events[-1].kind == event
    for chat_id, key in [(RESIDENT, reporter), (GRID_CHAT, staff), (LIAISON, liaisons)]:
        texts = await world.texts(chat_id)
        if key is None:
            assert not texts, (chat_id, texts)
        else:
            opening = t(world.tickets.settings.default_locale, key).split("{")[0]
            assert texts and all(text.startswith(opening) for text in texts), (key, texts)


async def test_a_refusal_names_the_state_it_found_in_the_readers_words(store):
    world = await ticket_world(store)
    ticket = await _ticket_in(world, TicketStatus.REJECTED, TicketAction.ACKNOWLEDGE)
    with pytest.raises(Refused) as caught:
        await world.tickets.acknowledge(await world.actor(ADMIN), ticket.id)
    assert (caught.value.key, caught.value.values["state"]) == \
        ("ticket.bad_state", "status.rejected")
    with pytest.raises(Refused) as caught:
        await world.tickets.rate(RESIDENT, ticket.id, 4)
    assert caught.value.key == "ticket.bad_state"


async def test_a_step_that_lost_the_race_is_refused_and_writes_nothing(store):
    """The state is read, then another step moves it before the write: the store decides."""
    world = await ticket_world(store)
    ticket = await _ticket_in(world, TicketStatus.NEW, TicketAction.ACKNOWLEDGE)
    admin = await world.actor(ADMIN)
    async with store.transaction():
        await store.tickets.update(ticket.id, status=TicketStatus.REJECTED)
    before = await _state(world, ticket.id)
    with pytest.raises(Refused) as caught:
        async with store.transaction():
            await world.tickets._step(TicketAction.ACKNOWLEDGE, ticket, admin.user_id)
    assert caught.value.key == "ticket.bad_state"
    assert await _state(world, ticket.id) == before


async def test_escalate_needs_the_building_level_and_whistle_posts_to_the_department(store):
    world = await ticket_world(store)
    ticket = await _ticket_in(world, TicketStatus.NEW, TicketAction.ESCALATE)
    admin = await world.actor(ADMIN)
    await world.tickets.escalate(admin, ticket.id)
    with pytest.raises(Refused):
        await world.tickets.escalate(admin, ticket.id)
    await world.tickets.whistle(admin, ticket.id, "MZJ")
    cards = await world.pending(DEPT_CHAT, "sendMessage")
    assert [c.ref for c in cards] == [f"tcard:{ticket.id}:department"]
    assert cards[0].payload["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == \
        f"t:acc:{ticket.id}"
