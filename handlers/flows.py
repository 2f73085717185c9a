"""Guided flows take a person's private text before it can become an opinion draft.

Registered in its own group, ahead of the features: when the person's stored flow is a horn,
the hours of a closed horn or a volunteer registration, the text is that flow's answer and no
later group sees it (`ApplicationHandlerStop`). Otherwise it falls through to group 0, where
any private text starts an opinion draft (SPEC §4). A reply to one of a ticket's prompts
always goes to the ticket.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any

from telegram import Update
from telegram.ext import Application, ApplicationHandlerStop, MessageHandler, filters

from bot.context import GridhornContext
from handlers.common import reply
from storage.models import Flow

logger = logging.getLogger(__name__)
#: a feature's answer to the text of a person in one of its flows
FlowText = Callable[[Update, GridhornContext, Flow], Awaitable[None]]


def router(flow_texts: Mapping[str, FlowText]) -> Callable[[Update, GridhornContext],
                                                              Coroutine[Any, Any, None]]:
    """The handler that routes private text to the person's guided flow, if they are in one
    of `flow_texts` (by the flow's name)."""

    async def flow_text(update: Update, context: GridhornContext) -> None:
        message = update.effective_message
        if message is None or update.effective_chat is None:
            return
        services = context.services
        if message.reply_to_message is not None and await services.tickets.prompt_for(
                message.chat.id, message.reply_to_message.message_id) is not None:
            return
        flow = await services.people.flow(context.actor.user_id)
        handler = flow_texts.get(flow.name) if flow is not None else None
        if flow is None or handler is None:
            return
        try:
            await handler(update, context, flow)
        except Exception:  # the text must not fall through and become an opinion draft
            logger.exception("the %s flow failed on a message", flow.name)
            await reply(update, context, "error.generic")
        raise ApplicationHandlerStop

    return flow_text


def register(app: Application[Any, Any, Any, Any, Any, Any], group: int,
             flow_texts: Mapping[str, FlowText]) -> None:
    """`flow_texts`: the features' flows by name (the features register them in
    `handlers/__init__.py`; this module imports none of them)."""
    app.add_handler(MessageHandler(
        filters.ChatType.PRIVATE & (filters.TEXT | filters.PHOTO) & ~filters.COMMAND,
        router(flow_texts)), group=group)
