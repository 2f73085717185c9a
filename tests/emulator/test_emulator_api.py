"""The emulator driven by python-telegram-bot's real HTTP stack and by raw httpx."""

from __future__ import annotations

import asyncio
import datetime as dtm
import json
import time
from collections.abc import AsyncIterator

import aiohttp
import httpx
import pytest
from telegram import (
    Bot,
    BotCommand,
    BotCommandScopeAllGroupChats,
    BotCommandScopeChat,
    ForceReply,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
    Update,
)
from telegram.error import BadRequest, ChatMigrated, Forbidden, NetworkError, RetryAfter
from telegram.ext import Application, CallbackQueryHandler, CommandHandler, ContextTypes

from emulator import BotAPIEmulator, EmuMessage, Faults, FloodLimits

TOKEN = "123456:TEST"


@pytest.fixture(autouse=True)
def _ptb_timedelta(monkeypatch: pytest.MonkeyPatch) -> None:
    # PTB 22 warns (an error under filterwarnings=error) when RetryAfter.retry_after is an int.
    monkeypatch.setenv("PTB_TIMEDELTA", "true")


@pytest.fixture
async def emu() -> AsyncIterator[BotAPIEmulator]:
    emulator = BotAPIEmulator(
        token=TOKEN,
        bot_username="gridhorn_bot",
        bot_first_name="Gridhorn",
        flood=None,
        callback_timeout=15.0,
    )
    await emulator.start(host="127.0.0.1", port=0)
    try:
        yield emulator
    finally:
        await emulator.stop()
    assert not emulator.internal_errors


@pytest.fixture
async def bot(emu: BotAPIEmulator) -> AsyncIterator[Bot]:
    telegram_bot = Bot(TOKEN, base_url=emu.base_url, base_file_url=emu.base_file_url)
    async with telegram_bot:
        yield telegram_bot


@pytest.fixture
async def http(emu: BotAPIEmulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"{emu.base_url}{TOKEN}/", timeout=10) as client:
        yield client


def keyboard(*buttons: tuple[str, str]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(text, callback_data=data) for text, data in buttons]]
    )


# ---------------------------------------------------------------------------- basics


async def test_get_me_and_urls(emu: BotAPIEmulator, bot: Bot) -> None:
    assert bot.username == "gridhorn_bot"
    assert bot.id == emu.bot_id == 123456
    assert emu.base_url.endswith("/bot") and emu.base_file_url.endswith("/file/bot")
    assert emu.requests[0].method == "getMe" and emu.requests[0].status_code == 200


async def test_routing_errors_and_case_insensitive_methods(emu: BotAPIEmulator) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        wrong = await client.post(f"{emu.base_url}999:WRONG/getMe")
        assert wrong.status_code == 401
        assert wrong.json() == {"ok": False, "error_code": 401, "description": "Unauthorized"}
        unknown = await client.post(f"{emu.base_url}{TOKEN}/frobnicate")
        assert unknown.status_code == 404 and unknown.json()["description"] == "Not Found"
        ok = await client.get(f"{emu.base_url}{TOKEN}/GETME")
        assert ok.json()["result"]["username"] == "gridhorn_bot"


async def test_every_parameter_encoding(emu: BotAPIEmulator, http: httpx.AsyncClient) -> None:
    user = emu.add_user("Li")
    emu.send_text(user, "hi")
    markup = {"inline_keyboard": [[{"text": "A", "callback_data": "a"}]]}
    query = await http.get("sendMessage", params={"chat_id": user.id, "text": "q"})
    form = await http.post(
        "sendMessage",
        data={
            "chat_id": str(user.id),
            "text": "<b>f</b>",
            "parse_mode": "HTML",
            "reply_markup": json.dumps(markup),
        },
    )
    body = await http.post(
        "sendMessage", json={"chat_id": user.id, "text": "j", "reply_markup": markup}
    )
    multipart = await http.post(
        "sendDocument",
        data={"chat_id": str(user.id), "caption": "m", "reply_markup": json.dumps(markup)},
        files={"document": ("report.csv", b"a,b\n1,2\n", "text/csv")},
    )
    for response in (query, form, body, multipart):
        assert response.status_code == 200, response.text
    texts = [m.text for m in emu.messages(user.id)]
    assert texts == ["q", "f", "j", "m"]
    assert [len(m.buttons) for m in emu.messages(user.id)] == [0, 1, 1, 1]
    document = emu.messages(user.id)[-1]
    assert (document.kind, document.file_name, document.document) == (
        "document",
        "report.csv",
        b"a,b\n1,2\n",
    )


# ---------------------------------------------------------------------------- updates


