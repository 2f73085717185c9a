"""People: who someone is, their language, invites and join links (SPEC §3)."""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bot.i18n import LOCALES, locale_from_language_code
from bot.services.access import (
    INVITE_ROLES,
    PARTNER_CLERK,
    UNIT_ROLES,
    Access,
    Actor,
    invitable_roles,
)
from bot.services.audit import AuditAction, AuditLog
from bot.services.errors import Refused
from bot.settings import Settings
from storage.models import PARTY_MEMBER, DualReport, Flow, Person, Unit
from storage.store import Store

INVITE_TTL = timedelta(days=7)
#: prompts a reporter answers (relayed staff questions, the rating comment): not cancelled
REPORTER_PROMPTS = ("answer", "comment")
_PAYLOAD = re.compile(r"^(?P<kind>[ij])-(?P<token>[A-Za-z0-9_-]{16,40})$")


@dataclass(frozen=True)
class TelegramUser:
    """What an update says of its sender (no Telegram types below the handlers)."""

    user_id: int
    first_name: str
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = None


@dataclass(frozen=True)
class Redeemed:
    kind: str              # "role" or "join"
    role: str | None
    unit: Unit


@dataclass(frozen=True)
class Profile:
    building: Unit | None
    roles: list[tuple[str, Unit]]
    party_member: bool
    skills: tuple[str, ...]
    availability: str | None
    hours: float
    points: int            # the balance of the points ledger (earned less spent or held)
    #: member units (SPEC §10): the unit they belong to, the community they live in, and
    #: their 双报到 there (as /report_in recorded it)
    work_unit: Unit | None = None
    home_community: Unit | None = None
    reported: DualReport | None = None
    #: posts to claim they hold (or wait for): "#id title", with True while waiting
    posts: tuple[tuple[str, bool], ...] = ()


