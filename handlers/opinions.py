"""Voice of the residents: drafts, the ticket buttons, prompts, /my, /tickets, /ticket."""

from __future__ import annotations

import html
import logging

from telegram import ForceReply, Message, Update
from telegram.constants import ParseMode
from telegram.ext import Application, CallbackQueryHandler, CommandHandler, MessageHandler, filters

from bot.context import GridhornContext
from bot.i18n import Markup, t
from bot.services import ticket_views as views
from bot.services.errors import Refused
from bot.services.ticket_queries import TicketPage
from bot.services.ticket_states import TicketAction
from handlers.assign import PRESSES as ASSIGN_PRESSES
from handlers.assign import press as assign_press
from handlers.common import (
    NO_PREVIEW,
    answer_query,
    command_args,
    command_id,
    drop_buttons,
    edit,
    edit_markup,
    handles_refusals,
    markup,
    pressed_on,
    reply,
    reply_html,
    thread_of,
)
from handlers.privacy import show_notice
from storage.models import Ticket

logger = logging.getLogger(__name__)
#: the actions that need words, and the prompt that asks for them
WORD_PROMPTS = {TicketAction.RESOLVE: "prompt.resolve", TicketAction.REJECT: "prompt.reject",
                TicketAction.MERGE: "prompt.merge", TicketAction.REPLY: "prompt.reply",
                TicketAction.DECLINE: "prompt.decline"}
#: what the person who acted is told (to the press, or in reply to their words)
DONE = {TicketAction.ACKNOWLEDGE: "done.ack", TicketAction.ESCALATE: "done.esc",
        TicketAction.SET_URGENCY: "done.urg", TicketAction.WHISTLE: "done.wh",
        TicketAction.ACCEPT: "done.acc", TicketAction.DECLINE: "done.dec",
        TicketAction.RESOLVE: "done.res", TicketAction.REJECT: "done.rej",
        TicketAction.MERGE: "done.mrg", TicketAction.REPLY: "done.rep",
        TicketAction.OFFER: "done.off", TicketAction.POST_TO_BUILDING: "done.post",
        TicketAction.TAKE: "done.take", TicketAction.RATE: "done.rate",
        TicketAction.ANSWER: "done.answer", TicketAction.COMMENT: "done.comment",
        TicketAction.RATE_DEPARTMENT: "whistle.done_rate",
        TicketAction.COMMENT_DEPARTMENT: "whistle.done_comment"}


async def show_draft(update: Update, context: GridhornContext) -> None:
    services = context.services
    draft = await services.tickets.draft(context.actor.user_id)
    if draft is None:
        return
    view = services.tickets.draft_view(context.user_locale, draft)
    chat_id = context.actor.user_id
    sent: Message | None = None
    for index, part in enumerate(view.parts):
        last = index == len(view.parts) - 1
        sent = await context.bot.send_message(
            chat_id, part, parse_mode=ParseMode.HTML, link_preview_options=NO_PREVIEW,
            reply_markup=markup(view.buttons) if last else None)
    if sent is not None:
        await services.tickets.draft_shown(context.actor.user_id, sent.message_id)


@handles_refusals
async def private_message(update: Update, context: GridhornContext) -> None:
    """Text or photo in private: an answer to a prompt, else a draft opinion."""
    message = update.effective_message
    if message is None:
        return
    text = message.text or message.caption or ""
    photo = message.photo[-1].file_id if message.photo else None
    if message.reply_to_message is not None:
        done = await context.services.tickets.answer_prompt(
            context.actor, message.chat.id, message.reply_to_message.message_id, text, photo)
        if done is not None:
            await _confirm(update, context, *done)
            return
    await context.services.tickets.add_to_draft(context.actor.user_id, text, photo)
    await show_draft(update, context)


async def opinion_in_group(update: Update, context: GridhornContext) -> None:
    """/opinion in a group: opinions are private (a reporter may be anonymous)."""
    await reply(update, context, "draft.private_only", bot=context.services.bot_username)


