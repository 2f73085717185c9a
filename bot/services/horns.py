"""The assembly horn (集结号, SPEC §5): sound, answer, widen, re-sound, close, credit hours.

Staff sound a horn over part of the map through a guided flow (or the short form); publishing
posts it to every bound chat in scope and calls matching volunteers privately, in one
transaction with the horn itself. Taps are recorded once (the store's UNIQUE constraint
decides); every copy shows a live counter, refreshed after the tap is answered. The watcher
(`bot/watcher.py`, a DueWatcher) runs fill-by widening and emergency re-sounding from the store, so a
restart neither drops nor repeats them. Closing posts a summary; the owner then confirms who
came and the hours, credited once to each person's time bank (爱心银行).
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.i18n import t
from bot.services import horn_views as views
from bot.services.access import Action, Actor
from bot.services.base import Service
from bot.services.errors import Key, Refused
from bot.services.outbox import Priority
from bot.services.scopes import outermost
from storage.models import HORN_LEVELS, SKILLS, Flow, Horn, HornCopy, Unit

logger = logging.getLogger(__name__)

FLOW = "horn"
HOURS_FLOW = "horn_hours"
STEPS = ("level", "scope", "title", "details", "place", "start", "end", "needed", "fill_by",
         "skills", "preview")
TEXT_LIMITS = {"title": 100, "details": 1000, "place": 200}
POINTS_PER_HOUR = 10          # time bank (爱心银行): points credited per confirmed hour
SHORT_FORM_HOURS = 2.0        # default hours of a horn sounded with the short form
MAX_NEEDED = 10_000
PAST_TOLERANCE = 3600         # a start may lie this far in the past (an emergency under way)
LEVEL_WORDS = {"service": "service", "服务": "service", "服務": "service",
               "major": "major", "攻坚": "major", "攻堅": "major",
               "emergency": "emergency", "紧急": "emergency", "緊急": "emergency"}
WIDEN_TO = {"building": "grid", "estate": "grid", "grid": "community"}
PRIORITY = {"service": Priority.SERVICE, "major": Priority.MAJOR,
            "emergency": Priority.EMERGENCY}
PRIVATE_EDIT_LAG = 2          # private copies are edited after the group copies
_TIME = re.compile(r"^(?:(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})\s+)?(\d{1,2})[:：](\d{2})$")
_HOURS = re.compile(r"^(\d+(?:[.,]\d+)?)\s*(?:h|hours?|小时|小時)?$", re.IGNORECASE)


def action_for(level: str) -> Action:
    return Action.HORN_SERVICE if level == "service" else Action.HORN_ANY


def parse_time(text: str, tz: Any, now: float) -> float | None:
    """`YYYY-MM-DD HH:MM`, or `HH:MM` for today in `tz`; None when unreadable."""
    match = _TIME.match(text.strip())
    if match is None:
        return None
    year, month, day, hour, minute = match.groups()
    try:
        if year is None:
            today = datetime.fromtimestamp(now, tz).date()
            moment = datetime(today.year, today.month, today.day, int(hour), int(minute),
                              tzinfo=tz)
        else:
            moment = datetime(int(year), int(month), int(day), int(hour), int(minute), tzinfo=tz)
    except ValueError:
        return None
    return moment.timestamp()


@dataclass(frozen=True)
class Tap:
    """The answer to a tap: a catalog key and its values."""

    key: str
    values: dict[str, Any] = field(default_factory=dict)
    changed: bool = True


@dataclass(frozen=True)
class Published:
    horn: Horn
    chats: int
    volunteers: int


class HornService(Service):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.changed: Callable[[], None] = lambda: None  # wakes the horn watcher
        self._refreshing: dict[int, list[bool]] = {}

    # ------------------------------------------------------------------ the guided flow

    async def flow(self, user_id: int) -> Flow | None:
        """The person's horn flow (or hours prompt), if that is what they are in."""
        flow = await self.store.flows.get(user_id)
        return flow if flow is not None and flow.name in (FLOW, HOURS_FLOW) else None

    def levels_for(self, actor: Actor) -> tuple[str, ...]:
        if self.access.can_somewhere(actor, Action.HORN_ANY):
            return HORN_LEVELS
        if self.access.can_somewhere(actor, Action.HORN_SERVICE):
            return ("service",)
        return ()

    async def start(self, actor: Actor) -> Flow:
        """/horn: the first step (the level)."""
        if not self.levels_for(actor):
            raise Refused("horn.not_staff")
        return await self._save(actor.user_id, "level", {"skills": []})

    async def short_form(self, actor: Actor, text: str) -> Flow:
        """`/horn LEVEL UNIT_CODE NEEDED TITLE…` straight to the preview."""
        parts = text.split(maxsplit=3)
        if len(parts) < 4:
            raise Refused("horn.usage")
        if not self.levels_for(actor):
            raise Refused("horn.not_staff")
        level = self._level(actor, parts[0])
        scope = await self._scope(actor, level, [parts[1]])
        needed = _needed(parts[2])
        title = _words(parts[3], "title")
        return await self._save(actor.user_id, "preview", {
            "level": level, "scope": scope, "title": title, "details": "", "place": "",
            "start": None, "end": None, "needed": needed, "fill_by": None, "skills": [],
            "short": True})

    async def answer(self, actor: Actor, text: str) -> Flow:
        """Typed input for the current step; a bad one is refused and the step stays."""
        flow = await self._require_flow(actor.user_id)
        data = dict(flow.data)
        step = flow.step
        text = text.strip()
        now = self.clock()
        if step == "level":
            data["level"] = self._level(actor, text)
        elif step == "scope":
            data["scope"] = await self._scope(actor, data["level"],
                                              [c for c in re.split(r"[\s,，、]+", text) if c])
        elif step in TEXT_LIMITS:
            data[step] = _words(text, step)
        elif step in ("start", "end", "fill_by"):
            data[step] = self._moment(step, text, data, now)
        elif step == "needed":
            data["needed"] = _needed(text)
        else:
            raise Refused("horn.use_buttons")
        return await self._save(actor.user_id, _next(step), data)

    async def press(self, actor: Actor, action: str, arg: str) -> Flow | None:
        """A button of the flow (`hf:<action>[:<arg>]`), checked against the current step."""
        if action == "x":
            async with self.store.transaction():
                await self._require_flow(actor.user_id)
                await self.store.flows.clear(actor.user_id)
            return None
        flow = await self._require_flow(actor.user_id)
        data = dict(flow.data)
        expected = {"lvl": "level", "scope": "scope", "skip": "fill_by", "sk": "skills",
                    "skd": "skills"}.get(action)
        if expected is None or flow.step != expected:
            raise Refused("button.stale")
        if action == "lvl":
            data["level"] = self._level(actor, arg)
        elif action == "scope":
            data["scope"] = await self._scope(actor, data["level"], [arg])
        elif action == "skip":
            data["fill_by"] = None
        elif action == "sk":
            if arg not in SKILLS:
                raise Refused("button.stale")
            chosen = set(data.get("skills") or []) ^ {arg}
            data["skills"] = [s for s in SKILLS if s in chosen]
            return await self._save(actor.user_id, "skills", data)
        return await self._save(actor.user_id, _next(flow.step), data)

    async def prompt(self, actor: Actor, locale: str, flow: Flow) -> views.View:
        """What to show for the flow's current step."""
        data = flow.data
        tz = self.settings.tz
        now = self.clock()
        cancel = [views.button(t(locale, "horn.btn_cancel"), "hf:x")]
        step = flow.step
        if step == "level":
            return views.View(t(locale, "horn.ask_level"), [
                [views.button(views.level_label(locale, level), f"hf:lvl:{level}")]
                for level in self.levels_for(actor)] + [cancel])
        if step == "scope":
            units = await self._scope_choices(actor, data["level"])
            rows = [[views.button(f"{u.name} ({u.code})", f"hf:scope:{u.code}")] for u in units]
            return views.View(t(locale, "horn.ask_scope",
                                example=units[0].code if units else "G0101"), rows + [cancel])
        if step in TEXT_LIMITS:
            return views.View(t(locale, f"horn.ask_{step}"), [cancel])
        if step in ("start", "end", "fill_by"):
            example = self._example(step, data, now)
            moment = datetime.fromtimestamp(example, tz)
            rows = [[views.button(t(locale, "horn.btn_skip"), "hf:skip")]] \
                if step == "fill_by" else []
            return views.View(t(locale, f"horn.ask_{step}",
                                example=moment.strftime("%Y-%m-%d %H:%M"),
                                time=moment.strftime("%H:%M")), rows + [cancel])
        if step == "needed":
            return views.View(t(locale, "horn.ask_needed"), [cancel])
        if step == "skills":
            return views.View(t(locale, "horn.ask_skills"), views.skill_buttons(
                locale, data.get("skills") or [], "hf:sk", t(locale, "horn.btn_done"),
                "hf:skd") + [cancel])
        units = await self._units(data["scope"])
        return views.preview(locale, data, units, tz)

    def refusal_example(self, flow: Flow) -> dict[str, str]:
        """Values for a time refusal: the example of the current step."""
        moment = datetime.fromtimestamp(self._example(flow.step, flow.data, self.clock()),
                                        self.settings.tz)
        return {"example": moment.strftime("%Y-%m-%d %H:%M"), "time": moment.strftime("%H:%M")}

    # ------------------------------------------------------------------ publishing

    async def publish(self, actor: Actor) -> Published:
        """Create the horn, post it to every bound chat in scope and call volunteers: one
        transaction (with clearing the flow, so a second Publish finds nothing)."""
        async with self.store.transaction():
            flow = await self._require_flow(actor.user_id)
            if flow.step != "preview":
                raise Refused("button.stale")
            data = flow.data
            level = data["level"]
            scope = await self._scope(actor, level, data["scope"])  # rights may have changed
            grid, community = await self._home(scope)
            now = self.clock()
            horn_id = await self.store.horns.create(
                owner_id=actor.user_id, level=level, scope=scope, grid_code=grid,
                community_code=community, title=data["title"], details=data.get("details", ""),
                place=data.get("place", ""), starts_at=data.get("start"),
                ends_at=data.get("end"), needed=int(data["needed"]),
                fill_by=data.get("fill_by"), skills=data.get("skills") or [],
                short_form=bool(data.get("short")),
                resound_at=now + self._resound_period() if level == "emergency" else None)
            await self.store.flows.clear(actor.user_id)
            horn = await self._get(horn_id)
            chats = await self._post_to(horn, scope)
            called = await self._call_volunteers(horn, scope) if level != "service" else 0
        self.changed()
        logger.info("horn #%s (%s) published to %s chats and %s volunteers", horn.id, level,
                    chats, called)
        return Published(horn, chats, called)

    async def _post_to(self, horn: Horn, codes: list[str] | tuple[str, ...],
                       round_: int = 0) -> int:
        """Post the horn to every bound, active chat under `codes` (once per chat)."""
        units = await self._units(horn.scope)
        count, waiting = await self.store.horns.counts(horn.id)
        posted = 0
        texts: dict[str, str] = {}
        for chat_id, thread_id in await self._chats_in(codes):
            locale = await self.people.locale_in(chat_id)
            if locale not in texts:
                texts[locale] = views.post_text(locale, horn, units, count, waiting,
                                                self.settings.tz)
            key = f"hpost:{horn.id}:{chat_id}" if round_ == 0 else \
                f"hsound:{horn.id}:{round_}:{chat_id}"
            queued = await self.outbox.send(
                chat_id, texts[locale], priority=PRIORITY[horn.level],
                buttons=views.post_buttons(locale, horn), thread_id=thread_id,
                quiet=horn.level == "service", pin=horn.level == "emergency",
                dedupe_key=key, ref=f"hcopy:{horn.id}:group")
            posted += queued is not None
        return posted

    async def _call_volunteers(self, horn: Horn, codes: list[str] | tuple[str, ...]) -> int:
        """点将: a private call-up to each volunteer in scope whose skills match."""
        below: list[Unit] = []
        for code in codes:
            below += await self.store.map.descendants(code)
        ids = [p.user_id for p in await self.store.people.with_role(
            "volunteer", [u.code for u in below],
            [u.code for u in below if u.kind == "building"], reachable_only=True)]
        units = await self._units(horn.scope)
        count, waiting = await self.store.horns.counts(horn.id)
        called = 0
        for person in await self.store.people.many(ids):
            if person.user_id == horn.owner_id:
                continue
            if horn.skills and not set(horn.skills) & set(person.skills):
                continue
            locale = self.people.locale_of(person)
            queued = await self.outbox.send(
                person.user_id, self._private_text(locale, horn, units, count, waiting),
                priority=PRIORITY[horn.level], buttons=views.post_buttons(locale, horn),
                dedupe_key=f"hcall:{horn.id}:{person.user_id}",
                ref=f"hcopy:{horn.id}:private")
            called += queued is not None
        return called

    def _private_text(self, locale: str, horn: Horn, units: list[Unit], count: int,
                      waiting: int) -> str:
        return t(locale, "horn.call_up") + "\n\n" + views.post_text(
            locale, horn, units, count, waiting, self.settings.tz)

    async def copy_sent(self, horn_id: int, kind: str, chat_id: int, message_id: int,
                        thread_id: int, sent_text: str) -> None:
        """Outbox hook: remember a copy; if the horn moved on while it waited, edit it. A
        post that was already on its way when the horn closed gets what the others got at
        the close: the summary, and no pin left behind (its pin is queued just before)."""
        await self.store.horns.add_copy(horn_id, chat_id, message_id, thread_id, kind)
        await self.edit_sent(horn_id, kind, chat_id, message_id, sent_text)
        horn = await self.store.horns.get(horn_id)
        if horn is not None and horn.status == "closed" and kind == "group":
            copy = HornCopy(horn_id=horn_id, chat_id=chat_id, message_id=message_id,
                            thread_id=thread_id, kind="group")
            await self._summary(horn, copy)
            if horn.level == "emergency":
                await self._unpin(horn, [copy])

    async def edit_sent(self, horn_id: int, kind: str, chat_id: int, message_id: int,
                        sent_text: str) -> None:
        """Outbox hook: a copy went out (or was edited) with `sent_text`; if that is no
        longer the horn's text, queue the current one. This also repairs an edit whose newer
        text was coalesced into it while it was already on its way."""
        horn = await self.store.horns.get(horn_id)
        if horn is None:
            return
        copy = HornCopy(horn_id=horn_id, chat_id=chat_id, message_id=message_id,
                        thread_id=0, kind=kind)  # type: ignore[arg-type]
        await self._edit_copies(horn, [copy], skip_text=sent_text)

    # ------------------------------------------------------------------ taps

    async def check_in(self, user_id: int, horn_id: int) -> Tap:
        """报到: the first tap counts; past the quota it joins the waiting list."""
        async with self.store.transaction():
            horn = await self._active(horn_id)
            await self.store.people.ensure(user_id)
            current = await self.store.horns.checkin(horn_id, user_id)
            if current is not None and current.state == "in":
                return Tap("horn.already_in", {"id": horn_id}, changed=False)
            if current is not None and current.state == "waiting":
                position = await self.store.horns.waiting_position(horn_id, user_id)
                return Tap("horn.already_waiting", {"id": horn_id, "position": position},
                           changed=False)
            count, _ = await self.store.horns.counts(horn_id)
            state = "in" if count < horn.needed else "waiting"
            if current is None:
                if not await self.store.horns.add_checkin(horn_id, user_id, state):
                    return Tap("horn.already_in", {"id": horn_id}, changed=False)
            else:  # came back after "Can't come": to the end of the line
                await self.store.horns.set_state(horn_id, user_id, state,
                                                 expect=("withdrawn", "declined"), requeue=True)
            await self.store.horns.update(horn_id, dirty=1)
            if state == "in":
                return Tap("horn.checked_in", {"id": horn_id})
            position = await self.store.horns.waiting_position(horn_id, user_id)
            return Tap("horn.waiting", {"id": horn_id, "position": position})

    async def cant_come(self, user_id: int, horn_id: int) -> Tap:
        """"Can't come": withdraws a check-in (the first waiting moves up and is told)."""
        async with self.store.transaction():
            horn = await self._active(horn_id)
            await self.store.people.ensure(user_id)
            current = await self.store.horns.checkin(horn_id, user_id)
            if current is None:
                await self.store.horns.add_checkin(horn_id, user_id, "declined")
                return Tap("horn.declined", {"id": horn_id}, changed=False)
            if current.state in ("withdrawn", "declined"):
                return Tap("horn.already_declined", {"id": horn_id}, changed=False)
            await self.store.horns.set_state(horn_id, user_id, "withdrawn",
                                             expect=(current.state,))
            if current.state == "in":
                await self._move_up(horn)
            await self.store.horns.update(horn_id, dirty=1)
            return Tap("horn.withdrawn" if current.state == "in" else "horn.left_waiting",
                       {"id": horn_id})

    async def _move_up(self, horn: Horn) -> None:
        """Fill free places from the waiting list, first come first served, telling each."""
        count, _ = await self.store.horns.counts(horn.id)
        while count < horn.needed:
            first = await self.store.horns.first_waiting(horn.id)
            if first is None:
                return
            await self.store.horns.set_state(horn.id, first.person_id, "in", expect=("waiting",))
            count += 1
            locale = await self.people.locale_for(first.person_id)
            await self.outbox.send(first.person_id,
                                   t(locale, "horn.moved_up", id=horn.id, title=horn.title),
                                   priority=Priority.PERSONAL,
                                   buttons=views.post_buttons(locale, horn))

    async def refresh_counters(self, horn_id: int) -> None:
        """Edit every copy to the current counter, if a tap changed it. Taps arriving while a
        refresh runs make it go round once more instead of starting another (coalesced)."""
        running = self._refreshing.get(horn_id)
        if running is not None:
            running[0] = True
            return
        again = self._refreshing[horn_id] = [True]
        try:
            while again[0]:
                again[0] = False
                async with self.store.transaction():
                    horn = await self.store.horns.get(horn_id)
                    if horn is None or not await self.store.horns.update(
                            horn_id, expect_dirty=True, dirty=0):
                        continue
                    await self._edit_copies(horn, await self.store.horns.copies(horn_id))
        finally:
            del self._refreshing[horn_id]

    async def _edit_copies(self, horn: Horn, copies: list[HornCopy],
                           skip_text: str | None = None) -> None:
        """Queue an edit of each copy (group copies first, at a higher priority)."""
        if not copies:
            return
        units = await self._units(horn.scope)
        count, waiting = await self.store.horns.counts(horn.id)
        texts: dict[tuple[str, str], str] = {}
        locales: dict[int, str] = {}
        for copy in copies:
            if copy.chat_id not in locales:
                locales[copy.chat_id] = await self.people.locale_in(copy.chat_id)
            locale = locales[copy.chat_id]
            if (locale, copy.kind) not in texts:
                texts[(locale, copy.kind)] = self._private_text(
                    locale, horn, units, count, waiting) if copy.kind == "private" else \
                    views.post_text(locale, horn, units, count, waiting, self.settings.tz)
            text = texts[(locale, copy.kind)]
            if text == skip_text:
                continue
            priority = PRIORITY[horn.level] + (PRIVATE_EDIT_LAG if copy.kind == "private" else 0)
            # the `hedit:` hook checks what actually went out
            await self.outbox.edit(copy.chat_id, copy.message_id, text, priority=priority,
                                   buttons=views.post_buttons(locale, horn),
                                   ref=f"hedit:{horn.id}:{copy.kind}")

    # ------------------------------------------------------------------ closing

    async def ask_close(self, actor: Actor, horn_id: int) -> Horn:
        """The Close button asks first (a tap is easily made); the same checks as closing."""
        horn = await self._active(horn_id)
        if not await self.may_close(actor, horn):
            raise Refused("horn.close_not_allowed", id=horn_id)
        return horn

    async def close(self, actor: Actor, horn_id: int) -> Horn:
        """End the horn: summary to its chats, the attendance list to the owner."""
        horn = await self._get(horn_id)
        if not await self.may_close(actor, horn):
            raise Refused("horn.close_not_allowed", id=horn_id)
        async with self.store.transaction():
            if not await self.store.horns.update(
                    horn_id, expect_status="active", status="closed", closed_at=self.clock(),
                    closed_by=actor.user_id, resound_at=None, dirty=0,
                    hours=_default_hours(horn)):
                raise Refused("horn.closed", id=horn_id)
            await self.store.horns.mark_present(horn_id)
            # posts still waiting (quiet hours, a long broadcast) are not sent after the end:
            # those chats never saw the horn, so they get no summary either
            await self.store.outbox.drop_pending_refs(f"hcopy:{horn_id}:", "horn closed")
            horn = await self._get(horn_id)
            copies = await self.store.horns.copies(horn_id)
            await self._edit_copies(horn, copies)
            if horn.level == "emergency":
                await self._unpin(horn, copies)
            replied: set[int] = set()
            for copy in reversed(copies):  # the newest copy in each chat
                if copy.kind != "group" or copy.chat_id in replied:
                    continue
                replied.add(copy.chat_id)
                await self._summary(horn, copy)
            locale = await self.people.locale_for(horn.owner_id)
            view = await self._attendance_view(locale, horn)
            await self.outbox.send(horn.owner_id, view.text, priority=Priority.PERSONAL,
                                   buttons=view.buttons, dedupe_key=f"hatt:{horn.id}")
        self.changed()
        return horn

    async def _summary(self, horn: Horn, copy: HornCopy) -> None:
        """The closed horn's summary, in reply to its post in a chat (once per chat)."""
        count, _ = await self.store.horns.counts(horn.id)
        locale = await self.people.locale_in(copy.chat_id)
        await self.outbox.send(
            copy.chat_id, t(locale, "horn.summary", id=horn.id, title=horn.title,
                            count=count, needed=horn.needed),
            priority=PRIORITY[horn.level], thread_id=copy.thread_id,
            reply_to=copy.message_id, quiet=horn.level == "service",
            dedupe_key=f"hsum:{horn.id}:{copy.chat_id}")

    async def _unpin(self, horn: Horn, copies: list[HornCopy]) -> None:
        """A closed emergency no longer stays on top of the building chats. (Its pins were
        queued before this, at the same priority: each unpin follows its pin.)"""
        for copy in copies:
            if copy.kind != "group":
                continue
            chat = await self.store.map.chat(copy.chat_id)
            if chat is None or not chat.can_pin:
                continue  # it could not be pinned either
            await self.outbox.call(
                copy.chat_id, "unpinChatMessage", {"message_id": copy.message_id},
                priority=PRIORITY[horn.level] + Priority.PIN_DELAY,
                dedupe_key=f"hunpin:{horn.id}:{copy.chat_id}:{copy.message_id}")

    async def may_close(self, actor: Actor, horn: Horn) -> bool:
        if actor.superadmin or actor.user_id == horn.owner_id:
            return True
        for code in horn.scope:
            if not await self.access.can(actor, action_for(horn.level), code):
                return False
        return True

    async def attendance(self, actor: Actor, locale: str, horn_id: int) -> views.View:
        horn = await self._owned_closed(actor, horn_id)
        return await self._attendance_view(locale, horn)

    async def toggle_present(self, actor: Actor, locale: str, horn_id: int,
                             person_id: int) -> views.View:
        """A tap on a name: present ↔ not present (until Confirm)."""
        horn = await self._owned_closed(actor, horn_id, unconfirmed=True)
        async with self.store.transaction():
            if not await self.store.horns.toggle_present(horn_id, person_id):
                raise Refused("button.stale")
        return await self._attendance_view(locale, horn)

    async def ask_hours(self, actor: Actor, horn_id: int) -> Horn:
        """The owner will type the hours: remembered as a small flow."""
        horn = await self._owned_closed(actor, horn_id, unconfirmed=True)
        await self._save(actor.user_id, "hours", {"horn": horn_id}, name=HOURS_FLOW)
        return horn

    async def set_hours(self, actor: Actor, text: str) -> Horn:
        """The typed hours; a horn confirmed meanwhile ends the prompt (the text is not
        kept waiting for it)."""
        flow = await self.store.flows.get(actor.user_id)
        if flow is None or flow.name != HOURS_FLOW:
            raise Refused("button.stale")
        try:
            horn = await self._owned_closed(actor, int(flow.data["horn"]), unconfirmed=True)
        except Refused:
            async with self.store.transaction():
                await self.store.flows.clear(actor.user_id)
            raise
        match = _HOURS.match(text.strip())
        hours = float(match.group(1).replace(",", ".")) if match else 0.0
        if not 0 < hours <= 100:
            raise Refused("horn.bad_hours")
        async with self.store.transaction():
            await self.store.horns.update(horn.id, hours=round(hours, 2))
            await self.store.flows.clear(actor.user_id)
        return await self._get(horn.id)

    async def confirm(self, actor: Actor, locale: str, horn_id: int) -> views.View:
        """Credit hours and points to each person present, once (the store decides)."""
        horn = await self._owned_closed(actor, horn_id)
        hours = horn.hours if horn.hours is not None else _default_hours(horn)
        points = round(hours * POINTS_PER_HOUR)
        async with self.store.transaction():
            if not await self.store.horns.confirm(horn_id, actor.user_id, hours):
                raise Refused("horn.already_confirmed", id=horn_id)
            flow = await self.store.flows.get(actor.user_id)
            if flow is not None and flow.name == HOURS_FLOW and flow.data.get("horn") == horn_id:
                await self.store.flows.clear(actor.user_id)   # no more hours to type
            for person_id in await self.store.horns.credit(horn_id, hours, points):
                await self.store.people.add_hours(person_id, hours, points)
                person_locale = await self.people.locale_for(person_id)
                await self.outbox.send(
                    person_id, t(person_locale, "horn.credited", id=horn.id, title=horn.title,
                                 hours=views.hours_text(hours), points=points),
                    priority=Priority.PERSONAL)
        return await self._attendance_view(locale, await self._get(horn_id))

    async def _attendance_view(self, locale: str, horn: Horn) -> views.View:
        rows = await self.store.horns.checkins(horn.id, ("in",))
        people = {p.user_id: p for p in await self.store.people.many(r.person_id for r in rows)}
        named = [(r.person_id, people[r.person_id].display_name if r.person_id in people
                  else str(r.person_id), r.present) for r in rows]
        return views.attendance(locale, horn, named, POINTS_PER_HOUR)

    async def _owned_closed(self, actor: Actor, horn_id: int,
                            unconfirmed: bool = False) -> Horn:
        horn = await self._get(horn_id)
        if actor.user_id != horn.owner_id and not actor.superadmin:
            raise Refused("horn.not_owner", id=horn_id)
        if horn.active:
            raise Refused("horn.still_active", id=horn_id)
        if unconfirmed and horn.confirmed_at is not None:
            raise Refused("horn.already_confirmed", id=horn_id)
        return horn

    # ------------------------------------------------------------------ lists

    async def get(self, horn_id: int) -> Horn:
        return await self._get(horn_id)

    async def active_for(self, actor: Actor) -> list[tuple[Horn, int, bool]]:
        """/horns: active horns the person has to do with (scope over or around them, or
        one they checked in to: a helper from outside the area sees where they are due)."""
        places = [g.unit_code for g in actor.grants] + \
            ([actor.building_code] if actor.building_code else [])
        above: dict[str, set[str]] = {p: set(await self.access.covering(p)) for p in places}
        found = []
        for horn in await self.store.horns.active():
            if not actor.superadmin and actor.user_id != horn.owner_id:
                related = False
                for code in horn.scope:
                    over = set(await self.access.covering(code))
                    if any(p in over or code in above[p] for p in places):
                        related = True
                        break
                if not related and await self.store.horns.checkin(horn.id,
                                                                  actor.user_id) is None:
                    continue
            count, _ = await self.store.horns.counts(horn.id)
            found.append((horn, count, await self.may_close(actor, horn)))
        return found

    # ------------------------------------------------------------------ the watcher's work

    async def run_due(self) -> int:
        """Widen horns past their fill-by time and re-sound emergencies; returns how many
        acted."""
        acted = 0
        for horn in await self.store.horns.due(self.clock()):
            try:
                acted += await self._due(horn.id)
            except Exception:
                logger.exception("horn #%s: timed work failed", horn.id)
        return acted

    async def recover(self) -> None:
        """At start: edit the copies whose counter a crash left behind the check-ins."""
        for horn_id in await self.store.horns.dirty():
            await self.refresh_counters(horn_id)

    async def next_due(self) -> float | None:
        return await self.store.horns.next_due()

    async def _due(self, horn_id: int) -> int:
        now = self.clock()
        acted = 0
        async with self.store.transaction():
            horn = await self.store.horns.get(horn_id)
            if horn is None or not horn.active:
                return 0
            if horn.fill_by is not None and not horn.widened and horn.fill_by <= now:
                await self._fill_by(horn)
                horn = await self._get(horn_id)
                acted += 1
            if horn.resound_at is not None and horn.resound_at <= now:
                await self._resound(horn, now)
                acted += 1
        return acted

    async def _resound(self, horn: Horn, now: float) -> None:
        """A new pinned post in every chat while the quota is not met; once per period."""
        count, _ = await self.store.horns.counts(horn.id)
        round_ = horn.resounds
        if count < horn.needed:
            round_ += 1
            await self._post_to(horn, horn.scope, round_=round_)
        await self.store.horns.update(horn.id, resound_at=now + self._resound_period(),
                                      resounds=round_)

    async def _fill_by(self, horn: Horn) -> None:
        """Quota not met by the fill-by time: widen one map level within the owner's
        authority, post to the new chats, call the new volunteers, tell the owner."""
        await self.store.horns.update(horn.id, widened=1)
        count, _ = await self.store.horns.counts(horn.id)
        if count >= horn.needed:
            return
        owner = await self.access.actor(horn.owner_id)
        wider: list[str] = []
        for code in horn.scope:
            unit = await self.store.map.get(code)
            target = WIDEN_TO.get(unit.kind) if unit is not None else None
            parent = next((u for u in await self.store.map.ancestors(code)
                           if u.kind == target), None) if target else None
            if parent is not None and parent.code not in wider and \
                    await self.access.can(owner, action_for(horn.level), parent.code):
                wider.append(parent.code)
        locale = await self.people.locale_for(horn.owner_id)
        if not wider:
            await self.outbox.send(horn.owner_id, t(locale, "horn.widen_failed", id=horn.id,
                                                    count=count, needed=horn.needed),
                                   priority=Priority.PERSONAL)
            return
        scope = await outermost(self.store, list(horn.scope) + wider)
        await self.store.horns.update(horn.id, scope=scope)
        horn = await self._get(horn.id)
        await self._edit_copies(horn, await self.store.horns.copies(horn.id))
        await self._post_to(horn, wider)
        if horn.level != "service":
            await self._call_volunteers(horn, wider)
        await self.outbox.send(horn.owner_id, t(
            locale, "horn.widened", id=horn.id, count=count, needed=horn.needed,
            scope=views.scope_label(await self._units(wider))), priority=Priority.PERSONAL)

    # ------------------------------------------------------------------ helpers

    def _resound_period(self) -> float:
        return self.settings.horn_resound_min * 60

    async def _save(self, user_id: int, step: str, data: dict[str, Any],
                    name: str = FLOW) -> Flow:
        async with self.store.transaction():
            await self.store.flows.set(user_id, name, step, data)
        return Flow(user_id=user_id, name=name, step=step, data=data)

    async def _require_flow(self, user_id: int) -> Flow:
        flow = await self.store.flows.get(user_id)
        if flow is None or flow.name != FLOW:
            raise Refused("horn.flow_gone")
        return flow

    def _level(self, actor: Actor, word: str) -> str:
        level = LEVEL_WORDS.get(word.strip().lower())
        if level is None:
            raise Refused("horn.bad_level", text=word[:30])
        if level not in self.levels_for(actor):
            raise Refused("horn.level_not_allowed", level=Key(f"horn.level.{level}"))
        return level

    async def _scope(self, actor: Actor, level: str, codes: list[str]) -> list[str]:
        """Check each unit: on the map, not a department, within the actor's authority."""
        if not codes:
            raise Refused("horn.use_buttons")
        found = []
        for code in codes:
            unit = await self.store.map.get(code)
            if unit is None:
                unit = await self.store.map.get(code.upper())
            if unit is None:
                raise Refused("map.unknown_code", code=code[:30])
            if unit.kind == "department":
                raise Refused("horn.bad_scope", code=unit.code)
            if not await self.access.can(actor, action_for(level), unit.code):
                raise Refused("horn.scope_not_allowed", code=unit.code,
                              level=Key(f"horn.level.{level}"))
            found.append(unit.code)
        return await outermost(self.store, found)

    async def _scope_choices(self, actor: Actor, level: str) -> list[Unit]:
        """Buttons for the scope step: the units of the actor's authority and one level
        below them (more can be typed as codes)."""
        if actor.superadmin:
            tops = await self.store.map.children(None)
        else:
            tops = await self.access.scope_units(actor, action_for(level))
        choices: list[Unit] = []
        for unit in tops:
            if unit.kind == "department" or unit in choices:
                continue
            choices.append(unit)
            if unit.kind in ("community", "grid"):
                choices += [c for c in await self.store.map.children(unit.code)
                            if c not in choices]
        return choices[:12]

    def _moment(self, step: str, text: str, data: dict[str, Any], now: float) -> float:
        moment = parse_time(text, self.settings.tz, now)
        example = self.refusal_example(Flow(user_id=0, name=FLOW, step=step, data=data))
        if moment is None:
            raise Refused("horn.bad_time", text=text[:30], **example)
        if step == "start" and moment < now - PAST_TOLERANCE:
            raise Refused("horn.time_past", **example)
        if step == "end" and data.get("start") is not None and moment <= data["start"]:
            raise Refused("horn.end_before_start",
                          start=views.when(data["start"], self.settings.tz), **example)
        if step == "fill_by":
            if moment <= now:
                raise Refused("horn.time_past", **example)
            if data.get("end") is not None and moment >= data["end"]:
                raise Refused("horn.fill_by_late", end=views.when(data["end"],
                                                                 self.settings.tz), **example)
        return moment

    def _example(self, step: str, data: dict[str, Any], now: float) -> float:
        hour = 3600
        soon = (int(now) // hour + 1) * hour
        if step == "start":
            return soon
        if step == "end":
            return (data.get("start") or soon) + 3 * hour
        return max(now + 60, min(soon, (data.get("end") or soon + hour) - hour))

    async def _units(self, codes: list[str] | tuple[str, ...]) -> list[Unit]:
        units = []
        for code in codes:
            unit = await self.store.map.get(code)
            if unit is not None:
                units.append(unit)
        return units

    async def _home(self, codes: list[str]) -> tuple[str | None, str]:
        """The grid the horn belongs to (None when it spans several) and its community."""
        grids, communities = set(), []
        for code in codes:
            chain = await self.store.map.ancestors(code)
            grids.add(next((u.code for u in chain if u.kind == "grid"), None))
            communities += [u.code for u in chain if u.kind == "community"]
        grid = grids.pop() if len(grids) == 1 else None
        return grid, communities[0] if communities else ""

    async def _chats_in(self, codes: list[str] | tuple[str, ...]) -> list[tuple[int, int]]:
        """Bound, active chats of the units under `codes`: (chat, announcement thread)."""
        found: dict[int, int] = {}
        for code in codes:
            below = [u.code for u in await self.store.map.descendants(code)]
            for binding in await self.store.map.bindings(below):
                if binding.chat_id in found:
                    continue
                chat = await self.store.map.chat(binding.chat_id)
                if chat is not None and not chat.active:
                    continue
                found[binding.chat_id] = binding.thread_id
        return list(found.items())

    async def _get(self, horn_id: int) -> Horn:
        horn = await self.store.horns.get(horn_id)
        if horn is None:
            raise Refused("horn.unknown", id=horn_id)
        return horn

    async def _active(self, horn_id: int) -> Horn:
        horn = await self._get(horn_id)
        if not horn.active:
            raise Refused("horn.closed", id=horn_id)
        return horn


def _next(step: str) -> str:
    return STEPS[STEPS.index(step) + 1]


def _words(text: str, step: str) -> str:
    text = text.strip()
    if not text:
        raise Refused("horn.need_text")
    if len(text) > TEXT_LIMITS[step]:
        raise Refused("horn.too_long", limit=TEXT_LIMITS[step])
    return text


def _needed(text: str) -> int:
    text = text.strip()
    if not text.isdecimal() or not 1 <= int(text) <= MAX_NEEDED:
        raise Refused("horn.bad_number", text=text[:30])
    return int(text)


def _default_hours(horn: Horn) -> float:
    """The horn's duration, to the nearest quarter hour (halves up; at least a quarter), or
    2 h for a short-form horn."""
    if horn.short_form or horn.starts_at is None or horn.ends_at is None:
        return SHORT_FORM_HOURS
    return max(0.25, math.floor((horn.ends_at - horn.starts_at) / 900 + 0.5) / 4)
