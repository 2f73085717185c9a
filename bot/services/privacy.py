"""Personal data (个人信息保护法, SPEC §14): the notice and consent before a person's first
Submit, `/mydata` (everything kept about them, as JSON and as text), `/forget` and
`gridhorn people erase` (erasure), and the retention of raw updates.

What `/mydata` holds is a list of sections (`EXPORT_SECTIONS`), one per kind of record; a
feature that keeps something of its own about a person (a vote, a meeting, the shop's
ledger) adds its `ExportSection` there, and its erasure to `ExportSection.erase` (run in the
erasure's transaction before the core erasure, while the person's row is still there)."""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from html import escape
from typing import Any

from bot.i18n import CatalogKey, t
from bot.priority import Priority
from bot.services.access import Access
from bot.services.errors import Refused
from bot.services.outbox import Outbox, file_field
from bot.services.people import PeopleService
from bot.services.tickets import TicketService
from bot.settings import Settings
from storage.models import Ticket
from storage.store import Store

#: what a section collects: JSON-ready rows (or one mapping), read from the store
Collect = Callable[[Store, int], Awaitable[Any]]
#: what a section erases of its own (inside the erasure's transaction): the person's id and
#: the erased id their common records move to
Erase = Callable[[Store, int, int], Awaitable[None]]


async def _no_erase(store: Store, user_id: int, erased_id: int) -> None:
    return None


@dataclass(frozen=True)
class ExportSection:
    """One kind of record kept about a person: its name in the JSON file, its title in the
    text file, how it is read and (if the core erasure does not cover it) erased: moved to
    the erased id given (what stays counted) or deleted, before the core erasure."""

    name: str
    title: CatalogKey
    collect: Collect
    erase: Erase = field(default=_no_erase)


def _sql(query: str, repeat: int = 1) -> Collect:
    async def collect(store: Store, user_id: int) -> Any:
        return await store.privacy.rows(query, [user_id] * repeat)
    return collect


async def _profile(store: Store, user_id: int) -> Any:
    rows = await store.privacy.rows(
        """SELECT user_id, first_name, last_name, username, language_code, locale,
                  building_code, skills, availability, hours, points, created_at,
                  consented_at FROM people WHERE user_id = ?""", [user_id])
    return rows[0] if rows else {}


async def _tickets(store: Store, user_id: int) -> Any:
    tickets = await store.privacy.rows(
        """SELECT id, anonymous, building_code, domain, text, photo_file_id, more_photos,
                  status, level, urgency, department_code, rating, rating_comment,
                  result_note, me_too, created_at, updated_at, resolved_at
           FROM tickets WHERE reporter_id = ? ORDER BY id""", [user_id])
    for ticket in tickets:
        ticket["timeline"] = await store.privacy.rows(
            "SELECT at, kind, note FROM ticket_events WHERE ticket_id = ? ORDER BY id",
            [ticket["id"]])
    return tickets


async def _ledger(store: Store, user_id: int) -> Any:
    lines = await store.privacy.rows(
        """SELECT l.at, l.delta, l.kind, l.horn_id, h.title AS horn_title, l.redemption_id
           FROM point_ledger l LEFT JOIN horns h ON h.id = l.horn_id
           WHERE l.user_id = ? ORDER BY l.id""", [user_id])
    return {"balance": await store.shop.balance(user_id), "lines": lines}


async def _meetings(store: Store, user_id: int) -> Any:
    return {
        "replies": await store.privacy.rows(
            """SELECT r.meeting_id, m.kind, m.title, m.starts_at, r.attend, r.unit_code, r.at
               FROM meeting_replies r JOIN meetings m ON m.id = r.meeting_id
               WHERE r.user_id = ? ORDER BY r.at""", [user_id]),
        "signins": await store.privacy.rows(
            """SELECT s.meeting_id, m.kind, m.title, m.starts_at, s.unit_code, s.at, s.late
               FROM meeting_signins s JOIN meetings m ON m.id = s.meeting_id
               WHERE s.user_id = ? ORDER BY s.at""", [user_id]),
        "organised": await store.privacy.rows(
            """SELECT id, kind, unit_code, title, place, agenda, starts_at, ends_at, minutes,
                      created_at FROM meetings WHERE organiser_id = ? ORDER BY starts_at""",
            [user_id]),
    }


