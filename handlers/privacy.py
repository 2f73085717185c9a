"""Personal data (SPEC §14): the notice under a first Submit and `/privacy`, `/mydata`,
`/forget`. Buttons: `pv:agree[:<draft card>]`, `pv:cancel:<draft card>`, `pv:forget`,
`pv:keep`."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.ext import Application, CallbackQueryHandler, CommandHandler

from bot.context import GridhornContext
from bot.i18n import t
from bot.services.errors import Refused
from handlers.common import (
    answer_query,
    edit,
    handles_refusals,
    keyboard,
    pressed,
    reply,
    require_private,
)

logger = logging.getLogger(__name__)
PREFIX = "pv"


async def show_notice(update: Update, context: GridhornContext, draft_card: int) -> None:
    """Submit by a person who has not agreed yet: the notice, with Agree and Cancel; the
    draft stays as it is until they agree."""
    locale = context.user_locale
    await reply(update, context, "privacy.notice", markup=keyboard([[
        (t(locale, "privacy.agree"), f"{PREFIX}:agree:{draft_card}"),
        (t(locale, "privacy.cancel"), f"{PREFIX}:cancel:{draft_card}")]]))


@handles_refusals
async def privacy_command(update: Update, context: GridhornContext) -> None:
    """/privacy: the notice again; Agree for a person who has not agreed yet."""
    require_private(update, "privacy.private_only")
    if await context.services.privacy.consented(context.actor.user_id):
        await reply(update, context, "privacy.notice")
        await reply(update, context, "privacy.already_agreed")
        return
    await reply(update, context, "privacy.notice", markup=keyboard([[
        (t(context.locale, "privacy.agree"), f"{PREFIX}:agree")]]))


@handles_refusals
async def mydata_command(update: Update, context: GridhornContext) -> None:
    """/mydata: everything kept about the person, as two files."""
    require_private(update, "privacy.private_only")
    await context.services.privacy.send_export(context.actor.user_id)
    await reply(update, context, "mydata.sending")


@handles_refusals
async def forget_command(update: Update, context: GridhornContext) -> None:
    """/forget: asks to confirm (staff are told to have their roles revoked first)."""
    require_private(update, "privacy.private_only")
    await context.services.privacy.check_erasable(context.actor.user_id)
    await reply(update, context, "forget.confirm", markup=keyboard([[
        (t(context.locale, "forget.yes"), f"{PREFIX}:forget"),
        (t(context.locale, "forget.no"), f"{PREFIX}:keep")]]))


@handles_refusals
async def privacy_button(update: Update, context: GridhornContext) -> None:
    """Agree / Cancel under the notice; Erase / Keep under /forget's question."""
    query = update.callback_query
    assert query is not None
    if query.message is None or query.message.chat.type != "private":
        raise Refused("button.stale")
    services = context.services
    user_id = context.actor.user_id
    locale = context.user_locale
    action, arg = pressed(update)
    if action == "agree":
        card = int(arg) if arg.isdigit() else None
        agreed = await services.privacy.agree(user_id, card)
        if agreed.ticket is not None:
            await answer_query(update, t(locale, "draft.submitted_short", id=agreed.ticket.id))
            await edit(query.message, t(locale, "privacy.agreed_submitted",
                                        id=agreed.ticket.id))
        else:
            await answer_query(update)
            await edit(query.message, t(locale, "privacy.agreed"))
    elif action == "cancel":
        await answer_query(update)
        await edit(query.message, t(locale, "privacy.cancelled"))
    elif action == "forget":
        await services.privacy.erase(user_id)
        await answer_query(update)
        await edit(query.message, t(locale, "forget.done"))
    elif action == "keep":
        await answer_query(update)
        await edit(query.message, t(locale, "forget.kept"))
    else:
        raise Refused("button.stale")


def register(app: Application, group: int) -> None:
    app.add_handler(CommandHandler("privacy", privacy_command), group=group)
    app.add_handler(CommandHandler("mydata", mydata_command), group=group)
    app.add_handler(CommandHandler("forget", forget_command), group=group)
    app.add_handler(CallbackQueryHandler(privacy_button, pattern=rf"^{PREFIX}:"), group=group)
