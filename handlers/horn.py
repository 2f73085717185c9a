"""The assembly horn (集结号): /horn (guided flow or short form), /horns, /horn_close, the
buttons on every copy of a horn and the owner's attendance list."""

from __future__ import annotations

from telegram import Update
from telegram.ext import Application, CallbackQueryHandler, CommandHandler

from bot.context import GridhornContext
from bot.i18n import t, tn
from bot.services import horn_views as views
from bot.services.errors import Refused
from bot.services.horn_base import HOURS_FLOW
from bot.services.horn_codes import (
    FLOW_PATTERN,
    HORN_PATTERN,
    FlowPress,
    HornPress,
    read_flow_press,
    read_horn_press,
)
from handlers.common import (
    answer_query,
    command_id,
    drop_buttons,
    edit,
    edit_markup,
    handles_refusals,
    markup,
    refusal_text,
    reply,
    reply_html,
    require_private,
)
from storage.models import Flow


async def say_refusal(update: Update, context: GridhornContext, refusal: Refused) -> None:
    await reply_html(update, context, refusal_text(context.locale, refusal))


async def show(update: Update, context: GridhornContext, view: views.View) -> None:
    await reply_html(update, context, view.text, markup=markup(view.buttons))


async def show_step(update: Update, context: GridhornContext, flow: Flow) -> None:
    services = context.services
    await show(update, context, await services.horns.prompt(context.actor, context.locale, flow))


@handles_refusals
async def horn_command(update: Update, context: GridhornContext) -> None:
    """/horn: the guided flow; `/horn LEVEL UNIT_CODE NEEDED TITLE…` goes to the preview."""
    chat = update.effective_chat
    message = update.effective_message
    if chat is None or message is None:
        return
    require_private(update, "horn.private_only")
    rest = (message.text or "").partition(" ")[2].strip()
    horns = context.services.horns
    flow = await horns.short_form(context.actor, rest) if rest else \
        await horns.start(context.actor)
    await show_step(update, context, flow)


async def flow_text(update: Update, context: GridhornContext, flow: Flow) -> None:
    """Typed input of a horn flow step (or the hours of a closed horn)."""
    message = update.effective_message
    assert message is not None
    horns = context.services.horns
    actor = context.actor
    text = message.text or ""
    if flow.name == HOURS_FLOW:
        try:
            horn = await horns.set_hours(actor, text)
        except Refused as refusal:
            await say_refusal(update, context, refusal)
            if refusal.key == "horn.bad_hours":
                await reply(update, context, "horn.ask_hours", id=flow.data.get("horn"))
            return
        await show(update, context, await horns.attendance(actor, context.locale, horn.id))
        return
    try:
        if not text:
            raise Refused("horn.need_text")
        flow = await horns.answer(actor, text)
    except Refused as refusal:
        await say_refusal(update, context, refusal)
        current = await horns.flow(actor.user_id)
        if current is None or current.name != flow.name:
            return
        flow = current  # the step repeats
    await show_step(update, context, flow)


@handles_refusals
async def flow_button(update: Update, context: GridhornContext) -> None:
    """A button of the guided flow (Publish, or a step's)."""
    query = update.callback_query
    assert query is not None and query.data is not None
    action, arg = read_flow_press(query.data)
    horns = context.services.horns
    locale = context.user_locale
    if action == FlowPress.PUBLISH:
        published = await horns.publish(context.actor)
        horn = published.horn
        await answer_query(update, t(locale, "horn.published_short", id=horn.id))
        chats, people = published.chats, published.volunteers
        await edit(query.message, t(locale, "horn.published_to", id=horn.id,
                                    chats=tn(locale, "horn.n_chats", chats, n=chats),
                                    people=tn(locale, "horn.n_volunteers", people, n=people)),
                   markup(views.owner_buttons(locale, horn)))
        return
    flow = await horns.press(context.actor, action, arg)
    await answer_query(update)
    if flow is None:
        await edit(query.message, t(locale, "horn.cancelled"))
        return
    view = await horns.prompt(context.actor, locale, flow)
    if action in (FlowPress.SKILL, FlowPress.UNIT):  # a toggle: the same prompt, redrawn
        await edit(query.message, view.text, markup(view.buttons))
        return
    await drop_buttons(query.message)
    await show(update, context, view)