async def _erase_shop(store: Store, user_id: int, erased_id: int) -> None:
    await store.shop.erase_person(user_id, erased_id)


async def _erase_meetings(store: Store, user_id: int, erased_id: int) -> None:
    await store.meetings.erase_person(user_id, erased_id)


async def _erase_visits(store: Store, user_id: int, erased_id: int) -> None:
    await store.checkpoints.erase_person(user_id, erased_id)


async def _erase_votes(store: Store, user_id: int, erased_id: int) -> None:
    await store.votes.erase_person(user_id, erased_id)


#: Every section of `/mydata`, in order. Other features append theirs (votes, meetings,
#: the shop's ledger) — the one place that knows what is kept about a person.
EXPORT_SECTIONS: tuple[ExportSection, ...] = (
    ExportSection("profile", "mydata.profile", _profile),
    ExportSection("roles", "mydata.roles", _sql(
        "SELECT role, unit_code, granted_at FROM roles WHERE user_id = ? "
        "ORDER BY role, unit_code")),
    ExportSection("tickets", "mydata.tickets", _tickets),
    ExportSection("me_too", "mydata.me_too", _sql(
        "SELECT ticket_id, at FROM me_too WHERE user_id = ? ORDER BY at")),
    ExportSection("checkins", "mydata.checkins", _sql(
        """SELECT c.horn_id, h.title, h.starts_at, c.state, c.at, c.present, c.hours,
                  c.points FROM horn_checkins c JOIN horns h ON h.id = c.horn_id
           WHERE c.person_id = ? ORDER BY c.at""")),
    ExportSection("hours", "mydata.hours", _sql(
        """SELECT c.horn_id, h.title, h.confirmed_at, c.hours, c.points
           FROM horn_checkins c JOIN horns h ON h.id = c.horn_id
           WHERE c.person_id = ? AND c.present = 1 ORDER BY h.confirmed_at""")),
    # the time bank's shop (SPEC §13): the balance and its ledger, the codes of /redeem
    ExportSection("ledger", "mydata.ledger", _ledger, _erase_shop),
    ExportSection("redemptions", "mydata.redemptions", _sql(
        """SELECT r.id, r.code, r.points, r.status, r.created_at, r.expires_at,
                  p.name AS partner, r.spent_at
           FROM redemptions r LEFT JOIN partners p ON p.code = r.partner_code
           WHERE r.user_id = ? ORDER BY r.id""")),
    # meetings (SPEC §12): answers to invitations, sign-ins, meetings organised
    ExportSection("meetings", "mydata.meetings", _meetings, _erase_meetings),
    # patrols (SPEC §6) and checkpoint visits (SPEC §13)
    ExportSection("patrols", "mydata.patrols", _sql(
        "SELECT id, grid_code, at, location, note FROM patrols WHERE user_id = ? "
        "ORDER BY at")),
    ExportSection("checkpoint_visits", "mydata.checkpoint_visits", _sql(
        """SELECT v.id, v.checkpoint_code, c.name, c.matter, v.at, v.period, v.lat, v.lon,
                  v.distance_m, v.note, v.photo_file_id
           FROM checkpoint_visits v JOIN checkpoints c ON c.code = v.checkpoint_code
           WHERE v.user_id = ? ORDER BY v.at"""), _erase_visits),
    # the residents' quarterly vote (SPEC §10): each ballot stays counted, by no one
    ExportSection("votes", "mydata.votes", _sql(
        """SELECT v.period, v.building_code, v.unit_code, b.stars, b.at
           FROM unit_ballots b JOIN unit_votes v ON v.id = b.vote_id
           WHERE b.user_id = ? ORDER BY b.at"""), _erase_votes),
    ExportSection("draft", "mydata.draft", _sql(
        "SELECT data, updated_at FROM drafts WHERE user_id = ?")),
    ExportSection("audit", "mydata.audit", _sql(
        """SELECT at, action, unit_code, detail FROM audit_log
           WHERE subject_id = ? OR actor_id = ? ORDER BY id""", repeat=2)),
)