@handles_refusals
async def opinion_command(update: Update, context: GridhornContext) -> None:
    """/opinion [text]: start (or add to) a draft."""
    message = update.effective_message
    text = message.text.partition(" ")[2].strip() if message and message.text else ""
    if not text:
        if await context.services.tickets.draft(context.actor.user_id) is None:
            await reply(update, context, "draft.write_now")
            return
    else:
        await context.services.tickets.add_to_draft(context.actor.user_id, text, None)
    await show_draft(update, context)


@handles_refusals
async def group_reply(update: Update, context: GridhornContext) -> None:
    """In a staff or department chat: a reply to one of our prompts."""
    message = update.effective_message
    if message is None or message.reply_to_message is None:
        return
    done = await context.services.tickets.answer_prompt(
        context.actor, message.chat.id, message.reply_to_message.message_id,
        message.text or message.caption or "")
    if done is not None:
        await _confirm(update, context, *done)


async def _confirm(update: Update, context: GridhornContext, action: TicketAction,
                   ticket: Ticket) -> None:
    await reply(update, context, DONE[action], id=ticket.id)


@handles_refusals
async def draft_button(update: Update, context: GridhornContext) -> None:
    """Domain, Anonymous, Submit or Cancel on the draft card."""
    query = update.callback_query
    assert query is not None and query.data is not None and query.message is not None
    services = context.services
    user_id = context.actor.user_id
    parts = query.data.split(":")
    press = parts[1] if len(parts) > 1 else ""
    if press == views.DraftPress.SUBMIT:
        try:
            # SPEC §14: a first Submit shows the notice instead (nothing stored until Agree)
            ticket = await services.privacy.submit(user_id, query.message.message_id)
        except Refused as refusal:
            if refusal.key == "draft.join_first":
                await answer_query(update)
                await reply(update, context, "draft.join_first")
                return
            raise
        if ticket is None:
            await answer_query(update)
            await show_notice(update, context, query.message.message_id)
            return
        await answer_query(update, t(context.locale, "draft.submitted_short", id=ticket.id))
        return
    if press == views.DraftPress.CANCEL:
        await services.tickets.cancel_draft(user_id, query.message.message_id)
        await answer_query(update)
        await edit(query.message, t(context.locale, "draft.cancelled"))
        return
    if press == views.DraftPress.DOMAIN and len(parts) == 3:
        choice = parts[2]
    else:
        choice = views.DraftPress.ANONYMOUS if press == views.DraftPress.ANONYMOUS else ""
    flow = await services.tickets.draft_choice(user_id, query.message.message_id, choice)
    await answer_query(update)
    view = services.tickets.draft_view(context.user_locale, flow)
    if len(view.parts) == 1:
        await edit(query.message, view.parts[0], markup(view.buttons))
    else:  # a long draft: its text is unchanged, only the buttons show the choice
        await edit_markup(query.message, markup(view.buttons))


