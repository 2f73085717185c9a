"""How a ticket looks: card texts and their buttons, in the viewer's language.

Buttons are plain dicts for the outbox; callback data is `t:<code>:<ticket>[:<arg>]`, the
code of an action taken from `ACTION_CODES` (the one place that knows them), and is checked
again (permission and state) on every press.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from enum import StrEnum
from zoneinfo import ZoneInfo

from bot import labels
from bot.i18n import Markup, escape, t
from bot.services.ticket_states import TicketAction, TimelineEvent
from bot.textsplit import split_html, visible_length
from storage.models import (
    DOMAINS,
    DueKind,
    Person,
    Ticket,
    TicketEvent,
    TicketLevel,
    TicketSource,
    TicketStatus,
    Unit,
    Urgency,
    WhistleItem,
)

DOMAIN_EMOJI = {"red": "🔴", "orange": "🟠", "gold": "🟡", "green": "🟢", "cyan": "🩵",
                "blue": "🔵", "purple": "🟣", None: "⚪"}
Buttons = list[list[dict[str, str]]]


class CardKind(StrEnum):
    """Who a copy of a ticket is for; the values are what the store holds."""

    HEAD = "head"              # a building head, privately
    STAFF = "staff"            # the grid's (or community's) staff chat
    DEPARTMENT = "department"  # a department the ticket was whistled to
    BUILDING = "building"      # the building chat, for "Me too"
    OFFER = "offer"            # a service request's "Take it"


#: An action's short code in callback data (64 bytes at most) and in a prompt's row. Both
#: the buttons and the reading of a press go through this table.
ACTION_CODES: dict[TicketAction, str] = {
    TicketAction.ACKNOWLEDGE: "ack", TicketAction.SET_URGENCY: "urg",
    TicketAction.ESCALATE: "esc", TicketAction.WHISTLE: "wh", TicketAction.ACCEPT: "acc",
    TicketAction.DECLINE: "dec", TicketAction.RESOLVE: "res", TicketAction.REJECT: "rej",
    TicketAction.MERGE: "mrg", TicketAction.REPLY: "rep", TicketAction.OFFER: "off",
    TicketAction.POST_TO_BUILDING: "post", TicketAction.ME_TOO: "me",
    TicketAction.TAKE: "take", TicketAction.RATE: "rate", TicketAction.ANSWER: "answer",
    TicketAction.COMMENT: "comment", TicketAction.RATE_DEPARTMENT: "wr",
    TicketAction.COMMENT_DEPARTMENT: "wcom", TicketAction.ASSIGN: "asg",
    TicketAction.ASSIGN_ACCEPT: "asa", TicketAction.ASSIGN_DECLINE: "asd",
    TicketAction.PROGRESS: "prg",
}
_ACTION_OF_CODE = {code: action for action, code in ACTION_CODES.items()}
PRESS_PREFIX = "t"
#: Telegram takes callback data of 1–64 bytes
CALLBACK_DATA_MAX = 64

# The whistle picker (SPEC §11): `t:wh:<ticket>` opens it (the catalogue's categories, or the
# departments when there is no catalogue); its buttons' argument says what was picked. Codes
# are letters, digits, '_' and '-' only, so these marks never read as a department's code.
WHISTLE_OTHER = "*"        # "Other": the free department picker
WHISTLE_BACK = "."         # back to the categories
WHISTLE_CATEGORY = "c."    # c.<category key>: that category's items
WHISTLE_ITEM = "i."        # i.<item code>: whistle with that item


class DraftPress(StrEnum):
    """The draft card's buttons: `dr:dom:<domain or unsure>`, `dr:anon`, `dr:submit`,
    `dr:cancel`."""

    DOMAIN = "dom"
    ANONYMOUS = "anon"
    SUBMIT = "submit"
    CANCEL = "cancel"


DRAFT_PREFIX = "dr"
UNSURE = "unsure"  # the domain "Not sure"

LEVEL_KEY: dict[TicketLevel, str] = {
    TicketLevel.BUILDING: "level.building", TicketLevel.GRID: "level.grid",
    TicketLevel.COMMUNITY: "level.community",
}
DUE_KEY: dict[DueKind, str] = {
    DueKind.ACKNOWLEDGE: "due.ack", DueKind.ACCEPT: "due.accept", DueKind.RESOLVE: "due.resolve",
}
EVENT_KEY: dict[TimelineEvent, str] = {
    TimelineEvent.CREATED: "event.created", TimelineEvent.ACKNOWLEDGED: "event.acknowledged",
    TimelineEvent.URGENCY: "event.urgency", TimelineEvent.ESCALATED: "event.escalated",
    TimelineEvent.WHISTLED: "event.whistled", TimelineEvent.ACCEPTED: "event.accepted",
    TimelineEvent.DECLINED: "event.declined", TimelineEvent.RESOLVED: "event.resolved",
    TimelineEvent.REJECTED: "event.rejected", TimelineEvent.MERGED: "event.merged",
    TimelineEvent.REPLIED: "event.replied",
    TimelineEvent.REPORTER_ANSWERED: "event.reporter_answered",
    TimelineEvent.OFFERED: "event.offered",
    TimelineEvent.POSTED_TO_BUILDING: "event.posted_to_building",
    TimelineEvent.TAKEN: "event.taken", TimelineEvent.RATED: "event.rated",
    TimelineEvent.REOPENED: "event.reopened", TimelineEvent.COMMENTED: "event.commented",
    TimelineEvent.OVERDUE: "event.overdue",
    TimelineEvent.DEPARTMENT_RATED: "event.department_rated",
    TimelineEvent.DEPARTMENT_COMMENTED: "event.department_commented",
    TimelineEvent.RESOURCE: "event.resource",
    TimelineEvent.ASSIGNED: "event.assigned",
    TimelineEvent.ASSIGN_DECLINED: "event.assign_declined",
    TimelineEvent.PROGRESS: "event.progress",
}


def press_data(action: TicketAction, ticket_id: int, arg: str | int | None = None) -> str:
    """A ticket button's callback data (a bug, ValueError, if Telegram would refuse it)."""
    data = f"{PRESS_PREFIX}:{ACTION_CODES[action]}:{ticket_id}"
    data = data if arg is None else f"{data}:{arg}"
    if len(data.encode()) > CALLBACK_DATA_MAX:
        raise ValueError(f"callback data over {CALLBACK_DATA_MAX} bytes: {data!r}")
    return data


