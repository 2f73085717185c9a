"""点将 from a ticket card (SPEC §10) on a temporary store (both engines): the picker by the
ticket's domain and "All" (member units by the domains of their resources), the private ask
(the reporter hidden if anonymous), a decline and no second ask of the same person, an accept
making the assignee as Take does, progress, the resolve with the hours typed (at most 8)
credited once to the time bank, and a reopened ticket assigned again."""

from __future__ import annotations

import pytest

from bot.i18n import t
from bot.services import ticket_assign as assign
from bot.services import ticket_views as views
from bot.services.access import Access
from bot.services.errors import Refused
from bot.services.ticket_states import TimelineEvent
from bot.services.units import UnitService
from storage.models import TicketStatus, Unit
from tests.support.harness import grant
from tests.support.services import PROPERTY_UNIT
from tests.support.tickets import (
    ADMIN,
    GRID_CHAT,
    RESIDENT,
    STAFF,
    VOLUNTEER,
    WORKER,
    TicketWorld,
    ticket_world,
)

FIXER, NURSE, CONTACT = 21, 22, 23
CONTACT2, CONTACT3 = 24, 25


async def _resource(store, unit_code: str, contact: int, domain: str | None) -> None:
    async with store.transaction():
        added = await store.units.add_resource(unit_code, "vehicle", "面包车", 1, contact, 0)
        if domain is not None:
            await store.units.set_resource_domain(added, domain)


async def _world(store) -> tuple[TicketWorld, int]:
    world = await ticket_world(store)
    for user_id, name in ((FIXER, "老王"), (NURSE, "小李"), (CONTACT, "物业张"),
                          (VOLUNTEER, "小赵")):
        async with store.transaction():
            await store.people.touch(user_id, name, None, None, "zh-hans", True)
    await grant(store, FIXER, "volunteer", "G0101")
    await grant(store, NURSE, "party_member", "G0101")
    async with store.transaction():
        await store.people.set_volunteer_profile(FIXER, ["repairs"], None)
        await store.people.set_volunteer_profile(NURSE, ["medical"], None)
        await store.map.upsert(PROPERTY_UNIT)
    await grant(store, CONTACT, "unit_contact", "M01")
    await _resource(store, "M01", CONTACT, "purple")      # M01 offers for repairs
    await world.tickets.add_to_draft(RESIDENT, "楼道门坏了", None)
    await world.tickets.draft_shown(RESIDENT, 50)
    ticket = await world.tickets.submit(RESIDENT, 50)
    async with store.transaction():
        await store.tickets.update(ticket.id, domain="purple", anonymous=1)
    await world.tickets.post_pending_cards()
    await world.deliver()
    return world, ticket.id


def _choices(choices: assign.Choices) -> list[str]:
    return [c.arg for c in choices.candidates]


async def _refused(key: str, coro) -> None:
    with pytest.raises(Refused) as caught:
        await coro
    assert caught.value.key == key


async def test_the_picker_follows_the_domain_and_all_shows_everyone(store):
    world, ticket_id = await _world(store)
    # M02 offers a resource for another domain, M03 one whose domain is not said
    for code, contact, domain in (("M02", CONTACT2, "green"), ("M03", CONTACT3, None)):
        async with store.transaction():
            await store.map.upsert(Unit(code=code, kind="member", name=f"单位{code}",
                                        parent_code="C01", member_type="social"))
        await grant(store, contact, "unit_contact", code)
        await _resource(store, code, contact, domain)
    assert [r.domain for r in await store.units.resources(["M01", "M02", "M03"])] == [
        "purple", "green", None]
    staff = await world.actor(WORKER)
    picked = await world.tickets.assign_choices(staff, ticket_id, everyone=False)
    assert _choices(picked) == [f"p{FIXER}", "uM01"]          # purple: repairs, driving
    everyone = await world.tickets.assign_choices(staff, ticket_id, everyone=True)
    assert _choices(everyone) == [f"p{VOLUNTEER}", f"p{FIXER}", f"p{NURSE}", "uM01", "uM02",
                                  "uM03"]
    await world.tickets.assign(staff, ticket_id, "uM03")     # a unit under "All" is asked
    assert len(await world.pending(CONTACT3, "sendMessage")) == 1
    # a resident, and a unit contact (no role over tickets), may not open it
    await _refused("ticket.not_allowed", world.tickets.assign_choices(
        await world.actor(RESIDENT), ticket_id, everyone=True))
    await _refused("ticket.not_allowed", world.tickets.assign(
        await world.actor(CONTACT), ticket_id, f"p{FIXER}"))
    # a forged choice: the reporter, someone outside the community
    await _refused("assign.not_candidate", world.tickets.assign(staff, ticket_id,
                                                                f"p{RESIDENT}"))
    await _refused("assign.not_candidate", world.tickets.assign(staff, ticket_id, "uM99"))
    await _refused("button.stale", world.tickets.assign(staff, ticket_id, "zz"))


