"""What the page shows of the emulated world: chats and messages as JSON (docs/playground.md).

Texts are rendered here, on the server: a message's `html` comes from its text and entities
through `render_html`'s whitelist, so nothing a user typed ever reaches the page as markup.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Any

from bot.i18n import t
from bot.textsplit import plain_text
from emulator import BotAPIEmulator, EmuChat, EmuMessage
from playground.render import render_html, render_plain_snippet


def _clock(epoch: int | None, tz: tzinfo) -> str | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, tz).strftime("%H:%M")


def _name(emu: BotAPIEmulator, message: EmuMessage) -> str:
    return emu.bot_first_name if message.sender is None else message.sender.full_name


def service_text(emu: BotAPIEmulator, message: EmuMessage, lang: str) -> str:
    """A service message as Telegram words it, in the page's language (plain text)."""
    return plain_text(_service_html(emu, message, lang))


def _service_html(emu: BotAPIEmulator, message: EmuMessage, lang: str) -> str:
    service = message.service or {}
    actor = _name(emu, message)
    if "new_chat_members" in service:
        names = ", ".join(m.get("first_name", "") for m in service["new_chat_members"])
        return t(lang, "playground.service_joined", name=names)
    if "left_chat_member" in service:
        return t(lang, "playground.service_left", name=service["left_chat_member"]["first_name"])
    if "migrate_to_chat_id" in service or "migrate_from_chat_id" in service:
        return t(lang, "playground.service_migrated")
    if "forum_topic_created" in service:
        topic = service["forum_topic_created"].get("name", "")
        return t(lang, "playground.service_topic", name=actor, topic=topic)
    return t(lang, "playground.service_other")


def message_view(emu: BotAPIEmulator, message: EmuMessage, calls: list[int], lang: str,
                 tz: tzinfo) -> dict[str, Any]:
    chat = emu.chats[message.chat_id]
    reply_to = None
    if message.reply_to_message_id is not None:
        replied = chat.messages.get(message.reply_to_message_id)
        if replied is not None and not replied.deleted:
            reply_to = {"message_id": replied.message_id, "from_name": _name(emu, replied),
                        "text": render_plain_snippet(replied.text)}
    document = None
    if message.kind == "document" and message.file_id:
        document = {"name": message.file_name or message.file_id,
                    "url": f"/media/{message.file_id}"}
    return {
        "chat_id": message.chat_id,
        "message_id": message.message_id,
        "thread_id": message.thread_id if chat.is_forum else None,
        "from": {"id": emu.bot_id if message.sender is None else message.sender.id,
                 "name": _name(emu, message), "bot": message.sender is None},
        "date": _clock(message.date, tz),
        "kind": message.kind,
        "html": render_html(_text_of(message), message.entities),
        "text": _text_of(message),
        "buttons": [[{"text": b.text, "data": b.callback_data, "url": b.url} for b in row]
                    for row in message.buttons],
        "edited": message.edits > 0 or message.edit_date is not None,
        "deleted": message.deleted,
        "pinned": message.pinned,
        "reply_to": reply_to,
        "force_reply": ({"placeholder": message.input_field_placeholder}
                        if message.force_reply else None),
        "photo": (f"/media/{message.file_id}"
                  if message.kind == "photo" and message.file_id else None),
        "document": document,
        "service": service_text(emu, message, lang) if message.kind == "service" else None,
        "calls": calls,
    }


def _text_of(message: EmuMessage) -> str:
    """A message's text; a shared location (SPEC §13) as its coordinates."""
    if message.kind == "location" and message.location is not None:
        return f"📍 {message.location['latitude']:.5f}, {message.location['longitude']:.5f}"
    return message.text


def pinned_of(chat: EmuChat) -> EmuMessage | None:
    pinned = [m for m in chat.messages.values() if m.pinned and not m.deleted]
    return pinned[-1] if pinned else None


def chat_view(emu: BotAPIEmulator, chat: EmuChat) -> dict[str, Any]:
    if chat.type == "private":
        assert chat.user is not None
        title, members = emu.bot_first_name, [chat.user.id]
    else:
        title, members = chat.title or "", sorted(chat.members)
    pinned = pinned_of(chat)
    return {
        "id": chat.id,
        "type": chat.type,
        "title": title,
        "members": members,
        "forum": chat.is_forum,
        "topics": [{"thread_id": topic.thread_id, "name": topic.name}
                   for topic in chat.topics.values()],
        "pinned": None if pinned is None else {
            "message_id": pinned.message_id, "text": render_plain_snippet(pinned.text)},
        "migrated_to": chat.migrated_to_chat_id,
    }