def action_of(code: str) -> TicketAction | None:
    """The action a code of callback data or of a prompt's row stands for (None: no action,
    a stale or forged press)."""
    return _ACTION_OF_CODE.get(code)


def button(label: str, data: str) -> dict[str, str]:
    return {"text": label, "callback_data": data}


def press(label: str, action: TicketAction, ticket_id: int,
          arg: str | int | None = None) -> dict[str, str]:
    return button(label, press_data(action, ticket_id, arg))


def domain_label(locale: str, domain: str | None) -> str:
    return f"{DOMAIN_EMOJI[domain]} {t(locale, labels.DOMAIN[domain])}"


def status_label(locale: str, status: TicketStatus) -> str:
    return t(locale, labels.STATUS[status])


def urgency_label(locale: str, urgency: Urgency) -> str:
    return t(locale, labels.URGENCY[urgency])


def when(moment: float | None, tz: ZoneInfo) -> str:
    if moment is None:
        return "—"
    return datetime.fromtimestamp(moment, tz).strftime("%Y-%m-%d %H:%M")


def title_of(ticket: Ticket, length: int = 40) -> str:
    first = " ".join(ticket.text.split())
    return first if len(first) <= length else first[: length - 1] + "…"


# A card's header stays well under 1,000 characters (names, state, deadline, a short result
# note: a longer one is pointed to), so the text shown with it may take the rest.
TEXT_INLINE_MAX = 3000
NOTE_INLINE_MAX = 600


def topic_name(ticket: Ticket) -> str:
    """A forum topic's name (1–128 characters); never the reporter's identity."""
    return f"#{ticket.id} {DOMAIN_EMOJI[ticket.domain]} {title_of(ticket, 100)}"[:128]


def source_label(locale: str, ticket: Ticket) -> str:
    """Where a case came from, as its card shows it (`📞 12345 #A2025-0113`)."""
    label = t(locale, labels.SOURCE[ticket.source])
    return f"{label} #{ticket.source_ref}" if ticket.source_ref else label


def source_values(locale: str, ticket: Ticket) -> dict[str, str]:
    """The `source` value of a text about a case staff entered (none for a resident's)."""
    return {"source": source_label(locale, ticket)} if ticket.entered else {}