@dataclass(frozen=True)
class Export:
    """A person's data: the JSON document and the readable text beside it."""

    json_bytes: bytes
    text_bytes: bytes
    filename: str


@dataclass(frozen=True)
class Agreed:
    """Agree was pressed: whether it was new, and the ticket it submitted (if any)."""

    new: bool
    ticket: Ticket | None


class PrivacyService:
    def __init__(self, store: Store, access: Access, people: PeopleService, outbox: Outbox,
                 settings: Settings, tickets: TicketService,
                 clock: Callable[[], float] = time.time,
                 sections: Sequence[ExportSection] = EXPORT_SECTIONS) -> None:
        self.store = store
        self.access = access
        self.people = people
        self.outbox = outbox
        self.settings = settings
        self.tickets = tickets
        self.clock = clock
        self.sections = tuple(sections)

    # consent

    async def consented(self, user_id: int) -> bool:
        return await self.store.privacy.consented(user_id)

    async def submit(self, user_id: int, message_id: int) -> Ticket | None:
        """Submit on the draft card: the ticket, or None when the notice must come first
        (nothing is stored then: the draft stays as it is). One who has not joined a
        building is asked to join first, as before."""
        person = await self.store.people.get(user_id)
        if person is not None and person.building_code and person.consented_at is None:
            await self.tickets._draft_for_card(user_id, message_id)  # a stale card says so
            return None
        return await self.tickets.submit(user_id, message_id)

    async def agree(self, user_id: int, draft_card: int | None) -> Agreed:
        """Agree under the notice: consent recorded and, pressed under a Submit's notice,
        that draft submitted at once, in one transaction (from `/privacy`: nothing more)."""
        if draft_card is not None and await self.tickets.draft(user_id) is not None:
            # the consent is written in the Submit's own transaction
            new = not await self.consented(user_id)
            try:
                return Agreed(new, await self.tickets.submit(user_id, draft_card,
                                                             consent_at=self.clock()))
            except Refused:  # not submitted (a stale card, the hourly limit): agreed still
                async with self.store.transaction():
                    await self.store.privacy.consent(user_id, self.clock())
                raise
        async with self.store.transaction():
            return Agreed(await self.store.privacy.consent(user_id, self.clock()), None)

    # /mydata

    async def export(self, user_id: int) -> Export:
        now = self.clock()
        locale = await self.people.locale_for(user_id)
        data: dict[str, Any] = {}
        for section in self.sections:
            data[section.name] = _readable(await section.collect(self.store, user_id),
                                           self.settings)
        document = {"user_id": user_id, "exported_at": _iso(now, self.settings),
                    "sections": data}
        lines = [t(locale, "mydata.text_title", user=user_id,
                   at=_iso(now, self.settings)), ""]
        for section in self.sections:
            lines.append(f"== {t(locale, section.title)} ==")
            lines.extend(_text_lines(data[section.name]) or [t(locale, "mydata.none")])
            lines.append("")
        stamp = datetime.fromtimestamp(now, self.settings.tz).strftime("%Y%m%d")
        return Export(json.dumps(document, ensure_ascii=False, indent=2).encode(),
                      "\n".join(lines).encode(), f"gridhorn-mydata-{user_id}-{stamp}")

    async def send_export(self, user_id: int) -> None:
        """`/mydata`: the two files, sent to the person through the outbox."""
        export = await self.export(user_id)
        locale = await self.people.locale_for(user_id)
        async with self.store.transaction():
            for data, suffix, key in ((export.json_bytes, "json", "mydata.json_caption"),
                                      (export.text_bytes, "txt", "mydata.text_caption")):
                await self.outbox.call(user_id, "sendDocument", {
                    "document": file_field(data, f"{export.filename}.{suffix}"),
                    "caption": t(locale, key), "parse_mode": "HTML"},
                    priority=Priority.PERSONAL)

    # /forget, gridhorn people erase

    async def check_erasable(self, user_id: int) -> None:
        """Staff (and superadmins) must have their roles revoked first."""
        actor = await self.access.actor(user_id)
        if actor.superadmin:
            raise Refused("forget.superadmin")
        if actor.is_staff:
            raise Refused("forget.staff_first")

    async def erase(self, user_id: int) -> int:
        """Erase a person as SPEC §14 says, in one transaction; every copy of the tickets
        they reported is edited to show the reporter as erased. Returns the erased id."""
        await self.check_erasable(user_id)
        person = await self.store.people.get(user_id)
        if person is None or person.erased:
            raise Refused("forget.nobody", user=user_id)
        async with self.store.transaction():
            await self.check_erasable(user_id)  # again, inside: a grant may have come
            words = await self._words_of(user_id)
            words += [w for w in (person.first_name, person.last_name, person.username,
                                  person.display_name) if w]
            for word in list(words):
                words.append(escape(word, quote=False))
            ticket_ids = [r["id"] for r in await self.store.privacy.rows(
                "SELECT id FROM tickets WHERE reporter_id = ?", [user_id])]
            erased_id = await self.store.privacy.new_erased_id(user_id, self.clock())
            for section in self.sections:  # first: their rows may need the person's row
                await section.erase(self.store, user_id, erased_id)
            await self.store.privacy.erase(user_id, self.clock(), words, tomb=erased_id)
            for ticket_id in ticket_ids:
                ticket = await self.store.tickets.get(ticket_id)
                if ticket is not None:
                    await self.tickets.refresh_cards(ticket)
        self.people.forget(user_id)
        return erased_id

    async def _words_of(self, user_id: int) -> list[str]:
        """The person's own words kept in the store (their tickets' texts, their notes and
        comments), each whole and line by line, to find the outbox's copies of them."""
        texts = [r["text"] for r in await self.store.privacy.rows(
            "SELECT text FROM tickets WHERE reporter_id = ?", [user_id])]
        texts += [r["note"] for r in await self.store.privacy.rows(
            "SELECT note FROM ticket_events WHERE actor_id = ? AND note IS NOT NULL",
            [user_id])]
        texts += [r["rating_comment"] for r in await self.store.privacy.rows(
            "SELECT rating_comment FROM tickets WHERE reporter_id = ? "
            "AND rating_comment IS NOT NULL", [user_id])]
        words: list[str] = []
        for text in texts:
            if not text:
                continue
            words.append(text)
            words.extend(line.strip() for line in text.splitlines() if len(line.strip()) >= 4)
        return words


