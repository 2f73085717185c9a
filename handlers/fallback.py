"""Last resort: unknown commands, stale or forged buttons, and unexpected errors."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.ext import Application, CallbackQueryHandler, MessageHandler, filters

from bot.context import GridhornContext
from bot.i18n import t
from handlers.common import answer_query, reply
from storage.models import Conflict, UpdateTaken

logger = logging.getLogger(__name__)


async def unknown_command(update: Update, context: GridhornContext) -> None:
    """Answer a command nobody handles (in groups only when addressed to this bot)."""
    message = update.effective_message
    chat = update.effective_chat
    if message is None or chat is None or not message.text:
        return
    command = message.text.split()[0]
    name, _, target = command.partition("@")
    if chat.type != "private" and target.lower() != (context.bot.username or "").lower():
        return
    await reply(update, context, "command.unknown", command=name)


async def stale_button(update: Update, context: GridhornContext) -> None:
    """A button whose data we do not know: forged, or from an old version."""
    await answer_query(update, t(context.locale, "button.stale"), alert=True)


async def on_error(update: object, context: GridhornContext) -> None:
    """Log the error and tell the person something went wrong, in their language."""
    if isinstance(context.error, UpdateTaken):  # another replica handled it and answered
        logger.info("update handled by another replica meanwhile: this work rolled back")
        return
    if isinstance(context.error, Conflict):  # the intake handles the update again, alone
        logger.info("an update's transaction was undone for a conflict (%s); handled again",
                    context.error)
        return
    logger.error("error while handling an update", exc_info=context.error)
    if isinstance(update, Update):
        try:
            if update.callback_query is not None:
                await answer_query(update, t(context.locale, "error.generic"), alert=True)
            elif update.effective_chat is not None and update.effective_chat.type == "private":
                await reply(update, context, "error.generic")
        except Exception:  # the error path must not raise again
            logger.exception("could not report the error to the user")


def register(app: Application, group: int) -> None:
    app.add_handler(MessageHandler(filters.COMMAND, unknown_command), group=group)
    app.add_handler(CallbackQueryHandler(stale_button), group=group)