def caller_label(locale: str, ticket: Ticket) -> str:
    """The caller of a case staff entered: staff-only (their cards and exports)."""
    caller = " ".join(p for p in (ticket.caller_name, ticket.caller_phone) if p)
    return caller or t(locale, "intake.no_caller")


def reporter_label(locale: str, ticket: Ticket, reporter: Person | None,
                   reveal: bool = False) -> str:
    """The reporter as staff see them: anonymous stays anonymous (superadmins excepted); a
    case staff entered names its caller and who entered it."""
    if ticket.entered:
        staff = reporter.display_name if reporter is not None else str(ticket.reporter_id)
        # already HTML (its values escaped): the card does not escape it again
        return Markup(t(locale, "intake.reporter", caller=caller_label(locale, ticket),
                        staff=staff))
    if ticket.anonymous and not reveal:
        return t(locale, "ticket.anonymous_reporter")
    if reporter is not None and reporter.erased:  # SPEC §14: their name is gone
        return t(locale, "privacy.erased")
    name = reporter.display_name if reporter is not None else str(ticket.reporter_id)
    if ticket.anonymous:
        return t(locale, "ticket.anonymous_revealed", name=name)
    return name


def header(locale: str, ticket: Ticket, building: Unit | None, tz: ZoneInfo,
           reporter: str | None, department: Unit | None = None,
           taker: str | None = None, note_inline: bool = True,
           item: WhistleItem | None = None) -> str:
    lines = [t(locale, "ticket.card_title", id=ticket.id,
               domain=domain_label(locale, ticket.domain),
               building=f"{building.name} ({building.code})" if building else ticket.building_code)]
    lines.append(t(locale, "ticket.card_state", state=status_label(locale, ticket.status),
                   urgency=urgency_label(locale, ticket.urgency),
                   level=t(locale, LEVEL_KEY[ticket.level])))
    if ticket.due_at is not None and ticket.due_kind is not None and ticket.is_open:
        lines.append(t(locale, "ticket.card_due", due=t(locale, DUE_KEY[ticket.due_kind]),
                       at=when(ticket.due_at, tz)))
    if ticket.source != TicketSource.RESIDENT:
        lines.append(t(locale, "intake.card_source", source=source_label(locale, ticket)))
    if department is not None:
        lines.append(t(locale, "ticket.card_department", department=department.name))
    if item is not None and ticket.whistle_item == item.code:
        lines.append(t(locale, "whistle.card_item", category=item.category, item=item.name))
    if reporter is not None:
        lines.append(t(locale, "ticket.card_reporter", reporter=reporter))
    if ticket.me_too:
        lines.append(t(locale, "ticket.me_too_count", count=ticket.me_too))
    if ticket.service_request or ticket.assignee_id:  # taken, or assigned (点将, §10)
        lines.append(t(locale, "ticket.card_taker", taker=taker or "")
                     if ticket.assignee_id else t(locale, "ticket.card_offered"))
    if ticket.result_note and ticket.status in (TicketStatus.RESOLVED, TicketStatus.RATED):
        lines.append(t(locale, "ticket.card_result", note=ticket.result_note) if note_inline
                     else t(locale, "ticket.card_result_elsewhere", id=ticket.id))
    if ticket.rating:
        lines.append(t(locale, "ticket.card_rating", stars="⭐" * ticket.rating))
    if ticket.merged_into:
        lines.append(t(locale, "ticket.card_merged", target=ticket.merged_into))
    return "\n".join(lines)


def text_fits(ticket: Ticket) -> bool:
    """Whether a card or post shows the ticket's text itself, else the text goes before it
    as a message of its own. Decided by the text alone, which never changes, so that later
    edits of a card (a longer header) never drop a text that was not sent above."""
    return visible_length(escape(ticket.text)) <= TEXT_INLINE_MAX