async def test_get_updates_offsets(emu: BotAPIEmulator, bot: Bot) -> None:
    user = emu.add_user("Li", language_code="zh-hans")
    sent = [emu.send_text(user, text) for text in ("/start", "one", "two")]
    updates = await bot.get_updates(timeout=0)
    assert [u.message.text for u in updates if u.message] == ["/start", "one", "two"]
    assert updates[0].message.entities[0].type == "bot_command"
    assert updates[0].message.from_user.language_code == "zh-hans"
    # Unconfirmed updates are delivered again.
    assert [u.update_id for u in await bot.get_updates(timeout=0)] == [u.update_id for u in updates]
    # Confirming drops everything below the offset.
    again = await bot.get_updates(offset=updates[1].update_id, timeout=0)
    assert [u.update_id for u in again] == [updates[1].update_id, updates[2].update_id]
    assert await bot.get_updates(offset=updates[-1].update_id + 1, timeout=0) == ()
    assert emu.confirmed_offset == updates[-1].update_id + 1
    assert emu.pending_updates() == []
    emu.send_text(user, "three")
    assert len(await bot.get_updates(offset=updates[-1].update_id + 1, limit=1)) == 1
    emu.edit_text(sent[1], "one (edited)")
    edited = (await bot.get_updates(offset=updates[-1].update_id + 1, timeout=0))[-1]
    assert edited.edited_message.text == "one (edited)" and edited.edited_message.edit_date


async def test_long_poll_wakes_up_on_new_update(emu: BotAPIEmulator, bot: Bot) -> None:
    user = emu.add_user("Li")
    started = time.monotonic()
    poll = asyncio.create_task(bot.get_updates(timeout=10))
    await emu.wait_until(lambda: emu.waiting_polls == 1)
    emu.send_text(user, "wake up")
    updates = await asyncio.wait_for(poll, 5)
    assert updates[0].message.text == "wake up"
    assert time.monotonic() - started < 5


async def test_concurrent_get_updates_conflict(
    emu: BotAPIEmulator, http: httpx.AsyncClient
) -> None:
    first = asyncio.create_task(http.post("getUpdates", json={"timeout": 10}))
    await emu.wait_until(lambda: emu.waiting_polls == 1)
    second = await http.post("getUpdates", json={"timeout": 0})
    assert second.json() == {"ok": True, "result": []}
    terminated = await asyncio.wait_for(first, 5)
    assert terminated.status_code == 409
    assert terminated.json()["description"].startswith(
        "Conflict: terminated by other getUpdates request"
    )


async def test_allowed_updates_and_drop_pending(emu: BotAPIEmulator, bot: Bot) -> None:
    user = emu.add_user("Li")
    emu.send_text(user, "old")
    await bot.delete_webhook(drop_pending_updates=True)
    assert emu.pending_updates() == []
    message = await bot.send_message(user.id, "pick", reply_markup=keyboard(("A", "a")))
    emu.send_text(user, "text")
    emu.press(user, emu.messages(user.id)[-1], "a")
    updates = await bot.get_updates(timeout=0, allowed_updates=["callback_query"])
    assert [u.callback_query.data for u in updates] == ["a"]
    assert updates[0].callback_query.message.message_id == message.message_id
    raw_id = emu.inject_update({"message": updates[0].callback_query.message.to_dict()})
    assert emu.pending_updates()[-1]["update_id"] == raw_id


# ---------------------------------------------------------------------------- sending


async def test_send_message_html_is_parsed_and_stored(emu: BotAPIEmulator, bot: Bot) -> None:
    user = emu.add_user("Li")
    emu.send_text(user, "/start")
    html = '<b>1栋</b> 😀 <i>楼事</i> <a href="https://example.com">link</a>'
    sent = await bot.send_message(
        user.id, html, parse_mode="HTML", reply_markup=keyboard(("是", "yes"))
    )
    assert sent.text == "1栋 😀 楼事 link"
    assert [(e.type, e.offset, e.length) for e in sent.entities] == [
        ("bold", 0, 2),
        ("italic", 6, 2),
        ("text_link", 9, 4),
    ]
    assert sent.from_user.id == bot.id and sent.chat.id == user.id
    stored = emu.messages(user.id)[0]
    assert (stored.text, stored.html, stored.kind) == (sent.text, html, "text")
    assert stored.buttons[0][0].text == "是" and stored.buttons[0][0].callback_data == "yes"
    assert stored.message_id == sent.message_id and emu.all_messages() == [stored]

    forced = await bot.send_message(
        user.id,
        "your name?",
        reply_markup=ForceReply(selective=True, input_field_placeholder="名字"),
    )
    stored_forced = emu.messages(user.id)[-1]
    assert stored_forced.force_reply and stored_forced.selective
    assert stored_forced.input_field_placeholder == "名字" and forced.reply_markup is None


