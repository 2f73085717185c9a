"""The residents' quarterly vote 群众评单 (SPEC §10).

On the first day of each quarter (`GRIDHORN_VOTE_CRON`, a scheduler job) every bound building
chat gets a vote on the property firm serving its estate (the estate's `property_code`), with
buttons ⭐ 1–5 (`uv:<vote>:<stars>`). Each resident of that building votes once; a second tap
changes their vote; anyone else is told they cannot vote. The post shows how many voted, not
the average, until the vote closes after seven days: the scheduler's every run closes the
votes that are due (`close_due`; `closed_at` set once, in the transaction that queues the
result), so a restart neither skips nor repeats a close. The average, × 10, joins the unit's
score (`unit_scores`) for the period in which the vote closed.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from bot.hooks import SentHook
from bot.i18n import t
from bot.services.base import Service
from bot.services.errors import Refused
from bot.services.outbox import Priority
from bot.services.scopes import bound_targets
from bot.services.unit_scores import VOTE_POINTS
from storage.models import OutboxItem, Unit, UnitVote, VoteTally

JOB = "unit_vote"
REF = "uvote"
OPEN_S = 7 * 86400
VOTE_PATTERN = r"^uv:\d+:[1-5]$"
Buttons = list[list[dict[str, str]]]


def vote_data(vote_id: int, stars: int) -> str:
    return f"uv:{vote_id}:{stars}"


def read_vote_press(data: str) -> tuple[int, int]:
    match = re.fullmatch(r"uv:(\d+):([1-5])", data)
    if match is None:
        raise Refused("button.stale")
    return int(match.group(1)), int(match.group(2))


def _label(unit: Unit | None, code: str) -> str:
    return f"{unit.name} ({unit.code})" if unit else code


class VoteService(Service):
    async def _view(self, vote: UnitVote, locale: str) -> tuple[str, Buttons | None]:
        unit = await self.store.map.get(vote.unit_code)
        building = await self.store.map.get(vote.building_code)
        tally = await self.store.votes.tally([vote.id])
        closes = datetime.fromtimestamp(vote.closes_at, self.settings.tz).strftime(
            "%Y-%m-%d %H:%M")
        values = {"period": vote.period, "unit": _label(unit, vote.unit_code),
                  "building": _label(building, vote.building_code), "count": tally.votes,
                  "closes": closes}
        if vote.closed_at is not None:
            return t(locale, "board_units.vote_post_closed", **values), None
        buttons = [[{"text": f"⭐ {n}", "callback_data": vote_data(vote.id, n)}
                    for n in range(1, 6)]]
        return t(locale, "board_units.vote_post", **values), buttons

    async def open_quarter(self, period: str, now: datetime) -> int:
        """Inside the job's transaction: a vote to each bound building chat whose estate
        names a property unit (once per building and quarter: the store's key decides)."""
        posts = 0
        at = now.timestamp()
        for target in await bound_targets(self.store, self.settings, "building"):
            chain = await self.store.map.ancestors(target.unit.code)
            estate = next((u for u in chain if u.kind == "estate"), None)
            if estate is None or estate.property_code is None:
                continue
            firm = await self.store.map.get(estate.property_code)
            if firm is None or firm.kind != "member":
                continue
            vote = await self.store.votes.open(period, target.unit.code, firm.code,
                                               target.chat_id, target.thread_id, at,
                                               at + OPEN_S)
            if vote is None:
                continue
            text, buttons = await self._view(vote, target.locale)
            await self.outbox.send(target.chat_id, text, priority=Priority.SERVICE,
                                   buttons=buttons, thread_id=target.thread_id,
                                   ref=f"{REF}:{vote.id}", dedupe_key=f"{REF}:{vote.id}")
            posts += 1
        return posts

    def sent_hooks(self) -> dict[str, SentHook]:
        return {REF: self._on_sent}

    async def _on_sent(self, item: OutboxItem, result: Any) -> None:
        """The vote post went out: remember it; votes cast (or a close) while it waited are
        shown at once."""
        vote_id = int((item.ref or "").split(":")[1])
        message_id = result["message_id"]
        assert isinstance(message_id, int)
        async with self.store.transaction():
            await self.store.votes.set_message(vote_id, message_id)
            vote = await self.store.votes.get(vote_id)
            if vote is not None and (vote.closed_at is not None
                                     or (await self.store.votes.tally([vote_id])).votes):
                await self._refresh(vote)

    async def _refresh(self, vote: UnitVote) -> None:
        if vote.message_id is None:
            return
        text, buttons = await self._view(vote, await self.people.locale_in(vote.chat_id))
        await self.outbox.edit(vote.chat_id, vote.message_id, text,
                               priority=Priority.SERVICE, buttons=buttons)

    async def cast(self, user_id: int, building_code: str | None, data: str
                   ) -> tuple[bool, int]:
        """A tap on ⭐ N: the resident's ballot (True: their first; False: changed) and the
        stars. Refused for a closed vote and for anyone who does not live in the building."""
        vote_id, stars = read_vote_press(data)
        async with self.store.transaction():
            vote = await self.store.votes.get(vote_id)
            if vote is None:
                raise Refused("button.stale")
            if vote.closed_at is not None or self.clock() >= vote.closes_at:
                raise Refused("board_units.vote_over")
            if building_code != vote.building_code:
                building = await self.store.map.get(vote.building_code)
                raise Refused("board_units.not_resident",
                              building=building.name if building else vote.building_code)
            first = await self.store.votes.cast(vote.id, user_id, stars, self.clock())
            await self._refresh(vote)
        return first, stars

    async def close_due(self, now: float) -> int:
        """Close every vote whose seven days are over: the post shows the final count, the
        result is posted; each once. How many closed."""
        closed = 0
        for due in await self.store.votes.due(now):
            async with self.store.transaction():
                if not await self.store.votes.close(due.id, now):
                    continue
                vote = await self.store.votes.get(due.id)
                assert vote is not None
                await self._refresh(vote)
                await self._result(vote, await self.store.votes.tally([vote.id]))
            closed += 1
        return closed

    async def _result(self, vote: UnitVote, tally: VoteTally) -> None:
        locale = await self.people.locale_in(vote.chat_id)
        unit = await self.store.map.get(vote.unit_code)
        values = {"period": vote.period, "unit": _label(unit, vote.unit_code),
                  "count": tally.votes}
        if tally.average is None:
            text = t(locale, "board_units.vote_result_none", **values)
        else:
            text = t(locale, "board_units.vote_result", average=f"{tally.average:.1f}",
                     points=f"{VOTE_POINTS * tally.average:.1f}", **values)
        await self.outbox.send(vote.chat_id, text, priority=Priority.SERVICE,
                               thread_id=vote.thread_id, dedupe_key=f"{REF}:result:{vote.id}")
