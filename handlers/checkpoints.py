"""Patrol checkpoints 专项巡更点 (SPEC §13): `/checkpoints` (list, add, edit, retire), `/patrol`
privately without words (the location button), `/patrol status`, a location sent privately,
the visit's note or photo, and "Done" under a visit."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from telegram import KeyboardButton, ReplyKeyboardMarkup, ReplyKeyboardRemove, Update
from telegram.constants import ParseMode
from telegram.ext import Application, CallbackQueryHandler, CommandHandler, MessageHandler, filters

from bot.context import GridhornContext
from bot.i18n import Markup, t
from bot.services.checkpoints import (
    PREFIX,
    FreePatrol,
    Status,
    Visited,
    checkpoint_line,
    coverage_line,
    matter_text,
)
from bot.services.errors import Refused
from bot.services.periods import Period
from bot.services.ticket_intake import IntakePress, press_data
from bot.services.ticket_views import button, when
from bot.textsplit import plain_text
from handlers.common import (
    answer_query,
    command_args,
    drop_buttons,
    edit,
    handles_refusals,
    markup,
    refusal_text,
    reply_html,
)
from storage.models import Checkpoint, Flow, TicketSource

DONE = f"{PREFIX}:done"
RETIRE = f"{PREFIX}:rt"          # `cp:rt:<code>`: Retire on the list, asks to confirm
RETIRE_YES = f"{PREFIX}:rty"     # `cp:rty:<code>`: Confirm
RETIRE_NO = f"{PREFIX}:rtn"      # `cp:rtn:<code>`: Cancel
#: a list with more checkpoints in service than this shows no Retire buttons (Telegram takes
#: at most 100 buttons on a message): `/checkpoints retire CODE` then, as the usage says
RETIRE_BUTTONS = 30


async def patrol_command(update: Update, context: GridhornContext) -> bool:
    """`/patrol status [GRID]`, or `/patrol` alone in a private chat (asks for the location):
    True when handled here; anything else is today's /patrol (SPEC §6)."""
    args = command_args(update)
    chat = update.effective_chat
    if args and args[0].lower() == "status":
        await _status(update, context, args[1] if len(args) > 1 else None)
        return True
    if args or chat is None or chat.type != "private":
        return False
    await context.services.checkpoints.ask_location(context.actor)
    locale = context.locale
    keyboard = ReplyKeyboardMarkup(
        [[KeyboardButton(t(locale, "checkpoints.btn_location"), request_location=True)]],
        resize_keyboard=True, one_time_keyboard=True)
    await context.bot.send_message(chat.id, t(locale, "checkpoints.ask_location"),
                                   parse_mode=ParseMode.HTML, reply_markup=keyboard)
    return True


async def _status(update: Update, context: GridhornContext, code: str | None) -> None:
    services = context.services
    status = await services.checkpoints.status(context.actor, code, services.now())
    await reply_html(update, context, status_text(context.locale, status,
                                                  services.settings.tz))


def status_text(locale: str, status: Status, tz: ZoneInfo) -> str:
    if not status.grids:
        return t(locale, "checkpoints.status_none")
    lines = [t(locale, "checkpoints.status_title", month=status.month)]
    for total, parts in status.grids:
        lines.append("")
        lines.append(t(locale, "checkpoints.status_grid", grid=total.grid.name,
                       code=total.grid.code, coverage=Markup(coverage_line(locale, total))))
        for part in parts:
            lines.append(t(locale, "checkpoints.status_matter",
                           matter=matter_text(locale, part.matter or "other"),
                           coverage=Markup(coverage_line(locale, part))))
        due = status.due.get(total.grid.code, [])
        lines.append(_due_text(locale, due, tz))
    return "\n".join(lines)


def _due_text(locale: str, due: list[tuple[Checkpoint, Period]], tz: ZoneInfo) -> str:
    if not due:
        return t(locale, "checkpoints.all_visited")
    items = "\n".join(t(locale, "checkpoints.due_line", name=cp.name, code=cp.code,
                        until=when(period.end.timestamp(), tz))
                      for cp, period in due)
    return t(locale, "checkpoints.still_due", items=Markup(items))