@handles_refusals
async def ticket_button(update: Update, context: GridhornContext) -> None:
    """Every button of a ticket card: `t:<code>:<ticket>[:<arg>]`."""
    query = update.callback_query
    assert query is not None and query.data is not None
    code, ticket_id, arg = pressed_on(update)
    action = views.action_of(code)
    tickets = context.services.tickets
    actor = context.actor
    locale = context.user_locale  # answers to a press are seen by the presser alone
    if action in ASSIGN_PRESSES:  # 点将 (SPEC §10)
        await assign_press(update, context, action, ticket_id, arg)
        return
    if action == TicketAction.ACKNOWLEDGE:
        ticket = await tickets.acknowledge(actor, ticket_id)
    elif action == TicketAction.ESCALATE:
        ticket = await tickets.escalate(actor, ticket_id)
    elif action == TicketAction.SET_URGENCY and arg is None:
        await tickets.ask(actor, ticket_id, action)
        await answer_query(update)
        await reply(update, context, "prompt.urgency", id=ticket_id,
                    markup=markup(views.urgency_buttons(locale, ticket_id)))
        return
    elif action == TicketAction.SET_URGENCY:
        ticket = await tickets.set_urgency(actor, ticket_id, arg or "")
        await answer_query(update, t(locale, DONE[action], id=ticket.id,
                                     urgency=views.urgency_label(locale, ticket.urgency)))
        return
    elif action == TicketAction.WHISTLE:
        whistled = await _whistle_picker(update, context, ticket_id, arg)
        if whistled is None:
            return
        ticket = whistled
    elif action == TicketAction.ACCEPT:
        ticket = await tickets.accept(actor, ticket_id)
    elif action in WORD_PROMPTS:
        await tickets.ask(actor, ticket_id, action)
        await answer_query(update)
        await _ask_for_words(update, context, ticket_id, action)
        return
    elif action == TicketAction.OFFER:
        ticket = await tickets.offer(actor, ticket_id)
    elif action == TicketAction.POST_TO_BUILDING:
        ticket = await tickets.post_to_building(actor, ticket_id)
    elif action == TicketAction.ME_TOO:
        count = await tickets.me_too(actor.user_id, ticket_id)
        await answer_query(update, t(locale, "done.me_too" if count else "done.me_too_again"))
        return
    elif action == TicketAction.TAKE:
        ticket = await tickets.take(actor, ticket_id)
    elif action == TicketAction.RATE_DEPARTMENT and arg and arg.isdigit():
        chat = update.effective_chat
        if query.message is None or chat is None:
            raise Refused("button.stale")
        await tickets.rate_department(actor, ticket_id, int(arg), chat.id,
                                      query.message.message_id)
        await answer_query(update, t(locale, DONE[action], id=ticket_id, stars=arg))
        await edit(query.message, t(locale, "whistle.rated", id=ticket_id,
                                    stars="⭐" * int(arg)))
        return
    elif action == TicketAction.RATE and arg and arg.isdigit():
        rated = await tickets.rate(actor.user_id, ticket_id, int(arg))
        await answer_query(update, t(locale, "intake.verdict_recorded", id=rated.id)
                           if rated.entered else t(locale, DONE[action], stars=arg))
        await drop_buttons(query.message)
        return
    else:
        raise Refused("button.stale")
    await answer_query(update, t(locale, DONE[action], id=ticket.id))


async def _whistle_picker(update: Update, context: GridhornContext, ticket_id: int,
                          arg: str | None) -> Ticket | None:
    """The whistle picker (SPEC §11): Whistle on a card opens it (the catalogue's categories,
    or the departments when there is no catalogue); a category shows its items, "Other" the
    departments (each step edits the picker); an item or a department whistles (returned)."""
    query = update.callback_query
    assert query is not None
    tickets = context.services.tickets
    actor = context.actor
    locale = context.locale  # the picker is read in the chat where it was opened
    if arg is not None and arg.startswith(views.WHISTLE_ITEM):
        ticket = await tickets.whistle(actor, ticket_id, item_code=arg[len(views.WHISTLE_ITEM):])
    elif arg is not None and arg not in (views.WHISTLE_OTHER, views.WHISTLE_BACK) and \
            not arg.startswith(views.WHISTLE_CATEGORY):
        ticket = await tickets.whistle(actor, ticket_id, arg)
    else:
        await _show_whistle_step(update, context, ticket_id, arg, locale)
        return None
    await drop_buttons(query.message)
    return ticket