async def test_decline_accept_update_and_resolve_with_hours(store):
    world, ticket_id = await _world(store)
    staff = await world.actor(WORKER)
    ticket, name = await world.tickets.assign(staff, ticket_id, f"p{FIXER}")
    assert name == "老王"
    asked = await world.pending(FIXER, "sendMessage")
    assert len(asked) == 1
    text = asked[0].payload["text"]
    assert text.startswith(t("zh-Hans", "assign.ask", id=ticket_id, domain="x",
                             building="x").split("（")[0])
    assert "楼道门坏了" in text and "反映人" not in text       # anonymous: no reporter line
    keys = [b["callback_data"] for b in asked[0].payload["reply_markup"]["inline_keyboard"][0]]
    assert keys == [f"t:asa:{ticket_id}", f"t:asd:{ticket_id}"]
    await world.deliver()
    # a stranger's press on the same button is refused
    await _refused("button.stale", world.tickets.answer_assignment(
        await world.actor(NURSE), ticket_id, True))
    await world.tickets.answer_assignment(await world.actor(FIXER), ticket_id, False)
    assert any("谢绝" in x for x in await world.texts(GRID_CHAT))
    await _refused("assign.answered", world.tickets.answer_assignment(
        await world.actor(FIXER), ticket_id, True))
    await _refused("assign.asked_before", world.tickets.assign(staff, ticket_id, f"p{FIXER}"))
    await world.deliver()

    # the unit: its contact is asked, accepts, becomes the assignee
    await world.tickets.assign(staff, ticket_id, "uM01")
    contact = await world.actor(CONTACT)
    ticket = await world.tickets.answer_assignment(contact, ticket_id, True)
    assert ticket.assignee_id == CONTACT
    assert (await store.tickets.events(ticket_id))[-1].kind == "taken"
    assert await world.texts(RESIDENT) == [t("zh-Hans", "notice.taken", id=ticket_id)]
    mine = (await world.pending(CONTACT, "sendMessage"))[-1].payload
    assert [b["callback_data"] for b in mine["reply_markup"]["inline_keyboard"][0]] == \
        [f"t:prg:{ticket_id}", f"t:prg:{ticket_id}:r"]
    await _refused("assign.taken", world.tickets.assign(staff, ticket_id, f"p{NURSE}"))
    await _refused("assign.not_yours", world.tickets.ask_assignee(
        await world.actor(FIXER), ticket_id, True))
    await world.deliver()

    await world.tickets.ask_assignee(contact, ticket_id, False)
    await world.tickets.assignee_text(contact, assign.UPDATE_FLOW, ticket_id, "已联系维修")
    assert (await store.tickets.events(ticket_id))[-1].note == "已联系维修"
    assert await store.flows.get(CONTACT) is None

    await world.tickets.ask_assignee(contact, ticket_id, True)
    assert await world.tickets.assignee_text(contact, assign.NOTE_FLOW, ticket_id,
                                             "门已修好") is None
    await _refused("assign.bad_hours", world.tickets.assignee_text(
        contact, assign.HOURS_FLOW, ticket_id, "很久"))
    await _refused("assign.bad_hours", world.tickets.assignee_text(
        contact, assign.HOURS_FLOW, ticket_id, "-1"))
    done = await world.tickets.assignee_text(contact, assign.HOURS_FLOW, ticket_id, "12")
    assert isinstance(done, assign.Resolved)
    assert (done.hours, done.points, done.balance) == (8, 80, 80)
    assert done.ticket.status == TicketStatus.RESOLVED
    assert done.ticket.result_note == "门已修好"
    lines = await store.shop.ledger(CONTACT, 5)
    assert [(x.kind, x.delta, x.ticket_id) for x in lines] == [("credit", 80, ticket_id)]
    assert (await store.people.get(CONTACT)).hours == 8
    assert await store.flows.get(CONTACT) is None
    await _refused("ticket.closed", world.tickets.resolve_assignment(
        contact, ticket_id, "再来", "2"))
    assert await store.shop.balance(CONTACT) == 80


