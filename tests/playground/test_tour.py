""""Play the tour" (SPEC §17): the scripted scenario plays through on the real bot in the sample
world, each step captioned in three languages, and its recording replays as a regression test."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import datetime

import pytest

from bot.i18n import LOCALES, catalog, t
from playground.session import Playground
from playground.tour import TOUR, TourPlayer
from playground.transcript import StepRecord, dumps, loads
from playground.views import chat_view
from storage.models import TicketStatus
from tests.support.texts import before, check_ins, plain, shown

# the horn's copies: the bound chats of the community, and the member unit M01's (it has no
# chat: its contact's private chat)
HORN_CHATS = ("building:B01010101", "building:B01010102", "building:B01020101", "staff:C01",
              "staff:G0101", "private:unit_contact")
SHOP = "欣山爱心超市"


def step_of(demo: Playground, caption: str) -> StepRecord:
    """What the tour's step captioned `caption` did (every step of the tour acts)."""
    acting = [step.caption for step in TOUR if step.kind != "note"]
    return demo.steps[acting.index(caption)]


def texts(step: StepRecord, chat: str) -> list[str]:
    return [m["text"] for m in step.bot if m["chat"] == chat]


@pytest.fixture
async def played() -> AsyncIterator[Playground]:
    """A playground in English after the whole tour, with no pauses."""
    demo = Playground(lang="en", flood=None)
    await demo.start()
    try:
        await TourPlayer(demo, pause=0).play_through()
        yield demo
    finally:
        await demo.stop()


def test_every_caption_is_written_in_every_language() -> None:
    assert len(TOUR) >= 10
    for step in TOUR:
        for locale in LOCALES:
            assert catalog(locale).get(step.caption, "").strip(), (locale, step.caption)


async def test_the_tour_plays_through(played: Playground) -> None:
    demo = played
    assert len(demo.steps) == sum(step.kind != "note" for step in TOUR)

    store = demo.runtime.store
    ticket = await store.tickets.get(1)
    assert ticket is not None and ticket.status == TicketStatus.RATED and ticket.rating == 5
    assert ticket.department_code == "MZJ" and ticket.result_note
    horn = max(h.id for h in await store.horns.active())
    assert len(await store.horns.checkins(horn)) == 3

    # SPEC §10: the horn called the member unit M01 too, whose contact pledged 2 people: they
    # count toward the 5 needed, and every copy counts the unit
    units = plain(t("en", "unit.horn_counter", units=1))
    counter = check_ins("en", 5, 5) + units
    for key in HORN_CHATS:
        chat = demo.chat_by_key(key)
        posts = [m for m in chat.messages.values() if m.sender is None
                 and f"horn #{horn}\n" in m.text]
        assert len(posts) == 1 and counter in posts[0].text, (key, [m.text for m in posts])
    contact = demo.world.person("unit_contact").user.id
    pledge = step_of(demo, "playground.tour.unit_pledge")
    pledged = shown("en", "unit.horn_pledged", unit="安居物业 (M01)", people=2, id=horn)
    assert [a["text"] for a in pledge.answers if a["person"] == "unit_contact"] == [pledged]
    for key in HORN_CHATS:
        assert any(check_ins("en", 4, 5) + units in text for text in texts(pledge, key)), key
    called = await store.units.horn_units(horn)
    assert [(u.unit_code, u.pledged, u.pledged_by) for u in called] == [("M01", 2, contact)]

    # a patrol checkpoint's visit (SPEC §13), counted in March's report
    visit = next(s for s in demo.steps if s.action.kind == "location")
    assert visit.bot[0]["text"].startswith("✅") and "G0101-K01" in visit.bot[0]["text"]
    assert len(await store.checkpoints.visits(["G0101-K01"], 0, 4e9)) == 1

    unit = step_of(demo, "playground.tour.unit")  # SPEC §10: the unit's record, to its contact
    assert unit.action.text == "/unit"
    assert any(m["chat"] == "private:unit_contact" and m["text"].startswith("🏢 安居物业")
               and "Horns answered: 1" in m["text"] for m in unit.bot), unit.bot
    mydata = demo.steps[-1]  # SPEC §14: the resident's data, as two files
    assert mydata.action.text == "/mydata"
    assert [m["kind"] for m in mydata.bot if m["chat"] == "private:resident"].count(
        "document") == 2
    month_end = next(step for step in demo.steps if step.action.kind == "clock")
    title = plain(t("en", "report.title", month="2026-03", scope="欣山社区"))
    assert any(m["chat"] == "staff:C01" and m["text"].startswith(title) for m in month_end.bot)
    for key in ("building:B01010101", "building:B01010102", "building:B01020101"):
        assert any(m["chat"] == key and m["text"].startswith("📊") for m in month_end.bot), key
        pinned = chat_view(demo.emu, demo.chat_by_key(key))["pinned"]
        assert pinned is not None and "2026-04" in pinned["text"], (key, pinned)
    # SPEC §12: March's evaluation asked staff at the month's end; the next step rates a grid
    assert any(m["chat"] == "private:staff" and "2026-03" in m["text"] for m in month_end.bot)
    rating = await store.evaluations.get("2026-03", demo.world.person("staff").user.id, "G0101", 0)
    assert rating is not None and rating.score == 4
    # SPEC §12: the joint meeting invites the staff chats and, privately, the contact of the
    # member unit M01 (it has no chat), that invitation standing for M01
    meeting = await store.meetings.get(1)
    assert meeting is not None and meeting.kind == "joint" and meeting.unit_code == "C01"
    posts = {p.chat_id: p.unit_code for p in await store.meetings.posts(1, "invite")}
    contact = demo.world.person("unit_contact").user.id
    assert posts == {demo.chat_by_key("staff:C01").id: "C01",
                     demo.chat_by_key("staff:G0101").id: "G0101", contact: "M01"}
    invitation = [m for m in demo.chat_by_key("private:unit_contact").messages.values()
                  if m.sender is None and meeting.title in m.text]
    assert len(invitation) == 1 and invitation[0].buttons