async def _show_whistle_step(update: Update, context: GridhornContext, ticket_id: int,
                             arg: str | None, locale: str) -> None:
    query = update.callback_query
    assert query is not None
    tickets = context.services.tickets
    actor = context.actor
    if arg is not None and arg.startswith(views.WHISTLE_CATEGORY):
        menu = await tickets.whistle_menu(actor, ticket_id, arg[len(views.WHISTLE_CATEGORY):])
        text = t(locale, "whistle.pick_item", id=ticket_id, category=menu.category)
        rows = views.item_buttons(locale, ticket_id, menu.items, menu.departments)
    else:
        menu = await tickets.whistle_menu(actor, ticket_id)
        if menu.items and arg != views.WHISTLE_OTHER:
            text = t(locale, "whistle.pick_category", id=ticket_id)
            rows = views.category_buttons(locale, ticket_id, menu.items)
        else:
            ticket, departments = await tickets.departments(actor, ticket_id)
            text = t(locale, "prompt.whistle", id=ticket.id)
            rows = views.department_buttons(ticket.id, departments)
            if menu.items:  # "Other", from the categories
                rows += views.back_to_categories(locale, ticket.id)
    await answer_query(update)
    if arg is None:  # pressed on the card: the picker is a message of its own
        await reply_html(update, context, text, markup=markup(rows))
    else:
        await edit(query.message, text, markup(rows))


async def _ask_for_words(update: Update, context: GridhornContext, ticket_id: int,
                         action: TicketAction) -> None:
    """A selective ForceReply that mentions the person who pressed, in the chat of the press."""
    user = update.effective_user
    chat = update.effective_chat
    assert user is not None and chat is not None
    mention = f'<a href="tg://user?id={user.id}">{html.escape(user.first_name)}</a>'
    thread_id = thread_of(update)
    sent = await context.bot.send_message(
        chat.id, t(context.locale, WORD_PROMPTS[action], id=ticket_id, who=Markup(mention)),
        parse_mode=ParseMode.HTML, message_thread_id=thread_id,
        reply_markup=ForceReply(selective=True,
                                input_field_placeholder=f"#{ticket_id}"))
    await context.services.tickets.remember_prompt(chat.id, sent.message_id, user.id,
                                                   ticket_id, action)


@handles_refusals
async def my_tickets(update: Update, context: GridhornContext) -> None:
    """/my: the person's own tickets."""
    tickets = await context.services.tickets.my_tickets(context.actor.user_id)
    if not tickets:
        await reply(update, context, "my.none")
        return
    locale = context.locale
    lines = [t(locale, "my.title")]
    for ticket in tickets:
        lines.append(t(locale, "my.line", id=ticket.id,
                       domain=views.domain_label(locale, ticket.domain),
                       title=views.title_of(ticket),
                       state=views.status_label(locale, ticket.status)))
    await reply_html(update, context, "\n".join(lines))


#: the "More" button of /tickets: `tk:<page>[:<filter>,<filter>…]`
MORE_PREFIX = "tk"


@handles_refusals
async def open_tickets(update: Update, context: GridhornContext) -> None:
    """/tickets [overdue|mine|DOMAIN|CODE…]: open tickets in the staff member's scope,
    soonest deadline first, by pages of 10; privately each as its card with the viewer's
    buttons."""
    await _ticket_page(update, context, 0, tuple(command_args(update)))


@handles_refusals
async def more_tickets(update: Update, context: GridhornContext) -> None:
    """"More" under a page of /tickets: the next page, with the same filters."""
    query = update.callback_query
    assert query is not None
    parts = (query.data or "").split(":")
    if len(parts) < 2 or not parts[1].isdigit():
        raise Refused("button.stale")
    filters = tuple(f for f in parts[2].split(",") if f) if len(parts) > 2 else ()
    page = await context.services.tickets.open_tickets(context.actor, int(parts[1]), filters)
    await answer_query(update)
    await drop_buttons(query.message)
    await _show_page(update, context, page)


async def _ticket_page(update: Update, context: GridhornContext, page_number: int,
                       filters: tuple[str, ...]) -> None:
    page = await context.services.tickets.open_tickets(context.actor, page_number, filters)
    await _show_page(update, context, page)


