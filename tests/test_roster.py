"""People administration (SPEC §11) on a temporary store: /people, revoking what one could
have granted (and every refusal changing nothing), the audit log written with the change, a
revoked building head's tickets passing to the grid, /joinlink CODE."""

from __future__ import annotations

import pytest

from bot.i18n import t
from bot.services.audit import AuditAction
from bot.services.chats import ChatService
from bot.services.horn_codes import VolunteerPress
from bot.services.outbox import Outbox
from bot.services.people import TelegramUser
from bot.services.roster import PAGE, RosterService
from bot.services.ticket_states import TimelineEvent
from bot.services.ticket_views import CardKind
from bot.services.volunteers import VolunteerService
from storage.models import TicketLevel, TicketStatus
from tests.support.harness import grant
from tests.support.services import refused
from tests.support.tickets import (
    ADMIN,
    GRID_CHAT,
    HEAD,
    LIAISON,
    RESIDENT,
    STAFF,
    VOLUNTEER,
    WORKER,
    ticket_world,
)

LEADER, OTHER_HEAD, OTHER_WORKER, SECOND_HEAD = 3, 10, 11, 12


class World:
    def __init__(self, tickets_world):
        self.w = tickets_world
        self.store = tickets_world.store
        tickets = tickets_world.tickets
        self.people = tickets.people
        self.roster = RosterService(self.store, tickets.access, tickets.people, tickets.outbox,
                                    tickets)

    async def actor(self, user_id):
        return await self.w.actor(user_id)

    async def revoke(self, by, role, code, user_id):
        return await self.roster.revoke(await self.actor(by), role, code, user_id)

    async def holds(self, user_id, role, code):
        return any(g.role == role and g.unit_code == code
                   for g in await self.store.people.roles(user_id))

    async def audit_rows(self):
        return [tuple(r) for r in await self.store.db.fetchall(
            "SELECT actor_id, action, unit_code, subject_id, detail FROM audit_log ORDER BY id")]


@pytest.fixture
async def world(store):
    w = await ticket_world(store)
    for user_id, role, unit in ((LEADER, "grid_leader", "G0101"),
                                (OTHER_HEAD, "building_head", "B01020101"),
                                (OTHER_WORKER, "grid_worker", "G0101"),
                                (VOLUNTEER, "volunteer", "B01010101")):
        await grant(store, user_id, role, unit)
    return World(w)


# refusals: each names its reason and changes nothing


@pytest.mark.parametrize("by, role, code, user_id, key", [
    (WORKER, "mayor", "B01010101", HEAD, "revoke.unknown_role"),
    (WORKER, "building_head", "X999", HEAD, "map.unknown_code"),
    (HEAD, "building_head", "B01010101", HEAD, "revoke.own_highest"),
    (WORKER, "grid_worker", "G0101", WORKER, "revoke.own_highest"),
    (WORKER, "building_head", "G0101", HEAD, "revoke.wrong_unit"),
    (WORKER, "volunteer", "MZJ", VOLUNTEER, "revoke.wrong_unit"),
    (WORKER, "community_staff", "C01", STAFF, "revoke.superadmins_only"),
    (STAFF, "department_liaison", "MZJ", LIAISON, "revoke.superadmins_only"),
    (WORKER, "building_head", "B01020101", OTHER_HEAD, "revoke.outside_scope"),
    (LIAISON, "volunteer", "B01010101", VOLUNTEER, "revoke.outside_scope"),
    (RESIDENT, "volunteer", "B01010101", VOLUNTEER, "revoke.outside_scope"),
    (WORKER, "grid_worker", "G0101", OTHER_WORKER, "revoke.not_below"),
    (WORKER, "grid_leader", "G0101", LEADER, "revoke.not_below"),
    (HEAD, "building_head", "B01010101", SECOND_HEAD, "revoke.not_below"),
    (WORKER, "building_head", "B01010101", RESIDENT, "revoke.not_held"),
    (STAFF, "volunteer", "C01", ADMIN, "revoke.superadmin"),
])
async def test_a_revoke_the_revoker_could_not_grant_is_refused_and_changes_nothing(
        world, by, role, code, user_id, key):
    await grant(world.store, SECOND_HEAD, "building_head", "B01010101")
    await grant(world.store, ADMIN, "volunteer", "C01")
    await refused(world.store, world.revoke(by, role, code, user_id), key)


async def test_a_superadmins_own_roles_cannot_be_revoked_even_by_a_superadmin(world):
    await grant(world.store, ADMIN, "volunteer", "C01")
    await refused(world.store, world.revoke(ADMIN, "volunteer", "C01", ADMIN),
                  "revoke.superadmin")


async def test_one_may_revoke_a_lower_role_of_ones_own(world):
    await grant(world.store, WORKER, "volunteer", "B01010101")
    await world.revoke(WORKER, "volunteer", "B01010101", WORKER)
    assert not await world.holds(WORKER, "volunteer", "B01010101")
    assert await world.holds(WORKER, "grid_worker", "G0101")


