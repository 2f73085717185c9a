"""Evaluation and assessment (SPEC §12): the rating buttons (`ev:`), a note by reply to a
list, /evaluations [YYYY-MM] and /assess YYYY.

Callback data is client input: every press goes back through the service, which checks the
round's window, that the item was asked of the presser, and their role over it again.
"""

from __future__ import annotations

import logging

from telegram import Update
from telegram.ext import (
    Application,
    ApplicationHandlerStop,
    CallbackQueryHandler,
    CommandHandler,
    MessageHandler,
    filters,
)

from bot.context import GridhornContext
from bot.i18n import t
from bot.services.errors import Refused
from bot.services.evaluations import PREFIX, read_press
from bot.textsplit import plain_text
from handlers.common import (
    answer_query,
    command_args,
    edit,
    handles_refusals,
    markup,
    refusal_text,
    reply,
    reply_html,
    thread_of,
)

logger = logging.getLogger(__name__)


@handles_refusals
async def rating_button(update: Update, context: GridhornContext) -> None:
    """`ev:<score|i>:<month>:<grid>:<worker or 0>`: rate (or change) one item of a list."""
    query = update.callback_query
    assert query is not None
    press = read_press(query.data)
    if press is None:
        raise Refused("button.stale")
    evaluations = context.services.schedule.evaluations
    locale = context.user_locale
    if press.score is None:
        await answer_query(update, plain_text(await evaluations.info(context.actor, press,
                                                                     locale)))
        return
    message = query.message
    chat_id = message.chat.id if message is not None else context.actor.user_id
    rated = await evaluations.rate(context.actor, press, chat_id,
                                   message.message_id if message is not None else 0,
                                   locale, context.services.now())
    await answer_query(update, plain_text(t(locale, "evaluation.rated", name=rated.name,
                                            score=press.score)))
    await edit(message, rated.view.text, markup(rated.view.buttons))


async def note_reply(update: Update, context: GridhornContext) -> None:
    """A private reply to a rating list is a note on one of its items (else: falls through
    to the flows and the opinions)."""
    message = update.effective_message
    if message is None or message.reply_to_message is None or not message.text:
        return
    evaluations = context.services.schedule.evaluations
    try:
        noted = await evaluations.note(context.actor, message.chat.id,
                                       message.reply_to_message.message_id, message.text,
                                       context.locale)
    except Refused as refusal:
        await reply_html(update, context, refusal_text(context.locale, refusal))
        raise ApplicationHandlerStop from None
    if noted is None:
        return
    await reply(update, context, "evaluation.noted", name=noted.name)
    try:
        await edit(message.reply_to_message, noted.view.text, markup(noted.view.buttons))
    except Exception:  # the note is kept; an old list that cannot be edited stays as it is
        logger.info("could not edit an evaluation list after a note", exc_info=True)
    raise ApplicationHandlerStop


@handles_refusals
async def evaluations_command(update: Update, context: GridhornContext) -> None:
    """/evaluations [YYYY-MM]: given and missing ratings within scope."""
    args = command_args(update)
    if len(args) > 1:
        raise Refused("evaluation.usage")
    services = context.services
    text = await services.schedule.evaluations.listing(
        context.actor, args[0] if args else None, services.now(), context.locale)
    await reply_html(update, context, text)


@handles_refusals
async def assess_command(update: Update, context: GridhornContext) -> None:
    """/assess YYYY: the year's workbook (sent through the outbox) and a short text."""
    args = command_args(update)
    chat = update.effective_chat
    assert chat is not None
    services = context.services
    text = await services.schedule.assessment.asked(
        context.actor, args[0] if len(args) == 1 else None, chat.id, thread_of(update) or 0,
        context.locale, services.now())
    await reply_html(update, context, text)


def register(app: Application, group: int) -> None:
    app.add_handler(CommandHandler("evaluations", evaluations_command), group=group)
    app.add_handler(CommandHandler("assess", assess_command), group=group)
    app.add_handler(CallbackQueryHandler(rating_button, pattern=rf"^{PREFIX}:"), group=group)


def register_notes(app: Application, group: int) -> None:
    """In a group of its own, before the flows: a reply to a list never becomes an opinion."""
    app.add_handler(MessageHandler(
        filters.ChatType.PRIVATE & filters.REPLY & filters.TEXT & ~filters.COMMAND,
        note_reply), group=group)
