"""The assembly horn (集结号) end to end: sounding, calling, answering, closing, crediting."""

from __future__ import annotations

import asyncio
import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.i18n import t
from storage.models import Unit
from tests.support.harness import grant, seed_map
from tests.support.texts import before, check_ins, counted, label, line_of, shown

pytestmark = pytest.mark.asyncio
TZ = ZoneInfo("Asia/Shanghai")


class World:
    """Grid G0101 with a worker, a building head, a forum staff chat, two building chats;
    grid G0102 with its own chat; volunteers with skills; residents who tap."""

    def __init__(self, harness):
        self.h = harness
        emu = harness.emu
        self.worker = emu.add_user(first_name="Worker", language_code="en")
        self.head = emu.add_user(first_name="Head", language_code="en")
        self.staff = emu.add_user(first_name="Staff", language_code="en")
        self.medic = emu.add_user(first_name="Medic", language_code="en")
        self.lawyer = emu.add_user(first_name="Lawyer", language_code="zh-hans")
        self.far = emu.add_user(first_name="Far", language_code="en")
        self.residents = [emu.add_user(first_name=f"R{i}", language_code="en")
                          for i in range(4)]

    async def setup(self, **settings):
        h, emu = self.h, self.h.emu
        await h.start_bot(**settings)
        store = h.store
        await seed_map(store)
        await grant(store, self.worker.id, "grid_worker", "G0101")
        await grant(store, self.head.id, "building_head", "B01010101")
        await grant(store, self.staff.id, "community_staff", "C01")
        for user, unit, skills in ((self.medic, "G0101", ("medical",)),
                                   (self.lawyer, "G0101", ("legal",)),
                                   (self.far, "G0102", ("medical",))):
            await grant(store, user.id, "volunteer", unit)
            async with store.transaction():
                await store.people.set_volunteer_profile(user.id, skills, None)
        for user in (self.worker, self.head, self.staff, self.medic, self.lawyer, self.far,
                     *self.residents):
            await h.say(user, "/start")
        # the grid's staff chat is a forum: horns go into its announcement topic
        self.grid_chat = emu.add_group(title="第一网格", forum=True, members=[self.worker])
        await emu.add_bot_to_group(self.grid_chat, by=self.worker, admin=True)
        self.topic = emu.create_topic(self.grid_chat, "公告", by=self.worker)
        await h.say(self.worker, "/bind G0101", chat=self.grid_chat, thread_id=self.topic)
        self.b1 = await self.building_chat("1栋楼事群", "B01010101", self.head)
        self.b2 = await self.building_chat("2栋楼事群", "B01010102", self.worker)
        self.other = emu.add_group(title="第二网格", members=[self.staff])
        await emu.add_bot_to_group(self.other, by=self.staff, admin=True)
        await h.say(self.staff, "/bind G0102", chat=self.other)

    async def building_chat(self, title, code, by, supergroup=True):
        return await self.h.bound_group(title, code, by, [by, *self.residents],
                                        supergroup=supergroup)

    async def sound(self, user, text):
        """The short form, then Publish; returns the horn's id."""
        preview = (await self.h.say(user, f"/horn {text}"))[-1]
        assert preview.buttons, preview.text
        await self.h.press(user, preview, "hf:pub")
        return max(h.id for h in await self.h.store.horns.active())

    def posts(self, chat_id, horn_id):
        """Copies of the horn in a chat (the summary and notices left out)."""
        pattern = re.compile(rf"(集结号|集結號|horn) #{horn_id}\n")
        return [m for m in self.h.emu.messages(chat_id) if pattern.search(m.text)]

    def post(self, chat_id, horn_id):
        posts = self.posts(chat_id, horn_id)
        assert len(posts) == 1, self.h.emu.dump_chat(chat_id)
        return posts[0]



def day_after(hour):
    moment = datetime.now(TZ) + timedelta(days=1)
    return moment.replace(hour=hour, minute=0).strftime("%Y-%m-%d %H:%M")