@handles_refusals
async def horn_button(update: Update, context: GridhornContext) -> None:
    """Check in, Can't come, Close, and the attendance list."""
    query = update.callback_query
    assert query is not None and query.data is not None
    action, horn_id, person_id = read_horn_press(query.data)
    horns = context.services.horns
    actor = context.actor
    locale = context.user_locale  # answers to a press are seen by the presser alone
    if action in (HornPress.CHECK_IN, HornPress.CANT_COME):
        tap = await horns.check_in(actor.user_id, horn_id) if action == HornPress.CHECK_IN \
            else await horns.cant_come(actor.user_id, horn_id)
        await answer_query(update, t(locale, tap.key, **tap.values))  # before any edit
        if tap.changed:
            await horns.refresh_counters(horn_id)
    elif action == HornPress.CLOSE:  # asks first
        horn = await horns.ask_close(actor, horn_id)
        await answer_query(update, t(locale, "horn.close_confirm", id=horn_id))
        await edit_markup(query.message, markup(views.close_confirm_buttons(locale, horn)))
    elif action == HornPress.KEEP_OPEN:
        horn = await horns.ask_close(actor, horn_id)
        await answer_query(update, t(locale, "horn.kept_open", id=horn_id))
        await edit_markup(query.message, markup(views.owner_buttons(locale, horn)))
    elif action == HornPress.CLOSE_CONFIRMED:
        await horns.close(actor, horn_id)
        await answer_query(update, t(locale, "horn.closed_done", id=horn_id))
        await drop_buttons(query.message)
    elif action == HornPress.TOGGLE_PRESENT and person_id is not None:
        view = await horns.toggle_present(actor, locale, horn_id, person_id)
        await answer_query(update)
        await edit(query.message, view.text, markup(view.buttons))
    elif action == HornPress.ASK_HOURS:
        await horns.ask_hours(actor, horn_id)
        await answer_query(update)
        await reply(update, context, "horn.ask_hours", id=horn_id)
    elif action == HornPress.CONFIRM:
        view = await horns.confirm(actor, locale, horn_id)
        await answer_query(update, t(locale, "horn.confirmed_short", id=horn_id))
        await edit(query.message, view.text)
    else:
        raise Refused("button.stale")


@handles_refusals
async def list_horns(update: Update, context: GridhornContext) -> None:
    """/horns: active horns, one a line, each starting with its id."""
    found = await context.services.horns.active_for(context.actor)
    locale = context.locale
    if not found:
        await reply(update, context, "horns.none")
        return
    lines = [t(locale, "horns.title")]
    lines += [views.list_line(locale, horn, count, may_close) for horn, count, may_close in found]
    await reply_html(update, context, "\n".join(lines))


@handles_refusals
async def close_command(update: Update, context: GridhornContext) -> None:
    """/horn_close ID: close a horn; on a closed one, the owner gets the attendance list again."""
    horn_id = command_id(update, "horn.close_usage")
    horns = context.services.horns
    horn = await horns.get(horn_id)
    chat = update.effective_chat
    if not horn.active and chat is not None and chat.type == "private":
        await show(update, context, await horns.attendance(context.actor, context.locale,
                                                           horn_id))
        return
    await horns.close(context.actor, horn_id)
    await reply(update, context, "horn.closed_done", id=horn_id)


def register(app: Application, group: int) -> None:
    app.add_handler(CommandHandler("horn", horn_command), group=group)
    app.add_handler(CommandHandler("horns", list_horns), group=group)
    app.add_handler(CommandHandler("horn_close", close_command), group=group)
    app.add_handler(CallbackQueryHandler(flow_button, pattern=FLOW_PATTERN), group=group)
    app.add_handler(CallbackQueryHandler(horn_button, pattern=HORN_PATTERN), group=group)
