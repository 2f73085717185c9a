"""How a ticket looks: card texts and their buttons, in the viewer's language.

Buttons are plain dicts for the outbox; callback data is `t:<action>:<ticket>[:<arg>]` and is
checked again (permission and state) on every press.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from bot.i18n import escape, t
from bot.textsplit import visible_length
from storage.models import DOMAINS, Person, Ticket, TicketEvent, Unit

DOMAIN_EMOJI = {"red": "🔴", "orange": "🟠", "gold": "🟡", "green": "🟢", "cyan": "🩵",
                "blue": "🔵", "purple": "🟣", None: "⚪"}
Buttons = list[list[dict[str, str]]]


def button(label: str, data: str) -> dict[str, str]:
    return {"text": label, "callback_data": data}


def domain_label(locale: str, domain: str | None) -> str:
    key = f"domain.{domain or 'unsure'}"
    return f"{DOMAIN_EMOJI[domain]} {t(locale, key)}"


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


def reporter_label(locale: str, ticket: Ticket, reporter: Person | None,
                   reveal: bool = False) -> str:
    """The reporter as staff see them: anonymous stays anonymous (superadmins excepted)."""
    if ticket.anonymous and not reveal:
        return t(locale, "ticket.anonymous_reporter")
    name = reporter.display_name if reporter is not None else str(ticket.reporter_id)
    if ticket.anonymous:
        return t(locale, "ticket.anonymous_revealed", name=name)
    return name


def header(locale: str, ticket: Ticket, building: Unit | None, tz: ZoneInfo,
           reporter: str | None, department: Unit | None = None,
           taker: str | None = None, note_inline: bool = True) -> str:
    lines = [t(locale, "ticket.card_title", id=ticket.id,
               domain=domain_label(locale, ticket.domain),
               building=f"{building.name} ({building.code})" if building else ticket.building_code)]
    lines.append(t(locale, "ticket.card_state", state=t(locale, f"status.{ticket.status}"),
                   urgency=t(locale, f"urgency.{ticket.urgency}"),
                   level=t(locale, f"level.{ticket.level}")))
    if ticket.due_at is not None and ticket.is_open:
        lines.append(t(locale, "ticket.card_due", due=t(locale, f"due.{ticket.due_kind}"),
                       at=when(ticket.due_at, tz)))
    if department is not None:
        lines.append(t(locale, "ticket.card_department", department=department.name))
    if reporter is not None:
        lines.append(t(locale, "ticket.card_reporter", reporter=reporter))
    if ticket.me_too:
        lines.append(t(locale, "ticket.me_too_count", count=ticket.me_too))
    if ticket.service_request:
        lines.append(t(locale, "ticket.card_taker", taker=taker or "")
                     if ticket.assignee_id else t(locale, "ticket.card_offered"))
    if ticket.result_note and ticket.status in ("resolved", "rated"):
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
              taker: str | None = None, whole: bool = False) -> tuple[str, bool]:
    """The card, and whether the text is in it (else it is sent before the card). `whole`:
    the text in any case (`/ticket N`, a reply that is split when long)."""
    note_inline = ticket.result_note is None or \
        visible_length(escape(ticket.result_note)) <= NOTE_INLINE_MAX
    head = header(locale, ticket, building, tz, reporter, department, taker,
                  note_inline=note_inline or whole)
    photo = "\n" + t(locale, "ticket.has_photo") if ticket.photos else ""
    if whole or text_fits(ticket):
        return f"{head}\n\n{escape(ticket.text)}{photo}", True
    return f"{head}\n\n{t(locale, 'ticket.text_above')}{photo}", False


def staff_buttons(locale: str, ticket: Ticket, kind: str) -> Buttons:
    """The actions of a card. Who may press is checked on the press."""
    if not ticket.is_open:
        return []
    n = ticket.id
    rows: Buttons = []
    if kind == "department":
        if ticket.status == "whistled":
            rows.append([button(t(locale, "btn.accept"), f"t:acc:{n}"),
                         button(t(locale, "btn.decline"), f"t:dec:{n}")])
        elif ticket.status == "accepted":
            rows.append([button(t(locale, "btn.resolve"), f"t:res:{n}")])
        return rows
    first = []
    if ticket.status == "new":
        first.append(button(t(locale, "btn.acknowledge"), f"t:ack:{n}"))
    first.append(button(t(locale, "btn.urgency"), f"t:urg:{n}"))
    rows.append(first)
    second = [button(t(locale, "btn.reply"), f"t:rep:{n}")]
    if kind == "head" and ticket.level == "building":
        second.append(button(t(locale, "btn.escalate"), f"t:esc:{n}"))
    if kind == "staff" and ticket.status not in ("whistled", "accepted"):
        second.append(button(t(locale, "btn.whistle"), f"t:wh:{n}"))
    rows.append(second)
    third = []
    if ticket.status not in ("whistled", "accepted") or kind == "staff":
        third.append(button(t(locale, "btn.resolve"), f"t:res:{n}"))
    third += [button(t(locale, "btn.reject"), f"t:rej:{n}"),
              button(t(locale, "btn.merge"), f"t:mrg:{n}")]
    rows.append(third)
    fourth = [button(t(locale, "btn.post_building"), f"t:post:{n}")]
    if kind == "staff" and not ticket.service_request:
        fourth.append(button(t(locale, "btn.offer"), f"t:off:{n}"))
    rows.append(fourth)
    return rows


def draft_text(locale: str, text: str, domain: str | None, anonymous: bool,
               has_photo: bool) -> list[str]:
    """The draft shown back: header then the whole text (split, never cut)."""
    from bot.textsplit import split_html

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
        rows.append([button(label(c), f"dr:dom:{c or 'unsure'}") for c in codes[i:i + 2]])
    rows.append([button(("☑️ " if anonymous else "⬜ ") + t(locale, "btn.anonymous"), "dr:anon")])
    rows.append([button(t(locale, "btn.submit"), "dr:submit"),
                 button(t(locale, "btn.cancel"), "dr:cancel")])
    return rows


def rating_buttons(ticket_id: int) -> Buttons:
    return [[button(f"⭐ {n}", f"t:rate:{ticket_id}:{n}") for n in range(1, 6)]]


def timeline(locale: str, events: list[TicketEvent], tz: ZoneInfo,
             names: dict[int, str]) -> str:
    lines = []
    for event in events:
        who = names.get(event.actor_id or 0, "")
        note = f" — {escape(event.note)}" if event.note else ""
        lines.append(f"• {when(event.at, tz)} {escape(t(locale, f'event.{event.kind}'))}"
                     f"{' · ' + escape(who) if who else ''}{note}")
    return "\n".join(lines)