async def test_guided_flow_with_a_bad_time_then_a_good_one(harness):
    w = World(harness)
    await w.setup()
    h, emu = harness, harness.emu
    first = (await h.say(w.worker, "/horn"))[-1]
    assert first.text == shown("en", "horn.ask_level")
    assert [b.text for row in first.buttons for b in row] == \
        ["🤝 Service", "📯 Major", "🚨 Emergency", "✖️ Cancel"]
    await harness.press(w.worker, first, "hf:lvl:major")
    assert not emu.messages(w.worker.id)[-2].buttons   # an answered step loses its buttons
    scope = await h.last(w.worker.id)
    await harness.press(w.worker, scope, "hf:scope:G0101")
    for answer in ("Sandbags to the east gate", "Fill and carry <sandbags> & bring gloves",
                   "East gate"):
        await h.say(w.worker, answer)
    ask_start = await h.last(w.worker.id)
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d", ask_start.text), ask_start.text
    said = await h.say(w.worker, "tomorrow at nine")
    assert before("en", "horn.bad_time", "example", text="tomorrow at nine") in said[0].text
    assert said[-1].text == ask_start.text            # the step repeats
    await h.say(w.worker, day_after(9))
    await h.say(w.worker, day_after(12))
    await h.say(w.worker, "3")
    await harness.press(w.worker, await h.last(w.worker.id), "hf:skip")
    skills = await h.last(w.worker.id)
    await harness.press(w.worker, skills, "hf:sk:medical")
    await harness.press(w.worker, await h.last(w.worker.id), "hf:skd")
    preview = await h.last(w.worker.id)
    for part in ("Level: 📯 Major", "Scope: 第一网格 (G0101)", "Sandbags to the east gate",
                 "<sandbags> & bring gloves", "Place: East gate", f"Start: {day_after(9)}",
                 f"End: {day_after(12)}", "People needed: 3", "Fill by: —",
                 "Skills wanted: medical"):
        assert part in preview.text, part
    assert [b.text for b in preview.buttons[0]] == [t("en", "horn.btn_publish"),
                                                    t("en", "btn.cancel")]
    answer = await harness.press(w.worker, preview, "hf:pub")
    assert answer.text == shown("en", "horn.published_short", id=1)
    published = await h.last(w.worker.id)
    assert published.text == counted("en", "horn.published_to", id=1, chats=3, people=1)
    assert [b.text for b in published.buttons[0]] == [t("en", "horn.btn_close")]

    # posts: the grid's announcement topic and both building chats, not the other grid
    grid_post = w.post(w.grid_chat.id, 1)
    assert grid_post.thread_id == w.topic
    for chat in (w.b1, w.b2):
        post = w.post(chat.id, 1)
        assert check_ins("zh-Hans", 0, 3) in post.text
        assert "<sandbags> & bring gloves" in post.text
        assert [b.text for b in post.buttons[0]] == [t("zh-Hans", "horn.btn_check_in"),
                                                     t("zh-Hans", "horn.btn_cant_come")]
        assert not post.pinned
    assert w.posts(w.other.id, 1) == []
    # the medic is called privately (major, skill asked); the lawyer and the far one are not
    call = w.post(w.medic.id, 1)
    assert shown("en", "horn.call_up") in call.text and check_ins("en", 0, 3) in call.text
    assert [b.text for b in call.buttons[0]] == [t("en", "horn.btn_check_in"),
                                                 t("en", "horn.btn_cant_come")]
    assert w.posts(w.lawyer.id, 1) == [] and w.posts(w.far.id, 1) == []
    # the flow is over: private text is an opinion draft again
    draft = (await h.say(w.worker, "The lift is broken"))[-1]
    assert any(b.callback_data == "dr:submit" for row in draft.buttons for b in row)