async def _show_page(update: Update, context: GridhornContext, page: TicketPage) -> None:
    locale = context.locale
    if not page.tickets:
        await reply(update, context, "tickets.none_filtered" if page.filters else "tickets.none",
                    filters=" ".join(page.filters))
        return
    last = page.first + len(page.tickets) - 1
    title = t(locale, "tickets.page", first=page.first, last=last, total=page.total) + \
        (" · " + html.escape(" ".join(page.filters)) if page.filters else "")
    more = markup([[{"text": t(locale, "btn.more"), "callback_data":
                     f"{MORE_PREFIX}:{page.page + 1}:{','.join(page.filters)}"[:64]}]]) \
        if page.more else None
    chat = update.effective_chat
    if chat is not None and chat.type == "private":
        await reply_html(update, context, title)
        await _show_cards(update, context, page.tickets)
        if more is not None:
            await reply(update, context, "tickets.more_below", markup=more, last=last,
                        total=page.total)
        return
    lines = [title]
    tz = context.services.settings.tz
    for ticket in page.tickets:
        lines.append(t(locale, "tickets.line", id=ticket.id,
                       domain=views.domain_label(locale, ticket.domain),
                       title=views.title_of(ticket),
                       state=views.status_label(locale, ticket.status),
                       due=views.when(ticket.due_at, tz), me_too=ticket.me_too))
    await reply_html(update, context, "\n".join(lines), markup=more)


async def _show_cards(update: Update, context: GridhornContext, tickets: list[Ticket]) -> None:
    """Each ticket as its card with the viewer's own buttons, in this private chat; the cards
    become the tickets' live copies here (each later step edits them)."""
    services = context.services
    chat_id = context.actor.user_id
    shown = []
    for card in await services.tickets.card_views(context.actor, context.locale, tickets):
        for part in card.above:
            await context.bot.send_message(chat_id, part, parse_mode=ParseMode.HTML,
                                           link_preview_options=NO_PREVIEW)
        sent = await context.bot.send_message(
            chat_id, card.text, parse_mode=ParseMode.HTML, link_preview_options=NO_PREVIEW,
            reply_markup=markup(card.buttons))
        shown.append((card.ticket_id, sent.message_id, card.kind))
    await services.tickets.cards_shown(chat_id, shown)


@handles_refusals
async def one_ticket(update: Update, context: GridhornContext) -> None:
    """/ticket N: one ticket with its timeline; privately, staff get its card with their
    buttons, then the timeline."""
    services = context.services
    ticket, staff = await services.tickets.visible_ticket(
        context.actor, command_id(update, "ticket.usage"))
    chat = update.effective_chat
    if staff and chat is not None and chat.type == "private":
        await _show_cards(update, context, [ticket])
        await reply_html(update, context, await services.tickets.render_timeline(
            context.locale, context.actor, ticket, staff))
        return
    await reply_html(update, context, await services.tickets.render_ticket(
        context.locale, context.actor, ticket, staff))


def register(app: Application, group: int) -> None:
    private = filters.ChatType.PRIVATE
    app.add_handler(CommandHandler("opinion", opinion_command, filters=private), group=group)
    app.add_handler(CommandHandler("opinion", opinion_in_group, filters=~private), group=group)
    app.add_handler(CommandHandler("my", my_tickets), group=group)
    app.add_handler(CommandHandler("tickets", open_tickets), group=group)
    app.add_handler(CommandHandler("ticket", one_ticket), group=group)
    app.add_handler(CallbackQueryHandler(draft_button, pattern=rf"^{views.DRAFT_PREFIX}:"),
                    group=group)
    app.add_handler(CallbackQueryHandler(ticket_button, pattern=rf"^{views.PRESS_PREFIX}:"),
                    group=group)
    app.add_handler(CallbackQueryHandler(more_tickets, pattern=rf"^{MORE_PREFIX}:"),
                    group=group)
    app.add_handler(MessageHandler(private & (filters.TEXT | filters.PHOTO) & ~filters.COMMAND,
                                   private_message), group=group)
    app.add_handler(MessageHandler(filters.ChatType.GROUPS & filters.REPLY & ~filters.COMMAND,
                                   group_reply), group=group)
