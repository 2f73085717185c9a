"""An opinion before it is a ticket: the draft a resident writes in private, its card's
choices (domain, anonymous), and Submit, which makes ticket #N (SPEC §4)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot import logcontext
from bot.i18n import CatalogKey, duration, t
from bot.services import ticket_views as views
from bot.services.errors import Refused
from bot.services.outbox import Priority
from bot.services.ticket_base import TicketBase
from bot.services.ticket_refs import note_ref
from bot.services.ticket_states import TimelineEvent
from storage.inbox import current_update
from storage.models import DOMAINS, Draft, DueKind, Ticket, Urgency

MAX_PHOTOS = 10  # per opinion


@dataclass(frozen=True)
class DraftView:
    parts: list[str]
    buttons: views.Buttons


class TicketDrafts(TicketBase):
    async def draft(self, user_id: int) -> Draft | None:
        return await self.store.drafts.get(user_id)

    async def add_to_draft(self, user_id: int, text: str, photo_file_id: str | None) -> Draft:
        """Start a draft, or add a further message to the open one."""
        async with self.store.transaction():
            draft = await self.draft(user_id)
            data: dict[str, Any] = dict(draft.data) if draft else {
                "text": "", "photo": None, "domain": None, "anonymous": False}
            if text:
                data["text"] = f"{data['text']}\n{text}" if data["text"] else text
            if photo_file_id:
                photos = draft_photos(data)
                if photo_file_id not in photos and len(photos) < MAX_PHOTOS:
                    data["photos"] = [*photos, photo_file_id]
                data.pop("photo", None)
            data["card"] = None
            await self.store.drafts.set(user_id, data)
        return await self._require_draft(user_id)

    async def draft_shown(self, user_id: int, message_id: int) -> None:
        """Remember which message is the draft's card: buttons on older cards are stale."""
        async with self.store.transaction():
            draft = await self._require_draft(user_id)
            await self.store.drafts.set(user_id, {**draft.data, "card": message_id})

    async def draft_choice(self, user_id: int, message_id: int, choice: str) -> Draft:
        """A domain (or "unsure") or the anonymous toggle, pressed on the current draft card."""
        async with self.store.transaction():
            draft = await self._draft_for_card(user_id, message_id)
            data = dict(draft.data)
            if choice == views.DraftPress.ANONYMOUS:
                data["anonymous"] = not data.get("anonymous", False)
            elif choice == views.UNSURE:
                data["domain"] = None
            elif choice in DOMAINS:
                data["domain"] = choice
            else:
                raise Refused("button.stale")
            await self.store.drafts.set(user_id, data)
        return await self._require_draft(user_id)

    async def cancel_draft(self, user_id: int, message_id: int) -> None:
        async with self.store.transaction():
            await self._draft_for_card(user_id, message_id)
            await self.store.drafts.clear(user_id)

    def draft_view(self, locale: str, draft: Draft) -> DraftView:
        data = draft.data
        return DraftView(
            parts=views.draft_text(locale, data["text"], data.get("domain"),
                                   data.get("anonymous", False), bool(draft_photos(data))),
            buttons=views.draft_buttons(locale, data.get("domain"), data.get("anonymous", False)))

    async def _require_draft(self, user_id: int) -> Draft:
        draft = await self.draft(user_id)
        if draft is None:
            raise Refused("draft.none")
        return draft

    async def _draft_for_card(self, user_id: int, message_id: int) -> Draft:
        draft = await self._require_draft(user_id)
        if draft.data.get("card") != message_id:
            raise Refused("button.stale")
        return draft

    async def submit(self, user_id: int, message_id: int,
                     consent_at: float | None = None) -> Ticket:
        """Submit the draft: ticket #N and its receipt; the staff cards follow (backlog).
        `consent_at`: Agree under the privacy notice (SPEC §14), recorded in the same
        transaction."""
        person = await self.store.people.get(user_id)
        draft = await self._draft_for_card(user_id, message_id)
        if person is None or not person.building_code:
            raise Refused("draft.join_first")
        since = self.clock() - 3600
        if await self.store.tickets.count_since(user_id, since) >= self.settings.opinions_per_hour:
            raise Refused("draft.rate_limited", limit=self.settings.opinions_per_hour)
        chain = await self.store.map.ancestors(person.building_code)
        grid = next((u for u in chain if u.kind == "grid"), None)
        community = next((u for u in chain if u.kind == "community"), None)
        if grid is None or community is None:
            raise Refused("draft.join_first")
        photos = draft_photos(draft.data)
        async with self.store.transaction():
            if consent_at is not None:
                await self.store.privacy.consent(user_id, consent_at)
            ticket = await self._open_ticket(
                reporter_id=user_id, anonymous=bool(draft.data.get("anonymous")),
                building_code=person.building_code, grid_code=grid.code,
                community_code=community.code, domain=draft.data.get("domain"),
                text=draft.data["text"] or "", photos=photos, urgency=Urgency.ROUTINE,
                receipt="ticket.receipt", locale=self.people.locale_of(person))
            if ticket is None:  # this Submit was handled before a restart
                raise Refused("draft.already_submitted")
            await self.store.drafts.clear(user_id)
            # the draft card loses its buttons; the receipt is what the resident waits for
            await self.outbox.edit(user_id, message_id,
                                   t(self.people.locale_of(person), "draft.submitted",
                                     id=ticket.id),
                                   priority=Priority.CARD, ref=note_ref(ticket.id))
        self.changed(ticket.remind_at)
        return ticket

    async def _open_ticket(self, receipt: CatalogKey, *, reporter_id: int,
                           building_code: str, grid_code: str, community_code: str,
                           domain: str | None, text: str, photos: list[str], urgency: Urgency,
                           locale: str, anonymous: bool = False,
                           **source: Any) -> Ticket | None:
        """Inside a transaction: ticket #N (one statement), its first timeline row and its
        receipt to the reporter (or, for a case staff entered, to whoever entered it); the
        staff cards are flagged for the backlog. The path of a resident's Submit and of a
        staff intake alike. None when the update already made a ticket (a replay) or the
        store refused it (`source`: a staff intake's source, reference and caller)."""
        mark = current_update.get()
        now = self.clock()
        span = self.span(urgency, DueKind.ACKNOWLEDGE)
        ticket = await self.store.tickets.create(
            reporter_id=reporter_id, anonymous=anonymous, building_code=building_code,
            grid_code=grid_code, community_code=community_code, domain=domain, text=text,
            photo_file_id=photos[0] if photos else None, more_photos=tuple(photos[1:]),
            source_update_id=mark.update_id if mark else None, cards_pending=True,
            urgency=urgency, **source, **self._due_fields(DueKind.ACKNOWLEDGE, now, span))
        if ticket is None:
            return None
        logcontext.tag(ticket_id=ticket.id)
        await self.store.tickets.add_event(ticket.id, reporter_id, TimelineEvent.CREATED)
        await self.outbox.send(
            reporter_id, t(locale, receipt, id=ticket.id, hours=duration(locale, span),
                           **views.source_values(locale, ticket)),
            priority=Priority.PERSONAL, ref=note_ref(ticket.id))
        # the staff cards follow once the people being answered have their answers
        self.store.db.after_commit(self.cards_waiting)
        return ticket


def draft_photos(data: dict[str, Any]) -> list[str]:
    """A draft's photos (drafts stored before several were kept have one, as "photo")."""
    return list(data.get("photos") or ([data["photo"]] if data.get("photo") else []))