class PeopleService:
    def __init__(self, store: Store, access: Access, settings: Settings,
                 audit: AuditLog | None = None, new_token: Callable[[], str] | None = None
                 ) -> None:
        self.store = store
        #: the secret of an invite or join link (the playground's is a seeded sequence, so
        #: that a replayed transcript shows the same links)
        self.new_token = new_token or (lambda: secrets.token_urlsafe(18))
        self.access = access
        self.settings = settings
        #: every role change is recorded here (SPEC §11), in the change's transaction
        self.audit = audit or AuditLog(store)
        self._known: dict[int, tuple[object, ...]] = {}

    async def touch(self, user: TelegramUser, private: bool) -> None:
        """Record a sender; writes only when something changed (hot path)."""
        key = (user.first_name, user.last_name, user.username, user.language_code)
        known = self._known.get(user.user_id)
        if known is not None and known[:4] == key and (known[4] or not private):
            return
        if known is None:  # not seen since start-up: the store may already hold all of it
            person = await self.store.people.get(user.user_id)
            if person is not None:
                stored = (person.first_name, person.last_name, person.username,
                          person.language_code)
                self._known[user.user_id] = (*stored, person.started)
                if stored == key and (person.started or not private):
                    return
        async with self.store.transaction(marks_update=False):  # the handler's work marks it
            await self.store.people.touch(user.user_id, user.first_name, user.last_name,
                                          user.username, user.language_code, private)
        person = await self.store.people.get(user.user_id)
        self._known[user.user_id] = (*key, bool(person and person.started))

    async def identify(self, user: TelegramUser, private: bool) -> tuple[Actor, str]:
        """Every update's sender: recorded, and who they are and what language they read
        (their row read once; hot path)."""
        await self.touch(user, private)
        person = await self.store.people.get(user.user_id)
        if person is None and user.user_id in self._known:
            # erased meanwhile (SPEC §14; by another replica or `gridhorn people erase`)
            self.forget(user.user_id)
            await self.touch(user, private)
            person = await self.store.people.get(user.user_id)
        return (await self.access.actor(user.user_id, person),
                self.locale_of(person, user.language_code))

    async def set_blocked(self, user_id: int, blocked: bool) -> None:
        """A person blocked the bot (or unblocked it): nothing is sent to them meanwhile."""
        await self.store.people.set_blocked(user_id, blocked)
        self.forget(user_id)

    async def flow(self, user_id: int) -> Flow | None:
        """The guided flow a person is in, if any."""
        return await self.store.flows.get(user_id)

    async def leave_flow(self, user_id: int, private: bool = True) -> bool:
        """/cancel: leave the guided flow and any ticket step waiting for this person's words
        (a note, a reason, a reply); with neither, and sent in private, discard the opinion
        draft. Whether anything was left. (A reporter's answers to staff stay possible.)"""
        async with self.store.transaction():
            left = await self.store.flows.clear(user_id)
            left = await self.store.tickets.drop_prompts_of(user_id, REPORTER_PROMPTS) > 0 \
                or left
            return left or (private and await self.store.drafts.clear(user_id))

    def forget(self, user_id: int) -> None:
        self._known.pop(user_id, None)

    def locale_of(self, person: Person | None, language_code: str | None = None) -> str:
        if person is not None and person.locale in LOCALES:
            return person.locale
        code = language_code if language_code is not None else (
            person.language_code if person else None)
        return locale_from_language_code(code, self.settings.default_locale)

    async def locale_for(self, user_id: int) -> str:
        return self.locale_of(await self.store.people.get(user_id))

    async def locale_in(self, chat_id: int) -> str:
        """The language to write in a chat: a person's own, or the group's (default)."""
        if chat_id > 0:
            return await self.locale_for(chat_id)
        chat = await self.store.map.chat(chat_id)
        return chat.locale if chat is not None and chat.locale else self.settings.default_locale

    async def set_locale(self, user_id: int, locale: str) -> None:
        if locale not in LOCALES:
            raise Refused("lang.unknown")
        async with self.store.transaction():
            await self.store.people.set_locale(user_id, locale)

    # invites

    async def create_invite(self, actor: Actor, role: str, code: str) -> tuple[str, Unit]:
        """A one-time invite payload for `/start`, valid seven days, and its unit."""
        if role not in INVITE_ROLES:
            raise Refused("invite.unknown_role",
                          roles=", ".join(invitable_roles(actor)) or "—")
        if role == PARTNER_CLERK:
            return await self._invite_clerk(actor, code)
        unit = await self.store.map.get(code)
        if unit is None:
            raise Refused("map.unknown_code", code=code)
        if not await self.access.may_invite(actor, role, unit):
            raise Refused("invite.not_allowed", role=role, code=unit.code)
        token = self.new_token()
        async with self.store.transaction():
            await self.store.people.create_invite(
                token, "role", role, unit.code, actor.user_id, datetime.now(UTC) + INVITE_TTL)
        return f"i-{token}", unit

    async def _invite_clerk(self, actor: Actor, partner_code: str) -> tuple[str, Unit]:
        """A partner shop's clerk (SPEC §13): the role is held on the partner's community
        (whose staff invite), the partner is named in the invite. The unit returned is the
        partner as it is shown (its name and code)."""
        partner = await self.store.shop.partner(partner_code)
        community = await self.store.map.get(partner.community_code) if partner else None
        if partner is None or community is None:
            raise Refused("map.unknown_code", code=partner_code)
        if not await self.access.may_invite(actor, PARTNER_CLERK, community):
            raise Refused("invite.not_allowed", role=PARTNER_CLERK, code=partner.code)
        token = self.new_token()
        async with self.store.transaction():
            await self.store.people.create_invite(
                token, "role", PARTNER_CLERK, community.code, actor.user_id,
                datetime.now(UTC) + INVITE_TTL)
            await self.store.shop.set_invite_partner(token, partner.code)
        return f"i-{token}", Unit(code=partner.code, kind="community", name=partner.name)

    async def join_payload(self, building_code: str) -> str:
        """The building's standing join link payload (made once, then reused)."""
        link = await self.store.people.join_link(building_code)
        if link is None:
            async with self.store.transaction():
                link = await self.store.people.join_link(building_code)
                if link is None:
                    await self.store.people.create_invite(
                        self.new_token(), "join", None, building_code, None, None)
            link = await self.store.people.join_link(building_code)
        assert link is not None
        return f"j-{link.token}"

    async def redeem(self, user_id: int, payload: str) -> Redeemed:
        """Redeem a `/start` payload; a bad one changes nothing."""
        match = _PAYLOAD.match(payload)
        if match is None:
            raise Refused("start.bad_link")
        invite = await self.store.people.invite(match.group("token"))
        expected = "role" if match.group("kind") == "i" else "join"
        if invite is None or invite.kind != expected:
            raise Refused("start.bad_link")
        unit = await self.store.map.get(invite.unit_code)
        if unit is None:
            raise Refused("start.bad_link")
        if invite.kind == "join" and unit.kind == "member":
            # a member unit's join link (SPEC §10) makes a unit member, not a resident
            async with self.store.transaction():
                await self._check_one_unit(user_id, unit)
                if await self.store.people.grant(user_id, "unit_member", unit.code, None):
                    await self.audit.record(None, AuditAction.GRANT, unit.code, user_id,
                                            "unit_member")
            return Redeemed("join", "unit_member", unit)
        if invite.kind == "join":
            async with self.store.transaction():
                await self.store.people.set_building(user_id, unit.code)
            return Redeemed("join", None, unit)
        if invite.used_by is not None:
            raise Refused("start.used_link")
        if invite.expires_at is not None and invite.expires_at < datetime.now(UTC):
            raise Refused("start.expired_link")
        async with self.store.transaction():
            if invite.role in UNIT_ROLES:
                await self._check_one_unit(user_id, unit)
            if not await self.store.people.use_invite(invite.token, user_id):
                raise Refused("start.used_link")
            role = invite.role or ""
            if await self.store.people.grant(user_id, role, unit.code, invite.created_by):
                await self.audit.record(invite.created_by, AuditAction.GRANT, unit.code,
                                        user_id, role)
            partner_code = await self.store.shop.invite_partner(invite.token) \
                if role == PARTNER_CLERK else None
            partner = await self.store.shop.partner(partner_code) if partner_code else None
            if partner is not None:
                await self.store.shop.add_clerk(user_id, partner.code, invite.created_by,
                                                time.time())
                unit = Unit(code=partner.code, kind="community", name=partner.name)
        return Redeemed("role", invite.role, unit)

    async def _check_one_unit(self, user_id: int, unit: Unit) -> None:
        """A person belongs to one member unit at most (SPEC §10): refused while they hold a
        role on another."""
        for grant in await self.store.people.roles(user_id):
            if grant.role in UNIT_ROLES and grant.unit_code != unit.code:
                other = await self.store.map.get(grant.unit_code)
                raise Refused("unit.other_unit", unit=other.name if other else grant.unit_code)

    async def profile(self, user_id: int) -> Profile:
        person = await self.store.people.get(user_id)
        grants = await self.store.people.roles(user_id)
        roles: list[tuple[str, Unit]] = []
        for grant in grants:
            if grant.role == PARTY_MEMBER:
                continue
            unit = await self.store.map.get(grant.unit_code)
            if unit is not None:
                roles.append((grant.role, unit))
        building = home = None
        if person is not None and person.building_code:
            chain = await self.store.map.ancestors(person.building_code)
            building = chain[0] if chain else None
            home = next((u for u in chain if u.kind == "community"), None)
        work = next((unit for role, unit in roles if role in UNIT_ROLES), None)
        held = []
        for holder in await self.store.units.held_by(user_id):
            post = await self.store.units.post(holder.post_id)
            if post is not None:
                held.append((f"#{post.id} {post.title}", holder.state == "waiting"))
        return Profile(building=building, roles=roles, work_unit=work, home_community=home,
                       posts=tuple(held),
                       reported=await self.store.units.dual_report(user_id) if work else None,
                       party_member=any(g.role == PARTY_MEMBER for g in grants),
                       skills=person.skills if person else (),
                       availability=person.availability if person else None,
                       hours=person.hours if person else 0,
                       points=await self.store.shop.balance(user_id))