def card_text(locale: str, ticket: Ticket, building: Unit | None, tz: ZoneInfo,
              reporter: str | None, department: Unit | None = None,
              taker: str | None = None, whole: bool = False,
              item: WhistleItem | None = None) -> tuple[str, bool]:
    """The card, and whether the text is in it (else it is sent before the card). `whole`:
    the text in any case (`/ticket N`, a reply that is split when long)."""
    note_inline = ticket.result_note is None or \
        visible_length(escape(ticket.result_note)) <= NOTE_INLINE_MAX
    head = header(locale, ticket, building, tz, reporter, department, taker,
                  note_inline=note_inline or whole, item=item)
    photo = "\n" + t(locale, "ticket.has_photo") if ticket.photos else ""
    if whole or text_fits(ticket):
        return f"{head}\n\n{escape(ticket.text)}{photo}", True
    return f"{head}\n\n{t(locale, 'ticket.text_above')}{photo}", False


def staff_buttons(locale: str, ticket: Ticket, kind: CardKind) -> Buttons:
    """The actions of a card. Who may press is checked on the press."""
    if not ticket.is_open:
        return []
    n = ticket.id
    whistled = ticket.status in (TicketStatus.WHISTLED, TicketStatus.ACCEPTED)
    rows: Buttons = []
    if kind == CardKind.DEPARTMENT:
        if ticket.status == TicketStatus.WHISTLED:
            rows.append([press(t(locale, "btn.accept"), TicketAction.ACCEPT, n),
                         press(t(locale, "btn.decline"), TicketAction.DECLINE, n)])
        elif ticket.status == TicketStatus.ACCEPTED:
            rows.append([press(t(locale, "btn.resolve"), TicketAction.RESOLVE, n)])
        return rows
    first = []
    if ticket.status == TicketStatus.NEW:
        first.append(press(t(locale, "btn.acknowledge"), TicketAction.ACKNOWLEDGE, n))
    first.append(press(t(locale, "btn.urgency"), TicketAction.SET_URGENCY, n))
    rows.append(first)
    second = [press(t(locale, "btn.reply"), TicketAction.REPLY, n)]
    if kind == CardKind.HEAD and ticket.level == TicketLevel.BUILDING:
        second.append(press(t(locale, "btn.escalate"), TicketAction.ESCALATE, n))
    if kind == CardKind.STAFF and not whistled:
        second.append(press(t(locale, "btn.whistle"), TicketAction.WHISTLE, n))
    rows.append(second)
    third = []
    if not whistled or kind == CardKind.STAFF:
        third.append(press(t(locale, "btn.resolve"), TicketAction.RESOLVE, n))
    third += [press(t(locale, "btn.reject"), TicketAction.REJECT, n),
              press(t(locale, "btn.merge"), TicketAction.MERGE, n)]
    rows.append(third)
    fourth = [press(t(locale, "btn.post_building"), TicketAction.POST_TO_BUILDING, n)]
    if kind == CardKind.STAFF and not ticket.service_request:
        fourth.append(press(t(locale, "btn.offer"), TicketAction.OFFER, n))
    if kind == CardKind.STAFF and not ticket.assignee_id:  # 点将 (SPEC §10)
        fourth.append(press(t(locale, "assign.btn_assign"), TicketAction.ASSIGN, n))
    rows.append(fourth)
    return rows


def me_too_buttons(locale: str, ticket: Ticket) -> Buttons:
    """The building post's one button, with the count so far."""
    return [[press(t(locale, "btn.me_too", count=ticket.me_too), TicketAction.ME_TOO,
                   ticket.id)]]


def take_buttons(locale: str, ticket: Ticket) -> Buttons:
    return [[press(t(locale, "btn.take"), TicketAction.TAKE, ticket.id)]]


def urgency_buttons(locale: str, ticket_id: int) -> Buttons:
    return [[press(urgency_label(locale, u), TicketAction.SET_URGENCY, ticket_id, u)
             for u in Urgency]]


def department_buttons(ticket_id: int, departments: list[Unit]) -> Buttons:
    return [[press(f"📣 {d.name}", TicketAction.WHISTLE, ticket_id, d.code)]
            for d in departments]


def category_key(category: str) -> str:
    """A catalogue category in callback data: 8 hex digits of its name (a name may be long;
    the key stays the same as long as the name does)."""
    return hashlib.blake2s(category.encode(), digest_size=4).hexdigest()


def categories(items: list[WhistleItem]) -> list[tuple[str, list[WhistleItem]]]:
    """The catalogue's categories in the order they first appear, each with its items."""
    grouped: dict[str, list[WhistleItem]] = {}
    for item in items:
        grouped.setdefault(item.category, []).append(item)
    return list(grouped.items())


