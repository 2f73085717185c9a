"""The playground page (SPEC §17) in a real browser: a real `Playground` and `PageServer`
started by each test, people acting through the page (typing, tapping, switching a column's
person) and through `Playground.act`, and every check made on what the page shows."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.async_api import Locator, Page, expect

from bot.i18n import t
from bot.services.horn_codes import HornPress, horn_data
from emulator import EmuMessage
from playground.server import PageServer
from playground.session import Playground
from playground.strings import page_strings
from playground.tour import TourPlayer
from playground.transcript import Action
from tests.support.texts import check_ins

OPINION = "The stairwell light on floor 3 is broken"
EVIL = '<img src=x onerror="window.__pwned=1">'


@dataclass
class Demo:
    playground: Playground
    server: PageServer
    url: str

    def uid(self, key: str) -> int:
        return int(self.playground.world.person(key).user.id)

    def chat_id(self, key: str) -> int:
        return int(self.playground.chat_by_key(key).id)

    def bot_messages(self, key: str) -> list[EmuMessage]:
        chat = self.playground.chat_by_key(key)
        return [m for _, m in sorted(chat.messages.items()) if m.sender is None]

    def button(self, message: EmuMessage, prefix: str) -> tuple[str, str]:
        """(label, data) of the button on `message` whose callback data starts with `prefix`."""
        for row in message.buttons:
            for b in row:
                if b.callback_data and b.callback_data.startswith(prefix):
                    return b.text, b.callback_data
        raise AssertionError(f"no {prefix!r} button on {message.text!r}: {message.buttons}")


@pytest.fixture
async def demo() -> AsyncIterator[Demo]:
    playground = Playground(lang="en", flood=None)
    await playground.start()
    server = PageServer(playground)
    try:
        server.tour = TourPlayer(playground)
        url = await server.start(0)
        yield Demo(playground, server, url)
    finally:
        try:
            await server.stop()
        finally:
            await playground.stop()


def column(page: Page, demo: Demo, key: str) -> Locator:
    return page.locator(f'.column[data-person="{demo.uid(key)}"]')


async def open_page(page: Page, demo: Demo) -> None:
    await page.goto(demo.url)
    await expect(page.locator(".column")).to_have_count(4)


async def show(page: Page, demo: Demo, index: int, key: str) -> Locator:
    """Column `index` switched to the person `key` with its picker; that column."""
    col = page.locator(".column").nth(index)
    await col.locator("select.person-picker").select_option(str(demo.uid(key)))
    await expect(col).to_have_attribute("data-person", str(demo.uid(key)))
    await expect(col.locator(".chat-list")).to_be_visible()
    return col


async def open_chat(col: Locator, chat_id: int) -> None:
    await col.locator(f'[data-chat="{chat_id}"]').click()
    await expect(col.locator(".open-chat")).to_be_visible()


def bubble(col: Locator, chat_id: int, message_id: int) -> Locator:
    return col.locator(f'.bubble[data-message="{chat_id}:{message_id}"]')


async def type_and_send(col: Locator, text: str) -> None:
    await col.locator("textarea.composer").fill(text)
    await col.locator("button.send").click()


def keyboard(col: Locator, chat_id: int, message_id: int) -> Locator:
    """The inline keyboard under a message (the bubble's next sibling)."""
    return col.locator(f'.bubble[data-message="{chat_id}:{message_id}"] + .keyboard')


async def submit_opinion_in_page(page: Page, demo: Demo, text: str) -> EmuMessage:
    """The resident writes to the bot, taps a category and Submit on the draft card; the
    draft as it was shown."""
    resident = column(page, demo, "resident")
    private = demo.uid("resident")
    await open_chat(resident, private)
    await type_and_send(resident, text)
    await expect(resident.locator(".bubble.own", has_text=text)).to_be_visible()
    card = resident.locator(".bubble.from-bot", has_text=text)
    await expect(card).to_be_visible()
    draft = demo.bot_messages("private:resident")[-1]
    buttons = keyboard(resident, private, draft.message_id)
    category, _ = demo.button(draft, "dr:dom:purple")
    await buttons.locator(".kb-button", has_text=category).click()
    # the card is edited in place: the chosen category is ticked
    await expect(buttons.locator(".kb-button", has_text=f"✅ {category}")).to_be_visible()
    submit, _ = demo.button(draft, "dr:submit")
    await buttons.locator(".kb-button", has_text=submit).click()
    await expect(resident.locator(".toast")).to_be_visible()
    return draft


async def test_an_opinion_typed_by_the_resident_reaches_the_forum_and_the_head(
        demo: Demo, page: Page) -> None:
    await open_page(page, demo)
    await submit_opinion_in_page(page, demo, OPINION)

    worker = column(page, demo, "worker")
    await open_chat(worker, demo.chat_id("staff:G0101"))
    topic = worker.locator("[data-topic]", has_text=re.compile(r"#1\b"))
    await expect(topic).to_be_visible()
    await topic.click()
    await expect(worker.locator(".bubble.from-bot", has_text=OPINION)
                 .locator("+ .keyboard .kb-button").first).to_be_visible()

    head = column(page, demo, "head")
    await open_chat(head, demo.uid("head"))
    card = head.locator(".bubble.from-bot", has_text=OPINION)
    await expect(card).to_have_count(1)
    await expect(card.locator("+ .keyboard .kb-button").first).to_be_visible()


async def test_the_heads_tap_edits_the_card_in_place(demo: Demo, page: Page) -> None:
    await open_page(page, demo)
    await submit_opinion_in_page(page, demo, OPINION)
    head = column(page, demo, "head")
    chat = demo.uid("head")
    await open_chat(head, chat)
    await expect(head.locator(".bubble.from-bot", has_text=OPINION)).to_have_count(1)
    card = demo.bot_messages("private:head")[-1]
    assert OPINION in card.text
    before = card.text
    shown = bubble(head, chat, card.message_id)
    await expect(shown).not_to_have_attribute("data-edited", "1")
    bubbles = await head.locator(".bubble").count()

    label, _ = demo.button(card, "t:ack:")
    await keyboard(head, chat, card.message_id).locator(".kb-button", has_text=label).click()
    await expect(shown).to_have_attribute("data-edited", "1")
    after = demo.playground.chat_by_key("private:head").messages[card.message_id].text
    assert after != before
    state = next(line for line in after.splitlines() if line.startswith("State:"))
    await expect(shown).to_contain_text(state)
    await expect(shown.locator(".edited")).to_be_visible()
    await expect(keyboard(head, chat, card.message_id).locator(".kb-button", has_text=label)
                 ).to_have_count(0)
    await expect(head.locator(".toast")).to_be_visible()
    # the same element, not a second bubble: one bubble with that id, none added
    await expect(head.locator(f'[data-message="{chat}:{card.message_id}"]')).to_have_count(1)
    assert await head.locator(".bubble").count() == bubbles


async def test_three_volunteers_check_in_and_every_open_copy_of_the_horn_shows_3(
        demo: Demo, page: Page) -> None:
    """The community staff sound a service horn for the whole community (C01): it is posted
    to all three building chats, one volunteer in each; each volunteer taps Check in in their
    own column of the page."""
    playground = demo.playground
    preview = (await playground.act(Action(
        "send", "staff", "private:staff", text="/horn service C01 3 Carry sandbags"))).bot[-1]
    await playground.act(Action("press", "staff", "private:staff", message=preview["id"],
                                data="hf:pub"))
    await open_page(page, demo)
    zero, three = check_ins("en", 0, 3), check_ins("en", 3, 3)

    posts: list[tuple[Locator, Locator]] = []
    for index, (key, chat) in enumerate((("volunteer1", "building:B01010101"),
                                         ("volunteer2", "building:B01010102"),
                                         ("volunteer3", "building:B01020101"),
                                         ("staff", "staff:C01"))):
        col = await show(page, demo, index, key)
        chat_id = demo.chat_id(chat)
        await open_chat(col, chat_id)
        post = next(m for m in demo.bot_messages(chat) if "horn #1" in m.text)
        shown = bubble(col, chat_id, post.message_id)
        await expect(shown).to_contain_text(zero)
        posts.append((col, shown))

    check_in, _ = demo.button(post, horn_data(HornPress.CHECK_IN, 1))
    assert check_in == t("en", "horn.btn_check_in")
    for col, shown in posts[:3]:
        await shown.locator("+ .keyboard .kb-button", has_text=check_in).click()
        await expect(col.locator(".toast")).to_be_visible()
    for _, shown in posts:
        await expect(shown).to_contain_text(three)
        await expect(shown).to_have_attribute("data-edited", "1")
    # …and so does every copy the bot keeps (the forum's and the chats no column shows)
    for chat in ("building:B01010101", "building:B01010102", "building:B01020101",
                 "staff:C01", "staff:G0101"):
        copies = [m for m in demo.bot_messages(chat) if "horn #1" in m.text]
        assert len(copies) == 1 and three in copies[0].text, chat


ENTITIES = (
    '<b>bold</b> <i>italic</i> <u>underline</u> <s>struck</s> '
    '<tg-spoiler>hidden</tg-spoiler> <code>inline code</code>\n'
    '<pre>block of code</pre>\n'
    '<a href="https://example.org/grid">a link</a>\n'
    '<blockquote>a quotation</blockquote>'
)


async def test_every_entity_renders_and_a_users_markup_stays_text(
        demo: Demo, page: Page) -> None:
    await open_page(page, demo)
    resident = column(page, demo, "resident")
    chat = demo.uid("resident")
    await open_chat(resident, chat)
    # the bot's own client sends it, as the bot would: entities come back from the emulator
    sent = await demo.playground.runtime.app.bot.send_message(chat, ENTITIES, parse_mode="HTML")
    text = bubble(resident, chat, sent.message_id).locator(".text")
    for selector, content in (("b", "bold"), ("i", "italic"), ("u", "underline"),
                              ("s", "struck"), (".tg-spoiler", "hidden"),
                              ("code", "inline code"), ("pre", "block of code"),
                              ('a[href="https://example.org/grid"]', "a link"),
                              ("blockquote", "a quotation")):
        await expect(text.locator(selector).filter(has_text=content)).to_have_count(1)
    await expect(text.locator("script, img, iframe")).to_have_count(0)

    await type_and_send(resident, EVIL)
    own = resident.locator(".bubble.own", has_text=EVIL)
    await expect(own).to_have_count(1)
    card = resident.locator(".bubble.from-bot", has_text=EVIL)
    await expect(card).to_have_count(1)
    for shown in (own, card):
        await expect(shown.locator(".text")).to_contain_text(EVIL)
        await expect(shown.locator("img")).to_have_count(0)
    await expect(page.locator(".bubble img")).to_have_count(0)
    assert await page.evaluate("typeof window.__pwned") == "undefined"


async def test_the_monthly_theme_shows_in_the_pinned_bar(demo: Demo, page: Page) -> None:
    """Staff set next month's theme with /theme; on the 1st at 09:00 the bot posts it to every
    building chat and pins it (SPEC §6): the resident's building chat shows it pinned."""
    playground = demo.playground
    theme = "Care for elders living alone"
    await playground.act(Action("send", "staff", "private:staff", text=f"/theme 2026-04 {theme}"))
    await open_page(page, demo)
    resident = column(page, demo, "resident")
    chat = demo.chat_id("building:B01010101")
    await open_chat(resident, chat)
    await expect(resident.locator(".pinned-bar")).to_have_count(0)

    await playground.act(Action("clock", at="2026-04-01T09:00+08:00"))
    post = next(m for m in demo.bot_messages("building:B01010101") if theme in m.text)
    bar = resident.locator(".pinned-bar")
    await expect(bar).to_have_attribute("data-pinned", str(post.message_id))
    await expect(bar.locator(".pin-text")).to_contain_text(theme)
    await expect(bubble(resident, chat, post.message_id)).to_contain_text(theme)
    # the head, another member, sees the same pin in the same chat
    head = column(page, demo, "head")
    await open_chat(head, chat)
    await expect(head.locator(".pinned-bar .pin-text")).to_contain_text(theme)


async def test_a_dropped_event_stream_resumes_with_nothing_lost_or_doubled(
        demo: Demo, page: Page) -> None:
    playground = demo.playground
    await open_page(page, demo)
    resident = column(page, demo, "resident")
    chat = demo.uid("resident")
    await open_chat(resident, chat)
    first = await playground.act(Action("send", "resident", "private:resident", text="/start"))
    await expect(bubble(resident, chat, first.bot[-1]["id"])).to_have_count(1)

    # the network drops: the open stream is cut and reconnecting fails for a while
    await page.route("**/api/events*", lambda route: route.abort("connectionreset"))
    runner = demo.server._runner
    assert runner is not None and runner.server is not None
    for connection in runner.server.connections:
        connection.force_close()
    await expect(page.locator(".caption-bar .notice")).to_contain_text(
        page_strings("en")["playground.disconnected"])

    missed = []
    for text in ("/help", "/theme", "The lift is stuck on floor 5"):
        record = await playground.act(Action("send", "resident", "private:resident", text=text))
        missed += [b["id"] for b in record.bot if b["chat"] == "private:resident"]
    assert len(missed) >= 3
    await page.unroute("**/api/events*")
    await expect(page.locator(".caption-bar .notice")).to_have_count(0)
    ids = sorted({m for m in playground.chat_by_key("private:resident").messages})
    for message_id in ids:
        await expect(bubble(resident, chat, message_id)).to_have_count(1)
    assert set(missed) <= set(ids)
    # and the page's bubbles are exactly the chat's messages, each once
    shown = await resident.locator(".bubble[data-message]").evaluate_all(
        "els => els.map(e => e.dataset.message)")
    assert sorted(shown) == sorted(f"{chat}:{m}" for m in ids)


async def test_a_saved_transcript_replays_clean_and_a_changed_reply_names_its_step(
        demo: Demo, page: Page, tmp_path: Path) -> None:
    playground = demo.playground
    draft = (await playground.act(Action("send", "resident", "private:resident",
                                         text=OPINION))).bot[-1]
    await playground.act(Action("press", "resident", "private:resident", message=draft["id"],
                                data="dr:dom:purple"))
    await playground.act(Action("press", "resident", "private:resident", message=draft["id"],
                                data="dr:submit"))
    await open_page(page, demo)
    strings = page_strings("en")

    async with page.expect_download() as saving:
        await page.locator("a.save-transcript").click()
    saved = tmp_path / "saved.jsonl"
    await (await saving.value).save_as(saved)
    lines = saved.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 4  # the header and the three steps

    async def replay(path: Path) -> None:
        async with page.expect_file_chooser() as choosing:
            await page.locator("button.replay-transcript").click()
        await (await choosing.value).set_files(path)
        await expect(page.locator(".replay-result.good, .replay-result.bad")).to_be_visible()

    await replay(saved)
    await expect(page.locator(".replay-result.good")).to_contain_text(
        strings["playground.replay_ok"].format(steps=3))
    await page.locator(".replay-result button.link").click()
    await expect(page.locator(".replay-result")).to_have_count(0)

    # step 3's answer in the forum: one reply string changed
    step = json.loads(lines[3])
    card = next(b for b in step["bot"] if OPINION in (b["text"] or ""))
    assert step["step"] == 3 and card["chat"] in ("staff:G0101", "private:head")
    card["text"] = card["text"].replace(OPINION, "A different opinion")
    changed = tmp_path / "changed.jsonl"
    changed.write_text("\n".join([*lines[:3], json.dumps(step, ensure_ascii=False)]) + "\n",
                       encoding="utf-8")
    await replay(changed)
    bad = page.locator(".replay-result.bad")
    await expect(bad).to_contain_text(strings["playground.replay_failed"].format(step=3))
    await expect(bad.locator(".difference")).to_contain_text("A different opinion")