async def test_talent_counts_open_assignments_and_hours_this_year(store):
    world, ticket_id = await _world(store)
    staff = await world.actor(WORKER)
    await world.tickets.assign(staff, ticket_id, f"p{FIXER}")
    units = UnitService(store, Access(store, {ADMIN}))
    line = next(x for x in await units.talent(staff, None) if x.person.user_id == FIXER)
    assert (line.assignments, line.hours) == (1, 0)
    fixer = await world.actor(FIXER)
    await world.tickets.answer_assignment(fixer, ticket_id, True)
    await world.tickets.resolve_assignment(fixer, ticket_id, "修好了", "1.5")
    line = next(x for x in await units.talent(staff, None) if x.person.user_id == FIXER)
    assert (line.assignments, line.hours) == (0, 1.5)


def test_hours_are_a_positive_number_and_at_most_eight_count():
    assert assign.parse_assign_hours("1,5 h") == 1.5
    assert assign.parse_assign_hours("20") == 8
    for bad in ("", "0", "nan", "inf", "两"):
        with pytest.raises(Refused):
            assign.parse_assign_hours(bad)


async def test_grid_staff_pick_within_their_grid_and_community_staff_within_the_community(store):
    world, ticket_id = await _world(store)
    far = 31
    await grant(store, far, "volunteer", "G0102")
    async with store.transaction():
        await store.people.set_volunteer_profile(far, ["repairs"], None)
    grid = await world.tickets.assign_choices(await world.actor(WORKER), ticket_id, True)
    assert f"p{far}" not in _choices(grid)
    await _refused("assign.not_candidate", world.tickets.assign(
        await world.actor(WORKER), ticket_id, f"p{far}"))
    community = await world.tickets.assign_choices(await world.actor(STAFF), ticket_id, False)
    assert _choices(community) == [f"p{FIXER}", f"p{far}", "uM01"]
    await world.tickets.assign(await world.actor(STAFF), ticket_id, f"p{far}")
    assert len(await world.pending(far, "sendMessage")) == 1


async def test_an_erased_persons_asks_move_to_their_erased_id(store):
    world, ticket_id = await _world(store)
    await world.tickets.assign(await world.actor(WORKER), ticket_id, f"p{FIXER}")
    async with store.transaction():
        tomb = await store.privacy.erase(FIXER, 0, ["老王"])
    assert [a.user_id for a in await store.assignments.of_ticket(ticket_id)] == [tomb]
    assert await store.assignments.open_count(FIXER) == 0