async def test_html_errors_like_telegram(
    emu: BotAPIEmulator, bot: Bot, http: httpx.AsyncClient
) -> None:
    user = emu.add_user("Li")
    emu.send_text(user, "hi")
    cases = {
        "a <foo> b": 'can\'t parse entities: Unsupported start tag "foo" at byte offset 2',
        "<b>x": "can't parse entities: Can't find end tag corresponding to start tag \"b\"",
        "x &bogus; y": 'can\'t parse entities: Unsupported HTML entity "&bogus;" at byte offset 2',
        "<b></b>": "message text is empty",
        "  \n ": "message text is empty",
    }
    for text, reason in cases.items():
        response = await http.post(
            "sendMessage", json={"chat_id": user.id, "text": text, "parse_mode": "HTML"}
        )
        assert response.status_code == 400
        assert response.json()["description"] == f"Bad Request: {reason}"
    with pytest.raises(BadRequest, match="(?i)unsupported start tag"):
        await bot.send_message(user.id, "1 < 2", parse_mode="HTML")
    # Without parse_mode the text is taken literally.
    literal = await bot.send_message(user.id, "1 < 2 <b>")
    assert literal.text == "1 < 2 <b>" and not literal.entities


async def test_length_limits_count_utf16(emu: BotAPIEmulator, bot: Bot) -> None:
    user = emu.add_user("Li")
    emu.send_text(user, "hi")
    await bot.send_message(user.id, "😀" * 2048)  # 4096 UTF-16 units
    await bot.send_message(user.id, "<b>" + "a" * 4096 + "</b>", parse_mode="HTML")
    with pytest.raises(BadRequest, match="(?i)message is too long"):
        await bot.send_message(user.id, "😀" * 2048 + "a")
    photo = emu.send_photo(user)
    with pytest.raises(BadRequest, match="(?i)message caption is too long"):
        await bot.send_photo(user.id, photo.file_id, caption="😀" * 513)
    await bot.send_photo(user.id, photo.file_id, caption="😀" * 512)


async def test_inline_keyboard_validation(emu: BotAPIEmulator, bot: Bot) -> None:
    user = emu.add_user("Li")
    emu.send_text(user, "hi")
    with pytest.raises(BadRequest, match="(?i)button_data_invalid"):
        await bot.send_message(user.id, "x", reply_markup=keyboard(("A", "x" * 65)))
    await bot.send_message(user.id, "x", reply_markup=keyboard(("A", "楼" * 21)))  # 63 bytes
    url_markup = InlineKeyboardMarkup([[InlineKeyboardButton("site", url="https://example.com")]])
    sent = await bot.send_message(user.id, "y", reply_markup=url_markup)
    assert emu.messages(user.id)[-1].buttons[0][0].url == "https://example.com"
    with pytest.raises(LookupError):
        emu.press(user, emu.messages(user.id)[-1], "site")  # url buttons cannot be tapped
    assert sent.reply_markup is not None


async def test_private_chat_errors(emu: BotAPIEmulator, bot: Bot) -> None:
    user = emu.add_user("Wang")
    with pytest.raises(Forbidden, match="(?i)bot can't initiate conversation with a user"):
        await bot.send_message(user.id, "hello")
    emu.send_text(user, "/start")
    await bot.send_message(user.id, "hello")
    emu.block_bot(user)
    with pytest.raises(Forbidden, match="(?i)bot was blocked by the user"):
        await bot.send_message(user.id, "hello again")
    with pytest.raises(BadRequest, match="(?i)chat not found"):
        await bot.send_message(424242, "nobody")
    updates = await bot.get_updates(timeout=0)
    assert updates[-1].my_chat_member.new_chat_member.status == "kicked"


async def test_reply_to_and_reply_errors(emu: BotAPIEmulator, bot: Bot) -> None:
    user = emu.add_user("Li")
    question = emu.send_text(user, "question")
    answer = await bot.send_message(user.id, "answer", reply_to_message_id=question.message_id)
    assert answer.reply_to_message.text == "question"
    assert emu.messages(user.id)[0].reply_to_message_id == question.message_id
    with pytest.raises(BadRequest, match="(?i)message to be replied not found"):
        await bot.send_message(user.id, "x", reply_to_message_id=999)
    follow_up = emu.send_text(user, "thanks", reply_to=emu.messages(user.id)[0])
    update = (await bot.get_updates(timeout=0))[-1]
    assert update.message.reply_to_message.from_user.id == bot.id
    assert follow_up.reply_to_message_id == answer.message_id