async def test_flow_text_never_becomes_an_opinion_draft(harness):
    w = World(harness)
    await w.setup()
    h = harness
    await h.say(w.worker, "/horn")
    said = await h.say(w.worker, "some words")        # the level step wants a level
    assert shown("en", "horn.bad_level", text="some words") in said[0].text
    assert said[-1].text == shown("en", "horn.ask_level")
    assert await h.store.flows.get(w.worker.id) is not None
    assert (await h.store.flows.get(w.worker.id)).name == "horn"
    assert shown("en", "cancel.nothing") not in (await h.say(w.worker, "/cancel"))[-1].text
    draft = (await h.say(w.worker, "some words"))[-1]
    assert any(b.callback_data == "dr:submit" for row in draft.buttons for b in row)


@pytest.mark.parametrize("level, pinned, called", [
    ("service", False, False), ("major", False, True), ("emergency", True, True)])
async def test_each_level(harness, level, pinned, called):
    w = World(harness)
    await w.setup()
    horn = await w.sound(w.worker, f"{level} G0101 5 Help at the east gate")
    for chat in (w.grid_chat, w.b1, w.b2):
        post = w.post(chat.id, horn)
        assert post.pinned is pinned
        assert check_ins("zh-Hans", 0, 5) in post.text
    assert bool(w.posts(w.medic.id, horn)) is called     # no skill asked: every volunteer
    assert bool(w.posts(w.lawyer.id, horn)) is called
    assert w.posts(w.far.id, horn) == []                  # another grid


async def test_building_head_sounds_service_horns_for_their_building_only(harness):
    w = World(harness)
    await w.setup()
    h = harness
    refused = (await h.say(w.head, "/horn major B01010101 5 Too big"))[-1]
    assert shown("en", "horn.level_not_allowed", level=t("en", "horn.level.major")) \
        in refused.text
    refused = (await h.say(w.head, "/horn service B01010102 5 Not mine"))[-1]
    service = t("en", "horn.level.service")
    assert shown("en", "horn.scope_not_allowed", code="B01010102", level=service) \
        in refused.text
    assert shown("en", "horn.scope_not_allowed", code="G0101", level=service) in \
        (await h.say(w.head, "/horn service G0101 5 Not mine"))[-1].text
    first = (await h.say(w.head, "/horn"))[-1]
    assert [b.callback_data for row in first.buttons for b in row] == ["hf:lvl:service", "hf:x"]
    await h.say(w.head, "/cancel")
    horn = await w.sound(w.head, "service B01010101 4 Carry groceries")
    assert check_ins("zh-Hans", 0, 4) in w.post(w.b1.id, horn).text
    for chat_id in (w.b2.id, w.grid_chat.id, w.medic.id, w.lawyer.id):
        assert w.posts(chat_id, horn) == []
    assert (await harness.store.horns.get(horn)).owner_id == w.head.id
    resident = w.residents[0]
    refused = (await h.say(resident, "/horn service B01010101 4 Me too"))[-1]
    assert shown("en", "horn.not_staff") in refused.text
    assert (await h.say(w.worker, "/horn service", chat=w.b1))[-1].text.startswith(
        "Horns are sounded in a private chat with me")


