"""点将 (SPEC §10): "Assign" on a ticket's staff card, the picker, the assignee's Accept /
Decline, "Update" and "Resolve" (the ticket buttons `t:asg|asa|asd|prg:<ticket>[:<arg>]`,
handed here by handlers/opinions.py), and the assignee's typed words (a guided flow)."""

from __future__ import annotations

from telegram import Update

from bot.context import GridhornContext
from bot.i18n import t
from bot.services import ticket_assign as assign
from bot.services import ticket_views as views
from bot.services.errors import Refused
from bot.services.ticket_states import TicketAction
from handlers.common import answer_query, edit, markup, refusal_text, reply, reply_html
from storage.models import Flow

#: the ticket buttons this module answers
PRESSES = frozenset({TicketAction.ASSIGN, TicketAction.ASSIGN_ACCEPT,
                     TicketAction.ASSIGN_DECLINE, TicketAction.PROGRESS})


def _picker(locale: str, choices: assign.Choices) -> tuple[str, views.Buttons]:
    ticket = choices.ticket
    filtered = not choices.everyone and assign.Scope.of(ticket).filtered
    lines, rows = assign.picker(
        locale, choices.candidates,
        lambda arg: views.press_data(TicketAction.ASSIGN, ticket.id, arg))
    head = t(locale, "assign.pick" if filtered else "assign.pick_all", id=ticket.id,
             domain=views.domain_label(locale, ticket.domain))
    if filtered:
        rows.append([views.press(t(locale, "assign.btn_all"), TicketAction.ASSIGN, ticket.id,
                                 assign.EVERYONE)])
    return "\n".join([head, *lines]), rows


async def press(update: Update, context: GridhornContext, action: TicketAction,
                ticket_id: int, arg: str | None) -> None:
    """One of PRESSES; the service checks permission and state again."""
    query = update.callback_query
    assert query is not None
    tickets = context.services.tickets
    actor = context.actor
    locale = context.user_locale
    if action == TicketAction.ASSIGN and arg in (None, assign.EVERYONE):
        choices = await tickets.assign_choices(actor, ticket_id, everyone=arg is not None)
        text, rows = _picker(context.locale, choices)
        await answer_query(update)
        if arg is None:  # pressed on the card: the picker is a message of its own
            await reply_html(update, context, text, markup=markup(rows))
        else:
            await edit(query.message, text, markup(rows))
    elif action == TicketAction.ASSIGN and arg is not None:
        ticket, name = await tickets.assign(actor, ticket_id, arg)
        done = t(locale, "assign.asked", id=ticket.id, name=name)
        await answer_query(update, done)
        await edit(query.message, t(context.locale, "assign.asked", id=ticket.id, name=name))
    elif action in (TicketAction.ASSIGN_ACCEPT, TicketAction.ASSIGN_DECLINE):
        accept = action == TicketAction.ASSIGN_ACCEPT
        ticket = await tickets.answer_assignment(actor, ticket_id, accept)
        done = t(locale, "assign.accepted" if accept else "assign.declined", id=ticket.id)
        await answer_query(update, done)
        await edit(query.message, done)
    elif action == TicketAction.PROGRESS and arg in (None, assign.RESOLVE_ARG):
        resolve = arg is not None
        await tickets.ask_assignee(actor, ticket_id, resolve)
        await answer_query(update)
        await reply(update, context, "assign.ask_note" if resolve else "assign.ask_update",
                    id=ticket_id)
    else:
        raise Refused("button.stale")


async def flow_text(update: Update, context: GridhornContext, flow: Flow) -> None:
    """The assignee's progress, result note or hours (a refusal is said; the flow stays,
    so the words may be typed again)."""
    message = update.effective_message
    text = message.text if message is not None and message.text else ""
    ticket_id = int(flow.data["ticket"])
    try:
        done = await context.services.tickets.assignee_text(context.actor, flow.name,
                                                            ticket_id, text)
    except Refused as refusal:
        await reply_html(update, context, refusal_text(context.locale, refusal))
        return
    if done is None:
        await reply(update, context, "assign.ask_hours", id=ticket_id,
                    max=f"{assign.MAX_HOURS:g}")
    elif isinstance(done, assign.Resolved) and done.again:
        await reply(update, context, "assign.resolved_again", id=ticket_id)
    elif isinstance(done, assign.Resolved):
        await reply(update, context, "assign.resolved", id=ticket_id,
                    hours=f"{done.hours:g}", points=done.points, balance=done.balance)
    else:
        await reply(update, context, "assign.updated", id=ticket_id)
