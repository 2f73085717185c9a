"""Asking Telegram about a chat: getChat and getChatMember (the bot's own membership), through
the bot's Bot API path (`bot.rawapi`), Telegram's JSON in and out.

The runtime hands one to the chat service (`ChatService.learn`), which records what it says as
/bind records a chat; `gridhorn map import` uses one to tell the importer, chat by chat, what
the bot lacks. A chat the bot is not in (never added, removed) is None; a transient failure
(Telegram unreachable, a timeout) raises.
"""

from __future__ import annotations

from typing import Any

from telegram import Bot
from telegram.error import BadRequest, Forbidden

from bot import rawapi
from bot.hooks import ChatInfo

#: seconds to wait for each of the two answers (the probe stands before a post or a card)
PROBE_TIMEOUT_S = 10.0
#: what Telegram answers about a chat the bot cannot see (BadRequest; lower-cased by PTB)
_NOT_THERE = ("chat not found", "not a member", "kicked", "bot was blocked")


def chat_info(chat: dict[str, Any], member: dict[str, Any]) -> ChatInfo:
    """getChat's and getChatMember's answers (JSON) as the chat service keeps them."""
    admin = member.get("status") in ("administrator", "creator")
    creator = member.get("status") == "creator"
    return ChatInfo(
        chat_id=int(chat["id"]), type=str(chat.get("type", "supergroup")),
        title=chat.get("title"), is_forum=bool(chat.get("is_forum")), bot_is_admin=admin,
        can_pin=creator or (admin and bool(member.get("can_pin_messages"))),
        can_manage_topics=creator or (admin and bool(member.get("can_manage_topics"))))


class TelegramChatProbe:
    """`ChatProbe` over a python-telegram-bot `Bot` (initialised: its id is known)."""

    def __init__(self, bot: Bot, timeout: float = PROBE_TIMEOUT_S) -> None:
        self.bot = bot
        self.timeout = timeout

    async def __call__(self, chat_id: int) -> ChatInfo | None:
        try:
            chat = await rawapi.call(self.bot, "getChat", {"chat_id": chat_id},
                                     read_timeout=self.timeout)
            member = await rawapi.call(self.bot, "getChatMember",
                                       {"chat_id": chat_id, "user_id": self.bot.id},
                                       read_timeout=self.timeout)
        except Forbidden:
            return None
        except BadRequest as exc:
            if any(words in str(exc).lower() for words in _NOT_THERE):
                return None
            raise
        if member.get("status") in ("left", "kicked"):
            return None
        return chat_info(chat, member)
