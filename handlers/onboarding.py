"""Onboarding: /start (and deep links), /help, /me, /lang, /invite, /cancel (SPEC §3)."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.ext import Application, CallbackQueryHandler, CommandHandler

from bot.context import GridhornContext
from bot.i18n import LOCALES, t
from bot.services.access import Action
from bot.services.errors import Refused
from handlers.common import (
    answer_query,
    command_args,
    edit,
    handles_refusals,
    keyboard,
    reply,
    reply_html,
)
from handlers.opinions import show_draft
from handlers.render import help_text, profile_text, role_name, unit_label

logger = logging.getLogger(__name__)


@handles_refusals
async def start(update: Update, context: GridhornContext) -> None:
    """Greet, or redeem a deep-link payload."""
    args = command_args(update)
    chat = update.effective_chat
    if args and chat is not None and chat.type == "private":
        services = context.services
        redeemed = await services.people.redeem(context.actor.user_id, args[0])
        if redeemed.kind == "join" and redeemed.unit.kind == "member":
            await reply(update, context, "unit.joined", unit=unit_label(redeemed.unit))
        elif redeemed.kind == "join":
            await reply(update, context, "start.joined", building=unit_label(redeemed.unit))
            await show_draft(update, context)  # a draft kept while they joined
        else:
            await reply(update, context, "start.role_granted",
                        role=role_name(context.locale, redeemed.role or ""),
                        unit=unit_label(redeemed.unit))
        return
    await reply(update, context, "start.greeting",
                name=update.effective_user.first_name if update.effective_user else "")


@handles_refusals
async def help_command(update: Update, context: GridhornContext) -> None:
    """List what this person can do, by role."""
    services = context.services
    actions = {a for a in Action if services.access.can_somewhere(context.actor, a)}
    await reply_html(update, context, help_text(context.locale, context.actor, actions))


@handles_refusals
async def me(update: Update, context: GridhornContext) -> None:
    """Show the person's building, roles, party flag, skills, hours and points (the
    ledger's balance, once codes past their time have returned theirs, as /points)."""
    await context.services.shop.expire_due(context.actor.user_id)
    profile = await context.services.people.profile(context.actor.user_id)
    await reply_html(update, context,
                     profile_text(context.locale, profile, context.actor.superadmin))


LANGUAGE_LABELS = {"zh-Hans": "简体中文", "zh-Hant": "繁體中文", "en": "English"}


@handles_refusals
async def lang(update: Update, context: GridhornContext) -> None:
    """Offer the three languages (for a person, or for a group from its staff)."""
    await reply(update, context, "lang.choose", markup=keyboard(
        [[(LANGUAGE_LABELS[code], f"lang:{code}") for code in LOCALES]]))


@handles_refusals
async def lang_chosen(update: Update, context: GridhornContext) -> None:
    """Set the chosen language; the data is client input, so check it again."""
    query = update.callback_query
    assert query is not None and query.data is not None
    locale = query.data.split(":", 1)[1]
    if locale not in LOCALES:
        raise Refused("button.stale")
    chat = update.effective_chat
    services = context.services
    if chat is not None and chat.type != "private":
        await services.chats.set_chat_locale(context.actor, chat.id, locale)
    else:
        await services.people.set_locale(context.actor.user_id, locale)
    await answer_query(update)
    text = t(locale, "lang.set", language=LANGUAGE_LABELS[locale])
    await edit(query.message, text)


@handles_refusals
async def invite(update: Update, context: GridhornContext) -> None:
    """/invite ROLE CODE: a one-time link granting a role (or the party flag) on a unit."""
    args = command_args(update)
    if len(args) != 2:
        raise Refused("invite.usage")
    role, code = args[0].lower(), args[1]
    services = context.services
    payload, unit = await services.people.create_invite(context.actor, role, code)
    await reply(update, context, "invite.created", role=role_name(context.locale, role),
                unit=unit_label(unit), link=services.deep_link(payload))


@handles_refusals
async def cancel(update: Update, context: GridhornContext) -> None:
    """Leave any guided flow."""
    chat = update.effective_chat
    left = await context.services.people.leave_flow(
        context.actor.user_id, private=chat is None or chat.type == "private")
    await reply(update, context, "cancel.done" if left else "cancel.nothing")


def register(app: Application, group: int) -> None:
    app.add_handler(CommandHandler("start", start), group=group)
    app.add_handler(CommandHandler("help", help_command), group=group)
    app.add_handler(CommandHandler("me", me), group=group)
    app.add_handler(CommandHandler("lang", lang), group=group)
    app.add_handler(CallbackQueryHandler(lang_chosen, pattern=r"^lang:"), group=group)
    app.add_handler(CommandHandler("invite", invite), group=group)
    app.add_handler(CommandHandler("cancel", cancel), group=group)