def category_buttons(locale: str, ticket_id: int, items: list[WhistleItem]) -> Buttons:
    """The picker's first step: a category per row, then "Other" (any department)."""
    rows: Buttons = [[press(f"📂 {name} ({len(members)})", TicketAction.WHISTLE, ticket_id,
                            WHISTLE_CATEGORY + category_key(name))]
                     for name, members in categories(items)]
    rows.append([press(t(locale, "whistle.other"), TicketAction.WHISTLE, ticket_id,
                       WHISTLE_OTHER)])
    return rows


def item_buttons(locale: str, ticket_id: int, items: list[WhistleItem],
                 departments: dict[str, str]) -> Buttons:
    """The picker's second step: the items of one category, each naming its department."""
    rows: Buttons = [[press(f"📣 {item.name} → {departments.get(item.department_code, '')}",
                            TicketAction.WHISTLE, ticket_id, WHISTLE_ITEM + item.code)]
                     for item in items]
    return rows + back_to_categories(locale, ticket_id)


def back_to_categories(locale: str, ticket_id: int) -> Buttons:
    """The picker's way back from a category's items or from "Other" to the categories."""
    return [[press(t(locale, "whistle.back"), TicketAction.WHISTLE, ticket_id, WHISTLE_BACK)]]


def whistle_rating_buttons(ticket_id: int) -> Buttons:
    """评价: the whistler's one tap on the department's work."""
    return [[press(f"⭐ {n}", TicketAction.RATE_DEPARTMENT, ticket_id, n) for n in range(1, 6)]]


def draft_text(locale: str, text: str, domain: str | None, anonymous: bool,
               has_photo: bool) -> list[str]:
    """The draft shown back: header then the whole text (split, never cut)."""
    head = t(locale, "draft.header", domain=domain_label(locale, domain) if domain else
             t(locale, "draft.no_domain"),
             anonymous=t(locale, "draft.anonymous_on" if anonymous else "draft.anonymous_off"))
    photo = "\n" + t(locale, "ticket.has_photo") if has_photo else ""
    return split_html(f"{head}\n\n{escape(text)}{photo}")


def draft_buttons(locale: str, domain: str | None, anonymous: bool) -> Buttons:
    def label(code: str | None) -> str:
        mark = "✅ " if code == domain else ""
        return mark + domain_label(locale, code)

    rows: Buttons = []
    codes: list[str | None] = [*DOMAINS, None]
    for i in range(0, len(codes), 2):
        rows.append([button(label(c), f"{DRAFT_PREFIX}:{DraftPress.DOMAIN}:{c or UNSURE}")
                     for c in codes[i:i + 2]])
    rows.append([button(("☑️ " if anonymous else "⬜ ") + t(locale, "btn.anonymous"),
                        f"{DRAFT_PREFIX}:{DraftPress.ANONYMOUS}")])
    rows.append([button(t(locale, "btn.submit"), f"{DRAFT_PREFIX}:{DraftPress.SUBMIT}"),
                 button(t(locale, "btn.cancel"), f"{DRAFT_PREFIX}:{DraftPress.CANCEL}")])
    return rows


def rating_buttons(ticket_id: int) -> Buttons:
    return [[press(f"⭐ {n}", TicketAction.RATE, ticket_id, n) for n in range(1, 6)]]


#: 回访: the caller's verdict on a case staff entered, as the stars it counts for
VERDICTS = (("intake.verdict_satisfied", 5), ("intake.verdict_mostly", 3),
            ("intake.verdict_dissatisfied", 1))


def verdict_buttons(locale: str, ticket_id: int) -> Buttons:
    """The caller's verdict, recorded by who entered the case: a rating of 5, 3 or 1 stars
    (the same press as a resident's stars)."""
    return [[press(t(locale, key), TicketAction.RATE, ticket_id, stars)
             for key, stars in VERDICTS]]


def timeline(locale: str, events: list[TicketEvent], tz: ZoneInfo,
             names: dict[int, str]) -> str:
    lines = []
    for event in events:
        who = names.get(event.actor_id or 0, "")
        note = f" — {escape(event.note)}" if event.note else ""
        kind = t(locale, EVENT_KEY[TimelineEvent(event.kind)])
        lines.append(f"• {when(event.at, tz)} {escape(kind)}"
                     f"{' · ' + escape(who) if who else ''}{note}")
    return "\n".join(lines)
