"""Personal data (SPEC §14) over both stores: consent before a first Submit, /mydata's
sections, erasure (searched for in every table and column afterwards), the retention of raw
updates and its setting."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.i18n import t
from bot.priority import Priority
from bot.services.errors import Refused
from bot.services.people import TelegramUser
from bot.services.privacy import EXPORT_SECTIONS, ExportSection, PrivacyService
from bot.settings import SettingsError, load_settings
from storage.models import Checkpoint, Partner
from storage.privacy import ERASED_BASE
from storage.store import Store
from tests.support.schedules import Clock, build
from tests.support.tickets import (
    ADMIN,
    DRAFT_CARD,
    GRID_CHAT,
    HEAD,
    NEIGHBOUR,
    RESIDENT,
    WORKER,
    TicketWorld,
    ticket_world,
)

PHRASE = "东门第三根路灯闪了整整九天"  # a unique phrase of the resident's opinion
NAME, USERNAME = "欧阳", "ouyang_test_7"
PERSON = 5_550_123_987  # a resident with an id as Telegram gives them (found only as itself)
CLERK = 5_550_777_001   # a partner shop's clerk (not staff: may /forget while a clerk)
PHOTO = "AgACAgUAAxkBAAIvisitphoto"  # the photo of their checkpoint visit
PERIOD = "2026-W49"


def privacy_of(world: TicketWorld, **kwargs: Any) -> PrivacyService:
    t = world.tickets
    return PrivacyService(world.store, world.access, t.people, t.outbox, t.settings, t,
                          clock=world.clock, **kwargs)


async def draft(world: TicketWorld, user_id: int = RESIDENT, text: str = PHRASE) -> None:
    await world.tickets.add_to_draft(user_id, text, None)
    await world.tickets.draft_shown(user_id, DRAFT_CARD)


async def test_a_first_submit_waits_for_agree_and_agree_submits_the_draft_at_once(store):
    world = await ticket_world(store)
    privacy = privacy_of(world)
    await draft(world)
    assert await privacy.submit(RESIDENT, DRAFT_CARD) is None
    # nothing beyond the draft: no ticket, nothing queued, no consent
    assert await store.tickets.get(1) is None
    assert await store.outbox.pending() == []
    assert not await privacy.consented(RESIDENT)
    assert (await store.drafts.get(RESIDENT)).data["text"] == PHRASE
    # the notice again at the next Submit (Cancel changes nothing)
    assert await privacy.submit(RESIDENT, DRAFT_CARD) is None
    agreed = await privacy.agree(RESIDENT, DRAFT_CARD)
    assert agreed.new and agreed.ticket is not None and agreed.ticket.text == PHRASE
    assert await privacy.consented(RESIDENT) and await store.drafts.get(RESIDENT) is None
    # later Submits go straight through
    await draft(world, text="第二条意见")
    second = await privacy.submit(RESIDENT, DRAFT_CARD)
    assert second is not None and second.id == agreed.ticket.id + 1


async def test_agree_from_privacy_submits_nothing_and_a_stale_card_is_refused(store):
    world = await ticket_world(store)
    privacy = privacy_of(world)
    await draft(world)
    agreed = await privacy.agree(RESIDENT, None)
    assert agreed.new and agreed.ticket is None
    assert await store.tickets.get(1) is None and await store.drafts.get(RESIDENT) is not None
    assert not (await privacy.agree(RESIDENT, None)).new
    with pytest.raises(Refused) as refused:
        await privacy.submit(NEIGHBOUR, DRAFT_CARD)  # no draft at all
    assert refused.value.key == "draft.none"
    # Agree under the notice of a card shown again since: refused as stale, agreed still
    await draft(world, NEIGHBOUR, text="新的意见")
    with pytest.raises(Refused) as refused:
        await privacy.agree(NEIGHBOUR, DRAFT_CARD + 1)
    assert refused.value.key == "button.stale"
    assert await privacy.consented(NEIGHBOUR) and await store.tickets.get(1) is None


async def _full_life(world: TicketWorld, privacy: PrivacyService) -> int:
    """A resident with a name, two tickets (one quoted by staff in a note), a horn check-in
    with confirmed hours, a me-too, raw updates and a draft; returns the horn's id."""
    store = world.store
    async with store.transaction():
        await store.people.ensure(PERSON)
        await store.people.set_building(PERSON, "B01010101")
        await store.people.touch(PERSON, NAME, "小明", USERNAME, "zh-hans", private=True)
        await store.people.set_volunteer_profile(PERSON, ["medical"], "anytime")
        await store.people.grant(PERSON, "volunteer", "B01010101", PERSON)
    await draft(world, PERSON, text=f"{PHRASE}\n电话 13912345678")
    first = (await privacy.agree(PERSON, DRAFT_CARD)).ticket
    assert first is not None
    await draft(world, PERSON, text="楼下垃圾没人收")
    await privacy.submit(PERSON, DRAFT_CARD)
    await world.deliver()  # the cards went out, their copies were kept
    await world.tickets.post_pending_cards()
    await world.deliver()
    # staff quote the resident in a note: the staff member's words stay
    async with store.transaction():
        await store.tickets.add_event(first.id, WORKER, "comment", f"居民说：“{PHRASE}”")
        horn = await store.horns.create(
            owner_id=WORKER, level="service", scope=["G0101"], grid_code="G0101",
            community_code="C01", title="清理楼道", details="", place="", starts_at=None,
            ends_at=None, needed=3, fill_by=None, skills=[], short_form=False,
            resound_at=None)
        await store.db.execute(
            "INSERT INTO horn_checkins (horn_id, person_id, state, seq, at, updated_at, "
            "present, hours, points) VALUES (?, ?, 'in', 1, ?, ?, 1, 2.5, 25)",
            (horn, PERSON, time.time(), time.time()))
        await store.db.execute("UPDATE horns SET confirmed_at = ? WHERE id = ?",
                               (time.time(), horn))
        await store.people.add_hours(PERSON, 2.5, 25)
    await store.inbox.store([
        {"update_id": 901, "message": {"message_id": 1, "date": 1, "text": PHRASE,
                                       "chat": {"id": PERSON, "type": "private"},
                                       "from": {"id": PERSON, "first_name": NAME,
                                                "username": USERNAME}}},
        {"update_id": 902, "message": {"message_id": 2, "date": 1, "text": "hi",
                                       "chat": {"id": GRID_CHAT, "type": "supergroup"},
                                       "from": {"id": PERSON, "first_name": NAME}}},
        {"update_id": 903, "message": {"message_id": 3, "date": 1, "text": "other",
                                       "chat": {"id": HEAD, "type": "private"},
                                       "from": {"id": HEAD, "first_name": "Head"}}}])
    await draft(world, PERSON, text="还没写完的草稿")
    await _shop_meeting_and_visit(store, horn)
    return horn


