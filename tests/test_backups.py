"""AB岗 (SPEC §11): naming a backup and its refusals, /away and /back, the routing of personal
items (cards, reminders) to the backup or the next level, and the summary on return."""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.i18n import t
from bot.services.backups import BackupService, deliver_to
from storage.models import Person
from tests.support.harness import grant
from tests.support.services import refused
from tests.support.tickets import GRID_CHAT, HEAD, LIAISON, WORKER, TicketWorld, ticket_world

BACKUP_HEAD, STRANGER, OTHER_GRID = 11, 12, 13
DEADLINES = "100s,200s,400s"


async def _world(store, **settings: object) -> tuple[TicketWorld, BackupService]:
    world = await ticket_world(store, **settings)
    await grant(store, BACKUP_HEAD, "building_head", "B01010101")
    await grant(store, OTHER_GRID, "grid_worker", "G0102")
    async with store.transaction():
        await store.people.ensure(STRANGER)
        for user_id, name in ((HEAD, "张三"), (BACKUP_HEAD, "李四"), (WORKER, "王五")):
            await store.people.touch(user_id, name, None, None, "en", True)
    tickets = world.tickets
    backups = BackupService(store, tickets.access, tickets.people, tickets.outbox,
                            tickets.settings, clock=world.clock)
    return world, backups


async def test_refusals_name_the_problem_and_change_nothing(store):
    world, backups = await _world(store)
    head = await world.actor(HEAD)
    await refused(store, backups.name_backup(head, HEAD), "backup.self")
    await refused(store, backups.name_backup(head, 4242), "backup.unknown")
    await refused(store, backups.name_backup(head, STRANGER), "backup.unsuitable")
    await refused(store, backups.name_backup(head, OTHER_GRID), "backup.unsuitable")
    await refused(store, backups.name_backup(await world.actor(STRANGER), HEAD),
                  "backup.not_staff")
    # someone else's backup: only staff above the holder's post set it
    await refused(store, backups.name_backup(await world.actor(OTHER_GRID), WORKER, HEAD),
                  "backup.not_above")
    await refused(store, backups.away(head, "2026-13-45"), "away.malformed")
    await refused(store, backups.away(head, "yesterday"), "away.malformed")
    past = datetime.fromtimestamp(world.clock.now, world.tickets.settings.tz).date() - \
        timedelta(days=1)
    await refused(store, backups.away(head, past.isoformat()), "away.past")
    await refused(store, backups.back(head), "back.not_away")


async def test_suitable_backups_are_named_and_audited(store):
    world, backups = await _world(store)
    named = await backups.name_backup(await world.actor(HEAD), BACKUP_HEAD)
    assert named.user_id == BACKUP_HEAD
    # staff above may name it for them, and staff above may be the backup
    await backups.name_backup(await world.actor(WORKER), WORKER, HEAD)
    assert (await store.backups.get(HEAD)).backup_id == WORKER
    actions = [e.action for e in (await store.audit.latest(["B01010101"], 10))[0]]
    assert actions == ["backup", "backup"]


async def test_while_away_the_card_and_reminder_go_to_the_backup_marked_for_the_holder(store):
    world, backups = await _world(store, deadlines_routine=DEADLINES)
    head = await world.actor(HEAD)
    await backups.name_backup(head, BACKUP_HEAD)
    await backups.away(head)
    assert [d.recipient for d in await deliver_to(store, HEAD, world.clock.now)] == \
        [BACKUP_HEAD]
    ticket = await world.submit()
    await world.tickets.post_pending_cards()
    mark = t("en", "backup.for", name="张三")
    assert await world.texts(HEAD) == []
    cards = await world.texts(BACKUP_HEAD)
    # the backup's own card (they hold the post too) and the one for the holder: one card
    assert len(cards) == 1
    await world.deliver()
    world.clock.now = ticket.remind_at
    assert await world.tickets.run_due() == 1
    reminders = await world.texts(BACKUP_HEAD)
    assert len(reminders) == 1
    assert await world.texts(HEAD) == []
    assert mark not in reminders[0]  # their own reminder: no mark