async def test_taps_quota_waiting_list_and_live_counters(harness):
    w = World(harness)
    await w.setup()
    emu = harness.emu
    horn = await w.sound(w.worker, "major G0101 2 Sandbags")
    r0, r1, r2, _ = w.residents
    post = w.post(w.b1.id, horn)

    answer = await harness.press(r0, post, f"h:in:{horn}")
    assert answer.text == shown("en", "horn.checked_in", id=horn)
    assert (await harness.press(r0, post, f"h:in:{horn}")).text == \
        shown("en", "horn.already_in", id=horn)
    query = emu.press(r1, w.post(w.b2.id, horn), f"h:in:{horn}")
    answered = await query.wait_answered(timeout=5)
    await harness.settle()
    copies = [w.post(c.id, horn) for c in (w.grid_chat, w.b1, w.b2)] + \
        [w.post(u.id, horn) for u in (w.medic, w.lawyer)]
    for copy in copies:   # every copy shows the counter in its text
        assert check_ins("zh-Hans", 2, 2) in copy.text or check_ins("en", 2, 2) in copy.text, \
            copy.text
        assert copy.edited_at is not None and copy.edited_at >= answered.at  # answer first
    answer = await harness.press(r2, w.post(w.b1.id, horn), f"h:in:{horn}")
    assert answer.text == counted("en", "horn.waiting", id=horn, position=1)
    assert check_ins("zh-Hans", 2, 2, waiting=1) in w.post(w.b1.id, horn).text

    # Can't come after checking in: the first waiting person moves up and is told privately
    assert (await harness.press(r0, w.post(w.b1.id, horn), f"h:out:{horn}")).text == \
        shown("en", "horn.withdrawn", id=horn)
    told = emu.messages(r2.id)[-1]
    assert shown("en", "horn.moved_up", id=horn, title="Sandbags") in told.text
    waiting = before("zh-Hans", "horn.counter_waiting", "waiting").strip()
    assert check_ins("zh-Hans", 2, 2) in w.post(w.b1.id, horn).text
    assert waiting not in w.post(w.b1.id, horn).text
    checkins = {c.person_id: c.state for c in await harness.store.horns.checkins(horn)}
    assert checkins == {r0.id: "withdrawn", r1.id: "in", r2.id: "in"}

    # forged and stale data
    forged = emu.inject_callback(r0, post, "h:in:999")
    assert (await forged.wait_answered(timeout=5)).text == shown("en", "horn.unknown", id=999)
    forged = emu.inject_callback(r0, post, "h:in:x")
    assert (await forged.wait_answered(timeout=5)).show_alert


async def test_a_burst_of_taps_counts_each_person_once(harness):
    w = World(harness)
    await w.setup()
    horn = await w.sound(w.worker, "emergency G0101 3 Sandbags")
    post = w.post(w.b1.id, horn)
    taps = [harness.emu.press(user, post, f"h:in:{horn}")
            for user in w.residents for _ in range(2)]
    answers = await asyncio.gather(*(q.wait_answered(timeout=5) for q in taps))
    await harness.settle()
    assert sum(a.text == shown("en", "horn.checked_in", id=horn) for a in answers) == 3
    assert sum(a.text == counted("en", "horn.waiting", id=horn, position=1)
               for a in answers) >= 1
    assert await harness.store.horns.counts(horn) == (3, 1)
    assert check_ins("zh-Hans", 3, 3, waiting=1) in w.post(w.b1.id, horn).text