# ---------------------------------------------------------------------------- editing


async def test_edit_message_rules(emu: BotAPIEmulator, bot: Bot) -> None:
    user = emu.add_user("Li")
    emu.send_text(user, "hi")
    sent = await bot.send_message(
        user.id, "<b>v1</b>", parse_mode="HTML", reply_markup=keyboard(("A", "a"))
    )
    with pytest.raises(BadRequest, match="(?i)message is not modified"):
        await bot.edit_message_text(
            "<b>v1</b>",
            user.id,
            sent.message_id,
            parse_mode="HTML",
            reply_markup=keyboard(("A", "a")),
        )
    edited = await bot.edit_message_text(
        "v2", user.id, sent.message_id, reply_markup=keyboard(("B", "b"))
    )
    assert isinstance(edited, type(sent)) and edited.text == "v2" and edited.edit_date is not None
    stored = emu.messages(user.id)[0]
    assert (stored.text, stored.edits, stored.buttons[0][0].text) == ("v2", 1, "B")
    await bot.edit_message_text("v3", user.id, sent.message_id)  # no markup: keyboard removed
    assert emu.messages(user.id)[0].buttons == []
    with pytest.raises(BadRequest, match="(?i)message to edit not found"):
        await bot.edit_message_text("x", user.id, 999)
    with pytest.raises(BadRequest, match="(?i)message can't be edited"):
        await bot.edit_message_text("x", user.id, 1)  # the user's own message
    await bot.edit_message_reply_markup(user.id, sent.message_id, reply_markup=keyboard(("C", "c")))
    with pytest.raises(BadRequest, match="(?i)message is not modified"):
        await bot.edit_message_reply_markup(
            user.id, sent.message_id, reply_markup=keyboard(("C", "c"))
        )
    assert await bot.delete_message(user.id, sent.message_id)
    assert emu.messages(user.id) == []
    with pytest.raises(BadRequest, match="(?i)message to delete not found"):
        await bot.delete_message(user.id, sent.message_id)


async def test_edit_caption(emu: BotAPIEmulator, bot: Bot) -> None:
    user = emu.add_user("Li")
    photo = emu.send_photo(user, caption="my photo")
    sent = await bot.send_photo(user.id, photo.file_id, caption="c1")
    stored = emu.messages(user.id)[0]
    assert stored.kind == "photo" and stored.photo == photo.photo and stored.text == "c1"
    await bot.edit_message_caption(user.id, sent.message_id, caption="<i>c2</i>", parse_mode="HTML")
    assert stored.text == "c2" and stored.entities[0]["type"] == "italic"
    with pytest.raises(BadRequest, match="(?i)there is no text in the message to edit"):
        await bot.edit_message_text("t", user.id, sent.message_id)


# ---------------------------------------------------------------------------- callbacks


async def test_callback_queries(emu: BotAPIEmulator, bot: Bot) -> None:
    user = emu.add_user("Li")
    emu.send_text(user, "/menu")
    await bot.send_message(
        user.id, "menu", reply_markup=keyboard(("报修", "repair"), ("投诉", "complain"))
    )
    menu = emu.messages(user.id)[0]
    with pytest.raises(LookupError):
        emu.press(user, menu, "nope")
    query = emu.press(user, menu, "投诉")  # by button text
    assert query.data == "complain"
    update = (await bot.get_updates(timeout=0))[-1]
    assert update.callback_query.data == "complain"
    assert update.callback_query.message.reply_markup.inline_keyboard[0][1].text == "投诉"
    assert await update.callback_query.answer("收到", show_alert=True)
    answer = await query.wait_answered(timeout=5)
    assert (answer.text, answer.show_alert) == ("收到", True)
    assert query.answered_at is not None and query.answered_at >= query.created_at
    with pytest.raises(BadRequest, match="(?i)query is too old"):
        await update.callback_query.answer("twice")
    with pytest.raises(BadRequest, match="(?i)query is too old"):
        await bot.answer_callback_query("no-such-query")

    forged = emu.inject_callback(user, menu, "ticket:ack:999")  # data no button carries
    update = (await bot.get_updates(offset=update.update_id + 1, timeout=0))[-1]
    assert update.callback_query.data == "ticket:ack:999" and forged.data == "ticket:ack:999"

    late = emu.press(user, menu, "repair")
    emu.callback_timeout = 0.0  # every answer is now late
    with pytest.raises(BadRequest, match="(?i)query is too old and response timeout expired"):
        await bot.answer_callback_query(late.id)
    with pytest.raises(TimeoutError):
        await late.wait_answered(timeout=0.05)


