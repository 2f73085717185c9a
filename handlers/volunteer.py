"""/volunteer: register as a volunteer with skills and availability (志愿者)."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.ext import Application, CallbackQueryHandler, CommandHandler

from bot.context import GridhornContext
from bot.i18n import t
from bot.services import horn_views as views
from bot.services.errors import Refused
from bot.services.horn_codes import VOLUNTEER_PATTERN, VolunteerPress, read_volunteer_press
from bot.services.volunteers import Registered
from handlers.common import (
    answer_query,
    drop_buttons,
    edit,
    handles_refusals,
    markup,
    reply_html,
    require_private,
)
from handlers.horn import say_refusal, show
from handlers.render import unit_label
from storage.models import Flow

logger = logging.getLogger(__name__)


def registered_text(locale: str, done: Registered) -> str:
    skills = views.skills_label(locale, done.skills) if done.skills else \
        t(locale, "volunteer.no_skills")
    return t(locale, "volunteer.done", building=unit_label(done.unit), skills=skills,
             availability=views.availability_label(locale, done.availability))


@handles_refusals
async def volunteer_command(update: Update, context: GridhornContext) -> None:
    """/volunteer: choose skills, then availability (private chat only)."""
    chat = update.effective_chat
    if chat is None:
        return
    require_private(update, "volunteer.private_only")
    volunteers = context.services.volunteers
    flow = await volunteers.start(context.actor.user_id)
    await show(update, context, volunteers.view(context.locale, flow))


@handles_refusals
async def volunteer_button(update: Update, context: GridhornContext) -> None:
    """A button of /volunteer: a skill or an availability toggled, Next, Done, Cancel."""
    query = update.callback_query
    assert query is not None and query.data is not None
    action, arg = read_volunteer_press(query.data)
    volunteers = context.services.volunteers
    locale = context.user_locale
    result = await volunteers.press(context.actor.user_id, action, arg)
    await answer_query(update)
    if result is None:
        await edit(query.message, t(locale, "volunteer.cancelled"))
    elif isinstance(result, Registered):
        await edit(query.message, registered_text(locale, result))
    elif action in (VolunteerPress.SKILL, VolunteerPress.AVAILABILITY):
        view = volunteers.view(locale, result)
        await edit(query.message, view.text, markup(view.buttons))
    else:
        await drop_buttons(query.message)
        await show(update, context, volunteers.view(locale, result))


async def flow_text(update: Update, context: GridhornContext, flow: Flow) -> None:
    """Typed availability finishes the registration; anything else repeats the step."""
    message = update.effective_message
    assert message is not None
    volunteers = context.services.volunteers
    try:
        done = await volunteers.answer(context.actor.user_id, message.text or "")
    except Refused as refusal:
        await say_refusal(update, context, refusal)
        current = await volunteers.flow(context.actor.user_id)
        if current is not None:
            await show(update, context, volunteers.view(context.locale, current))
        return
    await reply_html(update, context, registered_text(context.locale, done))


def register(app: Application, group: int) -> None:
    app.add_handler(CommandHandler("volunteer", volunteer_command), group=group)
    app.add_handler(CallbackQueryHandler(volunteer_button, pattern=VOLUNTEER_PATTERN), group=group)