_TIME_KEYS = ("at", "starts_at", "confirmed_at")


def _iso(seconds: float, settings: Settings) -> str:
    return datetime.fromtimestamp(seconds, settings.tz).isoformat(timespec="seconds")


def _readable(value: Any, settings: Settings) -> Any:
    """Times kept as seconds since the epoch shown as local ISO times."""
    if isinstance(value, list):
        return [_readable(v, settings) for v in value]
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if (key in _TIME_KEYS or key.endswith("_at")) and isinstance(item, int | float) \
                    and not isinstance(item, bool):
                out[key] = _iso(float(item), settings)
            else:
                out[key] = _readable(item, settings)
        return out
    return value


def _text_lines(value: Any, indent: str = "") -> list[str]:
    if isinstance(value, list):
        lines: list[str] = []
        for index, item in enumerate(value, 1):
            if isinstance(item, dict | list):
                lines.append(f"{indent}{index}.")
                lines.extend(_text_lines(item, indent + "   "))
            else:
                lines.append(f"{indent}{index}. {item}")
        return lines
    if isinstance(value, dict):
        lines = []
        for key, item in value.items():
            if isinstance(item, dict | list):
                if item:
                    lines.append(f"{indent}{key}:")
                    lines.extend(_text_lines(item, indent + "   "))
            elif item not in (None, ""):
                lines.append(f"{indent}{key}: {item}")
        return lines
    return [f"{indent}{value}"] if value not in (None, "") else []

