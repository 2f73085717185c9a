"""AB岗 (SPEC §11): /backup USER_ID [FOR_USER_ID], /away [UNTIL], /back — sent privately."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.ext import Application, CommandHandler

from bot.context import GridhornContext
from bot.services.errors import Refused
from handlers.common import command_args, handles_refusals, reply, reply_html, require_private

logger = logging.getLogger(__name__)


@handles_refusals
async def backup(update: Update, context: GridhornContext) -> None:
    """/backup USER_ID [FOR_USER_ID]: name who stands in while the holder is away."""
    require_private(update, "people.private_only")
    args = command_args(update)
    if not 1 <= len(args) <= 2 or not all(a.isdigit() for a in args):
        raise Refused("backup.usage")
    holder = int(args[1]) if len(args) == 2 else None
    named = await context.services.backups.name_backup(context.actor, int(args[0]), holder)
    await reply(update, context, "backup.done", name=named.display_name)


@handles_refusals
async def away(update: Update, context: GridhornContext) -> None:
    """/away [UNTIL]: away until the date (YYYY-MM-DD) or until /back."""
    require_private(update, "people.private_only")
    args = command_args(update)
    if len(args) > 1:
        raise Refused("away.usage")
    _, named = await context.services.backups.away(context.actor, args[0] if args else None)
    key = "away.done_backup" if named is not None else "away.done_next_level"
    await reply(update, context, key, name=named.display_name if named else "",
                until=args[0] if args else "/back")


@handles_refusals
async def back(update: Update, context: GridhornContext) -> None:
    """/back: the absence ends; what was done meanwhile."""
    require_private(update, "people.private_only")
    await reply_html(update, context, await context.services.backups.back(context.actor))


def register(app: Application, group: int) -> None:
    app.add_handler(CommandHandler("backup", backup), group=group)
    app.add_handler(CommandHandler("away", away), group=group)
    app.add_handler(CommandHandler("back", back), group=group)