# ---------------------------------------------------------------------------- flood & faults


async def test_flood_limits(emu: BotAPIEmulator, bot: Bot) -> None:
    emu.flood = FloodLimits(overall_per_s=30, group_per_min=20, chat_per_s=1)
    first, second = emu.add_user("A"), emu.add_user("B")
    emu.send_text(first, "hi")
    emu.send_text(second, "hi")
    await bot.send_message(first.id, "one")
    with pytest.raises(RetryAfter) as caught:
        await bot.send_message(first.id, "two")
    assert caught.value.retry_after == dtm.timedelta(seconds=1)
    await bot.send_message(second.id, "other chat is fine")
    assert [m.text for m in emu.messages(first.id)] == ["one"]  # the rejected call sent nothing
    assert emu.stats.too_many_requests == 1 and emu.stats.flood_rejections == 1
    assert emu.requests[-2].status_code == 429 and emu.requests[-2].chat_id == first.id
    await bot.get_chat(first.id)  # not counted against the limits
    assert emu.stats.too_many_requests == 1


async def test_overall_flood_limit_over_http(emu: BotAPIEmulator, http: httpx.AsyncClient) -> None:
    emu.flood = FloodLimits(overall_per_s=5, group_per_min=20, chat_per_s=1)
    users = [emu.add_user(f"u{i}") for i in range(6)]
    for user in users:
        emu.send_text(user, "hi")
    replies = [await http.post("sendMessage", json={"chat_id": u.id, "text": "x"}) for u in users]
    assert [r.status_code for r in replies] == [200] * 5 + [429]
    assert replies[-1].json() == {
        "ok": False,
        "error_code": 429,
        "description": "Too Many Requests: retry after 1",
        "parameters": {"retry_after": 1},
    }


async def test_faults(emu: BotAPIEmulator, bot: Bot) -> None:
    user = emu.add_user("Li")
    emu.send_text(user, "hi")
    emu.faults = Faults(rate=1.0, kinds=("502",), seed=1, methods={"sendMessage"})
    with pytest.raises(NetworkError, match="Bad Gateway"):
        await bot.send_message(user.id, "x")
    assert await bot.get_chat(user.id)  # other methods unaffected
    emu.faults = Faults(rate=1.0, kinds=("429",), seed=1, methods={"sendMessage"})
    with pytest.raises(RetryAfter):
        await bot.send_message(user.id, "x")
    emu.faults = Faults(rate=0.5, seed=7, methods={"sendMessage"})
    outcomes = []
    for _ in range(40):
        try:
            await bot.send_message(user.id, "y")
            outcomes.append("ok")
        except (RetryAfter, NetworkError):
            outcomes.append("fail")
    assert 5 < outcomes.count("fail") < 35
    assert emu.messages(user.id) and all(m.text == "y" for m in emu.messages(user.id))
    assert emu.stats.faults_injected == 2 + outcomes.count("fail")
    assert emu.stats.server_errors + emu.stats.too_many_requests == emu.stats.faults_injected


# ---------------------------------------------------------------------------- groups


async def test_group_lifecycle_kicked(emu: BotAPIEmulator, bot: Bot) -> None:
    user = emu.add_user("Li")
    group = emu.add_group("1栋楼事群", supergroup=True, members=[user])
    assert str(group.id).startswith("-100")
    with pytest.raises(BadRequest, match="(?i)chat not found"):
        await bot.send_message(group.id, "not in it yet")
    await emu.add_bot_to_group(group, by=user, admin=False)
    updates = await bot.get_updates(timeout=0)
    assert updates[0].my_chat_member.new_chat_member.status == "member"
    assert updates[1].message.new_chat_members[0].id == bot.id
    await bot.send_message(group.id, "大家好")
    member = await bot.get_chat_member(group.id, bot.id)
    assert member.status == "member"
    assert (await bot.get_chat_member(group.id, user.id)).status == "creator"
    await emu.remove_bot(group, by=user)
    with pytest.raises(Forbidden, match="(?i)bot was kicked from the supergroup chat"):
        await bot.send_message(group.id, "still here?")
    basic = emu.add_group("老群", supergroup=False, members=[user])
    await emu.add_bot_to_group(basic, by=user)
    await emu.remove_bot(basic, by=user)
    with pytest.raises(Forbidden, match="(?i)bot was kicked from the group chat"):
        await bot.send_message(basic.id, "still here?")


