"""Cross-cutting guard: who is this, and in which language do we answer."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.ext import Application, TypeHandler

from bot.context import GridhornContext
from bot.services.people import TelegramUser

logger = logging.getLogger(__name__)


async def identify(update: Update, context: GridhornContext) -> None:
    """Record the sender and set the actor and the reply language on the context."""
    services = context.services
    user = update.effective_user
    chat = update.effective_chat
    private = chat is not None and chat.type == "private"
    if user is not None and not user.is_bot:
        context.actor, context.user_locale = await services.people.identify(
            TelegramUser(user.id, user.first_name, user.last_name, user.username,
                         user.language_code), private=private)
    else:
        context.user_locale = services.settings.default_locale
    context.locale = context.user_locale
    if chat is not None and not private:
        context.locale = await services.chats.locale_of_chat(chat.id, context.user_locale)


def register(app: Application, group: int) -> None:
    app.add_handler(TypeHandler(Update, identify), group=group)
