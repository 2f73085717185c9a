"""Guided flows take a person's private text before it can become an opinion draft.

Registered in its own group, ahead of the features: when the person's stored flow is a horn,
the hours of a closed horn or a volunteer registration, the text is that flow's answer and no
later group sees it (`ApplicationHandlerStop`). Otherwise it falls through to group 0, where
any private text starts an opinion draft (SPEC §4). A reply to one of a ticket's prompts
always goes to the ticket.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from telegram import Update
from telegram.ext import Application, ApplicationHandlerStop, MessageHandler, filters

from bot.context import GridhornContext
from handlers import horn, volunteer
from handlers.common import reply
from storage.models import Flow

logger = logging.getLogger(__name__)
FlowText = Callable[[Update, GridhornContext, Flow], Awaitable[None]]
FLOW_TEXT: dict[str, FlowText] = {
    "horn": horn.flow_text,
    "horn_hours": horn.flow_text,
    "volunteer": volunteer.flow_text,
}


async def flow_text(update: Update, context: GridhornContext) -> None:
    """Route private text to the person's guided flow, if they are in one of ours."""
    message = update.effective_message
    if message is None or update.effective_chat is None:
        return
    services = context.services
    if message.reply_to_message is not None and await services.tickets.prompt_for(
            message.chat.id, message.reply_to_message.message_id) is not None:
        return
    flow = await services.people.flow(context.actor.user_id)
    handler = FLOW_TEXT.get(flow.name) if flow is not None else None
    if flow is None or handler is None:
        return
    try:
        await handler(update, context, flow)
    except Exception:  # the text must not fall through and become an opinion draft
        logger.exception("the %s flow failed on a message", flow.name)
        await reply(update, context, "error.generic")
    raise ApplicationHandlerStop


def register(app: Application, group: int) -> None:
    app.add_handler(MessageHandler(
        filters.ChatType.PRIVATE & (filters.TEXT | filters.PHOTO) & ~filters.COMMAND,
        flow_text), group=group)