async def test_close_summary_attendance_and_hours_in_me(harness):
    w = World(harness)
    await w.setup()
    h, emu = harness, harness.emu
    horn = await w.sound(w.worker, "major G0101 5 Sandbags")
    r0, r1, r2, _ = w.residents
    for user in (r0, r1, r2):
        await harness.press(user, w.post(w.b1.id, horn), f"h:in:{horn}")
    listing = (await h.say(w.worker, "/horns"))[-1].text
    assert counted("en", "horns.line", id=horn, emoji="📯", title="Sandbags", count=3,
                   needed=5) + f" — /horn_close {horn}" in listing
    assert "/horn_close" not in (await h.say(r0, "/horns"))[-1].text   # residents see, not close
    refused = (await h.say(w.head, f"/horn_close {horn}"))[-1]
    assert shown("en", "horn.close_not_allowed", id=horn) in refused.text

    said = await h.say(w.worker, f"/horn_close {horn}")
    assert any(m.text == shown("en", "horn.closed_done", id=horn) for m in said)
    summary_text = counted("zh-Hans", "horn.summary", id=horn, title="Sandbags", count=3,
                           needed=5)
    for chat in (w.grid_chat, w.b1, w.b2):
        summary = [m for m in emu.messages(chat.id) if m.text == summary_text]
        assert len(summary) == 1
        copy = w.post(chat.id, horn)
        assert not copy.buttons and shown("zh-Hans", "horn.line_closed") in copy.text
    assert shown("en", "horns.none") in (await h.say(w.worker, "/horns"))[-1].text

    asked = before("en", "horn.attendance", "id")
    card = [m for m in emu.messages(w.worker.id) if m.text.startswith(asked)][-1]
    attendance = {"id": horn, "title": "Sandbags", "points": 20, "rate": 10, "total": 3}
    assert counted("en", "horn.attendance", hours=2, present=3, **attendance) == card.text
    # short form: 2 h
    assert [b.text for row in card.buttons for b in row][:3] == ["✅ R0", "✅ R1", "✅ R2"]
    await harness.press(w.worker, card, f"h:pr:{horn}:{r2.id}")               # R2 did not come
    assert "⬜ R2" in [b.text for row in card.buttons for b in row]      # edited in place
    assert counted("en", "horn.attendance", hours=2, present=2, **attendance) == card.text
    await harness.press(w.worker, card, f"h:hrs:{horn}")
    said = await h.say(w.worker, "a lot")
    assert shown("en", "horn.bad_hours") in said[0].text
    said = await h.say(w.worker, "3")
    card = said[-1]
    assert counted("en", "horn.attendance", hours=3, present=2,
                   **{**attendance, "points": 30}) == card.text
    answer = await harness.press(w.worker, card, f"h:ok:{horn}")
    assert answer.text == shown("en", "horn.confirmed_short", id=horn)
    assert (await h.last(w.worker.id)).text == counted("en", "horn.confirmed", id=horn, hours=3,
                                                       points=30, people=2)
    assert emu.messages(r0.id)[-1].text == counted("en", "horn.credited", id=horn,
                                                   title="Sandbags", hours=3, points=30)
    me = (await h.say(r0, "/me"))[-1].text
    assert "Volunteer hours: 3\nPoints: 30" in me
    assert "Volunteer hours: 0\nPoints: 0" in (await h.say(r2, "/me"))[-1].text

    # a second Confirm changes nothing
    again = emu.inject_callback(w.worker, card, f"h:ok:{horn}")
    assert shown("en", "horn.already_confirmed", id=horn) in (
        await again.wait_answered(timeout=5)).text
    await harness.settle()
    assert (await h.say(r0, "/me"))[-1].text == me
    person = await harness.store.people.get(r0.id)
    assert (person.hours, person.points) == (3, 30)


async def test_the_close_button_asks_first_and_checks_again(harness):
    w = World(harness)
    await w.setup()
    emu = harness.emu
    horn = await w.sound(w.worker, "major G0101 5 Sandbags")
    published = [m for m in emu.messages(w.worker.id) if m.buttons
                 and any(b.callback_data == f"h:close:{horn}" for row in m.buttons for b in row)]
    assert len(published) == 1
    card = published[0]

    answer = await harness.press(w.worker, card, f"h:close:{horn}")
    assert answer.text == shown("en", "horn.close_confirm", id=horn)
    assert [b.text for row in card.buttons for b in row] == [
        t("en", "horn.btn_close_confirm"), t("en", "horn.btn_keep_open")]
    assert (await harness.store.horns.get(horn)).active        # nothing closed yet
    answer = await harness.press(w.worker, card, f"h:keep:{horn}")
    assert answer.text == shown("en", "horn.kept_open", id=horn)
    assert [b.callback_data for row in card.buttons for b in row] == [f"h:close:{horn}"]

    await harness.press(w.worker, card, f"h:close:{horn}")
    answer = await harness.press(w.worker, card, f"h:closeok:{horn}")
    assert answer.text == shown("en", "horn.closed_done", id=horn)
    assert not card.buttons
    assert not (await harness.store.horns.get(horn)).active
    summary = counted("zh-Hans", "horn.summary", id=horn, title="Sandbags", count=0, needed=5)
    assert len([m for m in emu.messages(w.b1.id) if m.text == summary]) == 1
    again = emu.inject_callback(w.worker, card, f"h:closeok:{horn}")   # an old confirmation
    assert (await again.wait_answered(timeout=5)).text == shown("en", "horn.closed", id=horn)
    await harness.settle()
    assert len([m for m in emu.messages(w.b1.id) if m.text == summary]) == 1