async def test_a_reopened_ticket_offers_assign_again_and_asks_the_previous_assignee_anew(store):
    """SPEC §4 keeps no assignee on a reopened ticket: it loses its assignee, the card offers
    Assign again, the previous assignee is told and may be asked again; a decline still
    stands; resolving it a second time credits no more hours."""
    world, ticket_id = await _world(store)
    staff = await world.actor(WORKER)
    await world.tickets.assign(staff, ticket_id, f"p{FIXER}")
    await world.tickets.answer_assignment(await world.actor(FIXER), ticket_id, False)
    await world.tickets.assign(staff, ticket_id, f"p{NURSE}")
    nurse = await world.actor(NURSE)
    await world.tickets.answer_assignment(nurse, ticket_id, True)
    first = await world.tickets.resolve_assignment(nurse, ticket_id, "修好了", "3")
    assert (first.hours, first.points, first.again) == (3, 30, False)
    await world.deliver()

    reopened = await world.tickets.rate(RESIDENT, ticket_id, 1)
    assert (reopened.status, reopened.assignee_id) == (TicketStatus.ESCALATED, None)
    assert await world.texts(NURSE) == [t("zh-Hans", "assign.reopened", id=ticket_id)]
    card = [b["callback_data"] for row in views.staff_buttons(
        "en", reopened, views.CardKind.STAFF) for b in row]
    assert f"t:asg:{ticket_id}" in card
    await _refused("assign.not_yours", world.tickets.ask_assignee(nurse, ticket_id, True))
    choices = await world.tickets.assign_choices(staff, ticket_id, everyone=True)
    asked = {c.arg: c.asked for c in choices.candidates}
    assert (asked[f"p{NURSE}"], asked[f"p{FIXER}"]) == (False, True)   # the decline stands
    await _refused("assign.asked_before", world.tickets.assign(staff, ticket_id, f"p{FIXER}"))

    await world.tickets.assign(staff, ticket_id, f"p{NURSE}")
    assert [a.state for a in await store.assignments.of_ticket(ticket_id)] == [
        "declined", "offered"]
    await world.tickets.answer_assignment(nurse, ticket_id, True)
    assert (await store.tickets.get(ticket_id)).assignee_id == NURSE
    await world.tickets.ask_assignee(nurse, ticket_id, True)
    again = await world.tickets.assignee_text(nurse, assign.NOTE_FLOW, ticket_id, "返修好了")
    assert isinstance(again, assign.Resolved) and again.again
    assert (again.hours, again.points, again.balance) == (0, 0, 30)
    assert again.ticket.status == TicketStatus.RESOLVED
    lines = await store.shop.ledger(NURSE, 5)
    assert [(x.kind, x.delta, x.ticket_id) for x in lines] == [("credit", 30, ticket_id)]
    assert (await store.people.get(NURSE)).hours == 3
    assert await store.assignments.hours_since(NURSE, 0) == 3
    kinds = [e.kind for e in await store.tickets.events(ticket_id)]
    assert kinds.count("assigned") == 3 and kinds.count("taken") == 2


async def test_staff_closing_a_ticket_ends_its_open_asks_and_tells_each_person(store):
    """Resolved by staff before she answered: her ask is withdrawn in the same step, her
    load is 0, she is told in her language, and a late Accept or Decline is refused as
    closed; an accepted ask of someone who did not resolve it ends too, with no hours."""
    world, ticket_id = await _world(store)
    staff = await world.actor(WORKER)
    await world.tickets.assign(staff, ticket_id, f"p{FIXER}")
    assert await store.assignments.open_count(FIXER) == 1
    await world.deliver()

    await world.tickets.resolve(staff, ticket_id, "已由物业修好")
    assert [a.state for a in await store.assignments.of_ticket(ticket_id)] == ["withdrawn"]
    assert await store.assignments.open_count(FIXER) == 0
    told = await world.texts(FIXER)
    assert told == [t("zh-Hans", "assign.ended_offered", id=ticket_id,
                      domain=views.domain_label("zh-Hans", "purple"), building="1栋",
                      state=t("zh-Hans", "status.resolved"))]
    assert "反映人" not in told[0]
    fixer = await world.actor(FIXER)
    for accept in (True, False):
        await _refused("assign.closed", world.tickets.answer_assignment(
            fixer, ticket_id, accept))
    assert (await store.tickets.get(ticket_id)).assignee_id is None
    assert [a.state for a in await store.assignments.of_ticket(ticket_id)] == ["withdrawn"]


async def test_an_assign_whose_ticket_was_resolved_after_the_press_asks_nobody(
        store, monkeypatch):
    """Staff press Assign; before its transaction another staff member resolves the ticket:
    the ask is refused with the reason, nobody is asked, no ASSIGN row is written and
    nobody's load moves (the ticket is held and read again inside the transaction)."""
    world, ticket_id = await _world(store)
    staff = await world.actor(WORKER)
    targets = world.tickets._targets

    async def resolved_meanwhile(actor, scope, arg, ticket):
        found = await targets(actor, scope, arg, ticket)
        await world.tickets.resolve(staff, ticket_id, "已由物业修好")
        return found

    monkeypatch.setattr(world.tickets, "_targets", resolved_meanwhile)
    await _refused("ticket.closed", world.tickets.assign(staff, ticket_id, f"p{FIXER}"))
    assert await store.assignments.of_ticket(ticket_id) == []
    assert await store.assignments.open_count(FIXER) == 0
    kinds = [e.kind for e in await store.tickets.events(ticket_id)]
    assert TimelineEvent.ASSIGNED not in kinds and kinds[-1] == TimelineEvent.RESOLVED


