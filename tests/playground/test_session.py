"""The running playground: the real bot on the emulator in the sample world, steps taken as
people, what the page is told, the inspector, and transcripts that replay exactly."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import pytest

from playground.session import Playground, StepError
from playground.transcript import Action, dumps, loads

pytestmark = pytest.mark.asyncio

OPINION = "楼道灯坏了 <img src=x onerror=alert(1)>"


@pytest.fixture
async def playground() -> AsyncIterator[Playground]:
    demo = Playground(lang="en", flood=None)
    await demo.start()
    try:
        yield demo
    finally:
        await demo.stop()


async def submit_opinion(demo: Playground, text: str = OPINION) -> None:
    draft = (await demo.act(Action("send", "resident", "private:resident", text=text))).bot[-1]
    await demo.act(Action("press", "resident", "private:resident", message=draft["id"],
                          data="dr:dom:purple"))
    await demo.act(Action("press", "resident", "private:resident", message=draft["id"],
                          data="dr:submit"))


async def test_an_opinion_reaches_the_forum_and_the_head_and_the_page_is_told(
        playground: Playground) -> None:
    start = playground.feed.last_id
    await submit_opinion(playground)
    forum = playground.world.chats["staff:G0101"]
    topics = list(forum.topics.values())
    assert len(topics) == 1 and topics[0].name.startswith("#1")
    card = [m for m in forum.messages.values() if m.thread_id == topics[0].thread_id
            and m.sender is None and m.kind == "text"][-1]
    assert OPINION in card.text and card.buttons
    head = playground.world.person("head").user
    assert any(OPINION in m.text for m in playground.emu.messages(head.id))

    events = playground.feed.since(start)
    shown = [e.data for e in events if e.type == "message"
             and (e.data["chat_id"], e.data["message_id"]) == (forum.id, card.message_id)]
    assert shown and shown[-1]["thread_id"] == topics[0].thread_id
    assert "<img" not in shown[-1]["html"] and "&lt;img src=x onerror=alert(1)&gt;" in \
        shown[-1]["html"]
    assert [row and row[0]["text"] for row in shown[-1]["buttons"]] == \
        [row[0].text for row in card.buttons]
    chats = [e.data for e in events if e.type == "chat" and e.data["id"] == forum.id]
    assert chats and chats[-1]["topics"][0]["name"] == topics[0].name
    answers = [e.data for e in events if e.type == "answer"]
    assert answers and answers[-1]["user_id"] == playground.world.person("resident").user.id


async def test_the_inspector_names_the_call_and_the_update_it_answered(
        playground: Playground) -> None:
    record = await playground.act(Action("send", "resident", "private:resident", text=OPINION))
    draft = record.bot[-1]
    resident = playground.world.person("resident").user
    calls = playground.inspect(resident.id, draft["id"])["calls"]
    assert [c["method"] for c in calls] == ["sendMessage"]
    assert "&lt;img" in calls[0]["params"]["text"]
    assert calls[0]["update"]["message"]["text"] == OPINION
    assert all(c["method"].lower() != "getupdates" for c in playground.call_log())


async def test_a_ticket_card_posted_after_the_burst_names_the_submit_it_answers(
        playground: Playground) -> None:
    await submit_opinion(playground)
    head = playground.world.person("head").user
    card = [m for m in playground.emu.messages(head.id) if m.buttons][-1]
    calls = playground.inspect(head.id, card.message_id)["calls"]
    assert calls and calls[0]["method"] == "sendMessage"
    tap = calls[0]["update"]["callback_query"]  # queued by the card backlog, for this tap
    assert tap["data"] == "dr:submit"
    assert tap["from"]["id"] == playground.world.person("resident").user.id


async def test_a_post_the_outbox_sent_names_the_tap_it_answered(playground: Playground) -> None:
    preview = await playground.act(Action("send", "staff", "private:staff",
                                          text="/horn service C01 3 Saturday health checks"))
    await playground.act(Action("press", "staff", "private:staff", message=preview.bot[-1]["id"],
                                data="hf:pub"))
    building = playground.world.chats["building:B01010101"]
    post = [m for m in building.messages.values() if m.sender is None and m.buttons][-1]
    calls = playground.inspect(building.id, post.message_id)["calls"]
    assert calls and calls[0]["method"] == "sendMessage"
    tap = calls[0]["update"]["callback_query"]  # the outbox sent it, for this tap
    assert tap["data"] == "hf:pub"
    assert tap["from"]["id"] == playground.world.person("staff").user.id


async def test_a_transcript_replays_with_no_difference_and_a_changed_reply_is_named(
        playground: Playground) -> None:
    await submit_opinion(playground)
    lang, steps = loads(dumps(playground.lang, playground.steps))
    assert lang == "en" and [s.to_json() for s in steps] == \
        [s.to_json() for s in playground.steps]

    assert await playground.replay(steps) == (None, None)

    changed = [dataclasses.replace(s) for s in steps]
    receipt = changed[2].bot[-1]
    changed[2].bot[-1] = {**receipt, "text": receipt["text"] + "!"}
    failed, difference = await playground.replay(changed)
    assert failed == 3
    assert difference is not None and "text" in difference


async def test_an_unknown_button_is_refused_and_nothing_is_recorded(
        playground: Playground) -> None:
    draft = (await playground.act(Action("send", "resident", "private:resident",
                                         text=OPINION))).bot[-1]
    with pytest.raises(StepError):
        await playground.act(Action("press", "resident", "private:resident",
                                    message=draft["id"], data="no:such:button"))
    assert len(playground.steps) == 1


async def test_the_bot_of_the_playground_calls_nothing_but_its_emulator(
        playground: Playground) -> None:
    request = playground.runtime.requests[0]
    with pytest.raises(RuntimeError, match="only call its emulator"):
        await request.do_request("https://api.telegram.org/bot1:x/getMe", "POST")
    assert playground.emu.base_url.startswith("http://127.0.0.1:")


async def test_invite_links_are_the_same_when_a_transcript_replays(
        playground: Playground) -> None:
    invite = await playground.act(Action("send", "staff", "private:staff",
                                         text="/invite building_head B01010102"))
    links = [b["text"] for b in invite.bot if "start=" in b["text"]]
    assert links, invite.bot
    assert await playground.replay(list(playground.steps)) == (None, None)