async def test_a_hotline_case_is_assigned_to_a_volunteer_who_accepts(played: Playground) -> None:
    """点将 (SPEC §10): the grid worker enters a hotline call (#2), taps Assign on its card in
    the grid's forum, picks the volunteer from the board; she accepts privately."""
    demo = played
    volunteer = demo.world.person("volunteer1").user.id
    ticket = await demo.runtime.store.tickets.get(2)
    assert ticket is not None and ticket.source == "hotline" and ticket.domain == "orange"
    assert ticket.assignee_id == volunteer and ticket.staff_thread_id

    board = texts(step_of(demo, "playground.tour.assign"), "staff:G0101")
    assert len(board) == 1 and "孙丽" in board[0], board
    pick = step_of(demo, "playground.tour.assign_pick")
    assert pick.action.button == "孙丽" and pick.action.data == f"t:asg:2:p{volunteer}"
    asked = [m for m in pick.bot if m["chat"] == "private:volunteer1"]
    assert len(asked) == 1 and asked[0]["text"].startswith(before("en", "assign.ask", "domain",
                                                                   id=2))
    assert asked[0]["buttons"] == [[t("en", "btn.accept"), t("en", "btn.decline")]]
    assert shown("en", "assign.asked", id=2, name="孙丽") in texts(pick, "staff:G0101")

    accepted = step_of(demo, "playground.tour.assign_accept")
    assert [a["text"] for a in accepted.answers] == [shown("en", "assign.accepted", id=2)]
    staff = texts(accepted, "staff:G0101")
    assert shown("en", "assign.staff_accepted", name="孙丽", id=2) in staff
    taker = shown("en", "ticket.card_taker", taker="孙丽")
    assert any(text.startswith("#2 ") and taker in text for text in staff), staff