@handles_refusals
async def location(update: Update, context: GridhornContext) -> None:
    """A location sent privately: a checkpoint's visit, else a free patrol."""
    message = update.effective_message
    if message is None or message.location is None:
        return
    services = context.services
    locale = context.locale
    done = await services.checkpoints.located(
        context.actor, message.location.latitude, message.location.longitude, services.now(),
        source_update_id=update.update_id)
    tz = services.settings.tz
    if isinstance(done, FreePatrol):
        if done.nearest is not None and done.distance is not None:
            text = t(locale, "checkpoints.free_far", name=done.nearest.name,
                     code=done.nearest.code, distance=round(done.distance),
                     radius=done.nearest.radius_m, grid=done.grid.name,
                     grid_code=done.grid.code)
        else:
            text = t(locale, "checkpoints.free_none", grid=done.grid.name,
                     grid_code=done.grid.code)
        await context.bot.send_message(message.chat_id, text, parse_mode=ParseMode.HTML,
                                       reply_markup=ReplyKeyboardRemove())
        return
    assert isinstance(done, Visited)
    await context.bot.send_message(
        message.chat_id, t(locale, "checkpoints.visited", name=done.checkpoint.name,
                           code=done.checkpoint.code,
                           matter=matter_text(locale, done.checkpoint.matter),
                           distance=round(done.visit.distance_m), at=when(done.visit.at, tz)),
        parse_mode=ParseMode.HTML, reply_markup=ReplyKeyboardRemove())
    building = done.checkpoint.building_code
    source = f"{TicketSource.PATROL}:{building}" if building else str(TicketSource.PATROL)
    buttons = [[button(t(locale, "intake.btn_report_problem"),
                       press_data(IntakePress.START, source))]]
    text = _due_text(locale, done.due, tz)
    if done.awaits_note:  # not while another guided flow waits for the person's words
        buttons.append([button(t(locale, "checkpoints.btn_done"), DONE)])
        text += "\n\n" + t(locale, "checkpoints.ask_note")
    await reply_html(update, context, text, markup=markup(buttons))


async def flow_text(update: Update, context: GridhornContext, flow: Flow) -> None:
    """The visit's note (a text), or its photo (a caption is the note)."""
    message = update.effective_message
    assert message is not None
    photo = message.photo[-1].file_id if message.photo else None
    try:
        visit = await context.services.checkpoints.annotate(
            context.actor, message.text or message.caption or "", photo)
    except Refused as refusal:
        await reply_html(update, context, refusal_text(context.locale, refusal))
        return
    await reply_html(update, context, t(context.locale, "checkpoints.note_saved",
                                        code=visit.checkpoint_code))


@handles_refusals
async def done_button(update: Update, context: GridhornContext) -> None:
    query = update.callback_query
    assert query is not None
    finished = await context.services.checkpoints.finish(context.actor)
    await answer_query(update, t(context.user_locale, "checkpoints.done" if finished
                                 else "checkpoints.note_gone"))
    await drop_buttons(query.message)