async def test_privacy_mode(emu: BotAPIEmulator, bot: Bot) -> None:
    user = emu.add_user("Li")
    group = emu.add_group("楼群", members=[user])
    await emu.add_bot_to_group(group, by=user, admin=False)
    await bot.delete_webhook(drop_pending_updates=True)
    announcement = await bot.send_message(group.id, "公告")
    emu.send_text(user, "just chatting", chat=group)
    emu.send_text(user, "/help", chat=group)
    emu.send_text(user, "/help@other_bot", chat=group)
    emu.send_text(user, "/report@gridhorn_bot now", chat=group)
    emu.send_text(user, "replying", chat=group, reply_to=announcement.message_id)
    seen = [u.message.text for u in await bot.get_updates(timeout=0)]
    assert seen == ["/help", "/report@gridhorn_bot now", "replying"]
    emu.set_bot_rights(group, admin=True)
    emu.send_text(user, "now visible", chat=group)
    updates = await bot.get_updates(offset=emu.pending_updates()[0]["update_id"], timeout=0)
    assert [u.message.text for u in updates if u.message][-1] == "now visible"
    assert any(
        u.my_chat_member and u.my_chat_member.new_chat_member.status == "administrator"
        for u in updates
    )


async def test_pin_rights(emu: BotAPIEmulator, bot: Bot) -> None:
    user = emu.add_user("Li")
    group = emu.add_group("楼群", members=[user])
    await emu.add_bot_to_group(group, by=user, admin=True, can_pin=False)
    sent = await bot.send_message(group.id, "置顶")
    with pytest.raises(
        BadRequest, match="(?i)not enough rights to manage pinned messages in the chat"
    ):
        await bot.pin_chat_message(group.id, sent.message_id)
    emu.set_bot_rights(group, can_pin=True)
    assert await bot.pin_chat_message(group.id, sent.message_id)
    assert emu.messages(group.id)[0].pinned
    assert (await bot.get_chat(group.id)).pinned_message.message_id == sent.message_id
    assert await bot.unpin_chat_message(group.id, sent.message_id)
    assert not emu.messages(group.id)[0].pinned
    admins = await bot.get_chat_administrators(group.id)
    assert {a.user.id for a in admins} == {user.id, bot.id}


async def test_migration_to_supergroup(emu: BotAPIEmulator, bot: Bot) -> None:
    user = emu.add_user("Li")
    group = emu.add_group("老楼群", supergroup=False, members=[user])
    assert group.id < 0 and not str(group.id).startswith("-100")
    await emu.add_bot_to_group(group, by=user)
    await bot.delete_webhook(drop_pending_updates=True)
    new_id = await emu.migrate_to_supergroup(group)
    updates = await bot.get_updates(timeout=0)
    assert updates[0].message.migrate_to_chat_id == new_id
    assert updates[1].message.migrate_from_chat_id == group.id
    assert updates[1].message.chat.id == new_id and updates[1].message.chat.type == "supergroup"
    with pytest.raises(ChatMigrated) as caught:
        await bot.send_message(group.id, "hello")
    assert caught.value.new_chat_id == new_id
    await bot.send_message(new_id, "hello")
    assert [m.text for m in emu.messages(new_id)] == ["hello"]


async def test_forum_topics(emu: BotAPIEmulator, bot: Bot) -> None:
    user = emu.add_user("Li")
    plain = emu.add_group("普通群", members=[user])
    forum = emu.add_group("论坛", forum=True, members=[user])
    await emu.add_bot_to_group(plain, by=user, admin=True)
    await emu.add_bot_to_group(forum, by=user, admin=True, can_manage_topics=False)
    with pytest.raises(BadRequest, match="(?i)the chat is not a forum"):
        await bot.create_forum_topic(plain.id, "议事")
    with pytest.raises(BadRequest, match="(?i)not enough rights to create a topic"):
        await bot.create_forum_topic(forum.id, "议事")
    emu.set_bot_rights(forum, can_manage_topics=True)
    with pytest.raises(BadRequest):
        await bot.create_forum_topic(forum.id, "x" * 129)
    topic = await bot.create_forum_topic(forum.id, "议事")
    assert topic.name == "议事" and topic.message_thread_id in forum.topics
    sent = await bot.send_message(forum.id, "第一条", message_thread_id=topic.message_thread_id)
    assert sent.message_thread_id == topic.message_thread_id and sent.is_topic_message
    with pytest.raises(BadRequest, match="(?i)message thread not found"):
        await bot.send_message(forum.id, "lost", message_thread_id=9999)
    await bot.send_message(forum.id, "general")
    assert [m.text for m in emu.messages(forum.id, thread_id=topic.message_thread_id)] == ["第一条"]
    assert [m.text for m in emu.messages(forum.id, thread_id=None)] == ["general"]

    await bot.delete_webhook(drop_pending_updates=True)
    user_topic = emu.create_topic(forum, name="报修", by=user)
    question = emu.send_text(user, "/ask 漏水", chat=forum, thread_id=user_topic)
    updates = await bot.get_updates(timeout=0)
    assert updates[0].message.forum_topic_created.name == "报修"
    assert updates[1].message.message_thread_id == user_topic
    reply = await updates[1].message.reply_text("收到")  # PTB keeps the thread
    assert reply.message_thread_id == user_topic
    assert (
        emu.messages(forum.id, thread_id=user_topic)[0].reply_to_message_id == question.message_id
    )
    assert await bot.close_forum_topic(forum.id, topic.message_thread_id)
    assert await bot.edit_forum_topic(forum.id, topic.message_thread_id, name="议事厅")
    assert forum.topics[topic.message_thread_id].name == "议事厅"


