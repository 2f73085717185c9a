"""Member units (SPEC §10): /unit [CODE], a contact's view of their unit's record."""

from __future__ import annotations

from telegram import Update
from telegram.ext import Application, CallbackQueryHandler, CommandHandler

from bot.context import GridhornContext
from bot.i18n import Markup, escape, t
from bot.labels import MEMBER_TYPE, SKILL
from bot.services.errors import Refused
from bot.services.horn_codes import UNIT_PATTERN, UnitPress, read_unit_press
from bot.services.units import UnitRecord
from handlers.common import (
    answer_query,
    command_args,
    edit,
    handles_refusals,
    markup,
    reply_html,
    require_private,
)
from handlers.render import unit_label


def record_text(locale: str, record: UnitRecord) -> str:
    none = t(locale, "unit.nobody")
    contacts = [f"{escape(p.display_name)} ({p.user_id})" for p in record.contacts]
    return t(locale, "unit.record", unit=unit_label(record.unit),
             type=t(locale, MEMBER_TYPE[record.unit.member_type or "social"]),
             community=unit_label(record.community) if record.community else none,
             contacts=Markup(", ".join(contacts)) if contacts else none,
             members=len(record.members),
             chat=t(locale, "unit.chat_bound" if record.chat_bound else "unit.chat_none"))


@handles_refusals
async def unit(update: Update, context: GridhornContext) -> None:
    """/unit [CODE]: the member unit's record (its contact's own, or one in staff's scope)."""
    require_private(update, "unit.private_only")
    args = command_args(update)
    if len(args) > 1:
        raise Refused("unit.usage")
    record = await context.services.units.record(context.actor, args[0] if args else None)
    await reply_html(update, context, record_text(context.locale, record))


@handles_refusals
async def report_in(update: Update, context: GridhornContext) -> None:
    """/report_in [SKILL…] (双报到): report in to the community where one lives."""
    require_private(update, "report_in.private_only")
    skills = [s.lower() for s in command_args(update)]
    done = await context.services.units.report_in(context.actor, skills)
    locale = context.locale
    offered = ", ".join(t(locale, SKILL[s]) for s in done.report.skills)
    await reply_html(update, context, t(
        locale, "report_in.done", unit=unit_label(done.unit),
        community=unit_label(done.community), skills=offered or t(locale, "me.none")))


def register(app: Application, group: int) -> None:
    app.add_handler(CommandHandler("unit", unit), group=group)
    app.add_handler(CommandHandler("report_in", report_in), group=group)
    app.add_handler(CallbackQueryHandler(unit_horn_button, pattern=UNIT_PATTERN), group=group)


@handles_refusals
async def unit_horn_button(update: Update, context: GridhornContext) -> None:
    """Member units on a horn (`hu:`): "Unit check in", a number pledged, and the owner's
    number for each unit at the close. Every press is checked again by the service."""
    query = update.callback_query
    assert query is not None and query.data is not None
    action, horn_id, arg = read_unit_press(query.data)
    horns = context.services.horns
    actor = context.actor
    locale = context.user_locale
    if action == UnitPress.PLEDGE:
        await horns.pledge_prompt(actor, horn_id)
        await answer_query(update, t(locale, "unit.horn_pledge_private"))
    elif action == UnitPress.PEOPLE and arg is not None:
        done = await horns.pledge(actor, horn_id, int(arg))
        text = t(locale, "unit.horn_pledged", unit=f"{done.unit.name} ({done.unit.code})",
                 people=done.pledged, id=horn_id)
        await answer_query(update, text)
        await edit(query.message, text)
        await horns.refresh_counters(horn_id)
    elif action in (UnitPress.LESS, UnitPress.MORE) and arg is not None:
        view = await horns.adjust_unit(actor, locale, horn_id, arg,
                                       -1 if action == UnitPress.LESS else 1)
        await answer_query(update)
        await edit(query.message, view.text, markup(view.buttons))
    else:
        raise Refused("button.stale")