async def test_taking_a_ticket_ends_the_asks_still_waiting(store):
    """A service request offered to volunteers: while one volunteer's 点将 ask waits, a
    party member presses "Take it" (党员接单). The waiting one is told it was taken, her
    load is 0, and her late Accept is refused as answered."""
    world, ticket_id = await _world(store)
    async with store.transaction():
        await store.tickets.update(ticket_id, service_request=1)
    staff = await world.actor(WORKER)
    await world.tickets.assign(staff, ticket_id, f"p{FIXER}")
    await world.deliver()
    await world.tickets.take(await world.actor(NURSE), ticket_id)
    assert [a.state for a in await store.assignments.of_ticket(ticket_id)] == ["withdrawn"]
    assert await store.assignments.open_count(FIXER) == 0
    assert await world.texts(FIXER) == [t("zh-Hans", "assign.withdrawn", id=ticket_id)]
    await _refused("assign.answered", world.tickets.answer_assignment(
        await world.actor(FIXER), ticket_id, True))
    assert (await store.tickets.get(ticket_id)).assignee_id == NURSE


async def test_a_rejected_ticket_ends_an_accepted_ask_without_hours(store):
    world, ticket_id = await _world(store)
    async with store.transaction():
        await store.people.touch(NURSE, "小李", None, None, "en", True)
    staff = await world.actor(WORKER)
    await world.tickets.assign(staff, ticket_id, f"p{NURSE}")
    nurse = await world.actor(NURSE)
    await world.tickets.answer_assignment(nurse, ticket_id, True)
    await world.tickets.ask_assignee(nurse, ticket_id, True)        # typing the result...
    await world.deliver()

    await world.tickets.reject(staff, ticket_id, "不属于本社区")
    row = await store.assignments.get(ticket_id, NURSE)
    assert (row.state, row.hours, row.resolved_at) == ("withdrawn", 0, None)
    assert await store.assignments.open_count(NURSE) == 0
    assert await world.texts(NURSE) == [t("en", "assign.ended_accepted", id=ticket_id,
                                          domain=views.domain_label("en", "purple"),
                                          building="1栋", state=t("en", "status.rejected"))]
    assert await store.flows.get(NURSE) is None                    # ...no longer
    for coro in (world.tickets.ask_assignee(nurse, ticket_id, False),
                 world.tickets.resolve_assignment(nurse, ticket_id, "修好了", "2")):
        await _refused("assign.closed", coro)
    assert await store.shop.balance(NURSE) == 0
    assert await store.assignments.hours_since(NURSE, 0) == 0


async def test_a_merged_ticket_ends_its_asks_and_the_assignees_own_resolve_tells_nobody(store):
    world, ticket_id = await _world(store)
    staff = await world.actor(WORKER)
    other = await world.submit(RESIDENT, "楼道门又坏了")
    await world.tickets.assign(staff, ticket_id, f"p{FIXER}")
    await world.tickets.assign(staff, other.id, f"p{FIXER}")
    await world.deliver()
    await world.tickets.merge(staff, ticket_id, f"#{other.id}")
    assert (await store.assignments.get(ticket_id, FIXER)).state == "withdrawn"
    assert await store.assignments.open_count(FIXER) == 1          # #other still asks
    assert len(await world.texts(FIXER)) == 1
    await world.deliver()

    fixer = await world.actor(FIXER)
    await world.tickets.answer_assignment(fixer, other.id, True)
    await world.deliver()
    await world.tickets.resolve_assignment(fixer, other.id, "修好了", "2")
    assert (await store.assignments.get(other.id, FIXER)).state == "resolved"
    assert await world.texts(FIXER) == []
    assert await store.shop.balance(FIXER) == 20