async def test_set_my_commands_by_scope_and_language(emu: BotAPIEmulator, bot: Bot) -> None:
    user = emu.add_user("Li")
    group = emu.add_group("楼群", members=[user])
    await emu.add_bot_to_group(group, by=user)
    await bot.set_my_commands(
        [BotCommand("start", "开始"), BotCommand("help", "帮助")], language_code="zh"
    )
    await bot.set_my_commands([BotCommand("start", "Start")])
    await bot.set_my_commands([BotCommand("report", "报修")], scope=BotCommandScopeAllGroupChats())
    await bot.set_my_commands([BotCommand("admin", "管理")], scope=BotCommandScopeChat(group.id))
    assert emu.commands[("default", "zh")] == [("start", "开始"), ("help", "帮助")]
    assert emu.commands[("default", "")] == [("start", "Start")]
    assert emu.commands[("all_group_chats", "")] == [("report", "报修")]
    assert emu.commands[(f"chat:{group.id}", "")] == [("admin", "管理")]
    assert [c.command for c in await bot.get_my_commands(language_code="zh")] == ["start", "help"]
    with pytest.raises(BadRequest, match="(?i)language code"):
        await bot.set_my_commands([BotCommand("start", "x")], language_code="zh-hans")
    with pytest.raises(BadRequest, match="(?i)bot_command_invalid"):
        await bot.set_my_commands([BotCommand("Start", "x")])
    assert await bot.delete_my_commands(language_code="zh")
    assert ("default", "zh") not in emu.commands


# ---------------------------------------------------------------------------- files


async def test_documents_photos_and_files(emu: BotAPIEmulator, bot: Bot) -> None:
    user = emu.add_user("Li")
    photo = emu.send_photo(user, caption="漏水照片", data=b"\xff\xd8fake-jpeg")
    update = (await bot.get_updates(timeout=0))[-1]
    largest = update.message.photo[-1]
    assert update.message.caption == "漏水照片" and largest.file_id == photo.file_id
    telegram_file = await bot.get_file(largest.file_id)
    assert bytes(await telegram_file.download_as_bytearray()) == b"\xff\xd8fake-jpeg"

    sent = await bot.send_document(user.id, b"col1,col2\n", filename="台账.csv", caption="导出")
    assert sent.document.file_name == "台账.csv"
    stored = emu.messages(user.id)[-1]
    assert (stored.kind, stored.file_name, stored.document, stored.text) == (
        "document",
        "台账.csv",
        b"col1,col2\n",
        "导出",
    )
    again = await bot.get_file(sent.document.file_id)
    assert bytes(await again.download_as_bytearray()) == b"col1,col2\n"
    with pytest.raises(BadRequest, match="(?i)wrong file identifier"):
        await bot.send_photo(user.id, "no-such-file-id")


async def test_a_location_shared_with_the_location_button(emu: BotAPIEmulator, bot: Bot) -> None:
    user = emu.add_user("Li")
    emu.send_text(user, "/start")  # the bot may write to those who started it
    keyboard = ReplyKeyboardMarkup(
        [[KeyboardButton("📍 Send my location", request_location=True)]], one_time_keyboard=True)
    await bot.send_message(user.id, "Where are you?", reply_markup=keyboard)
    asked = emu.messages(user.id)[-1]
    assert asked.reply_markup["keyboard"][0][0]["request_location"] is True
    shared = emu.send_location(user, 31.8612, 117.2801, horizontal_accuracy=12.5)
    update = (await bot.get_updates(timeout=0))[-1]
    assert update.message.message_id == shared.message_id
    assert (update.message.location.latitude, update.message.location.longitude) == (
        31.8612, 117.2801)
    assert update.message.location.horizontal_accuracy == 12.5
    assert update.message.text is None and shared.kind == "location"
    with pytest.raises(ValueError):
        emu.send_location(user, 123, 117.2)


