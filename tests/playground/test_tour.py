""""Play the tour" (SPEC §17): the scripted scenario plays through on the real bot in the sample
world, each step captioned in three languages, and its recording replays as a regression test."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import pytest

from bot.i18n import LOCALES, catalog, t
from playground.session import Playground
from playground.tour import TOUR, TourPlayer
from playground.transcript import dumps, loads
from playground.views import chat_view
from storage.models import TicketStatus
from tests.support.texts import check_ins, plain

HORN_CHATS = ("building:B01010101", "building:B01010102", "building:B01020101", "staff:C01",
              "staff:G0101")


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

    counter = check_ins("en", 3, 3)
    for key in HORN_CHATS:
        chat = demo.chat_by_key(key)
        posts = [m for m in chat.messages.values() if m.sender is None
                 and f"horn #{horn}\n" in m.text]
        assert len(posts) == 1 and counter in posts[0].text, (key, [m.text for m in posts])

    # a patrol checkpoint's visit (SPEC §13), counted in March's report
    visit = next(s for s in demo.steps if s.action.kind == "location")
    assert visit.bot[0]["text"].startswith("✅") and "G0101-K01" in visit.bot[0]["text"]
    assert len(await store.checkpoints.visits(["G0101-K01"], 0, 4e9)) == 1

    unit = demo.steps[-2]  # SPEC §10: the member unit's record, to its contact
    assert unit.action.text == "/unit"
    assert any(m["chat"] == "private:unit_contact" and m["text"].startswith("🏢 安居物业")
               and "Horns answered: 0" in m["text"] for m in unit.bot), unit.bot
    mydata = demo.steps[-1]  # SPEC §14: the resident's data, as two files
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
        horn = max(h.id for h in await demo.runtime.store.horns.active())
        assert len(await demo.runtime.store.horns.checkins(horn)) == 3
    finally:
        await demo.stop()
