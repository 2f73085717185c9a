"""Evaluation after each monthly theme 评估 (SPEC §12).

When a month ends (the `evaluation` job, GRIDHORN_EVALUATION_CRON, for the month before its
fire time) a round opens: community staff are asked, privately, to rate each grid of their
community 1–5 on the month's theme work, and grid leaders each grid worker of their grid. What
each rater was asked is written when the round opens (one row each in `evaluations`, score
empty), with one message per rater listing it (more than `PER_MESSAGE` items: several), each
row with its buttons `ev:<score>:<month>:<grid>:<worker or 0>`. A reply to such a message is a
note: on the item whose list number starts it, else on the item rated last.

Three days after a round opened, each rater with ratings still missing is sent the list again,
once (claimed in `schedule_posts`, checked by every scheduler tick). A rating (and a note) can
be changed until the next month's round opens; a press after that, on an item the rater was
not asked about, or by a rater who no longer holds the role over it is refused.
`/evaluations [YYYY-MM]` shows what was given and what is missing within the asker's scope.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.hooks import SentHook
from bot.i18n import Markup, t, tn
from bot.services import periods
from bot.services.access import Action, Actor
from bot.services.base import Service
from bot.services.errors import Refused
from bot.services.outbox import Priority
from bot.services.scopes import actor_scope
from storage.evaluations import GRID, WORKER, Evaluation, EvaluationMessage
from storage.models import OutboxItem

JOB = "evaluation"
REMINDER_JOB = "evaluation_reminder"
PREFIX = "ev"
INFO = "i"
REF = "ev"                      # outbox ref of a list: ev:<month>:<rater>:<first>:<last>
REMIND_AFTER = timedelta(days=3)
PER_MESSAGE = 15
MAX_NOTE = 500
SCORES = range(1, 6)
_NUMBERED = re.compile(r"^\s*#?(\d{1,3})[\s.、:：)）]+(.*)$", re.S)

Buttons = list[list[dict[str, str]]]


@dataclass(frozen=True)
class Press:
    """A pressed button: a score (None: the item's name only) for one item of a month."""

    score: int | None
    month: str
    unit_code: str
    subject_id: int


def press_data(score: int | str, month: str, unit_code: str, subject_id: int) -> str:
    return f"{PREFIX}:{score}:{month}:{unit_code}:{subject_id}"


def read_press(data: str | None) -> Press | None:
    """A button's data, or None when it is not one of ours (client input: checked)."""
    parts = (data or "").split(":")
    if len(parts) != 5 or parts[0] != PREFIX or not parts[4].isdigit():
        return None
    score_text, month, code, subject = parts[1:]
    if periods.parse_month(month) is None or not code:
        return None
    if score_text == INFO:
        return Press(None, month, code, int(subject))
    if not score_text.isdigit() or int(score_text) not in SCORES:
        return None
    return Press(int(score_text), month, code, int(subject))


@dataclass(frozen=True)
class View:
    text: str
    buttons: Buttons


@dataclass(frozen=True)
class Rated:
    item: Evaluation
    name: str
    view: View          # the pressed message as it is now


@dataclass(frozen=True)
class Noted:
    item: Evaluation
    name: str
    view: View          # the list the reply answered, as it is now


class EvaluationService(Service):

    def sent_hooks(self) -> dict[str, SentHook]:
        return {REF: self._list_sent}

    async def _list_sent(self, item: OutboxItem, result: Any) -> None:
        _, month, rater, first, last = (item.ref or "").split(":")
        await self.store.evaluations.add_message(EvaluationMessage(
            chat_id=item.chat_id, message_id=int(result["message_id"]), month=month,
            rater_id=int(rater), first=int(first), last=int(last)))

    # ------------------------------------------------------------------ the round

    async def open_month(self, month: str, now: datetime, send: bool = True) -> int:
        """Inside the scheduled run's transaction: open the month's round, write what each
        rater is asked and send each their list (`send=False`: the playground's world, set up
        as if the lists had gone out before). Returns the messages queued."""
        if not await self.store.evaluations.open_round(month, now.timestamp()):
            return 0
        posts = 0
        for rater, items in (await self._asks(month)).items():
            for item in items:
                await self.store.evaluations.ask(item)
            if send:
                posts += await self._send_lists(rater, month, items, missing=None)
        return posts

    async def _asks(self, month: str) -> dict[int, list[Evaluation]]:
        """Staff × the grids of their community; leaders × the workers of their grid."""
        asks: dict[int, list[Evaluation]] = {}

        def add(rater: int, kind: str, unit_code: str, subject_id: int) -> None:
            mine = asks.setdefault(rater, [])
            if any(i.unit_code == unit_code and i.subject_id == subject_id for i in mine):
                return
            mine.append(Evaluation(month=month, rater_id=rater, kind=kind, unit_code=unit_code,
                                   subject_id=subject_id, position=len(mine) + 1))

        units = await self.store.map.all()
        communities = [u for u in units if u.kind == "community"]
        grids = [u for u in units if u.kind == "grid"]
        for community in communities:
            staff = await self.store.people.holders(("community_staff",), [community.code])
            mine = [g for g in grids if g.parent_code == community.code]
            for holder in staff:
                for grid in mine:
                    add(holder.user_id, GRID, grid.code, 0)
        for grid in grids:
            leaders = await self.store.people.holders(("grid_leader",), [grid.code])
            workers = await self.store.people.holders(("grid_worker",), [grid.code])
            for leader in leaders:
                for worker in workers:
                    if worker.user_id != leader.user_id:
                        add(leader.user_id, WORKER, grid.code, worker.user_id)
        return asks

    async def _send_lists(self, rater: int, month: str, items: list[Evaluation],
                          missing: int | None) -> int:
        """The rater's list, in messages of `PER_MESSAGE` items (`missing`: a reminder)."""
        locale = await self.people.locale_for(rater)
        names = await self._names(locale, items)
        posts = 0
        for start in range(0, len(items), PER_MESSAGE):
            chunk = items[start:start + PER_MESSAGE]
            view = self._render(locale, month, chunk, names, missing if start == 0 else None,
                                await self._themes(locale, month, chunk))
            await self.outbox.send(
                rater, view.text, buttons=view.buttons, priority=Priority.PERSONAL,
                ref=f"{REF}:{month}:{rater}:{chunk[0].position}:{chunk[-1].position}")
            posts += 1
        return posts

    async def remind_due(self, now: datetime) -> int:
        """Inside a transaction: the open round's raters with ratings missing three days
        after it opened get their list again, once each."""
        latest = await self.store.evaluations.latest_round()
        if latest is None or now.timestamp() < latest[1] + REMIND_AFTER.total_seconds():
            return 0
        month = latest[0]
        by_rater: dict[int, list[Evaluation]] = {}
        for item in await self.store.evaluations.asked(month):
            by_rater.setdefault(item.rater_id, []).append(item)
        posts = 0
        for rater, items in by_rater.items():
            missing = sum(1 for i in items if i.score is None)
            if not missing or not await self.store.schedules.claim_post(
                    REMINDER_JOB, month, rater):
                continue
            posts += await self._send_lists(rater, month, items, missing=missing)
        return posts

    # ------------------------------------------------------------------ rating

    async def _check_open(self, month: str) -> None:
        if await self.store.evaluations.opened_at(month) is None:
            raise Refused("evaluation.no_round", month=month)
        if await self.store.evaluations.opened_at(periods.shift_month(month, 1)) is not None:
            raise Refused("evaluation.closed", month=month)

    async def _item(self, actor: Actor, month: str, unit_code: str,
                    subject_id: int) -> Evaluation:
        """The actor's own item, while they still hold the role over it."""
        item = await self.store.evaluations.get(month, actor.user_id, unit_code, subject_id)
        if item is None or not await self.access.can(actor, Action.EVALUATE, unit_code):
            raise Refused("evaluation.not_yours")
        if item.kind == WORKER and not actor.superadmin and not any(
                g.role == "grid_leader" and g.unit_code == unit_code for g in actor.grants):
            raise Refused("evaluation.not_yours")
        return item

    async def info(self, actor: Actor, press: Press, locale: str) -> str:
        """The name of a list row's item and its rating (the row's first button)."""
        item = await self._item(actor, press.month, press.unit_code, press.subject_id)
        name = (await self._names(locale, [item]))[_key(item)]
        if item.score is None:
            return t(locale, "evaluation.info_missing", name=name)
        return t(locale, "evaluation.info_rated", name=name, score=item.score)

    async def rate(self, actor: Actor, press: Press, chat_id: int, message_id: int,
                   locale: str, now: datetime) -> Rated:
        """A score pressed: recorded (or changed) while the round is open."""
        assert press.score is not None
        await self._check_open(press.month)
        item = await self._item(actor, press.month, press.unit_code, press.subject_id)
        async with self.store.transaction():
            await self._check_open(press.month)
            await self.store.evaluations.rate(press.month, actor.user_id, press.unit_code,
                                              press.subject_id, press.score, now.timestamp())
        item = item.model_copy(update={"score": press.score, "rated_at": now.timestamp()})
        view = await self._view_of(actor.user_id, press.month, chat_id, message_id,
                                   item.position, locale)
        name = (await self._names(locale, [item]))[_key(item)]
        return Rated(item=item, name=name, view=view)

    async def note(self, actor: Actor, chat_id: int, message_id: int, text: str,
                   locale: str) -> Noted | None:
        """A reply to one of the actor's lists: a note on the item whose number starts it,
        else on the one rated last. None: not a reply to such a list."""
        message = await self.store.evaluations.message(chat_id, message_id)
        if message is None or message.rater_id != actor.user_id:
            return None
        await self._check_open(message.month)
        items = [i for i in await self.store.evaluations.asked(message.month, actor.user_id)
                 if message.first <= i.position <= message.last]
        numbered = _NUMBERED.match(text)
        chosen: Evaluation | None = None
        if numbered is not None:
            chosen = next((i for i in items if i.position == int(numbered.group(1))), None)
            if chosen is not None:
                text = numbered.group(2)
        if chosen is None:
            rated = [i for i in items if i.rated_at is not None]
            if not rated:
                raise Refused("evaluation.note_rate_first")
            chosen = max(rated, key=lambda i: i.rated_at or 0.0)
        note = text.strip()
        if not note:
            raise Refused("evaluation.note_empty")
        if len(note) > MAX_NOTE:
            raise Refused("evaluation.note_too_long", limit=MAX_NOTE)
        chosen = await self._item(actor, chosen.month, chosen.unit_code, chosen.subject_id)
        async with self.store.transaction():
            await self._check_open(message.month)
            await self.store.evaluations.set_note(chosen.month, actor.user_id,
                                                  chosen.unit_code, chosen.subject_id, note)
        chosen = chosen.model_copy(update={"note": note})
        view = await self._view_of(actor.user_id, message.month, chat_id, message_id,
                                   chosen.position, locale)
        return Noted(item=chosen, name=(await self._names(locale, [chosen]))[_key(chosen)],
                     view=view)

    async def _view_of(self, rater: int, month: str, chat_id: int, message_id: int,
                       position: int, locale: str) -> View:
        """The list message as it reads now (its range from the store; else the chunk of
        the position)."""
        message = await self.store.evaluations.message(chat_id, message_id)
        if message is not None and message.rater_id == rater and message.month == month:
            first, last = message.first, message.last
        else:
            first = (position - 1) // PER_MESSAGE * PER_MESSAGE + 1
            last = first + PER_MESSAGE - 1
        items = [i for i in await self.store.evaluations.asked(month, rater)
                 if first <= i.position <= last]
        return self._render(locale, month, items, await self._names(locale, items), None,
                            await self._themes(locale, month, items))

    # ------------------------------------------------------------------ showing

    async def _names(self, locale: str, items: Iterable[Evaluation]) -> dict[str, Markup]:
        """Each item's name, as safe HTML (put into texts as it is)."""
        items = list(items)
        units = {u.code: u for u in await self.store.map.all()}
        people = {p.user_id: p for p in await self.store.people.many(
            {i.subject_id for i in items if i.kind == WORKER})}
        names: dict[str, Markup] = {}
        for item in items:
            grid = units.get(item.unit_code)
            grid_name = grid.name if grid is not None else item.unit_code
            if item.kind == GRID:
                names[_key(item)] = Markup(t(locale, "evaluation.name_grid", grid=grid_name,
                                             code=item.unit_code))
            else:
                person = people.get(item.subject_id)
                names[_key(item)] = Markup(t(
                    locale, "evaluation.name_worker", grid=grid_name,
                    name=person.display_name if person else str(item.subject_id)))
        return names

    async def _themes(self, locale: str, month: str, items: list[Evaluation]) -> list[str]:
        """The month's theme of each community the items' grids belong to (what is rated)."""
        units = {u.code: u for u in await self.store.map.all()}
        lines = []
        for code in dict.fromkeys(units[i.unit_code].parent_code for i in items
                                  if i.unit_code in units):
            community = units.get(code or "")
            theme = await self.store.schedules.theme(code or "", month)
            if community is not None and theme is not None:
                lines.append(t(locale, "evaluation.theme_line", community=community.name,
                               theme=theme.text))
        return lines

    def _render(self, locale: str, month: str, items: list[Evaluation],
                names: dict[str, Markup], missing: int | None, themes: list[str]) -> View:
        lines = []
        if missing is not None:
            lines.append(tn(locale, "evaluation.reminder", missing, count=missing, month=month))
        lines.append(t(locale, "evaluation.ask", month=month))
        lines += themes
        buttons: Buttons = []
        for item in items:
            name = names[_key(item)]
            if item.score is None:
                lines.append(t(locale, "evaluation.line_missing", n=item.position, name=name))
            else:
                lines.append(t(locale, "evaluation.line_rated", n=item.position, name=name,
                               score=item.score))
            if item.note:
                lines.append(t(locale, "evaluation.line_note", note=item.note))
            row = [{"text": f"{item.position}.", "callback_data": press_data(
                INFO, month, item.unit_code, item.subject_id)}]
            row += [{"text": f"✅ {n}" if item.score == n else f"⭐ {n}",
                     "callback_data": press_data(n, month, item.unit_code, item.subject_id)}
                    for n in SCORES]
            buttons.append(row)
        lines.append(t(locale, "evaluation.how_to_note"))
        return View(text="\n".join(lines), buttons=buttons)

    async def listing(self, actor: Actor, month_text: str | None, now: datetime,
                      locale: str) -> str:
        """`/evaluations [YYYY-MM]`: given and missing, within the asker's scope (default:
        the latest round)."""
        if not self.access.can_somewhere(actor, Action.EVALUATE):
            raise Refused("evaluation.not_allowed")
        now = now.astimezone(self.settings.tz)
        current = periods.month_key(now)
        if month_text is None:
            latest = await self.store.evaluations.latest_round()
            month = latest[0] if latest else periods.shift_month(current, -1)
        else:
            parsed = periods.parse_month(month_text)
            if parsed is None:
                raise Refused("evaluation.bad_month", text=month_text[:20])
            month = parsed
        if month >= current and await self.store.evaluations.opened_at(month) is None:
            raise Refused("evaluation.future_month", month=month)
        scope = await actor_scope(self.store, self.access, actor, Action.EVALUATE,
                                  "evaluation.not_allowed")
        title = t(locale, "evaluation.list_title", month=month, scope=scope.label(locale))
        if await self.store.evaluations.opened_at(month) is None:
            return "\n".join([title, t(locale, "evaluation.list_no_round", month=month)])
        items = await self.store.evaluations.asked(month, unit_codes=scope.grid_codes)
        if not items:
            return "\n".join([title, t(locale, "evaluation.list_empty")])
        names = await self._names(locale, items)
        raters = {p.user_id: p.display_name for p in await self.store.people.many(
            {i.rater_id for i in items})}
        closed = await self.store.evaluations.opened_at(periods.shift_month(month, 1))
        lines = [title, t(locale, "evaluation.list_closed" if closed is not None
                          else "evaluation.list_open")]
        grid_order = {g.code: n for n, g in enumerate(scope.grids)}
        for kind, heading in ((GRID, "evaluation.list_grids"),
                              (WORKER, "evaluation.list_workers")):
            mine = sorted((i for i in items if i.kind == kind),
                          key=lambda i: (grid_order.get(i.unit_code, 0), i.subject_id))
            if not mine:
                continue
            lines.append(t(locale, heading))
            for key in dict.fromkeys(_key(i) for i in mine):
                rows = [i for i in mine if _key(i) == key]
                lines.append(_subject_line(locale, names[key], rows, raters))
        missing = sum(1 for i in items if i.score is None)
        lines.append(tn(locale, "evaluation.list_missing_total", missing, count=missing))
        return "\n".join(lines)


def _key(item: Evaluation) -> str:
    return f"{item.unit_code}:{item.subject_id}"


def _subject_line(locale: str, name: Markup, rows: list[Evaluation],
                  raters: dict[int, str]) -> str:
    given = [r for r in rows if r.score is not None]
    missing = [r for r in rows if r.score is None]
    parts = [t(locale, "evaluation.list_given", rater=raters.get(r.rater_id, str(r.rater_id)),
               score=r.score) for r in given]
    parts += [t(locale, "evaluation.list_missing",
                rater=raters.get(r.rater_id, str(r.rater_id))) for r in missing]
    average = sum(r.score or 0 for r in given) / len(given) if given else None
    if average is None:
        return t(locale, "evaluation.list_subject_none", name=name, parts=Markup("; ".join(parts)))
    return t(locale, "evaluation.list_subject", name=name, average=f"{average:.1f}",
             parts=Markup("; ".join(parts)))