async def _shop_meeting_and_visit(store: Store, horn: int) -> None:
    """The later features' rows of the same person: the horn's points on the ledger and 10
    of them spent at a partner shop, an answer to a building meeting and a sign-in there, a
    checkpoint visit with a note (the unique phrase) and a photo, and a patrol."""
    now = time.time()
    async with store.transaction():
        await store.shop.credit(PERSON, 25, now, horn)
        await store.shop.upsert_partner(Partner(code="P1", community_code="C01",
                                                name="老王便利店"))
        await store.people.ensure(CLERK)
        await store.people.grant(CLERK, "partner_clerk", "C01", ADMIN)
        await store.shop.add_clerk(CLERK, "P1", ADMIN, now)
        code = await store.shop.reserve("QX7K2M", PERSON, 10, now, now + 600)
        assert code is not None
        assert await store.shop.open(code.id, "P1", CLERK, now)
        assert await store.shop.spend(code.id, "P1", CLERK, now)
        meeting = await store.meetings.create(
            kind="building", unit_code="B01010101", grid_code="G0101", community_code="C01",
            title="一号楼见面会", place="楼下", agenda="", starts_at=now, ends_at=now + 3600,
            organiser_id=HEAD, remind_at=None, offer_at=None, wrap_at=None,
            source_update_id=None)
        assert meeting is not None
        await store.meetings.record_answer(meeting.id, PERSON, True, "B01010101")
        assert await store.meetings.sign_in(meeting.id, PERSON, "B01010101", now, False)
        # a member unit's contact is invited privately: a post in their own chat
        assert await store.meetings.add_post(meeting.id, "invite", PERSON, 0, "B01010101")
        await store.checkpoints.upsert(Checkpoint(code="CP1", grid_code="G0101",
                                                  name="农贸市场", matter="food_safety",
                                                  lat=39.9, lon=116.4))
        visit = await store.checkpoints.add_visit("CP1", PERSON, now, PERIOD, 39.9, 116.4,
                                                  12.0, None)
        await store.checkpoints.annotate(visit, f"巡查记录：{PHRASE}", PHOTO)
        patrol = await store.schedules.add_patrol("G0101", PERSON, now, "39.9,116.4", None,
                                                  None)
        await store.schedules.set_patrol_note(patrol, f"巡查记录：{PHRASE}")