async def test_superadmins_alone_revoke_community_staff_and_liaisons(world):
    await world.revoke(ADMIN, "department_liaison", "MZJ", LIAISON)
    await world.revoke(ADMIN, "community_staff", "C01", STAFF)
    assert not await world.holds(LIAISON, "department_liaison", "MZJ")
    assert not await world.holds(STAFF, "community_staff", "C01")


# a revoke: the role, its audit row, the notice, in one transaction


async def test_a_revoke_writes_its_audit_row_and_tells_the_person_in_their_language(world):
    async with world.store.transaction():
        await world.store.people.set_locale(VOLUNTEER, "en")
    revoked = await world.revoke(HEAD, "volunteer", "B01010101", VOLUNTEER)
    assert revoked.escalated == [] and revoked.unit.code == "B01010101"
    assert not await world.holds(VOLUNTEER, "volunteer", "B01010101")
    assert await world.audit_rows() == [
        (HEAD, AuditAction.REVOKE, "B01010101", VOLUNTEER, "volunteer")]
    told = await world.w.texts(VOLUNTEER)
    head = await world.store.people.get(HEAD)
    assert told == [t("en", "revoke.told", role=t("en", "role.volunteer"),
                      unit="1栋 (B01010101)", by=head.display_name)]


async def test_a_revoke_that_fails_part_way_leaves_the_role_and_writes_no_audit_row(world):
    async def broken(*args, **kwargs):
        raise RuntimeError("the hand-over failed")

    world.roster.tickets.head_left = broken
    with pytest.raises(RuntimeError):
        await world.revoke(WORKER, "building_head", "B01010101", HEAD)
    assert await world.holds(HEAD, "building_head", "B01010101")
    assert await world.audit_rows() == []
    assert await world.w.texts(HEAD) == []


async def test_a_second_revoke_of_the_same_role_is_refused(world):
    await world.revoke(WORKER, "building_head", "B01010101", HEAD)
    await refused(world.store, world.revoke(WORKER, "building_head", "B01010101", HEAD),
                  "revoke.not_held")


async def test_an_audit_row_is_written_only_inside_a_transaction(world):
    with pytest.raises(RuntimeError):
        await world.people.audit.record(WORKER, AuditAction.AWAY, "G0101", WORKER, "x")
    async with world.store.transaction():
        await world.people.audit.record(WORKER, AuditAction.AWAY, "G0101", WORKER,
                                        "2026-12-20")
    assert await world.audit_rows() == [(WORKER, "away", "G0101", WORKER, "2026-12-20")]


async def test_an_invite_redeemed_is_in_the_audit_log(world):
    payload, _ = await world.people.create_invite(await world.actor(WORKER), "building_head",
                                                  "B01010102")
    await world.people.touch(TelegramUser(60, "New"), private=True)
    await world.people.redeem(60, payload)
    assert await world.audit_rows() == [
        (WORKER, AuditAction.GRANT, "B01010102", 60, "building_head")]


# a revoked building head's open tickets


async def test_a_revoked_heads_tickets_pass_to_the_grid(world):
    w = world.w
    ticket = await w.submit()
    await w.tickets.post_pending_cards()
    await w.deliver()
    head_card = next(c for c in await world.store.tickets.cards(ticket.id)
                     if c.chat_id == HEAD and c.kind == CardKind.HEAD)
    revoked = await world.revoke(WORKER, "building_head", "B01010101", HEAD)
    assert revoked.escalated == [ticket.id]
    moved = await world.store.tickets.get(ticket.id)
    assert moved.level == TicketLevel.GRID and moved.status == TicketStatus.ESCALATED
    last = (await world.store.tickets.events(ticket.id))[-1]
    assert last.kind == TimelineEvent.ESCALATED and last.actor_id == WORKER
    edits = [i for i in await w.pending(HEAD, "editMessageText")
             if i.payload["message_id"] == head_card.message_id]
    locale = await world.people.locale_for(HEAD)
    assert len(edits) == 1 and "reply_markup" not in edits[0].payload
    assert t(locale, "handover.card_level", level=t(locale, "level.grid")) in \
        edits[0].payload["text"]
    grid_locale = await world.people.locale_in(GRID_CHAT)
    assert any(t(grid_locale, "staff.escalated", id=ticket.id) in text
               for text in await w.texts(GRID_CHAT))
    assert any(text.startswith("🔁") and f"#{ticket.id}" in text
               for text in await w.texts(GRID_CHAT))
    reporter_locale = await world.people.locale_for(RESIDENT)
    assert any(t(reporter_locale, "notice.escalated", id=ticket.id) in text
               for text in await w.texts(RESIDENT))
    # the head's card is forgotten: a later step edits it no more
    assert not [c for c in await world.store.tickets.cards(ticket.id) if c.chat_id == HEAD]
    await w.deliver()
    await w.tickets.set_urgency(await world.actor(WORKER), ticket.id, "major")
    assert await w.pending(HEAD, "editMessageText") == []


