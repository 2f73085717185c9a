"""Schedules and reports: /theme, /report, /board, /patrol (SPEC §6)."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.constants import ParseMode
from telegram.ext import Application, CommandHandler

from bot.context import GridhornContext
from bot.i18n import join_list, t, tn
from bot.services.patrols import Recorded
from bot.services.themes import ThemeShown
from bot.services.ticket_intake import IntakePress, press_data
from bot.services.ticket_views import button, when
from handlers.checkpoints import patrol_command
from handlers.common import command_args, handles_refusals, markup, reply, reply_html, thread_of
from storage.models import TicketSource

logger = logging.getLogger(__name__)


def _rest(update: Update) -> str:
    """Everything after the command, as typed (line breaks kept)."""
    message = update.effective_message
    if message is None or not message.text:
        return ""
    parts = message.text.split(maxsplit=1)
    return parts[1] if len(parts) > 1 else ""


@handles_refusals
async def theme(update: Update, context: GridhornContext) -> None:
    """Show this month's theme, or set one: /theme YYYY-MM [COMMUNITY] TEXT."""
    services = context.services
    now = services.now()
    args = _rest(update)
    chat = update.effective_chat
    if not args.strip():
        shown = await services.schedule.themes.show(context.actor, chat.id if chat else 0, now)
        await reply_html(update, context, _shown_text(context.locale, shown))
        return
    done = await services.schedule.themes.set_theme(context.actor, args, now)
    if done.units:
        names = join_list(context.locale, (f"{u.name} ({u.code})" for u in done.units))
        text = t(context.locale, "theme.set", month=done.month, units=names)
    else:
        text = t(context.locale, "theme.set_city", month=done.month)
    if done.posted:
        text += "\n" + tn(context.locale, "theme.posted_now", done.posted, count=done.posted)
    await reply_html(update, context, text)


def _shown_text(locale: str, shown: ThemeShown) -> str:
    lines = [t(locale, "theme.current_title", month=shown.month)]
    for unit, item in shown.themes:
        if unit is None:
            lines.append(t(locale, "theme.line_city", text=item.text) if item
                         else t(locale, "theme.none_city"))
        elif item is None:
            lines.append(t(locale, "theme.none_line", unit=unit.name))
        else:
            lines.append(t(locale, "theme.line", unit=unit.name, text=item.text))
    if shown.may_set:
        lines.append(t(locale, "theme.how_to_set", month=shown.month))
    return "\n".join(lines)


@handles_refusals
async def report(update: Update, context: GridhornContext) -> None:
    """The monthly public report here: text, chart (photo) and workbook (document)."""
    args = command_args(update)
    services = context.services
    asked = await services.schedule.report(context.actor, args[0] if args else None,
                                           services.now(), context.locale)
    await reply_html(update, context, asked.files.text)
    chat = update.effective_chat
    assert chat is not None
    png_name, xlsx_name = asked.files.filenames(asked.report.month)
    thread_id = thread_of(update)
    await context.bot.send_photo(
        chat.id, asked.files.chart, filename=png_name, message_thread_id=thread_id,
        caption=t(context.locale, "report.chart_caption", month=asked.report.month),
        parse_mode=ParseMode.HTML)
    await context.bot.send_document(
        chat.id, asked.files.workbook, filename=xlsx_name, message_thread_id=thread_id,
        caption=t(context.locale, "report.workbook_caption", month=asked.report.month),
        parse_mode=ParseMode.HTML)


@handles_refusals
async def board(update: Update, context: GridhornContext) -> None:
    """Leaderboards: /board [volunteers|party|buildings|departments] [month|quarter|year]."""
    services = context.services
    text = await services.schedule.board(context.actor, command_args(update),
                                         services.now(), context.locale)
    await reply_html(update, context, text)


@handles_refusals
async def patrol(update: Update, context: GridhornContext) -> None:
    """Record a patrol: /patrol [CODE] [location] [note]; `/patrol status` and `/patrol`
    alone in a private chat are the checkpoints' (SPEC §13)."""
    if await patrol_command(update, context):
        return
    services = context.services
    chat = update.effective_chat
    done = await services.schedule.patrols.record(
        context.actor, chat.id if chat else 0, _rest(update), services.now(),
        source_update_id=update.update_id)
    # a problem found on the way is entered as a case (SPEC §11), privately
    report = [[button(t(context.locale, "intake.btn_report_problem"),
                      press_data(IntakePress.START, TicketSource.PATROL))]] \
        if chat is not None and chat.type == "private" else []
    await reply(update, context, "patrol.recorded", markup=markup(report),
                **_recorded_values(context, done))


def _recorded_values(context: GridhornContext, done: Recorded) -> dict[str, object]:
    return {"grid": done.grid.name, "code": done.grid.code,
            "at": when(done.patrol.at, context.services.settings.tz),
            "location": done.patrol.location or "—", "note": done.patrol.note or "—",
            "count": done.this_month}


def register(app: Application, group: int) -> None:
    app.add_handler(CommandHandler("theme", theme), group=group)
    app.add_handler(CommandHandler("report", report), group=group)
    app.add_handler(CommandHandler("board", board), group=group)
    app.add_handler(CommandHandler("patrol", patrol), group=group)
