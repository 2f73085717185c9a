"""Helpers every handler module shares: replies in the right language, refusals."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, LinkPreviewOptions, Message, Update
from telegram.constants import ParseMode
from telegram.error import TelegramError

from bot import rawapi
from bot.context import GridhornContext
from bot.i18n import t
from bot.services.errors import Key, Refused
from bot.textsplit import plain_text, split_html

logger = logging.getLogger(__name__)
NO_PREVIEW = LinkPreviewOptions(is_disabled=True)
Callback = Callable[[Update, GridhornContext], Awaitable[Any]]


async def reply(update: Update, context: GridhornContext, key: str, *,
                markup: InlineKeyboardMarkup | None = None, **values: object) -> Message | None:
    """Answer in the chat (and topic) of the update, in the context's language."""
    return await reply_html(update, context, t(context.locale, key, **values), markup=markup)


async def reply_html(update: Update, context: GridhornContext, text: str, *,
                     markup: InlineKeyboardMarkup | None = None) -> Message | None:
    """Send HTML that may exceed one message: split, never cut; buttons go on the last part."""
    chat = update.effective_chat
    if chat is None:
        return None
    thread_id = thread_of(update)
    parts = split_html(text)
    sent = None
    for index, part in enumerate(parts):
        sent = await context.bot.send_message(
            chat.id, part, parse_mode=ParseMode.HTML, message_thread_id=thread_id,
            reply_markup=markup if index == len(parts) - 1 else None,
            link_preview_options=NO_PREVIEW)
    return sent


async def answer_query(update: Update, text: str | None = None, alert: bool = False) -> None:
    """Answer a button press; a late, repeated or failed answer must never abort the action."""
    query = update.callback_query
    if query is None:
        return
    try:
        await rawapi.answer_callback(query.get_bot(), query.id, text, alert)
    except TelegramError as exc:
        logger.info("could not answer callback query: %s", exc)


async def edit(message: Message | None, text: str,
               keyboard: InlineKeyboardMarkup | None = None) -> None:
    """Edit the message a button sits on (an edit that is already true is not a failure)."""
    if message is None:
        return
    try:
        await message.get_bot().edit_message_text(
            text, chat_id=message.chat.id, message_id=message.message_id,
            parse_mode=ParseMode.HTML, reply_markup=keyboard, link_preview_options=NO_PREVIEW)
    except TelegramError as exc:
        if "not modified" not in str(exc).lower():
            raise


async def edit_markup(message: Message | None, keyboard: InlineKeyboardMarkup | None) -> None:
    """Change the buttons of the message a button sits on (a failure is only logged)."""
    if message is None:
        return
    try:
        await message.get_bot().edit_message_reply_markup(
            chat_id=message.chat.id, message_id=message.message_id, reply_markup=keyboard)
    except TelegramError as exc:
        logger.info("could not change the buttons: %s", exc)


async def drop_buttons(message: Message | None) -> None:
    """A step is answered: its buttons go, so an old prompt cannot be pressed again."""
    await edit_markup(message, None)


def refusal_text(locale: str, refusal: Refused) -> str:
    """A refusal in `locale`, its translatable values translated too."""
    values = {k: t(locale, v) if isinstance(v, Key) else v for k, v in refusal.values.items()}
    return t(locale, refusal.key, **values)


def handles_refusals(callback: Callback) -> Callback:
    """Turn a `Refused` into its answer in the user's language (on the button, or a reply)."""

    @functools.wraps(callback)
    async def wrapper(update: Update, context: GridhornContext) -> Any:
        try:
            return await callback(update, context)
        except Refused as refusal:
            # a button's answer is seen by the presser alone: their own language
            locale = context.user_locale if update.callback_query else context.locale
            text = refusal_text(locale, refusal)
            if update.callback_query is not None:
                await answer_query(update, _plain(text), alert=True)
            else:
                await reply_html(update, context, text)
            return None

    return wrapper


def _plain(html_text: str) -> str:
    """Callback answers are plain text (at most 200 characters)."""
    return plain_text(html_text)[:200]


def markup(rows: list[list[dict[str, str]]]) -> InlineKeyboardMarkup | None:
    """A service's button rows ({"text", "callback_data"|"url"}) as a keyboard (None: none)."""
    if not rows:
        return None
    return InlineKeyboardMarkup([[InlineKeyboardButton(**b) for b in row] for row in rows])


def keyboard(rows: list[list[tuple[str, str]]]) -> InlineKeyboardMarkup:
    """Rows of (label, callback_data)."""
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(label, callback_data=data) for label, data in row] for row in rows])


def thread_of(update: Update) -> int | None:
    """The forum topic an update came from (replies go back into it)."""
    message = update.effective_message
    return message.message_thread_id if message is not None and message.is_topic_message \
        else None


def command_args(update: Update) -> list[str]:
    message = update.effective_message
    if message is None or not message.text:
        return []
    return message.text.split()[1:]


def require_private(update: Update, refusal_key: str) -> None:
    """Commands of one person's own (a flow, people, absences) are used in a private chat."""
    chat = update.effective_chat
    if chat is None or chat.type != "private":
        raise Refused(refusal_key)


def command_id(update: Update, usage_key: str) -> int:
    """The one `N` or `#N` argument of a command like /ticket N (else its usage)."""
    args = command_args(update)
    if len(args) != 1 or not args[0].lstrip("#").isdigit():
        raise Refused(usage_key)
    return int(args[0].lstrip("#"))


def pressed(update: Update) -> tuple[str, str]:
    """A flow button's `prefix:<action>[:<arg>]` as (action, arg), "" where absent."""
    data = update.callback_query.data if update.callback_query else None
    parts = (data or "").split(":")
    return (parts[1] if len(parts) > 1 else "", parts[2] if len(parts) > 2 else "")


def pressed_on(update: Update) -> tuple[str, int, str | None]:
    """An item button's `prefix:<action>:<id>[:<arg>]` as (action, id, arg or None).
    The data is client input: a missing or non-numeric id is a stale button."""
    data = update.callback_query.data if update.callback_query else None
    parts = (data or "").split(":")
    if len(parts) < 3 or not parts[2].isdigit():
        raise Refused("button.stale")
    return parts[1], int(parts[2]), parts[3] if len(parts) > 3 else None