async def test_with_another_head_left_the_tickets_stay_with_the_building(world):
    w = world.w
    await grant(world.store, SECOND_HEAD, "building_head", "B01010101")
    ticket = await w.submit()
    await w.tickets.post_pending_cards()
    await w.deliver()
    revoked = await world.revoke(WORKER, "building_head", "B01010101", HEAD)
    assert revoked.escalated == []
    still = await world.store.tickets.get(ticket.id)
    assert still.level == TicketLevel.BUILDING and still.status == TicketStatus.NEW
    edits = await w.pending(HEAD, "editMessageText")
    locale = await world.people.locale_for(HEAD)
    assert len(edits) == 1 and t(locale, "handover.card_heads") in edits[0].payload["text"]
    assert [c.chat_id for c in await world.store.tickets.cards(ticket.id)
            if c.kind == CardKind.HEAD] == [SECOND_HEAD]


# /people


async def test_people_lists_the_unit_and_below_with_what_the_viewer_may_revoke(world):
    roster = await world.roster.roster(await world.actor(WORKER), None)
    assert roster.unit.code == "G0101"
    seen = {(h.grant.user_id, h.grant.role, h.unit.code): h.revocable for h in roster.holders}
    assert seen == {
        (LEADER, "grid_leader", "G0101"): False,
        (WORKER, "grid_worker", "G0101"): False,
        (OTHER_WORKER, "grid_worker", "G0101"): False,
        (VOLUNTEER, "volunteer", "G0101"): True,
        (HEAD, "building_head", "B01010101"): True,
        (VOLUNTEER, "volunteer", "B01010101"): True,
    }
    assert [h.grant.role for h in roster.holders][:2] == ["grid_leader", "grid_worker"]


async def test_people_pages_by_ten(world):
    for user_id in range(100, 100 + PAGE + 2):
        await grant(world.store, user_id, "volunteer", "B01010102")
    actor = await world.actor(STAFF)
    first = await world.roster.roster(actor, "C01")
    assert len(first.holders) == PAGE and first.more and first.total > PAGE
    last = await world.roster.roster(actor, "C01", (first.total - 1) // PAGE)
    assert not last.more
    await refused(world.store, world.roster.roster(actor, "C01", 99), "button.stale")


async def test_people_outside_ones_scope_is_refused(world):
    await refused(world.store, world.roster.roster(await world.actor(WORKER), "G0102"),
                  "people.not_allowed")
    await refused(world.store, world.roster.roster(await world.actor(RESIDENT), None),
                  "people.usage")


# /audit


async def test_audit_is_for_community_staff_and_up_newest_first(world):
    await world.revoke(HEAD, "volunteer", "B01010101", VOLUNTEER)
    await world.revoke(WORKER, "building_head", "B01010101", HEAD)
    page = await world.roster.audit(await world.actor(STAFF), "C01")
    assert [(e.actor_id, e.subject_id) for e in page.entries] == [(WORKER, HEAD),
                                                                 (HEAD, VOLUNTEER)]
    assert page.total == 2 and not page.more
    building = await world.roster.audit(await world.actor(ADMIN), "B01010102")
    assert building.entries == []
    await refused(world.store, world.roster.audit(await world.actor(WORKER), "G0101"),
                  "audit.not_allowed")
    await refused(world.store, world.roster.audit(await world.actor(STAFF), "MZJ"),
                  "audit.not_allowed")


# /joinlink CODE


async def test_joinlink_code_gives_a_buildings_link_to_staff_whose_scope_covers_it(world):
    chats = ChatService(world.store, world.w.access, world.people,
                        Outbox(world.store, world.w.tickets.settings))
    building, payload = await chats.join_link_of(await world.actor(HEAD), "B01010101")
    assert building.code == "B01010101" and payload.startswith("j-")
    same = await chats.join_link_of(await world.actor(WORKER), "B01010101")
    assert same[1] == payload
    await refused(world.store, chats.join_link_of(await world.actor(HEAD), "B01020101"),
                  "bind.not_allowed")
    await refused(world.store, chats.join_link_of(await world.actor(WORKER), "G0101"),
                  "joinlink.not_a_building")
    await refused(world.store, chats.join_link_of(await world.actor(WORKER), "NOPE"),
                  "map.unknown_code")


async def test_registering_as_a_volunteer_is_in_the_audit_log_once(world):
    volunteers = VolunteerService(world.store, world.people.audit)
    for _ in range(2):
        await volunteers.start(RESIDENT)
        await volunteers.press(RESIDENT, VolunteerPress.NEXT, "")
        await volunteers.press(RESIDENT, VolunteerPress.DONE, "")
    assert await world.audit_rows() == [
        (RESIDENT, AuditAction.REGISTER, "B01010101", RESIDENT, "volunteer")]
