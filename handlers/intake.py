"""Staff intake (工单录入, SPEC §11): /intake (guided flow or short form), its buttons, the
typed answers and photos of a person in the flow, and "Report a problem" under /patrol."""

from __future__ import annotations

from telegram import Update
from telegram.ext import Application, CallbackQueryHandler, CommandHandler

from bot.context import GridhornContext
from bot.i18n import t
from bot.services.errors import Refused
from bot.services.ticket_intake import (
    PREFIX,
    IntakePress,
    IntakeView,
    read_press,
    sources_text,
)
from handlers.common import (
    answer_query,
    drop_buttons,
    edit,
    handles_refusals,
    markup,
    refusal_text,
    reply_html,
    require_private,
)
from storage.models import Flow, Ticket


async def show(update: Update, context: GridhornContext, view: IntakeView) -> None:
    await reply_html(update, context, view.text, markup=markup(view.buttons))


async def show_step(update: Update, context: GridhornContext, flow: Flow) -> None:
    tickets = context.services.tickets
    await show(update, context,
               await tickets.intake_prompt(context.actor, context.locale, flow))


@handles_refusals
async def intake_command(update: Update, context: GridhornContext) -> None:
    """/intake: the guided flow; `/intake SOURCE [REF] BUILDING TEXT…` asks only the domain."""
    chat = update.effective_chat
    message = update.effective_message
    if chat is None or message is None:
        return
    require_private(update, "intake.private_only")
    rest = (message.text or "").partition(" ")[2].strip()
    tickets = context.services.tickets
    try:
        flow = await tickets.intake_short(context.actor, rest) if rest else \
            await tickets.start_intake(context.actor)
    except Refused as refusal:
        if refusal.key != "intake.usage":
            raise
        await reply_html(update, context, t(context.locale, "intake.usage",
                                            sources=sources_text(context.locale)))
        return
    await show_step(update, context, flow)


async def flow_text(update: Update, context: GridhornContext, flow: Flow) -> None:
    """Typed input or a photo for the intake's current step; a refusal repeats the step."""
    message = update.effective_message
    assert message is not None
    tickets = context.services.tickets
    photo = message.photo[-1].file_id if message.photo else None
    try:
        flow = await tickets.intake_answer(context.actor, message.text or message.caption or "",
                                           photo)
    except Refused as refusal:
        await reply_html(update, context, refusal_text(context.locale, refusal))
        current = await tickets.intake_flow(context.actor.user_id)
        if current is not None:
            await show_step(update, context, current)  # the step repeats
        return
    if photo is not None:  # photos gather quietly; the step's button counts them
        await reply_html(update, context, t(context.locale, "intake.photo_added",
                                            count=len(flow.data.get("photos") or [])))
        return
    await show_step(update, context, flow)


@handles_refusals
async def intake_button(update: Update, context: GridhornContext) -> None:
    """A button of the flow: a step's choice, Create, Cancel, or "Report a problem"."""
    query = update.callback_query
    assert query is not None and query.data is not None
    press, arg = read_press(query.data)
    tickets = context.services.tickets
    locale = context.user_locale
    done = await tickets.intake_press(context.actor, press, arg)
    if isinstance(done, Ticket):
        await answer_query(update, t(locale, "intake.created_short", id=done.id))
        await edit(query.message, t(locale, "intake.created_edit", id=done.id))
        return
    await answer_query(update)
    if done is None:
        await edit(query.message, t(locale, "intake.cancelled"))
        return
    if press != IntakePress.START:
        await drop_buttons(query.message)
    await show(update, context, await tickets.intake_prompt(context.actor, locale, done))


def register(app: Application, group: int) -> None:
    app.add_handler(CommandHandler("intake", intake_command), group=group)
    app.add_handler(CallbackQueryHandler(intake_button, pattern=rf"^{PREFIX}:"), group=group)