async def test_mydata_lists_profile_roles_tickets_with_timelines_checkins_and_hours(store):
    world = await ticket_world(store)
    privacy = privacy_of(world)
    horn = await _full_life(world, privacy)
    export = await privacy.export(PERSON)
    data = json.loads(export.json_bytes)["sections"]
    assert [s.name for s in EXPORT_SECTIONS] == list(data)
    assert data["profile"]["first_name"] == NAME and data["profile"]["username"] == USERNAME
    assert data["profile"]["consented_at"] is not None
    assert [(r["role"], r["unit_code"]) for r in data["roles"]] == [("volunteer", "B01010101")]
    tickets = data["tickets"]
    assert [t["id"] for t in tickets] == [1, 2] and PHRASE in tickets[0]["text"]
    assert [e["kind"] for e in tickets[0]["timeline"]] == ["created", "comment"]
    assert [c["horn_id"] for c in data["checkins"]] == [horn]
    assert data["hours"][0]["hours"] == 2.5 and data["hours"][0]["points"] == 25
    assert data["draft"][0]["data"]["text"] == "还没写完的草稿"
    # the later features': the ledger and its balance, the code spent, the meeting, the visit
    assert data["ledger"]["balance"] == 15
    assert [(line["kind"], line["delta"]) for line in data["ledger"]["lines"]] == [
        ("credit", 25), ("reserve", -10)]
    assert data["ledger"]["lines"][0]["horn_title"] == "清理楼道"
    assert [(r["code"], r["points"], r["status"], r["partner"])
            for r in data["redemptions"]] == [("QX7K2M", 10, "spent", "老王便利店")]
    meetings = data["meetings"]
    assert [(r["title"], r["attend"]) for r in meetings["replies"]] == [("一号楼见面会", 1)]
    assert [(r["title"], r["unit_code"]) for r in meetings["signins"]] == [
        ("一号楼见面会", "B01010101")]
    assert meetings["organised"] == []
    assert [(v["name"], v["period"], v["photo_file_id"]) for v in data["checkpoint_visits"]] \
        == [("农贸市场", PERIOD, PHOTO)]
    assert PHRASE in data["checkpoint_visits"][0]["note"]
    assert [p["grid_code"] for p in data["patrols"]] == ["G0101"]
    text = export.text_bytes.decode()
    assert PHRASE in text and "清理楼道" in text and USERNAME in text
    # the files go to the person through the outbox
    await world.deliver()
    await privacy.send_export(PERSON)
    sent = [i for i in await store.outbox.pending() if i.method == "sendDocument"]
    assert [i.chat_id for i in sent] == [PERSON, PERSON]
    assert [i.payload["document"]["filename"].rsplit(".", 1)[1] for i in sent] == \
        ["json", "txt"]


