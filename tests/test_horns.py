"""The assembly horn's service on a temporary store: who may sound what, where it goes,
check-ins and the waiting list, widening, re-sounding and hours credited once."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from bot.i18n import t
from bot.services.access import Access
from bot.services.backups import BackupService
from bot.services.errors import Refused
from bot.services.horn_closing import POINTS_PER_HOUR
from bot.services.horns import HornService
from bot.services.outbox import Outbox, Priority
from bot.services.people import PeopleService
from bot.settings import load_settings
from storage.models import Chat
from tests.support.harness import grant, seed_map

ADMIN = 999
HEAD, WORKER, STAFF, LIAISON, RESIDENT = 1, 2, 4, 5, 7
TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 5, 1, 8, 0, tzinfo=TZ).timestamp()


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def world(store):
    await seed_map(store)
    for user_id, role, unit in [(HEAD, "building_head", "B01010101"),
                                (WORKER, "grid_worker", "G0101"),
                                (STAFF, "community_staff", "C01"),
                                (LIAISON, "department_liaison", "MZJ")]:
        await grant(store, user_id, role, unit)
    async with store.transaction():
        await store.people.ensure(RESIDENT)
        await store.people.set_building(RESIDENT, "B01010101")
    settings = load_settings(superadmins=str(ADMIN), quiet_hours="", horn_resound_min=10,
                             timezone="Asia/Shanghai")
    access = Access(store, settings.superadmins)
    people = PeopleService(store, access, settings)
    clock = Clock()
    horns = HornService(store, access, people, Outbox(store, settings), settings, clock=clock)
    return horns, access, clock


async def bind(store, code, chat_id, thread_id=0, active=True):
    async with store.transaction():
        await store.map.upsert_chat(Chat(chat_id=chat_id, type="supergroup", title=code,
                                         active=active))
        await store.map.bind(code, chat_id, thread_id, None)


async def sound(horns, access, user_id, text):
    """The short form, then Publish."""
    actor = await access.actor(user_id)
    await horns.short_form(actor, text)
    return await horns.publish(actor)


async def pending(store, method="sendMessage"):
    return [i for i in await store.outbox.pending() if i.method == method]


async def deliver(store, horns, items=None):
    """Play the sender: mark pending items sent and run the hooks the horn service
    registered with its outbox."""
    for n, item in enumerate(items or await store.outbox.pending(), start=1000):
        async with store.transaction():
            await store.outbox.mark_sent(item.id, n, {})
            hook = horns.outbox.hooks.sent_hook(item.ref)
            if hook is not None:
                await hook(item, {"message_id": n})


async def volunteer(store, user_id, unit, skills=(), building=None, availability=None):
    await grant(store, user_id, "volunteer", unit)
    async with store.transaction():
        await store.people.set_volunteer_profile(user_id, skills, availability)
        if building:
            await store.people.set_building(user_id, building)


# ---------------------------------------------------------------- permissions


@pytest.mark.parametrize("user_id, text, refused", [
    (HEAD, "service B01010101 5 Move boxes", None),
    (HEAD, "major B01010101 5 Move boxes", "horn.level_not_allowed"),
    (HEAD, "service B01010102 5 Move boxes", "horn.scope_not_allowed"),   # another building
    (HEAD, "service G0101 5 Move boxes", "horn.scope_not_allowed"),       # above the building
    (WORKER, "emergency G0101 20 Sandbags", None),
    (WORKER, "major B01010102 3 Fix the door", None),
    (WORKER, "service G0102 3 Other grid", "horn.scope_not_allowed"),
    (WORKER, "major C01 3 The community", "horn.scope_not_allowed"),
    (STAFF, "emergency C01 50 Flood", None),
    (ADMIN, "emergency G0102 5 Anywhere", None),
    (LIAISON, "service B01010101 2 Not staff", "horn.not_staff"),
    (RESIDENT, "service B01010101 2 Not staff", "horn.not_staff"),
    (WORKER, "emergency MZJ 2 A department", "horn.bad_scope"),
    (WORKER, "emergency X999 2 Nowhere", "map.unknown_code"),
    (WORKER, "loud G0101 2 Bad level", "horn.bad_level"),
    (WORKER, "service G0101 many Bad number", "horn.bad_number"),
    (WORKER, "service G0101", "horn.usage"),
])
async def test_who_may_sound_which_horn_where(world, user_id, text, refused):
    horns, access, _ = world
    actor = await access.actor(user_id)
    if refused is None:
        flow = await horns.short_form(actor, text)
        assert flow.step == "preview"
    else:
        with pytest.raises(Refused) as caught:
            await horns.short_form(actor, text)
        assert caught.value.key == refused


async def test_levels_offered_by_role(world):
    horns, access, _ = world
    assert horns.levels_for(await access.actor(HEAD)) == ("service",)
    assert horns.levels_for(await access.actor(WORKER)) == ("service", "major", "emergency")
    assert horns.levels_for(await access.actor(RESIDENT)) == ()
    with pytest.raises(Refused, match="horn.not_staff"):
        await horns.start(await access.actor(RESIDENT))


async def test_publish_rechecks_rights_and_a_second_publish_finds_nothing(world, store):
    horns, access, _ = world
    actor = await access.actor(HEAD)
    await horns.short_form(actor, "service B01010101 5 Move boxes")
    async with store.transaction():
        await store.people.revoke(HEAD, "building_head", "B01010101")
    with pytest.raises(Refused, match="horn.not_staff|horn.scope_not_allowed|horn.level"):
        await horns.publish(await access.actor(HEAD))
    assert await store.horns.get(1) is None
    await grant(store, HEAD, "building_head", "B01010101")
    await horns.publish(await access.actor(HEAD))
    with pytest.raises(Refused, match="horn.flow_gone"):
        await horns.publish(await access.actor(HEAD))
    assert (await store.horns.get(2)) is None


# ---------------------------------------------------------------- the guided flow


async def test_guided_flow_repeats_a_step_on_bad_input(world):
    horns, access, clock = world
    actor = await access.actor(WORKER)
    flow = await horns.start(actor)
    assert flow.step == "level"
    flow = await horns.press(actor, "lvl", "major")
    view = await horns.prompt(actor, "en", flow)
    assert flow.step == "scope" and any(b["callback_data"] == "hf:scope:G0101"
                                        for row in view.buttons for b in row)
    with pytest.raises(Refused, match="horn.scope_not_allowed"):
        await horns.answer(actor, "G0102")
    flow = await horns.answer(actor, "B01010101 G0101")   # the grid covers the building
    assert flow.data["scope"] == ["G0101"]
    for text in ("Clean the yard", "Bring gloves", "East gate"):
        flow = await horns.answer(actor, text)
    assert flow.step == "start"
    with pytest.raises(Refused) as bad:
        await horns.answer(actor, "25:99")
    assert bad.value.key == "horn.bad_time" and bad.value.values["example"].startswith("2026-05-01")
    assert (await horns.flow(WORKER)).step == "start"                       # the step stays
    flow = await horns.answer(actor, "14:00")                               # today
    assert flow.data["start"] == datetime(2026, 5, 1, 14, 0, tzinfo=TZ).timestamp()
    with pytest.raises(Refused, match="horn.end_before_start"):
        await horns.answer(actor, "13:00")
    flow = await horns.answer(actor, "2026-05-01 17:30")
    with pytest.raises(Refused, match="horn.bad_number"):
        await horns.answer(actor, "0")
    flow = await horns.answer(actor, "12")
    assert flow.step == "fill_by"
    with pytest.raises(Refused, match="horn.fill_by_late"):
        await horns.answer(actor, "18:00")
    flow = await horns.press(actor, "skip", "")
    assert flow.step == "skills"
    flow = await horns.press(actor, "sk", "medical")
    flow = await horns.press(actor, "sk", "driving")
    flow = await horns.press(actor, "sk", "medical")
    assert flow.data["skills"] == ["driving"]
    with pytest.raises(Refused, match="button.stale"):
        await horns.press(actor, "lvl", "service")                          # an old step's button
    flow = await horns.press(actor, "skd", "")
    preview = await horns.prompt(actor, "en", flow)
    for part in ("Major", "第一网格 (G0101)", "Clean the yard", "Bring gloves", "East gate",
                 "2026-05-01 14:00", "2026-05-01 17:30", "People needed: 12", "driving"):
        assert part in preview.text, part
    published = await horns.publish(actor)
    assert published.horn.hours is None and published.horn.needed == 12


# ---------------------------------------------------------------- where it goes


async def test_posts_reach_every_bound_chat_in_scope_once(world, store):
    horns, access, _ = world
    await bind(store, "G0101", -101, thread_id=7)
    await bind(store, "E010101", -102)
    await bind(store, "B01010101", -103)
    await bind(store, "B01010102", -104, active=False)   # the bot was removed there
    await bind(store, "G0102", -105)                     # another grid
    await bind(store, "C01", -106)                       # above the scope
    published = await sound(horns, access, WORKER, "major G0101 10 Sandbags")
    posts = {i.chat_id: i for i in await pending(store) if i.chat_id < 0}
    assert set(posts) == {-101, -102, -103} and published.chats == 3
    assert posts[-101].payload["message_thread_id"] == 7
    assert all(p.priority == Priority.MAJOR and not p.quiet for p in posts.values())
    assert "👥 报到 0/10" in posts[-103].payload["text"]
    assert [b["callback_data"] for b in posts[-103].payload["reply_markup"]["inline_keyboard"][0]
            ] == [f"h:in:{published.horn.id}", f"h:out:{published.horn.id}"]


async def test_service_posts_wait_out_quiet_hours_and_call_nobody(world, store):
    horns, access, _ = world
    await bind(store, "B01010101", -103)
    await volunteer(store, 20, "B01010101")
    published = await sound(horns, access, HEAD, "service B01010101 3 Carry groceries")
    items = await pending(store)
    assert [(i.chat_id, i.quiet, i.priority) for i in items] == [(-103, True, Priority.SERVICE)]
    assert published.volunteers == 0


async def test_closing_a_horn_drops_its_posts_not_yet_sent(world, store):
    horns, access, _ = world
    await bind(store, "B01010101", -103)
    published = await sound(horns, access, HEAD, "service B01010101 3 Carry groceries")
    assert [i.chat_id for i in await pending(store)] == [-103]
    await horns.close(await access.actor(HEAD), published.horn.id)
    assert [i.chat_id for i in await pending(store)] == [HEAD]  # the owner's attendance only
    rows = await store.db.fetchall("SELECT status, last_error FROM outbox WHERE chat_id = -103")
    assert [(r["status"], r["last_error"]) for r in rows] == [("dropped", "horn closed")]


async def test_a_post_on_its_way_when_the_horn_closes_gets_the_summary_and_is_unpinned(
        world, store):
    horns, access, _ = world
    await bind(store, "G0101", -101)
    async with store.transaction():
        chat = await store.map.chat(-101)
        await store.map.upsert_chat(chat.model_copy(update={"can_pin": True}))
    published = await sound(horns, access, WORKER, "emergency G0101 5 Sandbags")
    on_the_wire = await pending(store)      # the sender has picked the post...
    await horns.close(await access.actor(WORKER), published.horn.id)
    await deliver(store, horns, on_the_wire)  # ...and it arrives after the close
    queued = await store.outbox.pending()
    assert [(i.method, i.payload.get("message_id")) for i in queued
            if i.chat_id == -101 and i.method == "unpinChatMessage"] == [
        ("unpinChatMessage", 1000)]
    summaries = [i for i in queued if i.chat_id == -101 and i.method == "sendMessage"]
    assert len(summaries) == 1 and summaries[0].payload["reply_parameters"]["message_id"] == 1000


async def test_emergency_posts_are_pinned_and_volunteers_called_by_skill(world, store):
    horns, access, _ = world
    await bind(store, "G0101", -101)
    await volunteer(store, 20, "G0101", skills=("medical",))          # role in scope
    await volunteer(store, 21, "G0101", skills=("legal",))            # wrong skill
    await volunteer(store, 22, "C01", skills=("medical", "it"),       # lives in scope
                    building="B01010102")
    await volunteer(store, 23, "G0102", skills=("medical",))          # another grid
    await volunteer(store, 24, "B01010101", skills=("medical",))
    async with store.transaction():
        await store.people.set_blocked(24, True)                      # blocked the bot
    actor = await access.actor(WORKER)
    await horns.short_form(actor, "emergency G0101 20 Injured at the gate")
    flow = await horns.store.flows.get(WORKER)
    async with store.transaction():
        await store.flows.set(WORKER, "horn", "preview", {**flow.data, "skills": ["medical"]})
    published = await horns.publish(actor)
    items = await pending(store)
    private = sorted(i.chat_id for i in items if i.chat_id > 0)
    assert private == [20, 22] and published.volunteers == 2
    group = [i for i in items if i.chat_id < 0]
    assert group[0].payload["_pin"] is True and group[0].priority == Priority.EMERGENCY
    call = next(i for i in items if i.chat_id == 20)
    assert "点将" in call.payload["text"] and "报到 0/20" in call.payload["text"]

    # no skill asked: every volunteer in scope is called
    await horns.short_form(actor, "major G0101 5 Anyone")
    await horns.publish(actor)
    called = sorted(i.chat_id for i in await pending(store)
                    if i.chat_id > 0 and i.ref == "hcopy:2:private")
    assert called == [20, 21, 22]


async def test_a_post_is_queued_once_per_chat_and_round(world, store):
    horns, access, _ = world
    await bind(store, "G0101", -101)
    await bind(store, "B01010101", -103)
    horn = (await sound(horns, access, WORKER, "major G0101 5 Sandbags")).horn
    assert await horns.copies.post_to(horn, horn.scope) == 0          # Publish's round again
    assert await horns.copies.post_to(horn, ["B01010101"]) == 0       # a chat already posted
    assert sorted(i.chat_id for i in await pending(store)) == [-103, -101]
    assert await horns.copies.post_to(horn, horn.scope, round_=1) == 2  # a re-sound is new


async def test_volunteers_are_called_only_for_a_time_they_said_they_can_come(world, store):
    """SPEC §5 keeps each volunteer's availability: a volunteer who ticked weekends is not
    called up for a Friday morning, one who ticked evenings is for a Friday evening."""
    horns, access, _ = world
    for user_id, availability in ((20, "weekends"), (21, "weekdays"), (22, "evenings"),
                                  (23, "anytime"), (24, "Saturday mornings"), (25, None),
                                  (26, "weekends,evenings")):
        await volunteer(store, user_id, "G0101", availability=availability)
    actor = await access.actor(WORKER)

    async def called_for(start, end):
        await horns.short_form(actor, "major G0101 5 Sandbags")
        flow = await store.flows.get(WORKER)
        async with store.transaction():
            await store.flows.set(WORKER, "horn", "preview",
                                  {**flow.data, "short": False, "start": start, "end": end})
        published = await horns.publish(actor)
        ref = f"hcopy:{published.horn.id}:private"
        called = sorted(i.chat_id for i in await pending(store) if i.ref == ref)
        assert published.volunteers == len(called)
        return called

    friday = datetime(2026, 5, 1, 9, 0, tzinfo=TZ).timestamp()      # 2026-05-01 is a Friday
    assert await called_for(friday, friday + 3 * 3600) == [21, 23, 24, 25]
    assert await called_for(friday + 9 * 3600, friday + 11 * 3600) == [21, 22, 23, 24, 25, 26]
    assert await called_for(friday + 24 * 3600, None) == [20, 23, 24, 25, 26]   # Saturday
    # a horn without a time is for now (Friday 08:00)
    await horns.short_form(actor, "major G0101 5 Now")
    published = await horns.publish(actor)
    assert sorted(i.chat_id for i in await pending(store)
                  if i.ref == f"hcopy:{published.horn.id}:private") == [21, 23, 24, 25]


# ---------------------------------------------------------------- taps


async def test_quota_waiting_list_and_withdrawal(world, store):
    horns, access, _ = world
    await bind(store, "G0101", -101)
    horn = (await sound(horns, access, WORKER, "major G0101 2 Sandbags")).horn
    await volunteer(store, 20, "G0101")
    await deliver(store, horns)
    a, b, c, d = 31, 32, 33, 34
    assert (await horns.check_in(a, horn.id)).key == "horn.checked_in"
    assert (await horns.check_in(a, horn.id)).key == "horn.already_in"
    assert (await horns.check_in(b, horn.id)).key == "horn.checked_in"
    tap = await horns.check_in(c, horn.id)
    assert tap.key == "horn.waiting" and tap.values["position"] == 1
    tap = await horns.check_in(d, horn.id)
    assert tap.key == "horn.waiting" and tap.values["position"] == 2
    assert (await horns.check_in(c, horn.id)).key == "horn.already_waiting"
    assert await store.horns.counts(horn.id) == (2, 2)

    # the first waiting moves up when someone withdraws, and is told privately
    before = {i.id for i in await store.outbox.pending()}
    assert (await horns.cant_come(a, horn.id)).key == "horn.withdrawn"
    told = [i for i in await store.outbox.pending() if i.id not in before]
    assert [i.chat_id for i in told] == [c]
    assert t("zh-Hans", "horn.moved_up", id=horn.id, title="Sandbags") == \
        told[0].payload["text"]
    assert (await store.horns.checkin(horn.id, c)).state == "in"
    assert await store.horns.counts(horn.id) == (2, 1)
    # leaving the waiting list, declining, and coming back to the end of the line
    assert (await horns.cant_come(d, horn.id)).key == "horn.left_waiting"
    assert (await horns.cant_come(40, horn.id)).key == "horn.declined"
    assert (await horns.cant_come(40, horn.id)).key == "horn.already_declined"
    assert (await horns.check_in(a, horn.id)).key == "horn.waiting"
    assert await store.horns.counts(horn.id) == (2, 1)


async def test_two_taps_racing_record_one_check_in(world, store):
    import asyncio

    horns, access, _ = world
    horn = (await sound(horns, access, WORKER, "major G0101 5 Sandbags")).horn
    taps = await asyncio.gather(*(horns.check_in(31, horn.id) for _ in range(3)))
    assert sorted(tap.key for tap in taps) == ["horn.already_in", "horn.already_in",
                                               "horn.checked_in"]
    assert await store.horns.counts(horn.id) == (1, 0)
    assert [c.person_id for c in await store.horns.checkins(horn.id)] == [31]


async def test_many_taps_at_once_fill_the_seats_once_and_queue_the_rest_in_order(world, store):
    """Twenty people tap at the same moment (on PostgreSQL their transactions run side by
    side): three seats taken, the rest waiting at seventeen different places."""
    import asyncio

    horns, access, _ = world
    horn = (await sound(horns, access, WORKER, "major G0101 3 Sandbags")).horn
    people = range(200, 220)
    taps = await asyncio.gather(*(horns.check_in(person, horn.id) for person in people))
    assert sorted(tap.key for tap in taps) == ["horn.checked_in"] * 3 + ["horn.waiting"] * 17
    assert await store.horns.counts(horn.id) == (3, 17)
    positions = [await store.horns.waiting_position(horn.id, person) for person in people
                 if (await store.horns.checkin(horn.id, person)).state == "waiting"]
    assert sorted(positions) == list(range(1, 18))


async def test_counters_are_edited_on_every_copy_group_copies_first(world, store):
    horns, access, _ = world
    await bind(store, "G0101", -101)
    await bind(store, "B01010101", -103)
    await volunteer(store, 20, "G0101")
    horn = (await sound(horns, access, WORKER, "major G0101 5 Sandbags")).horn
    await deliver(store, horns)
    assert len(await store.horns.copies(horn.id)) == 3
    await horns.check_in(31, horn.id)
    await horns.check_in(32, horn.id)
    await horns.refresh_counters(horn.id)
    edits = await pending(store, "editMessageText")
    assert sorted(e.chat_id for e in edits) == [-103, -101, 20]
    assert all("报到 2/5" in e.payload["text"] for e in edits)
    group = [e.priority for e in edits if e.chat_id < 0]
    assert max(group) < min(e.priority for e in edits if e.chat_id > 0)
    await horns.refresh_counters(horn.id)   # nothing changed since: nothing more queued
    assert len(await pending(store, "editMessageText")) == 3


async def test_an_edit_coalesced_while_on_its_way_is_sent_again(world, store):
    horns, access, _ = world
    await bind(store, "G0101", -101)
    horn = (await sound(horns, access, WORKER, "major G0101 5 Sandbags")).horn
    await deliver(store, horns)
    await horns.check_in(31, horn.id)
    await horns.refresh_counters(horn.id)
    [on_the_wire] = await pending(store, "editMessageText")   # the sender has read it...
    await horns.check_in(32, horn.id)
    await horns.refresh_counters(horn.id)                     # ...and 2/5 replaced its payload
    assert "报到 2/5" in (await store.outbox.get(on_the_wire.id)).payload["text"]
    await deliver(store, horns, [on_the_wire])                # 1/5 is what went out
    [again] = await pending(store, "editMessageText")
    assert again.id != on_the_wire.id and "报到 2/5" in again.payload["text"]
    await deliver(store, horns)
    assert await store.outbox.pending() == []                 # and that is the end of it


async def test_counters_a_crash_left_stale_are_edited_at_start(world, store):
    horns, access, _ = world
    await bind(store, "G0101", -101)
    horn = (await sound(horns, access, WORKER, "major G0101 5 Sandbags")).horn
    await deliver(store, horns)
    await horns.check_in(31, horn.id)          # committed; the process dies before the edit
    assert await store.horns.dirty() == [horn.id]
    await horns.recover()
    [edit] = await pending(store, "editMessageText")
    assert "报到 1/5" in edit.payload["text"] and await store.horns.dirty() == []


async def test_a_copy_sent_late_is_brought_up_to_date(world, store):
    horns, access, _ = world
    await bind(store, "G0101", -101)
    horn = (await sound(horns, access, WORKER, "major G0101 5 Sandbags")).horn
    await horns.check_in(31, horn.id)         # before the post went out
    await deliver(store, horns)
    edits = await pending(store, "editMessageText")
    assert len(edits) == 1 and "报到 1/5" in edits[0].payload["text"]


async def test_taps_on_a_closed_horn_are_refused(world, store):
    horns, access, _ = world
    horn = (await sound(horns, access, WORKER, "major G0101 5 Sandbags")).horn
    await horns.close(await access.actor(WORKER), horn.id)
    for tap in (horns.check_in, horns.cant_come):
        with pytest.raises(Refused, match="horn.closed"):
            await tap(31, horn.id)


# ---------------------------------------------------------------- widening, re-sounding


async def test_fill_by_widens_one_level_within_the_owners_authority(world, store):
    horns, access, clock = world
    await bind(store, "B01010101", -103)
    await bind(store, "G0101", -101)
    await bind(store, "B01010102", -104)
    await bind(store, "C01", -106)
    actor = await access.actor(WORKER)
    await horns.short_form(actor, "major B01010101 3 Carry sandbags")
    flow = await store.flows.get(WORKER)
    async with store.transaction():
        await store.flows.set(WORKER, "horn", "preview",
                              {**flow.data, "fill_by": NOW + 600})
    horn = (await horns.publish(actor)).horn
    await deliver(store, horns)
    await horns.check_in(31, horn.id)
    assert await horns.next_due() == NOW + 600
    assert await horns.run_due() == 0
    clock.now = NOW + 601
    assert await horns.run_due() == 1
    horn = await store.horns.get(horn.id)
    assert horn.scope == ("G0101",) and horn.widened
    posts = {i.chat_id for i in await pending(store) if i.chat_id < 0}
    assert posts == {-101, -104}                      # the building chat had it already
    told = [i for i in await pending(store) if i.chat_id == WORKER]
    assert "第一网格 (G0101)" in told[0].payload["text"] and "1/3" in told[0].payload["text"]
    assert await horns.run_due() == 0                 # once
    # the grid worker cannot widen past the grid
    await horns.short_form(actor, "major G0101 3 More sandbags")
    flow = await store.flows.get(WORKER)
    async with store.transaction():
        await store.flows.set(WORKER, "horn", "preview", {**flow.data, "fill_by": NOW + 700})
    second = (await horns.publish(actor)).horn
    clock.now = NOW + 701
    await horns.run_due()
    assert (await store.horns.get(second.id)).scope == ("G0101",)
    assert "cannot widen" in t("en", "horn.widen_failed", id=1, count=0, needed=3)
    assert any(f"#{second.id}" in i.payload["text"] and "超出您的权限" in i.payload["text"]
               for i in await pending(store) if i.chat_id == WORKER)


async def test_fill_by_does_nothing_when_the_quota_is_met(world, store):
    horns, access, clock = world
    actor = await access.actor(WORKER)
    await horns.short_form(actor, "major B01010101 1 One person")
    flow = await store.flows.get(WORKER)
    async with store.transaction():
        await store.flows.set(WORKER, "horn", "preview", {**flow.data, "fill_by": NOW + 60})
    horn = (await horns.publish(actor)).horn
    await horns.check_in(31, horn.id)
    clock.now = NOW + 61
    await horns.run_due()
    horn = await store.horns.get(horn.id)
    assert horn.widened and horn.scope == ("B01010101",)


async def test_the_watchers_work_is_done_once_across_a_restart(world, store):
    horns, access, clock = world
    await bind(store, "B01010101", -103)
    await bind(store, "G0101", -101)
    actor = await access.actor(WORKER)
    await horns.short_form(actor, "emergency B01010101 3 Sandbags")
    flow = await store.flows.get(WORKER)
    async with store.transaction():
        await store.flows.set(WORKER, "horn", "preview", {**flow.data, "fill_by": NOW + 300})
    horn = (await horns.publish(actor)).horn
    await deliver(store, horns)
    clock.now = NOW + 601                  # fill-by and the first re-sound are both due
    assert await horns.run_due() == 2
    queued = len(await store.outbox.pending())

    # the process restarts: a new service on the same store finds nothing left to do
    restarted = HornService(store, horns.access, horns.people, Outbox(store, horns.settings),
                            horns.settings, clock=clock)
    assert await restarted.run_due() == 0
    assert len(await store.outbox.pending()) == queued
    assert await restarted.next_due() == NOW + 601 + 600
    clock.now = NOW + 601 + 600
    assert await restarted.run_due() == 1  # the next period's re-sound, once
    assert await horns.run_due() == 0
    assert (await store.horns.get(horn.id)).resounds == 2


async def test_a_failing_horn_does_not_hold_back_the_others(world, store, monkeypatch):
    horns, access, clock = world
    first = (await sound(horns, access, WORKER, "emergency G0101 3 First")).horn
    second = (await sound(horns, access, WORKER, "emergency G0101 3 Second")).horn
    post_to = horns.copies.post_to

    async def broken_for_the_first(horn, scope, round_=0):
        if horn.id == first.id:
            raise RuntimeError("boom")
        return await post_to(horn, scope, round_)

    monkeypatch.setattr(horns.copies, "post_to", broken_for_the_first)
    clock.now = NOW + 601
    assert await horns.run_due() == 1
    assert (await store.horns.get(first.id)).resounds == 0        # rolled back: due again
    assert (await store.horns.get(second.id)).resounds == 1


async def test_emergency_resounds_once_per_period_until_full_or_closed(world, store):
    horns, access, clock = world
    await bind(store, "G0101", -101)
    horn = (await sound(horns, access, WORKER, "emergency G0101 2 Sandbags")).horn
    period = 600
    assert horn.resound_at == NOW + period
    await deliver(store, horns)
    clock.now = NOW + 3 * period + 5            # down for three periods: one re-sound
    assert await horns.run_due() == 1
    posts = await pending(store)
    assert len(posts) == 1 and posts[0].payload["_pin"] and posts[0].chat_id == -101
    assert (await store.horns.get(horn.id)).resound_at == clock.now + period
    assert await horns.run_due() == 0
    await deliver(store, horns)
    await horns.check_in(31, horn.id)
    await horns.check_in(32, horn.id)           # full: the next period posts nothing
    clock.now += period
    await horns.run_due()
    assert await pending(store) == []
    await horns.cant_come(31, horn.id)          # not full again: it sounds again
    clock.now += period
    await horns.run_due()
    assert len(await pending(store)) == 1
    await horns.close(await access.actor(WORKER), horn.id)
    assert (await store.horns.get(horn.id)).resound_at is None
    assert await horns.next_due() is None


# ---------------------------------------------------------------- closing, hours


async def test_close_summary_attendance_and_hours_credited_once(world, store):
    horns, access, _ = world
    await bind(store, "G0101", -101)
    owner = await access.actor(WORKER)
    horn = (await sound(horns, access, WORKER, "major G0101 5 Sandbags")).horn
    await deliver(store, horns)
    for person in (31, 32, 33):
        await horns.check_in(person, horn.id)
    await horns.cant_come(33, horn.id)
    with pytest.raises(Refused, match="horn.close_not_allowed"):
        await horns.close(await access.actor(HEAD), horn.id)
    with pytest.raises(Refused, match="horn.still_active"):
        await horns.confirm(owner, "en", horn.id)
    await horns.close(owner, horn.id)
    items = await store.outbox.pending()
    summary = [i for i in items if i.method == "sendMessage" and i.chat_id == -101]
    assert "报到 2/5" in summary[0].payload["text"] and summary[0].payload["reply_parameters"]
    edit = [i for i in items if i.method == "editMessageText"][0]
    assert "reply_markup" not in edit.payload and "已结束" in edit.payload["text"]
    card = [i for i in items if i.chat_id == WORKER][0]
    toggles = [b["callback_data"] for row in card.payload["reply_markup"]["inline_keyboard"]
               for b in row]
    assert toggles == [f"h:pr:{horn.id}:31", f"h:pr:{horn.id}:32", f"h:hrs:{horn.id}",
                       f"h:ok:{horn.id}"]
    assert "2 h" in t("en", "horn.attendance", id=1, title="", hours="2", points=20, rate=10,
                      present=2, total=2)

    with pytest.raises(Refused, match="horn.not_owner"):
        await horns.toggle_present(await access.actor(STAFF), "en", horn.id, 32)
    view = await horns.toggle_present(owner, "en", horn.id, 32)
    assert "Present: 1 of 2" in view.text
    await horns.ask_hours(owner, horn.id)
    with pytest.raises(Refused, match="horn.bad_hours"):
        await horns.set_hours(owner, "lots")
    assert (await horns.set_hours(owner, "2.5")).hours == 2.5
    await horns.ask_hours(owner, horn.id)      # asked again, then confirmed without typing:
    view = await horns.confirm(owner, "en", horn.id)
    assert await store.flows.get(WORKER) is None   # the owner's text is free again
    assert "1 person present, each credited 2.5 h and 25 points" in view.text
    assert (await store.people.get(31)).hours == 2.5
    assert (await store.people.get(31)).points == round(2.5 * POINTS_PER_HOUR)
    assert (await store.people.get(32)).hours == 0
    with pytest.raises(Refused, match="horn.already_confirmed"):
        await horns.confirm(owner, "en", horn.id)
    with pytest.raises(Refused, match="horn.already_confirmed"):
        await horns.toggle_present(owner, "en", horn.id, 32)
    assert (await store.people.get(31)).hours == 2.5


async def test_only_the_owner_closes_a_horn_superadmins_excepted(world, store):
    """SPEC §5: the owner closes. Staff whose authority covers the scope (the community's
    staff over the grid worker's horn) are refused on the button, the confirmation and the
    command alike, and nothing changes."""
    horns, access, _ = world
    await bind(store, "G0101", -101)
    horn = (await sound(horns, access, WORKER, "major G0101 5 Sandbags")).horn
    await deliver(store, horns)
    await horns.check_in(31, horn.id)
    before = await store.outbox.pending()
    for user_id in (STAFF, HEAD, RESIDENT):
        other = await access.actor(user_id)
        with pytest.raises(Refused) as caught:
            await horns.ask_close(other, horn.id)             # the Close button
        assert caught.value.key == "horn.close_not_allowed"
        with pytest.raises(Refused, match="horn.close_not_allowed"):
            await horns.close(other, horn.id)                 # Close it, and /horn_close
    assert (await store.horns.get(horn.id)).active
    assert await store.outbox.pending() == before
    assert "owner" in t("en", "horn.close_not_allowed", id=horn.id)
    assert "staff" not in t("en", "horn.close_not_allowed", id=horn.id)

    await horns.ask_close(await access.actor(WORKER), horn.id)
    admin = await access.actor(ADMIN)
    await horns.close(admin, horn.id)
    closed = await store.horns.get(horn.id)
    assert not closed.active and closed.closed_by == ADMIN
    # the attendance steps are the owner's too
    staff = await access.actor(STAFF)
    for step in (lambda: horns.attendance(staff, "en", horn.id),
                 lambda: horns.toggle_present(staff, "en", horn.id, 31),
                 lambda: horns.ask_hours(staff, horn.id),
                 lambda: horns.confirm(staff, "en", horn.id)):
        with pytest.raises(Refused, match="horn.not_owner"):
            await step()
    assert (await store.horns.get(horn.id)).confirmed_at is None
    assert await store.flows.get(STAFF) is None
    assert (await store.horns.checkin(horn.id, 31)).present
    assert (await store.people.get(31)).hours == 0
    await horns.confirm(admin, "en", horn.id)
    assert (await store.people.get(31)).hours == 2.0


async def test_default_hours_are_the_duration_or_two_for_the_short_form(world, store):
    horns, access, _ = world
    short = (await sound(horns, access, WORKER, "major G0101 5 Short")).horn
    actor = await access.actor(WORKER)
    await horns.close(actor, short.id)
    assert (await store.horns.get(short.id)).hours == 2.0
    await horns.short_form(actor, "major G0101 5 Long")
    flow = await store.flows.get(WORKER)
    async with store.transaction():
        await store.flows.set(WORKER, "horn", "preview", {
            **flow.data, "short": False, "start": NOW, "end": NOW + 3.5 * 3600})
    long = (await horns.publish(actor)).horn
    await horns.close(actor, long.id)
    assert (await store.horns.get(long.id)).hours == 3.5
    for minutes, hours in ((75, 1.25), (20, 0.25), (5, 0.25), (127.5, 2.25), (80, 1.25)):
        await horns.short_form(actor, f"major G0101 5 {minutes} min")
        flow = await store.flows.get(WORKER)
        async with store.transaction():
            await store.flows.set(WORKER, "horn", "preview", {
                **flow.data, "short": False, "start": NOW, "end": NOW + minutes * 60})
        horn = (await horns.publish(actor)).horn
        await horns.close(actor, horn.id)
        assert (await store.horns.get(horn.id)).hours == hours, minutes


async def test_active_list_shows_what_concerns_the_person(world, store):
    horns, access, _ = world
    grid = (await sound(horns, access, WORKER, "major G0101 5 Grid one")).horn
    other = (await sound(horns, access, STAFF, "major G0102 5 Grid two")).horn
    seen = {h.id: may for h, _, may in await horns.active_for(await access.actor(HEAD))}
    assert seen == {grid.id: False}                    # the head's building lies in G0101
    seen = {h.id: may for h, _, may in await horns.active_for(await access.actor(RESIDENT))}
    assert seen == {grid.id: False}
    seen = {h.id: may for h, _, may in await horns.active_for(await access.actor(STAFF))}
    assert seen == {grid.id: False, other.id: True}    # sees the worker's, closes only its own
    seen = {h.id: may for h, _, may in await horns.active_for(await access.actor(ADMIN))}
    assert seen == {grid.id: True, other.id: True}
    await horns.check_in(RESIDENT, other.id)       # a helper from another grid checked in
    seen = {h.id: may for h, _, may in await horns.active_for(await access.actor(RESIDENT))}
    assert seen == {grid.id: False, other.id: False}
    await horns.close(await access.actor(WORKER), grid.id)
    assert [h.id for h, _, _ in await horns.active_for(await access.actor(ADMIN))] == [other.id]


async def test_report_activity_per_grid(world, store):
    horns, access, _ = world
    owner = await access.actor(WORKER)
    horn = (await sound(horns, access, WORKER, "major G0101 5 Sandbags")).horn
    await horns.check_in(31, horn.id)
    await horns.close(owner, horn.id)
    await horns.confirm(owner, "en", horn.id)
    counted, hours, people = await store.horns.activity(None, 0, 1e12)
    assert counted == {"G0101": 1} and hours == {"G0101": 2.0} and people == {31: 2.0}
    assert await store.horns.activity(["G0102"], 0, 1e12) == ({}, {}, {})


def test_attendance_list_keeps_within_telegrams_hundred_buttons():
    from bot.services import horn_views as views
    from storage.models import Horn

    horn = Horn(id=1, owner_id=1, level="major", scope=("G0101",), grid_code="G0101",
                community_code="C01", title="Big", details="", place="", starts_at=None,
                ends_at=None, needed=200, fill_by=None, widened=False, skills=(),
                short_form=True, status="closed", resound_at=None, resounds=0, created_at=0,
                closed_at=1, closed_by=1, hours=2, confirmed_at=None, confirmed_by=None)
    rows = [(n, f"P{n}", True) for n in range(150)]
    view = views.attendance("en", horn, rows, POINTS_PER_HOUR)
    assert sum(len(r) for r in view.buttons) <= 100
    assert "…and 60 more, kept as they are" in view.text and "Present: 150 of 150" in view.text


async def test_the_owner_away_their_backup_closes_and_gets_the_attendance_list(world, store):
    """AB岗 (SPEC §11): while the owner is away, who stands in closes the horn and receives
    the attendance list, marked for the owner; once the owner is back, they alone again."""
    horns, access, _ = world
    await bind(store, "G0101", -101)
    horn = (await sound(horns, access, WORKER, "major G0101 5 Sandbags")).horn
    await deliver(store, horns)
    await horns.check_in(31, horn.id)
    backups = BackupService(store, access, horns.people, horns.outbox, horns.settings,
                            clock=horns.clock)
    owner, staff = await access.actor(WORKER), await access.actor(STAFF)
    with pytest.raises(Refused, match="horn.close_not_allowed"):
        await horns.close(staff, horn.id)
    await backups.name_backup(owner, STAFF)
    await backups.away(owner)
    await horns.close(staff, horn.id)
    lists = [i for i in await store.outbox.pending() if i.payload.get("reply_markup")
             and i.chat_id in (WORKER, STAFF)]
    assert [i.chat_id for i in lists] == [STAFF]
    assert lists[0].payload["text"].startswith(t("zh-Hans", "backup.for", name=str(WORKER)))
    await horns.toggle_present(staff, "en", horn.id, 31)
    await backups.back(owner)
    with pytest.raises(Refused, match="horn.not_owner"):
        await horns.toggle_present(staff, "en", horn.id, 31)


async def test_the_owner_away_the_widening_notice_goes_to_who_stands_in(world, store):
    """AB岗: the fill-by notice is the owner's personal notice: while they are away it goes
    to their backup, marked for them, and not to them."""
    horns, access, clock = world
    await bind(store, "G0101", -101)
    owner = await access.actor(WORKER)
    await horns.short_form(owner, "major B01010101 3 Carry sandbags")
    flow = await store.flows.get(WORKER)
    async with store.transaction():
        await store.flows.set(WORKER, "horn", "preview", {**flow.data, "fill_by": NOW + 600})
    horn = (await horns.publish(owner)).horn
    await deliver(store, horns)
    backups = BackupService(store, access, horns.people, horns.outbox, horns.settings,
                            clock=horns.clock)
    await backups.name_backup(owner, STAFF)
    await backups.away(owner)
    before = {i.id for i in await pending(store)}
    clock.now = NOW + 601
    assert await horns.run_due() == 1
    told = [i for i in await pending(store) if i.id not in before and i.chat_id > 0]
    assert [i.chat_id for i in told] == [STAFF]
    assert told[0].payload["text"].startswith(t("zh-Hans", "backup.for", name=str(WORKER)))
    assert f"#{horn.id}" in told[0].payload["text"]