async def test_with_no_backup_the_next_level_stands_in(store):
    world, backups = await _world(store, deadlines_routine=DEADLINES)
    async with store.transaction():
        await store.people.revoke(BACKUP_HEAD, "building_head", "B01010101")
    await backups.away(await world.actor(HEAD))
    deliveries = await deliver_to(store, HEAD, world.clock.now)
    assert [(d.recipient, d.fallback) for d in deliveries] == [(WORKER, True)]
    ticket = await world.submit()
    await world.tickets.post_pending_cards()
    # the grid's chat has its card: no private copy for the grid worker
    assert await world.texts(HEAD) == [] and await world.texts(WORKER) == []
    assert await world.texts(GRID_CHAT)
    await world.deliver()
    world.clock.now = ticket.remind_at
    assert await world.tickets.run_due() == 1
    reminders = await world.texts(WORKER)
    assert len(reminders) == 1
    assert reminders[0].startswith(t("en", "backup.for", name="张三"))


async def test_a_named_backup_receives_the_card_marked(store):
    world, backups = await _world(store)
    head = await world.actor(HEAD)
    await backups.name_backup(head, WORKER)
    await backups.away(head)
    await world.submit()
    await world.tickets.post_pending_cards()
    cards = await world.texts(WORKER)
    assert len(cards) == 1 and cards[0].startswith(t("en", "backup.for", name="张三"))


async def test_back_ends_it_and_summarises_what_the_backup_did(store):
    world, backups = await _world(store)
    head = await world.actor(HEAD)
    await backups.name_backup(head, WORKER)
    await backups.away(head)
    ticket = await world.submit()
    await world.tickets.post_pending_cards()
    await world.deliver()
    await world.tickets.acknowledge(await world.actor(WORKER), ticket.id)
    world.clock.now += 60
    await backups.away(head, "2099-01-01")  # a new date: the absence still began earlier
    summary = await backups.back(head)
    assert f"#{ticket.id}" in summary and "王五" in summary
    assert t("en", "back.summary") in summary
    assert (await store.backups.get(HEAD)).away_since is None
    assert [d.recipient for d in await deliver_to(store, HEAD, world.clock.now)] == [HEAD]
    actions = [e.action for e in (await store.audit.latest(["B01010101"], 10))[0]]
    assert actions == ["back", "away", "away", "backup"]
    await refused(store, backups.back(head), "back.not_away")


async def test_the_date_passing_ends_it_and_the_daily_run_tells_the_holder(store):
    world, backups = await _world(store)
    head = await world.actor(HEAD)
    await backups.name_backup(head, WORKER)
    today = datetime.fromtimestamp(world.clock.now, world.tickets.settings.tz).date()
    until, backup = await backups.away(head, today.isoformat())
    assert isinstance(backup, Person) and backup.user_id == WORKER
    assert until is not None and until > world.clock.now
    world.clock.now = until
    assert [d.recipient for d in await deliver_to(store, HEAD, world.clock.now)] == [HEAD]
    assert await backups.end_expired() == 1
    assert await world.texts(HEAD) == [t("en", "back.nothing")]
    assert await backups.end_expired() == 0


async def test_a_liaison_away_their_backup_gets_the_private_whistle_card_marked(store):
    world, backups = await _world(store)
    async with store.transaction():
        await store.map.unbind("MZJ")
        await store.people.touch(LIAISON, "赵六", None, None, "en", True)
    await grant(store, 77, "department_liaison", "MZJ")
    liaison = await world.actor(LIAISON)
    await backups.name_backup(liaison, 77)
    await backups.away(liaison, "2099-01-01")
    ticket = await world.submit()
    await world.deliver()
    await world.tickets.whistle(await world.actor(WORKER), ticket.id, "MZJ")
    assert await world.pending(LIAISON) == []
    cards = await world.texts(77)
    assert len(cards) == 1 and not cards[0].startswith(t("en", "backup.for", name="赵六"))
    await world.deliver()
    async with store.transaction():
        await store.people.revoke(77, "department_liaison", "MZJ")
    # a backup above the post is not possible for a department: only its own liaisons
    await refused(store, backups.name_backup(liaison, WORKER), "backup.unsuitable")