async def test_mydata_of_a_person_with_a_ticket_a_horn_and_a_redemption_lists_each(store):
    """Issue 20's "done means", on the readable file: each under its own title."""
    world = await ticket_world(store)
    privacy = privacy_of(world)
    await _full_life(world, privacy)
    text = (await privacy.export(PERSON)).text_bytes.decode()
    sections = {}
    for block in text.split("\n== ")[1:]:
        title, _, body = block.partition(" ==\n")
        sections[title] = body
    locale = "zh-Hans"  # the person's language
    assert PHRASE in sections[t(locale, "mydata.tickets")]
    assert "清理楼道" in sections[t(locale, "mydata.checkins")]
    assert "QX7K2M" in sections[t(locale, "mydata.redemptions")]
    assert "老王便利店" in sections[t(locale, "mydata.redemptions")]
    assert "balance: 15" in sections[t(locale, "mydata.ledger")]
    assert "一号楼见面会" in sections[t(locale, "mydata.meetings")]
    assert "农贸市场" in sections[t(locale, "mydata.checkpoint_visits")]
    assert t(locale, "mydata.none") in sections[t(locale, "mydata.me_too")]


async def test_a_section_added_by_another_feature_is_exported(store):
    world = await ticket_world(store)

    async def votes(store: Store, user_id: int) -> Any:
        return [{"poll": "电梯加装", "choice": "同意"}]

    privacy = privacy_of(world, sections=(*EXPORT_SECTIONS,
                                          ExportSection("votes", "mydata.none", votes)))
    export = await privacy.export(PERSON)
    assert json.loads(export.json_bytes)["sections"]["votes"] == [
        {"poll": "电梯加装", "choice": "同意"}]
    assert "电梯加装" in export.text_bytes.decode()