async def test_copy_and_forward(emu: BotAPIEmulator, bot: Bot) -> None:
    user = emu.add_user("Li")
    group = emu.add_group("物业群", members=[user])
    await emu.add_bot_to_group(group, by=user)
    photo = emu.send_photo(user, caption="证据")
    text = emu.send_text(user, "楼道堵塞")
    copied = await bot.copy_message(
        group.id, user.id, photo.message_id, caption="<b>转发</b>", parse_mode="HTML"
    )
    forwarded = await bot.forward_message(group.id, user.id, text.message_id)
    copy, forward = emu.messages(group.id)
    assert copy.message_id == copied.message_id
    assert (copy.kind, copy.file_id, copy.text, copy.photo) == (
        "photo",
        photo.file_id,
        "转发",
        photo.photo,
    )
    assert forward.text == "楼道堵塞" and forwarded.forward_origin.sender_user.id == user.id
    with pytest.raises(BadRequest, match="(?i)message to copy not found"):
        await bot.copy_message(group.id, user.id, 999)


# ---------------------------------------------------------------------------- waiting & load


async def test_wait_for_message(emu: BotAPIEmulator, bot: Bot) -> None:
    user = emu.add_user("Li")
    emu.send_text(user, "/start")

    async def reply_later() -> None:
        await bot.send_message(user.id, "first")
        await bot.send_message(user.id, "second")

    task = asyncio.create_task(reply_later())
    found = await emu.wait_for_message(user.id, lambda m: m.text == "second", timeout=5)
    await task
    assert isinstance(found, EmuMessage) and found.text == "second"
    assert (await emu.wait_for_message(user.id)).text == "first"
    edit = asyncio.create_task(
        bot.edit_message_text("first!", user.id, emu.messages(user.id)[0].message_id)
    )
    edited = await emu.wait_for_message(user.id, timeout=5, new_only=True)
    await edit
    assert edited.text == "first!" and edited.edits == 1
    with pytest.raises(TimeoutError, match="second"):
        await emu.wait_for_message(user.id, lambda m: m.text == "never", timeout=0.05)


async def test_a_thousand_requests_in_flight(emu: BotAPIEmulator) -> None:
    # aiohttp as the client: httpx's connection pool, not the emulator, is slow at this scale.
    users = [emu.add_user(f"user{i}") for i in range(500)]
    for user in users:
        emu.send_text(user, "hi")
    url = f"{emu.base_url}{TOKEN}/"

    async def call(session: aiohttp.ClientSession, method: str, user_id: int) -> int:
        async with session.post(
            url + method, data={"chat_id": str(user_id), "text": f"n{user_id}"}
        ) as reply:
            await reply.read()
            return reply.status

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        statuses = await asyncio.gather(
            *(call(session, "sendMessage", u.id) for u in users),
            *(call(session, "getChat", u.id) for u in users),
        )
    assert set(statuses) == {200}
    assert len(emu.all_messages()) == 500
    assert emu.stats.by_method["sendMessage"] == 500 and emu.stats.by_method["getChat"] == 500


async def test_a_real_polling_application(emu: BotAPIEmulator) -> None:
    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        await update.effective_message.reply_html(
            "<b>欢迎</b>", reply_markup=keyboard(("报到", "checkin"))
        )

    async def tapped(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None
        await query.answer("已报到")
        await query.edit_message_text("已报到 ✅")

    application = (
        Application.builder().token(TOKEN).base_url(emu.base_url).base_file_url(emu.base_file_url).build()
    )
    application.add_handler(CommandHandler("start", start))
    application.add_handler(CallbackQueryHandler(tapped))
    user = emu.add_user("Li")
    async with application:
        await application.start()
        assert application.updater is not None
        await application.updater.start_polling(timeout=5, drop_pending_updates=True)
        try:
            emu.send_text(user, "/start")
            welcome = await emu.wait_for_message(user.id, lambda m: m.text == "欢迎", timeout=5)
            query = emu.press(user, welcome, "报到")
            assert (await query.wait_answered(timeout=5)).text == "已报到"
            await emu.wait_for_message(user.id, lambda m: m.text == "已报到 ✅", timeout=5)
            await emu.wait_until(lambda: emu.pending_updates() == [], timeout=5)
        finally:
            await application.updater.stop()
            await application.stop()
    assert emu.stats.by_status.get(500, 0) == 0