async def test_emergency_is_pinned_and_resounded_until_closed(harness):
    w = World(harness)
    await w.setup(horn_resound_min=0.02)          # every 1.2 s
    emu = harness.emu
    horn = await w.sound(w.worker, "emergency G0101 5 Sandbags")
    assert w.post(w.b1.id, horn).pinned
    await emu.wait_until(lambda: len(w.posts(w.b1.id, horn)) >= 2, timeout=10)
    await harness.settle()
    again = w.posts(w.b1.id, horn)[1]
    assert again.pinned and "报到 0/5" in again.text
    await harness.press(w.residents[0], again, f"h:in:{horn}")
    assert all("报到 1/5" in p.text for p in w.posts(w.b1.id, horn))   # every copy, old ones too
    await harness.say(w.worker, f"/horn_close {horn}")
    sounded = len(w.posts(w.b1.id, horn))
    # a later horn re-sounds twice: the closed one had time to sound again, and did not
    later = await w.sound(w.worker, "emergency G0101 5 More sandbags")
    await emu.wait_until(lambda: len(w.posts(w.b1.id, later)) >= 3, timeout=10)
    await harness.settle()
    assert len(w.posts(w.b1.id, horn)) == sounded
    assert (await harness.store.horns.get(horn)).resound_at is None
    assert not any(p.pinned for p in w.posts(w.b1.id, horn))  # closed: unpinned everywhere
    assert w.posts(w.b1.id, later)[-1].pinned                  # the open one stays on top


async def test_quota_met_stops_the_resounding(harness):
    w = World(harness)
    await w.setup(horn_resound_min=0.02)
    emu = harness.emu
    horn = await w.sound(w.worker, "emergency B01010101 1 One pair of hands")
    await harness.press(w.residents[0], w.post(w.b1.id, horn), f"h:in:{horn}")
    later = await w.sound(w.worker, "emergency B01010102 5 Many hands")
    await emu.wait_until(lambda: len(w.posts(w.b2.id, later)) >= 3, timeout=10)
    assert len(w.posts(w.b1.id, horn)) == 1


async def test_fill_by_widens_to_the_grid(harness):
    w = World(harness)
    await w.setup()
    h, emu = harness, harness.emu
    await h.say(w.worker, "/horn major B01010101 3 Carry sandbags")
    flow = await h.store.flows.get(w.worker.id)
    fill_by = datetime.now(TZ).timestamp() + 1.5
    async with h.store.transaction():   # a fill-by a moment away (typed ones are minutes)
        await h.store.flows.set(w.worker.id, "horn", "preview", {**flow.data, "fill_by": fill_by})
    await harness.press(w.worker, await h.last(w.worker.id), "hf:pub")
    assert w.posts(w.b2.id, 1) == [] and w.posts(w.medic.id, 1) == []
    await emu.wait_until(lambda: bool(w.posts(w.b2.id, 1)), timeout=10)
    await h.settle()
    assert w.posts(w.grid_chat.id, 1) and w.posts(w.medic.id, 1)
    assert len(w.posts(w.b1.id, 1)) == 1                       # not posted twice
    widened = label("en", "horn.widened", "scope", "第一网格 (G0101)")
    told = [text for text in harness.texts(w.worker.id) if widened in text]
    assert told and told[0].startswith(before("en", "horn.widened", "count", id=1))
    assert "第一网格 (G0101)" in w.post(w.b1.id, 1).text         # the scope line follows