async def everything(store: Store) -> list[tuple[str, str, str]]:
    """Every value of every column of every table, as text: (table, column, value)."""
    if store.db.dialect == "postgresql":
        tables = [r[0] for r in await store.db.fetchall(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'")]
    else:
        tables = [r[0] for r in await store.db.fetchall(
            "SELECT name FROM sqlite_master WHERE type = 'table' "
            "AND name NOT LIKE 'sqlite_%'")]
    found = []
    for table in tables:
        for row in await store.db.fetchall(f"SELECT * FROM {table}"):
            for column in row.keys():
                if row[column] is not None:
                    found.append((table, column, str(row[column])))
    return found


def hits(values: list[tuple[str, str, str]], needle: str) -> list[tuple[str, str, str]]:
    return [(t, c, v[:80]) for t, c, v in values if needle in v]


async def test_erasure_leaves_only_what_spec_14_allows(store):
    world = await ticket_world(store)
    privacy = privacy_of(world)
    await _full_life(world, privacy)
    erased = await privacy.erase(PERSON)
    assert erased >= ERASED_BASE
    await world.deliver()  # the cards' edits to their erased form
    values = await everything(store)
    ident = str(PERSON)
    # the id: nowhere as a person, a chat, an actor or in a stored update
    id_hits = [(t, c, v) for t, c, v in values
               if v == ident or f'"id":{ident},' in v or f'"id":{ident}}}' in v]
    assert id_hits == []
    assert hits(values, NAME) == [] and hits(values, USERNAME) == []
    assert hits(values, "13912345678") == [] and hits(values, PHOTO) == []
    # their words stay only where staff quoted them (not in their visit's or patrol's note)
    assert [(t, c) for t, c, _ in hits(values, PHRASE)] == [("ticket_events", "note")]
    # the tickets stay, their reporter erased and their words out
    first = await store.tickets.get(1)
    assert first is not None and first.reporter_id == erased and first.text == ""
    assert (await store.tickets.get(2)).reporter_id == erased
    person = await store.people.get(erased)
    assert person is not None and person.erased and person.hours == 2.5
    assert person.points == 25  # earned, on the boards under "erased"
    # the shop: the balance and its ledger stay together; the spent code still counts for
    # its partner
    assert await store.shop.balance(erased) == await store.shop.ledger_sum(erased) == 15
    spent = await store.shop.spent_per_partner(0, time.time() + 1, None)
    assert [(s.partner_code, s.redemptions, s.points) for s in spent] == [("P1", 1, 10)]
    assert (await store.shop.by_code("QX7K2M")).user_id == erased
    # the meeting: the answer and the sign-in count, by unit, naming no one
    attendance = await store.meetings.attendance_between(0, time.time() + 1)
    assert [(a.unit_code, a.user_id) for a in attendance] == [("B01010101", erased)]
    assert await store.meetings.counts(attendance[0].meeting_id) == (1, 0)
    assert await store.meetings.post_in(attendance[0].meeting_id, "invite", PERSON) is None
    # the checkpoint: visited this period still, without their note and photo
    assert await store.checkpoints.visited(["CP1"], {"CP1": PERIOD}) == {"CP1"}
    visit = await store.db.fetchone("SELECT * FROM checkpoint_visits")
    assert (visit["user_id"], visit["note"], visit["photo_file_id"]) == (erased, None, None)
    assert person.first_name == "" and person.username is None and person.locale is None
    assert await store.people.get(PERSON) is None
    assert await store.drafts.get(PERSON) is None
    # someone else's update stays
    assert [u for u, _ in await store.inbox.pending()] == [903]
    # every copy of the cards was edited to name the reporter as erased
    assert await store.outbox.pending() == []
    edits = await store.db.fetchall(
        "SELECT payload FROM outbox WHERE method = 'editMessageText'")
    assert edits and all("已注销" in r[0] or "erased" in r[0] for r in edits)


async def test_staff_and_superadmins_are_refused_until_their_roles_are_revoked(store):
    world = await ticket_world(store)
    privacy = privacy_of(world)
    for user_id, key in ((HEAD, "forget.staff_first"), (WORKER, "forget.staff_first"),
                         (ADMIN, "forget.superadmin")):
        with pytest.raises(Refused) as refused:
            await privacy.erase(user_id)
        assert refused.value.key == key
    assert await store.people.get(HEAD) is not None
    async with store.transaction():
        await store.people.revoke(HEAD, "building_head", "B01010101")
    await privacy.erase(HEAD)
    assert await store.people.get(HEAD) is None
    with pytest.raises(Refused) as refused:
        await privacy.erase(HEAD)
    assert refused.value.key == "forget.nobody"
    # a former grid worker: what they did (a horn, a bound chat, a note) stays, by no one
    ticket = await world.submit()
    async with store.transaction():
        horn = await store.horns.create(
            owner_id=WORKER, level="service", scope=["G0101"], grid_code="G0101",
            community_code="C01", title="巡查", details="", place="", starts_at=None,
            ends_at=None, needed=1, fill_by=None, skills=[], short_form=False,
            resound_at=None)
        await store.db.execute("UPDATE bindings SET bound_by = ? WHERE chat_id = ?",
                               (WORKER, GRID_CHAT))
        await store.tickets.add_event(ticket.id, WORKER, "comment", "已派人查看")
        await store.people.revoke(WORKER, "grid_worker", "G0101")
    erased = await privacy.erase(WORKER)
    assert (await store.db.fetchval("SELECT owner_id FROM horns WHERE id = ?", (horn,))) \
        == erased
    assert await store.db.fetchval(
        "SELECT bound_by FROM bindings WHERE chat_id = ?", (GRID_CHAT,)) == erased
    notes = [(e.actor_id, e.note) for e in await store.tickets.events(ticket.id)]
    assert (erased, "已派人查看") in notes


async def test_a_clerk_is_erased_and_what_they_spent_stays_by_no_one(store):
    world = await ticket_world(store)
    privacy = privacy_of(world)
    await _full_life(world, privacy)
    erased = await privacy.erase(CLERK)  # a clerk is not staff: no revoke first
    code = await store.shop.by_code("QX7K2M")
    assert (code.user_id, code.opened_by, code.spent_by, code.status) == (
        PERSON, erased, erased, "spent")
    assert await store.shop.clerk_of(CLERK) == []
    assert await store.db.fetchval(
        "SELECT COUNT(*) FROM partner_clerks WHERE user_id = ?", (CLERK,)) == 0
    assert await store.people.get(CLERK) is None


async def test_raw_updates_handled_and_older_than_the_retention_are_deleted(store):
    await store.inbox.store([{"update_id": n, "message": {"chat": {"id": n}}}
                             for n in (1, 2, 3)])
    await store.inbox.mark_processed([1, 2])
    old = (datetime.now(UTC) - timedelta(days=40)).isoformat(timespec="milliseconds")
    async with store.transaction():
        await store.db.execute("UPDATE inbox SET received_at = ? WHERE update_id IN (1, 3)",
                               (old,))
        cutoff = (datetime.now(UTC) - timedelta(days=30)).isoformat(timespec="milliseconds")
        assert await store.privacy.expire_raw(cutoff) == 1
    left = [r[0] for r in await store.db.fetchall("SELECT update_id FROM inbox ORDER BY 1")]
    assert left == [2, 3]  # too recent; not handled yet


def test_the_retention_setting_is_validated():
    assert load_settings().raw_retention == timedelta(days=30)
    assert load_settings(raw_retention="12h").raw_retention == timedelta(hours=12)
    for bad in ("0d", "thirty days", "-1d"):
        with pytest.raises(SettingsError) as error:
            load_settings(raw_retention=bad)
        assert str(error.value).startswith("GRIDHORN_RAW_RETENTION: ")


async def test_the_daily_run_deletes_raw_updates_past_the_retention(store):
    clock = Clock(datetime.now(UTC))
    built = build(store, clock, raw_retention="2d")
    await store.inbox.store([{"update_id": n, "message": {"chat": {"id": n}}} for n in (1, 2)])
    await store.inbox.mark_processed([1, 2])
    async with store.transaction():
        await store.db.execute("UPDATE inbox SET received_at = ? WHERE update_id = 1",
                               ((datetime.now(UTC) - timedelta(days=3)).isoformat(),))
    ran = await built.scheduler.run_due()
    assert "daily" in [r.job for r in ran]
    assert [r[0] for r in await store.db.fetchall("SELECT update_id FROM inbox")] == [2]
    # three days on, the daily run of that day takes the other
    clock.set(clock() + timedelta(days=3))
    await built.scheduler.run_due()
    assert await store.db.fetchall("SELECT update_id FROM inbox") == []


async def test_a_person_erased_elsewhere_is_recorded_anew_when_they_write_again(store):
    world = await ticket_world(store)
    here = world.tickets.people
    user = TelegramUser(PERSON, NAME, username=USERNAME, language_code="zh-hans")
    await here.identify(user, private=True)  # known to this process
    await privacy_of(world).erase(PERSON)    # as another replica or the command line would
    here._known[PERSON] = (NAME, None, USERNAME, "zh-hans", True)  # this one still thinks so
    actor, _ = await here.identify(user, private=True)
    person = await store.people.get(PERSON)
    assert actor.user_id == PERSON and person is not None and person.consented_at is None


async def test_nothing_is_queued_for_an_erased_person(store):
    world = await ticket_world(store)
    privacy = privacy_of(world)
    await _full_life(world, privacy)
    erased = await privacy.erase(PERSON)
    await world.deliver()
    async with store.transaction():  # a horn's credit, a reminder … to the erased id
        assert await world.tickets.outbox.send(erased, "记入 2.5 小时",
                                               priority=Priority.PERSONAL) is None
    assert await store.outbox.pending() == []
