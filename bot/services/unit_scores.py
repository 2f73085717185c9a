"""A member unit's score for a period (SPEC §10 "Unit boards"): the one function the unit
boards (`/board property|social|units`) and `/units` (this quarter) both use.

score = confirmed people-hours on horns confirmed in the period (1 a person-hour)
      + post slots held (2 a slot-month: each month of the period a slot was held in,
        released ones too)
      + resources provided on request, accepted in the period (3 each)
      + meetings attended on time (2 each: a sign-in not late, once per meeting and unit)
      + the residents' vote (群众评单) closed in the period: its average × 10
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo

from storage.store import Store

HOUR_POINTS = 1
SLOT_MONTH_POINTS = 2
RESOURCE_POINTS = 3
MEETING_POINTS = 2
VOTE_POINTS = 10  # × the vote's average


@dataclass(frozen=True)
class UnitScore:
    code: str
    hours: float = 0.0
    slot_months: int = 0
    resources: int = 0
    meetings: int = 0
    votes: int = 0
    vote_average: float | None = None

    @property
    def score(self) -> float:
        return round(HOUR_POINTS * self.hours + SLOT_MONTH_POINTS * self.slot_months
                     + RESOURCE_POINTS * self.resources + MEETING_POINTS * self.meetings
                     + VOTE_POINTS * (self.vote_average or 0.0), 1)


def months_held(since: float, until: float | None, start: float, end: float,
                tz: tzinfo) -> int:
    """The calendar months of [start, end) in which a slot held from `since` (to `until`,
    None: still) was held."""
    begin = max(since, start)
    stop = end if until is None else min(until, end)
    if begin >= stop:
        return 0
    first = datetime.fromtimestamp(begin, tz)
    last = datetime.fromtimestamp(stop - 1e-3, tz)
    return (last.year - first.year) * 12 + last.month - first.month + 1


async def unit_scores(store: Store, codes: list[str], start: float, end: float, now: float,
                      tz: tzinfo) -> dict[str, UnitScore]:
    """Each of these member units' score for [start, end) (a period not over yet counts
    slot-months up to `now`)."""
    wanted = set(codes)
    hours = await store.votes.horn_hours(start, end)
    resources = await store.votes.resources_provided(start, end)
    slots: dict[str, int] = {}
    held_to = min(end, max(now, start))
    for code, since, until in await store.votes.slots_held(start, held_to):
        if code in wanted:
            slots[code] = slots.get(code, 0) + months_held(since, until, start, held_to, tz)
    attended: set[tuple[str, int]] = set()
    for row in await store.meetings.attendance_between(start, end):
        if row.unit_code in wanted and not row.late:
            attended.add((row.unit_code, row.meeting_id))
    meetings: dict[str, int] = {}
    for code, _ in attended:
        meetings[code] = meetings.get(code, 0) + 1
    votes: dict[str, list[int]] = {}
    for vote in await store.votes.closed_between(start, end):
        if vote.unit_code in wanted:
            votes.setdefault(vote.unit_code, []).append(vote.id)
    scores = {}
    for code in codes:
        tally = await store.votes.tally(votes.get(code, []))
        scores[code] = UnitScore(code=code, hours=hours.get(code, 0.0),
                                 slot_months=slots.get(code, 0),
                                 resources=resources.get(code, 0),
                                 meetings=meetings.get(code, 0), votes=tally.votes,
                                 vote_average=tally.average)
    return scores