async def test_a_removed_chat_does_not_break_publishing(harness):
    w = World(harness)
    await w.setup()
    h, emu = harness, harness.emu
    await emu.remove_bot(w.b2, by=w.worker)
    await h.settle()
    horn = await w.sound(w.worker, "major G0101 5 Sandbags")      # known to be gone: skipped
    assert w.posts(w.b1.id, horn) and w.posts(w.grid_chat.id, horn)
    assert w.posts(w.b2.id, horn) == []
    # the bot missed the removal: the 403 marks the chat gone, the rest goes out
    async with h.store.transaction():
        await h.store.map.set_chat_active(w.b2.id, True)
    horn = await w.sound(w.worker, "major G0101 5 More sandbags")
    assert w.posts(w.b1.id, horn) and w.posts(w.grid_chat.id, horn)
    assert not (await h.store.map.chat(w.b2.id)).active
    await harness.press(w.residents[0], w.post(w.b1.id, horn), f"h:in:{horn}")
    assert "报到 1/5" in w.post(w.grid_chat.id, horn).text


async def test_a_migrated_chat_still_gets_the_post(harness):
    w = World(harness)
    await w.setup()
    h, emu = harness, harness.emu
    basic = await w.building_chat("2栋老群", "B01010102", w.worker, supergroup=False)
    new_id = await emu.migrate_to_supergroup(basic)
    await h.settle()
    horn = await w.sound(w.worker, "major B01010102 5 Sandbags")      # the binding moved
    assert w.posts(new_id, horn) and w.posts(basic.id, horn) == []
    # the bot missed the migration: Telegram's answer moves the post to the new chat
    second = emu.add_group(title="2栋另一个老群", supergroup=False, members=[w.worker])
    await emu.add_bot_to_group(second, by=w.worker, admin=True, can_pin=True)
    await h.say(w.worker, "/bind B01010102", chat=second)
    newer_id = await emu.migrate_to_supergroup(second)
    await h.settle()
    async with h.store.transaction():   # as if the migration had not been seen
        await h.store.map.bind("B01010102", second.id, 0, None)
        await h.store.map.set_chat_active(second.id, True)
    horn = await w.sound(w.worker, "major B01010102 5 More sandbags")
    post = w.post(newer_id, horn)
    await harness.press(w.residents[0], post, f"h:in:{horn}")
    assert "报到 1/5" in w.post(newer_id, horn).text
    assert (await h.store.map.binding("B01010102")).chat_id == newer_id


async def test_restart_mid_broadcast_posts_once_in_every_chat(harness):
    w = World(harness)
    await w.setup()
    h, emu = harness, harness.emu
    chats = []
    async with h.store.transaction():
        for n in range(3, 15):
            await h.store.map.upsert(Unit(code=f"B010101{n:02d}", kind="building",
                                          name=f"{n}栋", parent_code="E010101", position=n))
    for n in range(3, 15):
        chat = emu.add_group(title=f"{n}栋", members=[w.worker])
        await emu.add_bot_to_group(chat, by=w.worker, admin=True, can_pin=True)
        chats.append(chat)
    await h.settle()
    async with h.store.transaction():
        for n, chat in zip(range(3, 15), chats, strict=True):
            await h.store.map.bind(f"B010101{n:02d}", chat.id, 0, None)
    await h.stop_bot()
    await h.start_bot(rate_overall_per_s=4)
    horn_chats = [w.grid_chat, w.b1, w.b2, *chats]
    preview = (await h.say(w.worker, "/horn emergency G0101 5 Sandbags"))[-1]
    emu.press(w.worker, preview, "hf:pub")
    await emu.wait_until(lambda: sum(bool(w.posts(c.id, 1)) for c in horn_chats) >= 3,
                         timeout=10)
    await h.stop_bot()
    landed = sum(bool(w.posts(c.id, 1)) for c in horn_chats)
    assert landed < len(horn_chats), "the broadcast finished before the stop"
    await h.start_bot()
    await h.settle()
    for chat in horn_chats:
        assert len(w.posts(chat.id, 1)) == 1, emu.dump_chat(chat.id)
        assert w.posts(chat.id, 1)[0].pinned