@handles_refusals
async def checkpoints_command(update: Update, context: GridhornContext) -> None:
    """`/checkpoints [GRID]` (each checkpoint in service with a Retire button),
    `/checkpoints add GRID MATTER LAT LON RADIUS_M NAME…`, `/checkpoints edit CODE FIELD
    VALUE…`, `/checkpoints retire CODE` (asks for the confirming tap)."""
    args = command_args(update)
    service = context.services.checkpoints
    locale = context.locale
    if args and args[0].lower() == "add":
        cp = await service.add(context.actor, args[1:])
        await reply_html(update, context, t(locale, "checkpoints.added", code=cp.code) + "\n" +
                         checkpoint_line(locale, cp))
        return
    if args and args[0].lower() == "edit":
        cp = await service.edit(context.actor, args[1:])
        await reply_html(update, context, t(locale, "checkpoints.edited", code=cp.code) +
                         "\n" + checkpoint_line(locale, cp))
        return
    if args and args[0].lower() == "retire":
        if len(args) != 2:
            raise Refused("checkpoints.usage_retire")
        cp = await service.to_retire(context.actor, args[1])
        text, buttons = _retire_prompt(locale, cp)
        await reply_html(update, context, text, markup=markup(buttons))
        return
    listed = await service.listed(context.actor, args[0] if args else None)
    lines: list[str] = []
    buttons = []
    for grid, cps in listed:
        lines.append(t(locale, "checkpoints.list_grid", grid=grid.name, code=grid.code))
        serving = [cp for cp in cps if not cp.retired]
        lines += [checkpoint_line(locale, cp) for cp in serving] or \
            [t(locale, "checkpoints.list_empty")]
        retired = [cp for cp in cps if cp.retired]
        if retired:
            lines.append(t(locale, "checkpoints.list_retired", items=", ".join(
                f"{cp.code} {cp.name}" for cp in retired)))
        lines.append("")
        # a label is plain text, not HTML: the name goes in as it is
        buttons += [[button(f"{t(locale, 'checkpoints.btn_retire', code=cp.code)} "
                            f"{cp.name[:24]}", f"{RETIRE}:{cp.code}")] for cp in serving]
    if len(buttons) > RETIRE_BUTTONS:
        buttons = []
    if not listed:
        lines = [t(locale, "checkpoints.list_none"), ""]
    lines.append(t(locale, "checkpoints.usage"))
    await reply_html(update, context, "\n".join(lines), markup=markup(buttons))


def _retire_prompt(locale: str, cp: Checkpoint) -> tuple[str, list[list[dict[str, str]]]]:
    """"Retire this checkpoint?" with Confirm and Cancel."""
    text = t(locale, "checkpoints.retire_confirm", code=cp.code, name=cp.name,
             grid=cp.grid_code)
    return text, [[button(t(locale, "checkpoints.btn_confirm_retire"),
                          f"{RETIRE_YES}:{cp.code}"),
                   button(t(locale, "btn.cancel"), f"{RETIRE_NO}:{cp.code}")]]


@handles_refusals
async def retire_button(update: Update, context: GridhornContext) -> None:
    """Retire on the list (asks to confirm), its Confirm (retires) or Cancel; the service
    checks the presser's right and the checkpoint again on every press."""
    query = update.callback_query
    assert query is not None and query.data is not None
    service = context.services.checkpoints
    locale = context.user_locale
    kind, _, code = query.data.partition(":")[2].partition(":")
    if kind == "rtn":  # only who may retire it takes the question away
        await service.to_retire(context.actor, code)
        await answer_query(update, t(locale, "checkpoints.retire_cancelled"))
        await drop_buttons(query.message)
        return
    if kind == "rt":
        cp = await service.to_retire(context.actor, code)
        text, buttons = _retire_prompt(context.locale, cp)
        await answer_query(update)
        await reply_html(update, context, text, markup=markup(buttons))
        return
    cp = await service.retire(context.actor, code)
    done = t(locale, "checkpoints.retired", code=cp.code, name=cp.name)
    await answer_query(update, plain_text(done))  # a toast is plain text, not HTML
    await edit(query.message, t(context.locale, "checkpoints.retired", code=cp.code,
                                name=cp.name))


def register(app: Application, group: int) -> None:
    app.add_handler(CommandHandler("checkpoints", checkpoints_command), group=group)
    # a new message only: a live location's moves come as edits, and are not visits
    app.add_handler(MessageHandler(filters.UpdateType.MESSAGE & filters.ChatType.PRIVATE &
                                   filters.LOCATION, location), group=group)
    app.add_handler(CallbackQueryHandler(done_button, pattern=rf"^{DONE}$"), group=group)
    app.add_handler(CallbackQueryHandler(retire_button, pattern=rf"^{PREFIX}:rt[yn]?(:|$)"),
                    group=group)
