"""AB岗, a backup for every post (SPEC §11): `/backup`, `/away`, `/back`, and the one place
that decides who receives what is addressed to a staff member personally (`deliver_to`).

While a holder is away, their ticket cards, reminders, private whistle cards and horn prompts
go to their backup, marked "for …" (`for_line`); with no backup named, to the staff of the
next level up. The date given to `/away` passing ends it as `/back` does (`deliver_to` stops
routing at once; the daily run tells the holder). The returning holder is told what was
done meanwhile: the timeline rows of whoever stood in, since the absence began.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from bot.i18n import escape, t
from bot.services.access import STAFF_ROLES, Actor
from bot.services.audit import AuditAction
from bot.services.base import Service
from bot.services.errors import Refused
from bot.services.outbox import Priority
from bot.services.ticket_states import TimelineEvent
from bot.services.ticket_views import EVENT_KEY
from storage.models import Person, RoleGrant
from storage.store import Store

#: roles that stand in for a holder whose post has no backup (department liaisons have no
#: level above them in the map)
_UPPER_ROLES = tuple(r for r in STAFF_ROLES if r != "department_liaison")


@dataclass(frozen=True)
class Delivery:
    """Where one personal item goes: `recipient`, for `on_behalf_of` (None: the holder)."""

    recipient: int
    on_behalf_of: Person | None = None
    #: True: the next level's staff, as no backup was named (a staff chat may do instead)
    fallback: bool = False


async def deliver_to(store: Store, user_id: int, now: float) -> list[Delivery]:
    """Who receives what is addressed to `user_id` personally: the holder, or while they
    are away (and the date given has not passed), their backup — or, with none named, the
    staff of the nearest level above their post that has any."""
    stand_in = await store.backups.get(user_id)
    if stand_in is None or stand_in.away_since is None or (
            stand_in.away_until is not None and stand_in.away_until <= now):
        return [Delivery(user_id)]
    holder = await store.people.get(user_id) or Person(user_id=user_id)
    if stand_in.backup_id is not None:
        return [Delivery(stand_in.backup_id, holder)]
    upper = await next_level(store, user_id)
    if not upper:
        return [Delivery(user_id)]
    return [Delivery(u, holder, fallback=True) for u in upper]


async def next_level(store: Store, user_id: int) -> list[int]:
    """The staff of the nearest unit above the holder's posts that has any."""
    found: set[int] = set()
    for grant in await _posts(store, user_id):
        chain = await store.map.ancestors(grant.unit_code)
        for unit in chain[1:]:
            holders = {g.user_id for g in await store.people.holders(_UPPER_ROLES, [unit.code])
                       if g.user_id != user_id}
            if holders:
                found |= holders
                break
    return sorted(found)


async def _posts(store: Store, user_id: int) -> list[RoleGrant]:
    return [g for g in await store.people.roles(user_id) if g.role in STAFF_ROLES]


def for_line(locale: str, on_behalf_of: Person | None) -> str:
    """The mark on an item received for someone away (`代 张三 / for Zhang San`), or ""."""
    if on_behalf_of is None:
        return ""
    return t(locale, "backup.for", name=on_behalf_of.display_name) + "\n"