async def test_volunteer_registration_and_call_up(harness):
    w = World(harness)
    await w.setup()
    h, emu = harness, harness.emu
    newcomer = emu.add_user(first_name="New", language_code="en")
    assert shown("en", "volunteer.join_first") in (await h.say(newcomer, "/volunteer"))[-1].text
    # made a volunteer of a grid by invite, with no building: registers there
    await grant(h.store, newcomer.id, "volunteer", "G0101")
    card = (await h.say(newcomer, "/volunteer"))[-1]
    await harness.press(newcomer, card, "vf:sk:medical")
    await harness.press(newcomer, card, "vf:next")
    said = await h.say(newcomer, "weekends")
    assert line_of("en", "volunteer.done", "building", building="第一网格 (G0101)") \
        in said[-1].text
    assert (await h.store.people.get(newcomer.id)).skills == ("medical",)
    resident = w.residents[3]
    async with h.store.transaction():
        await h.store.people.set_building(resident.id, "B01010102")
    assert shown("en", "volunteer.private_only") in (
        await h.say(resident, "/volunteer", chat=w.b2))[-1].text
    card = (await h.say(resident, "/volunteer"))[-1]
    labels = [b.text for row in card.buttons for b in row]
    for skill in ("medical", "legal", "elderly care", "childcare", "repairs", "IT",
                  "translation", "driving", "sanitation", "patrol"):
        assert skill in labels, skill
    await harness.press(resident, card, "vf:sk:driving")
    await harness.press(resident, card, "vf:sk:it")
    assert "✅ driving" in [b.text for row in (await h.last(resident.id)).buttons for b in row]
    await harness.press(resident, card, "vf:next")
    said = await h.say(resident, "Saturday mornings")
    skills = f"{t('en', 'skill.it')}, {t('en', 'skill.driving')}"
    assert line_of("en", "volunteer.done", "building", building="2栋 (B01010102)") \
        in said[-1].text
    assert line_of("en", "volunteer.done", "skills", skills=skills) in said[-1].text
    assert "Saturday mornings" in said[-1].text
    me = (await h.say(resident, "/me"))[-1].text
    assert f"{t('en', 'role.volunteer')} · 2栋 (B01010102)" in me and skills in me
    assert line_of("en", "me.profile", "availability", availability="Saturday mornings") in me
    horn = await w.sound(w.worker, "emergency G0101 5 Drivers wanted")
    assert w.posts(resident.id, horn)


async def test_a_tap_storm_within_telegrams_limits(harness):
    from emulator import FloodLimits

    w = World(harness)
    await w.setup()
    h, emu = harness, harness.emu
    await h.stop_bot()
    emu.flood = FloodLimits()                          # Telegram's limits, strictly
    await h.start_bot(rate_overall_per_s=30, rate_group_per_min=20, rate_chat_per_s=1)
    horn = await w.sound(w.worker, "emergency G0101 3 Sandbags")
    await h.settle(timeout=30)
    rejected = emu.stats.flood_rejections
    edited = emu.stats.by_method["editMessageText"]
    post = w.post(w.b1.id, horn)
    taps = [emu.press(user, post, f"h:in:{horn}") for user in w.residents for _ in range(3)]
    answers = await asyncio.gather(*(q.wait_answered(timeout=5) for q in taps))
    assert max(a.at - q.created_at
               for a, q in zip(answers, taps, strict=True)) < 2   # answered at once
    await h.settle(timeout=60)
    assert await h.store.horns.counts(horn) == (3, 1)
    for copy in [w.post(c.id, horn) for c in (w.grid_chat, w.b1, w.b2)]:
        assert "报到 3/3 · 候补 1" in copy.text
    assert emu.stats.flood_rejections == rejected      # the edits kept the pace
    # four changes (three in, one waiting) on five copies: at most one edit each, and
    # repeated taps edit nothing
    edits = emu.stats.by_method["editMessageText"] - edited
    assert edits <= 4 * 5, edits