async def test_the_volunteer_spends_points_at_the_partner_shop(played: Playground) -> None:
    """爱心银行 (SPEC §13): the volunteer's 60 points (opened in the sample world) buy 30
    points' worth at the partner shop: a code and its QR image, the clerk's /redeem CODE and
    one tap; both are told the new balance."""
    demo = played
    store = demo.runtime.store
    volunteer = demo.world.person("volunteer1").user.id
    clerk = demo.world.person("clerk").user.id
    redemption = await store.shop.redemption(1)
    assert redemption is not None and redemption.user_id == volunteer
    assert (redemption.status, redemption.points, redemption.partner_code,
            redemption.spent_by) == ("spent", 30, "P0101", clerk)
    assert await store.shop.balance(volunteer) == 30
    code, tz = redemption.code, demo.runtime.settings.tz

    def at(moment: float, fmt: str) -> str:
        return datetime.fromtimestamp(moment, tz).strftime(fmt)

    sent = [m for m in step_of(demo, "playground.tour.redeem").bot
            if m["chat"] == "private:volunteer1"]
    assert [m["kind"] for m in sent] == ["photo"]  # the QR image, the code in its caption
    assert sent[0]["text"] == shown("en", "shop.code", code=code, points=30, balance=30,
                                    until=at(redemption.expires_at, "%H:%M"))
    opened = step_of(demo, "playground.tour.redeem_code")
    assert opened.action.text == f"/redeem {code}"
    assert texts(opened, "private:clerk") == [shown(
        "en", "shop.opened", code=code, partner=SHOP, volunteer="孙丽", points=30,
        until=at(redemption.expires_at, "%m-%d %H:%M"))]
    spent = step_of(demo, "playground.tour.redeem_confirm")
    assert texts(spent, "private:clerk") == [shown(
        "en", "shop.spent_clerk", volunteer="孙丽", points=30, partner=SHOP, code=code,
        balance=30)]
    assert texts(spent, "private:volunteer1") == [shown(
        "en", "shop.spent_volunteer", points=30, partner=SHOP, code=code, balance=30)]


async def test_the_recorded_tour_replays_and_a_changed_reply_is_named(
        played: Playground) -> None:
    demo = played
    lang, steps = loads(dumps(demo.lang, demo.steps))
    assert lang == "en"

    assert await demo.replay(steps) == (None, None)

    changed = [dataclasses.replace(s, bot=list(s.bot)) for s in steps]
    accept = next(s for s in changed if s.action.data == "t:acc:1")
    reply = accept.bot[-1]
    accept.bot[-1] = {**reply, "text": reply["text"] + " (changed)"}
    failed, difference = await demo.replay(changed)
    assert failed == accept.step
    assert difference is not None and "text" in difference


@pytest.mark.parametrize("lang", ["zh-Hans", "zh-Hant"])
async def test_the_tour_plays_in_chinese_with_captions_in_the_page_language(lang: str) -> None:
    demo = Playground(lang=lang, flood=None)
    await demo.start()
    try:
        player = TourPlayer(demo, pause=0)
        await player.next_step()
        state = player.state(lang)
        assert state["step"] == 1 and state["steps"] == len(TOUR)
        assert state["caption"] == t(lang, TOUR[0].caption)
        await player.play_through()  # from a fresh world again; raises on a step it cannot take
        ticket = await demo.runtime.store.tickets.get(1)
        assert ticket is not None and ticket.status == TicketStatus.RATED
        store = demo.runtime.store
        horn = max(h.id for h in await store.horns.active())
        assert len(await store.horns.checkins(horn)) == 3
        assert [u.pledged for u in await store.units.horn_units(horn)] == [2]
        counter = check_ins(lang, 5, 5) + plain(t(lang, "unit.horn_counter", units=1))
        assert any(counter in m.text for m in demo.chat_by_key("staff:C01").messages.values())
        ticket = await store.tickets.get(2)
        volunteer = demo.world.person("volunteer1").user.id
        assert ticket is not None and ticket.assignee_id == volunteer
        redemption = await store.shop.redemption(1)
        assert redemption is not None and redemption.status == "spent"
        assert await store.shop.balance(volunteer) == 30
    finally:
        await demo.stop()
