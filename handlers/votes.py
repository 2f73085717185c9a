"""The residents' quarterly vote 群众评单 (SPEC §10): the ⭐ 1–5 buttons on a building chat's
vote post (`uv:<vote>:<stars>`; the service checks the vote and the voter again)."""

from __future__ import annotations

from telegram import Update
from telegram.ext import Application, CallbackQueryHandler

from bot.context import GridhornContext
from bot.i18n import t
from bot.services.unit_votes import VOTE_PATTERN
from handlers.common import answer_query, handles_refusals


@handles_refusals
async def vote_button(update: Update, context: GridhornContext) -> None:
    """Cast or change a resident's vote; anyone else is told they cannot vote."""
    query = update.callback_query
    assert query is not None and query.data is not None
    actor = context.actor
    first, stars = await context.services.schedule.votes.cast(
        actor.user_id, actor.building_code, query.data)
    await answer_query(update, t(context.user_locale,
                                 "board_units.voted" if first else "board_units.vote_changed",
                                 stars=stars))


def register(app: Application, group: int) -> None:
    app.add_handler(CallbackQueryHandler(vote_button, pattern=VOTE_PATTERN), group=group)