class BackupService(Service):
    async def name_backup(self, actor: Actor, backup_id: int,
                          holder_id: int | None = None) -> Person:
        """`/backup USER_ID [FOR_USER_ID]`: name who stands in for a holder (oneself, or a
        holder below one's own post). Returns the backup."""
        holder_id = actor.user_id if holder_id is None else holder_id
        posts = await _posts(self.store, holder_id)
        if holder_id == actor.user_id:
            if not posts:
                raise Refused("backup.not_staff")
        else:
            if await self.store.people.get(holder_id) is None or not posts:
                raise Refused("backup.unknown_holder", id=holder_id)
            if not actor.superadmin and not await self._above(actor, posts):
                raise Refused("backup.not_above", id=holder_id)
        if backup_id == holder_id:
            raise Refused("backup.self")
        backup = await self.store.people.get(backup_id)
        if backup is None:
            raise Refused("backup.unknown", id=backup_id)
        if not await self._suitable(backup_id, posts):
            raise Refused("backup.unsuitable", name=backup.display_name)
        async with self.store.transaction():
            await self.store.backups.set_backup(holder_id, backup_id)
            await self.people.audit.record(actor.user_id, AuditAction.BACKUP,
                                           posts[0].unit_code, holder_id,
                                           f"{backup.display_name} ({backup_id})")
        return backup

    async def _above(self, actor: Actor, posts: list[RoleGrant]) -> bool:
        """Whether the actor holds a staff role on a unit strictly above one of the posts."""
        mine = {g.unit_code for g in actor.grants if g.role in _UPPER_ROLES}
        for post in posts:
            above = [u.code for u in (await self.store.map.ancestors(post.unit_code))[1:]]
            if mine & set(above):
                return True
        return False

    async def _suitable(self, backup_id: int, posts: list[RoleGrant]) -> bool:
        """The same role on the same unit, or any staff role on a unit above (SPEC §11)."""
        theirs = await _posts(self.store, backup_id)
        for post in posts:
            above = {u.code for u in (await self.store.map.ancestors(post.unit_code))[1:]}
            for grant in theirs:
                if (grant.role == post.role and grant.unit_code == post.unit_code) or \
                        grant.unit_code in above:
                    return True
        return False

    def _until(self, text: str | None) -> float | None:
        """The end of `/away`'s date (the day included), or None for "until /back"."""
        if not text:
            return None
        try:
            day = date.fromisoformat(text.strip())
        except ValueError:
            raise Refused("away.malformed", text=text) from None
        tz = self.settings.tz
        today = datetime.fromtimestamp(self.clock(), tz).date()
        if day < today:
            raise Refused("away.past", date=day.isoformat())
        return datetime.combine(day + timedelta(days=1), time(), tz).timestamp()

    async def away(self, actor: Actor, until_text: str | None = None) -> tuple[float | None,
                                                                              Person | None]:
        """`/away [UNTIL]`: the holder away until the date (None: until `/back`). Returns
        the end and the backup (None: the next level's staff stand in)."""
        posts = await _posts(self.store, actor.user_id)
        if not posts:
            raise Refused("backup.not_staff")
        until = self._until(until_text)
        stand_in = await self.store.backups.get(actor.user_id)
        backup_id = stand_in.backup_id if stand_in is not None else None
        async with self.store.transaction():
            await self.store.backups.set_away(actor.user_id, self.clock(), until)
            await self.people.audit.record(actor.user_id, AuditAction.AWAY, posts[0].unit_code,
                                           actor.user_id, until_text or "/back")
        return until, (await self.store.people.get(backup_id) if backup_id else None)

    async def back(self, actor: Actor) -> str:
        """`/back`: the absence ends; returns the summary of what was done meanwhile, in
        the holder's language."""
        summary = await self._end(actor.user_id, actor.user_id, tell=False)
        if summary is None:
            raise Refused("back.not_away")
        return summary

    async def end_expired(self) -> int:
        """The daily run: absences whose date passed end, each holder told privately."""
        ended = 0
        for stand_in in await self.store.backups.expired(self.clock()):
            if await self._end(stand_in.user_id, None, tell=True) is not None:
                ended += 1
        return ended

    async def _end(self, holder_id: int, actor_id: int | None, tell: bool) -> str | None:
        stand_in = await self.store.backups.get(holder_id)
        if stand_in is None or stand_in.away_since is None:
            return None
        stood_in = [stand_in.backup_id] if stand_in.backup_id is not None else \
            await next_level(self.store, holder_id)
        locale = await self.people.locale_for(holder_id)
        summary = await self._summary(locale, stood_in, stand_in.away_since)
        posts = await _posts(self.store, holder_id)
        async with self.store.transaction():
            if not await self.store.backups.end_away(holder_id):
                return None
            await self.people.audit.record(actor_id, AuditAction.BACK,
                                           posts[0].unit_code if posts else "", holder_id)
            if tell:
                await self.outbox.send(holder_id, summary, priority=Priority.PERSONAL)
        return summary

    async def _summary(self, locale: str, stood_in: list[int], since: float) -> str:
        """Each ticket and what the stand-ins did on it, from the timeline."""
        lines: list[str] = []
        for user_id in stood_in:
            person = await self.store.people.get(user_id)
            name = person.display_name if person else str(user_id)
            for event in await self.store.tickets.events_by(user_id, since):
                kind = t(locale, EVENT_KEY[TimelineEvent(event.kind)])
                lines.append(f"• #{event.ticket_id} {escape(kind)} · {escape(name)}")
        if not lines:
            return t(locale, "back.nothing")
        return t(locale, "back.summary") + "\n" + "\n".join(lines)
