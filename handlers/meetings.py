"""Meetings (SPEC §12): /meeting (guided flow or short form), its buttons and typed answers,
Attend / Can't attend, Open sign-in, Sign in, the minutes and decisions, /meetings."""

from __future__ import annotations

from telegram import Update
from telegram.ext import Application, CallbackQueryHandler, CommandHandler

from bot.context import GridhornContext
from bot.i18n import t
from bot.services import meeting_views as views
from bot.services.errors import Refused
from bot.services.meeting_flow import FLOW
from bot.services.meeting_views import Press, View
from bot.services.meetings import Decided
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
from storage.models import Flow

WRAP_PRESSES = (Press.DOMAIN, Press.ASSIGNEE, Press.DEADLINE, Press.DONE)


async def show(update: Update, context: GridhornContext, view: View) -> None:
    await reply_html(update, context, view.text, markup=markup(view.buttons))


async def show_step(update: Update, context: GridhornContext, flow: Flow) -> None:
    meetings = context.services.meetings
    if flow.name == FLOW:
        await show(update, context, await meetings.prompt(context.actor, context.locale, flow))
    else:
        await show(update, context, await meetings.wrap_prompt(context.actor, context.locale, flow))


@handles_refusals
async def meeting_command(update: Update, context: GridhornContext) -> None:
    """/meeting: the guided flow; `/meeting KIND UNIT DATE TIME MINUTES TITLE…` the preview."""
    message = update.effective_message
    if message is None:
        return
    require_private(update, "meeting.private_only")
    rest = (message.text or "").partition(" ")[2].strip()
    meetings = context.services.meetings
    flow = await meetings.short_form(context.actor, rest) if rest else \
        await meetings.start(context.actor)
    await show_step(update, context, flow)


@handles_refusals
async def meetings_command(update: Update, context: GridhornContext) -> None:
    """/meetings: upcoming and recent meetings with attendance."""
    await reply_html(update, context,
                     await context.services.meetings.listing(context.actor, context.locale))


async def flow_text(update: Update, context: GridhornContext, flow: Flow) -> None:
    """Typed input for the meeting flow or the minutes and decisions; a refusal repeats the
    step."""
    message = update.effective_message
    assert message is not None
    meetings = context.services.meetings
    text = message.text or ""
    try:
        if flow.name == FLOW:
            done: Flow | Decided = await meetings.answer(context.actor, text)
        else:
            done = await meetings.wrap_answer(context.actor, text)
    except Refused as refusal:
        await reply_html(update, context, refusal_text(context.locale, refusal))
        current = await context.services.people.flow(context.actor.user_id)
        if current is not None and current.name == flow.name:
            await show_step(update, context, current)  # the step repeats
        return
    if isinstance(done, Decided):  # the ticket's receipt tells its number
        done = done.flow
    await show_step(update, context, done)


@handles_refusals
async def meeting_button(update: Update, context: GridhornContext) -> None:
    """Every meeting button: the flows' steps, the invitation, sign-in, the minutes."""
    query = update.callback_query
    assert query is not None and query.data is not None
    press, arg = views.read(query.data)
    meetings = context.services.meetings
    locale = context.user_locale
    chat_id = query.message.chat.id if query.message is not None else 0
    if press in (Press.ATTEND, Press.ABSENT):
        meeting, attending = await meetings.answer_invitation(
            context.actor, views.meeting_id(arg), chat_id, press == Press.ATTEND)
        await answer_query(update, t(locale, "meeting.answer_attend" if press == Press.ATTEND
                                     else "meeting.answer_absent", title=meeting.title,
                                     count=attending))
        return
    if press == Press.SIGN_IN:
        signin = await meetings.sign_in(context.actor, views.meeting_id(arg), chat_id)
        await answer_query(update, t(locale, "meeting.signed_in_late" if signin.late
                                     else "meeting.signed_in"), alert=True)
        return
    if press == Press.OPEN:
        meeting, posted = await meetings.open_signin(context.actor, views.meeting_id(arg))
        await answer_query(update)
        await edit(query.message, t(locale, "meeting.signin_opened", title=meeting.title,
                                    chats=posted))
        return
    if press == Press.MINUTES:
        flow = await meetings.start_wrap(context.actor, views.meeting_id(arg))
        await answer_query(update)
        await drop_buttons(query.message)
        await show_step(update, context, flow)
        return
    if press in WRAP_PRESSES:
        done = await meetings.wrap_press(context.actor, press, arg)
        await answer_query(update)
        await drop_buttons(query.message)
        if done is None:
            await reply_html(update, context, t(locale, "meeting.wrap_done"))
            return
        if isinstance(done, Decided):  # the ticket's receipt tells its number
            done = done.flow
        await show_step(update, context, done)
        return
    if press == Press.PUBLISH:
        meeting, invited = await meetings.publish(context.actor)
        await answer_query(update)
        await edit(query.message, t(locale, "meeting.published", id=meeting.id,
                                    title=meeting.title, chats=invited))
        return
    flow = await meetings.press(context.actor, press, arg)
    await answer_query(update)
    if flow is None:
        await edit(query.message, t(locale, "meeting.cancelled"))
        return
    await drop_buttons(query.message)
    await show_step(update, context, flow)


def register(app: Application, group: int) -> None:
    app.add_handler(CommandHandler("meeting", meeting_command), group=group)
    app.add_handler(CommandHandler("meetings", meetings_command), group=group)
    app.add_handler(CallbackQueryHandler(meeting_button, pattern=rf"^{views.PREFIX}:"),
                    group=group)
