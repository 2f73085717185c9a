"""The time bank's shop 爱心银行 (SPEC §13): /points, /redeem N, a clerk's /redeem CODE (or the
code alone in a private chat) and the confirming tap."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

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
from bot.services.shop import CONFIRM_PREFIX, Ledger, Opened, confirm_data, is_code, read_confirm
from bot.services.ticket_views import button
from handlers.common import (
    answer_query,
    edit,
    handles_refusals,
    markup,
    refusal_text,
    reply_html,
    require_private,
)
from storage.models import LedgerLine

logger = logging.getLogger(__name__)


def _when(context: GridhornContext, moment: float) -> str:
    return datetime.fromtimestamp(moment, context.services.settings.tz).strftime("%m-%d %H:%M")


def _line(context: GridhornContext, line: LedgerLine) -> str:
    locale, when = context.locale, _when(context, line.at)
    delta = f"{line.delta:+d}"
    if line.kind == "credit" and line.ticket_id is not None:  # a resolved assignment (§10)
        return t(locale, "assign.line_credit", when=when, delta=delta, ticket=line.ticket_id)
    if line.kind == "credit":
        return t(locale, "shop.line_credit", when=when, delta=delta, horn=line.horn_id or "?")
    if line.kind == "return":
        return t(locale, "shop.line_return", when=when, delta=delta)
    if line.kind == "reserve":
        if line.status == "spent":
            return t(locale, "shop.line_spent", when=when, delta=delta,
                     partner=line.partner_name or "?")
        if line.status == "expired":
            return t(locale, "shop.line_expired", when=when, delta=delta)
        return t(locale, "shop.line_reserved", when=when, delta=delta)
    return t(locale, "shop.line_opening", delta=delta)


def ledger_text(context: GridhornContext, ledger: Ledger) -> str:
    locale = context.locale
    lines = [t(locale, "shop.points_title", balance=ledger.balance)]
    if not ledger.lines:
        lines.append(t(locale, "shop.points_empty"))
    lines += [_line(context, line) for line in ledger.lines]
    lines.append(t(locale, "shop.points_hint"))
    return "\n".join(lines)


def opened_text(context: GridhornContext, opened: Opened) -> str:
    r = opened.redemption
    return t(context.locale, "shop.opened", code=r.code, partner=opened.partner.name,
             volunteer=opened.volunteer, points=r.points, until=_when(context, r.expires_at))


async def _show_opened(update: Update, context: GridhornContext, code: str) -> None:
    opened = await context.services.shop.open(context.actor, code)
    await reply_html(update, context, opened_text(context, opened), markup=markup(
        [[button(t(context.locale, "shop.btn_confirm"), confirm_data(opened.redemption.id))]]))


@handles_refusals
async def points(update: Update, context: GridhornContext) -> None:
    """Show the person's time bank: the balance and the last 20 lines."""
    require_private(update, "shop.private")
    ledger = await context.services.shop.ledger(context.actor)
    await reply_html(update, context, ledger_text(context, ledger))


@handles_refusals
async def redeem(update: Update, context: GridhornContext) -> None:
    """/redeem N: reserve points under a one-time code; /redeem CODE: a clerk takes a code."""
    require_private(update, "shop.private")
    message = update.effective_message
    args = (message.text or "").split()[1:] if message else []
    if len(args) != 1:
        raise Refused("shop.usage")
    if is_code(args[0]):
        await _show_opened(update, context, args[0])
        return
    await context.services.shop.request(context.actor, args[0])  # the code comes as a photo


async def code_text(update: Update, context: GridhornContext) -> None:
    """A clerk's private message that is a code alone: taken as /redeem CODE. Anyone else's
    text goes on (an opinion draft, SPEC §4)."""
    message = update.effective_message
    if message is None or not message.text or not is_code(message.text) \
            or message.reply_to_message is not None:   # an answer to a prompt stays one
        return
    if not await context.services.shop.partners_of(context.actor):
        return
    try:
        await _show_opened(update, context, message.text)
    except Refused as refusal:
        await reply_html(update, context, refusal_text(context.locale, refusal))
    raise ApplicationHandlerStop


@handles_refusals
async def confirm(update: Update, context: GridhornContext) -> None:
    """The clerk's confirming tap: spend the code (exactly once) and say so."""
    query = update.callback_query
    redemption_id = read_confirm(query.data or "") if query else None
    if redemption_id is None:
        raise Refused("button.stale")
    spent = await context.services.shop.confirm(context.actor, redemption_id)
    await answer_query(update)
    assert query is not None
    await edit(query.message,  # type: ignore[arg-type]
               t(context.user_locale, "shop.spent_clerk", volunteer=spent.volunteer,
                 points=spent.redemption.points, partner=spent.partner.name,
                 code=spent.redemption.code, balance=spent.balance))


def register(app: Application[Any, Any, Any, Any, Any, Any], group: int,
             code_group: int) -> None:
    """`code_group`: ahead of the features (after the guided flows), so that a clerk's code
    never becomes an opinion draft."""
    app.add_handler(CommandHandler("points", points), group=group)
    app.add_handler(CommandHandler("redeem", redeem), group=group)
    app.add_handler(CallbackQueryHandler(confirm, pattern=rf"^{CONFIRM_PREFIX}"), group=group)
    app.add_handler(MessageHandler(
        filters.ChatType.PRIVATE & filters.TEXT & ~filters.COMMAND
        & filters.Regex(r"^\s*[A-Za-z0-9]{6}\s*$"), code_text), group=code_group)
