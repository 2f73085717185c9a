"""Posts to claim (认领岗位, SPEC §10): community or grid staff publish standing posts with
slots (`/posts new UNIT_CODE SLOTS TITLE…`); they are posted to the bound chats under the unit
and sent to the contacts of the community's member units, with "Claim". A contact claims for
the unit, a volunteer or party member for themselves, until the slots are full; then a
waiting list. "Release" frees a slot and moves the first waiting up. Each month every holder
is asked "Still serving?" (a scheduled job, once per period); seven days of silence release
the slot and tell the staff who published it (the daily job, once per day).
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.i18n import t
from bot.services.access import Action, Actor
from bot.services.base import Service
from bot.services.errors import Refused
from bot.services.outbox import Priority
from bot.services.ticket_views import Buttons, button
from storage.models import PARTY_MEMBER, Post, PostHolder, Unit

POST_PREFIX = "po"
POST_PATTERN = rf"^{POST_PREFIX}:"
MAX_SLOTS = 1000
SILENCE = 7 * 86400           # no answer to "Still serving?" this long: the slot is released
HOLDING, WAITING, RELEASED = "holding", "waiting", "released"


def post_data(action: str, post_id: int) -> str:
    """`po:c|r|y:<post>`: claim, release, still serving."""
    return f"{POST_PREFIX}:{action}:{post_id}"


def read_post_press(data: str) -> tuple[str, int]:
    parts = data.split(":")
    if len(parts) != 3 or parts[0] != POST_PREFIX or parts[1] not in ("c", "r", "y") or \
            not parts[2].isdecimal():
        raise Refused("button.stale")
    return parts[1], int(parts[2])


@dataclass(frozen=True)
class Claimed:
    """The answer to a Claim: holding, or waiting at `position`."""

    post: Post
    state: str
    position: int = 0


@dataclass(frozen=True)
class PostLine:
    post: Post
    held: int
    mine: PostHolder | None


class PostService(Service):
    def post_text(self, locale: str, post: Post, unit: Unit | None) -> str:
        return t(locale, "post.text", id=post.id, title=post.title, slots=post.slots,
                 unit=f"{unit.name} ({unit.code})" if unit else post.unit_code)

    async def create(self, actor: Actor, code: str, slots_text: str, title: str) -> Post:
        """`/posts new UNIT_CODE SLOTS TITLE…`: publish a post over a community or a grid."""
        unit = await self.store.map.get(code)
        if unit is None:
            raise Refused("map.unknown_code", code=code[:30])
        if unit.kind not in ("community", "grid"):
            raise Refused("post.bad_unit", code=unit.code)
        if not await self.access.can(actor, Action.POSTS, unit.code):
            raise Refused("post.not_allowed", code=unit.code)
        if not slots_text.isdecimal() or not 1 <= int(slots_text) <= MAX_SLOTS:
            raise Refused("post.bad_slots", text=slots_text[:20], most=MAX_SLOTS)
        title = " ".join(title.split())
        if not title or len(title) > 100:
            raise Refused("post.bad_title")
        chain = await self.store.map.ancestors(unit.code)
        community = next(u for u in chain if u.kind == "community")
        async with self.store.transaction():
            post_id = await self.store.units.create_post(unit.code, community.code, title,
                                                         int(slots_text), actor.user_id,
                                                         self.clock())
            post = await self.store.units.post(post_id)
            assert post is not None
            await self._publish(post, unit, community)
        return post

    async def _publish(self, post: Post, unit: Unit, community: Unit) -> None:
        """To the bound chats under the unit, and to the community's member units (their
        chat, else their contacts)."""
        below = [u.code for u in await self.store.map.descendants(unit.code)
                 if u.kind != "member"]
        members = await self.store.map.members([community.code])
        targets: dict[int, int] = {}
        for binding in await self.store.map.bindings(below + [m.code for m in members]):
            chat = await self.store.map.chat(binding.chat_id)
            if chat is None or chat.active:
                targets.setdefault(binding.chat_id, binding.thread_id)
        bound = {b.unit_code for b in await self.store.map.bindings([m.code for m in members])}
        for person in await self.store.people.with_role(
                "unit_contact", [m.code for m in members if m.code not in bound], None,
                reachable_only=True):
            targets.setdefault(person.user_id, 0)
        for chat_id, thread_id in targets.items():
            locale = await self.people.locale_in(chat_id)
            await self.outbox.send(
                chat_id, self.post_text(locale, post, unit), priority=Priority.SERVICE,
                buttons=[[button(t(locale, "post.btn_claim"), post_data("c", post.id))]],
                thread_id=thread_id, dedupe_key=f"postpub:{post.id}:{chat_id}")

    async def _post(self, post_id: int) -> Post:
        post = await self.store.units.post(post_id)
        if post is None:
            raise Refused("post.unknown", id=post_id)
        return post

    async def _holder_of(self, actor: Actor, post: Post) -> tuple[str, str | None]:
        """Who claims: the contact's member unit of the post's community, or the person (a
        volunteer or party member whose unit or building lies under the post's unit)."""
        for grant in actor.grants:
            if grant.role == "unit_contact":
                unit = await self.store.map.get(grant.unit_code)
                if unit is not None and unit.parent_code == post.community_code:
                    return f"u:{unit.code}", unit.code
        places = [g.unit_code for g in actor.grants if g.role in ("volunteer", PARTY_MEMBER)]
        if places and actor.building_code:
            places.append(actor.building_code)
        for place in places:
            if post.unit_code in await self.access.covering(place):
                return f"p:{actor.user_id}", None
        raise Refused("post.not_for_you", id=post.id)

    async def claim(self, actor: Actor, post_id: int) -> Claimed:
        async with self.store.transaction():
            post = await self._post(post_id)
            holder, unit_code = await self._holder_of(actor, post)
            current = await self.store.units.holder(post_id, holder)
            if current is not None and current.state == HOLDING:
                raise Refused("post.already_holding", id=post_id)
            if current is not None and current.state == WAITING:
                raise Refused("post.already_waiting", id=post_id)
            held = len(await self.store.units.holders(post_id, HOLDING))
            state = HOLDING if held < post.slots else WAITING
            await self.store.units.claim(post_id, holder, actor.user_id, unit_code, state,
                                         self.clock())
            position = len(await self.store.units.holders(post_id, WAITING)) \
                if state == WAITING else 0
        return Claimed(post, state, position)

    async def release(self, actor: Actor, post_id: int) -> Post:
        """"Release": the slot (or the place on the waiting list) is given up."""
        async with self.store.transaction():
            post = await self._post(post_id)
            mine = [h for h in await self.store.units.held_by(actor.user_id)
                    if h.post_id == post_id]
            if not mine:
                raise Refused("post.not_holding", id=post_id)
            await self._release(post, mine[0])
        return post

    async def _release(self, post: Post, holder: PostHolder) -> None:
        await self.store.units.set_holder_state(post.id, holder.holder, RELEASED, holder.state,
                                                self.clock())
        if holder.state != HOLDING:
            return
        waiting = await self.store.units.holders(post.id, WAITING)
        if waiting:
            first = waiting[0]
            await self.store.units.set_holder_state(post.id, first.holder, HOLDING, WAITING,
                                                    self.clock())
            locale = await self.people.locale_for(first.person_id)
            await self.outbox.send(first.person_id, t(locale, "post.moved_up", id=post.id,
                                                      title=post.title),
                                   priority=Priority.PERSONAL)

    async def still_serving(self, actor: Actor, post_id: int) -> Post:
        async with self.store.transaction():
            post = await self._post(post_id)
            mine = [h for h in await self.store.units.held_by(actor.user_id)
                    if h.post_id == post_id and h.state == HOLDING]
            if not mine or not await self.store.units.answered(post_id, mine[0].holder):
                raise Refused("post.not_asked", id=post_id)
        return post

    async def listing(self, actor: Actor) -> list[PostLine]:
        """/posts: the posts of the actor's communities (staff), or those they may claim or
        hold; each with its holders' count and the actor's own claim."""
        communities: set[str] = set()
        places = [g.unit_code for g in actor.grants]
        if actor.building_code:
            places.append(actor.building_code)
        for place in places:
            communities |= {u.code for u in await self.store.map.ancestors(place)
                            if u.kind == "community"}
        posts = await self.store.units.posts(None if actor.superadmin else communities)
        mine = {h.post_id: h for h in await self.store.units.held_by(actor.user_id)}
        return [PostLine(post=p, held=len(await self.store.units.holders(p.id, HOLDING)),
                         mine=mine.get(p.id)) for p in posts[-20:]]

    async def held(self, user_id: int) -> list[tuple[Post, PostHolder]]:
        """A person's posts (held or waiting), for /me."""
        found = []
        for holder in await self.store.units.held_by(user_id):
            post = await self.store.units.post(holder.post_id)
            if post is not None:
                found.append((post, holder))
        return found

    # the scheduled jobs

    async def ask_holders(self, period: str) -> int:
        """The monthly "Still serving?" to every holder (once per period: the job's run)."""
        asked = 0
        for holder in await self.store.units.all_holding():
            post = await self.store.units.post(holder.post_id)
            if post is None:
                continue
            locale = await self.people.locale_for(holder.person_id)
            await self.store.units.ask(post.id, holder.holder, self.clock())
            queued = await self.outbox.send(
                holder.person_id, t(locale, "post.still_serving", id=post.id, title=post.title),
                priority=Priority.ROUTINE, buttons=still_serving_buttons(locale, post.id),
                dedupe_key=f"postask:{period}:{post.id}:{holder.holder}")
            asked += queued is not None
        return asked

    async def release_silent(self) -> int:
        """Holders silent seven days after "Still serving?": released, the staff told."""
        released = 0
        for holder in await self.store.units.silent_since(self.clock() - SILENCE):
            post = await self.store.units.post(holder.post_id)
            if post is None:
                continue
            await self._release(post, holder)
            locale = await self.people.locale_for(post.created_by)
            person = await self.store.people.get(holder.person_id)
            who = holder.unit_code or (person.display_name if person else str(holder.person_id))
            await self.outbox.send(post.created_by, t(locale, "post.released_silent",
                                                      id=post.id, title=post.title, who=who),
                                   priority=Priority.ROUTINE)
            released += 1
        return released


def still_serving_buttons(locale: str, post_id: int) -> Buttons:
    return [[button(t(locale, "post.btn_yes"), post_data("y", post_id)),
             button(t(locale, "post.btn_release"), post_data("r", post_id))]]
