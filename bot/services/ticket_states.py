"""A ticket's lifecycle as one table (SPEC §4): for each action, the states it is allowed
from, the state it leads to, the timeline event it writes and who is told.

`TicketLifecycle` (bot/services/ticket_lifecycle.py) reads this table for every step; the
rules that are not about the state (who may act, which level, what words) stay with the
actions themselves.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

from bot.i18n import CatalogKey
from storage.models import OPEN_STATUSES, TicketStatus


class TicketAction(StrEnum):
    """What someone does to a ticket: a button, a prompt's answer or a rating."""

    ACKNOWLEDGE = "acknowledge"
    SET_URGENCY = "set_urgency"
    ESCALATE = "escalate"
    WHISTLE = "whistle"                    # 吹哨 to a department
    ACCEPT = "accept"                      # 听哨报到: the department accepts
    DECLINE = "decline"                    # 退回: the department returns it
    RESOLVE = "resolve"                    # 办结
    REJECT = "reject"
    MERGE = "merge"
    REPLY = "reply"                        # staff words relayed to the reporter
    OFFER = "offer"                        # 派单: offered as a service request
    POST_TO_BUILDING = "post_to_building"  # 楼栋议事
    ME_TOO = "me_too"                      # 我也是
    TAKE = "take"                          # 接单
    RATE = "rate"                          # 群众评单, 3–5 stars
    REOPEN = "reopen"                      # 群众评单, 1–2 stars
    ANSWER = "answer"                      # the reporter answers a relayed reply
    COMMENT = "comment"                    # the reporter comments on their rating
    RATE_DEPARTMENT = "rate_department"    # 评价: the whistler rates the department's work
    COMMENT_DEPARTMENT = "comment_department"  # the whistler comments on that rating
    ASSIGN = "assign"                      # 点将: staff ask one person (SPEC §10)
    ASSIGN_ACCEPT = "assign_accept"        # they accept: the assignee, as "Take it"
    ASSIGN_DECLINE = "assign_decline"      # they decline
    PROGRESS = "progress"                  # 进展: the assignee's update


class TimelineEvent(StrEnum):
    """A row of a ticket's timeline (`/ticket N`); the values are what the store holds."""

    CREATED = "created"
    ACKNOWLEDGED = "acknowledged"
    URGENCY = "urgency"
    ESCALATED = "escalated"
    WHISTLED = "whistled"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    RESOLVED = "resolved"
    REJECTED = "rejected"
    MERGED = "merged"
    REPLIED = "replied"
    REPORTER_ANSWERED = "reporter_answered"
    OFFERED = "offered"
    POSTED_TO_BUILDING = "posted_to_building"
    TAKEN = "taken"
    RATED = "rated"
    REOPENED = "reopened"
    COMMENTED = "commented"
    OVERDUE = "overdue"
    DEPARTMENT_RATED = "department_rated"
    DEPARTMENT_COMMENTED = "department_commented"
    RESOURCE = "resource"   # a member unit's resource requested, accepted or declined (§10)
    ASSIGNED = "assigned"                  # 点将 (§10): asked; accepted is TAKEN
    ASSIGN_DECLINED = "assign_declined"
    PROGRESS = "progress"


OPEN = frozenset(OPEN_STATUSES)
ANY = frozenset(TicketStatus)
_NO_OVERRIDES: Mapping[TicketStatus, CatalogKey] = MappingProxyType({})


@dataclass(frozen=True)
class Step:
    """One row of the lifecycle. `to` None: the state stays. `reporter`, `staff` and
    `liaisons` are the catalog keys of what the reporter, the ticket's staff thread and the
    department's liaisons are told (None: nothing)."""

    allowed: frozenset[TicketStatus]
    to: TicketStatus | None
    event: TimelineEvent | None
    reporter: CatalogKey | None = None
    staff: CatalogKey | None = None
    liaisons: CatalogKey | None = None
    refused: CatalogKey = "ticket.bad_state"
    refusals: Mapping[TicketStatus, CatalogKey] = field(default_factory=lambda: _NO_OVERRIDES)
    refreshes_cards: bool = True


_CLOSED = "ticket.closed"
_ASK_CLOSED = "assign.closed"
_RATED_ALREADY = MappingProxyType({TicketStatus.RATED: "ticket.already_rated"})
_BEFORE_WHISTLE = frozenset({TicketStatus.NEW, TicketStatus.ACKNOWLEDGED, TicketStatus.ESCALATED})

LIFECYCLE: Mapping[TicketAction, Step] = MappingProxyType({
    TicketAction.ACKNOWLEDGE: Step(
        frozenset({TicketStatus.NEW}), TicketStatus.ACKNOWLEDGED, TimelineEvent.ACKNOWLEDGED,
        reporter="notice.acknowledged"),
    TicketAction.SET_URGENCY: Step(OPEN, None, TimelineEvent.URGENCY, refused=_CLOSED),
    TicketAction.ESCALATE: Step(
        frozenset({TicketStatus.NEW, TicketStatus.ACKNOWLEDGED}), TicketStatus.ESCALATED,
        TimelineEvent.ESCALATED, reporter="notice.escalated", staff="staff.escalated"),
    TicketAction.WHISTLE: Step(
        _BEFORE_WHISTLE, TicketStatus.WHISTLED, TimelineEvent.WHISTLED,
        reporter="notice.whistled", liaisons="dept.whistled"),
    TicketAction.ACCEPT: Step(
        frozenset({TicketStatus.WHISTLED}), TicketStatus.ACCEPTED, TimelineEvent.ACCEPTED,
        reporter="notice.accepted", staff="staff.accepted"),
    TicketAction.DECLINE: Step(
        frozenset({TicketStatus.WHISTLED}), TicketStatus.ESCALATED, TimelineEvent.DECLINED,
        reporter="notice.declined", staff="staff.declined"),
    TicketAction.RESOLVE: Step(
        OPEN, TicketStatus.RESOLVED, TimelineEvent.RESOLVED, reporter="notice.resolved",
        staff="staff.resolved", refused=_CLOSED),
    TicketAction.REJECT: Step(
        OPEN, TicketStatus.REJECTED, TimelineEvent.REJECTED, reporter="notice.rejected",
        refused=_CLOSED),
    TicketAction.MERGE: Step(
        OPEN, TicketStatus.MERGED, TimelineEvent.MERGED, reporter="notice.merged",
        refused=_CLOSED),
    TicketAction.REPLY: Step(
        ANY, None, TimelineEvent.REPLIED, reporter="notice.reply", refreshes_cards=False),
    TicketAction.OFFER: Step(OPEN, None, TimelineEvent.OFFERED, refused=_CLOSED),
    TicketAction.POST_TO_BUILDING: Step(
        OPEN, None, TimelineEvent.POSTED_TO_BUILDING, refused=_CLOSED, refreshes_cards=False),
    TicketAction.ME_TOO: Step(OPEN, None, None, refused=_CLOSED, refreshes_cards=False),
    TicketAction.TAKE: Step(
        OPEN, None, TimelineEvent.TAKEN, reporter="notice.taken", refused=_CLOSED),
    TicketAction.RATE: Step(
        frozenset({TicketStatus.RESOLVED}), TicketStatus.RATED, TimelineEvent.RATED,
        reporter="notice.rated", refusals=_RATED_ALREADY),
    TicketAction.REOPEN: Step(
        frozenset({TicketStatus.RESOLVED}), TicketStatus.ESCALATED, TimelineEvent.REOPENED,
        reporter="notice.reopened", staff="staff.reopened", refusals=_RATED_ALREADY),
    TicketAction.ANSWER: Step(
        ANY, None, TimelineEvent.REPORTER_ANSWERED, reporter="notice.answer_passed",
        staff="staff.reporter_answer", refreshes_cards=False),
    TicketAction.COMMENT: Step(
        ANY, None, TimelineEvent.COMMENTED, staff="staff.comment", refreshes_cards=False),
    # whether the whistle may be rated (accepted, then resolved) is read from the timeline
    TicketAction.RATE_DEPARTMENT: Step(
        ANY, None, TimelineEvent.DEPARTMENT_RATED, refreshes_cards=False),
    TicketAction.COMMENT_DEPARTMENT: Step(
        ANY, None, TimelineEvent.DEPARTMENT_COMMENTED, refreshes_cards=False),
    # 点将 (SPEC §10): the chosen person is asked; accepting makes them the assignee as Take
    # does (the reporter hears it is taken); they post progress; they resolve as RESOLVE
    TicketAction.ASSIGN: Step(OPEN, None, TimelineEvent.ASSIGNED, refused=_CLOSED,
                              refreshes_cards=False),
    # an answer to an ask of a ticket closed since (its ask withdrawn then) hears it is closed
    TicketAction.ASSIGN_ACCEPT: Step(
        OPEN, None, TimelineEvent.TAKEN, reporter="notice.taken",
        staff="assign.staff_accepted", refused=_ASK_CLOSED),
    TicketAction.ASSIGN_DECLINE: Step(
        OPEN, None, TimelineEvent.ASSIGN_DECLINED, staff="assign.staff_declined",
        refused=_ASK_CLOSED, refreshes_cards=False),
    TicketAction.PROGRESS: Step(
        OPEN, None, TimelineEvent.PROGRESS, staff="assign.staff_progress", refused=_CLOSED,
        refreshes_cards=False),
})


def refusal_key(action: TicketAction, status: TicketStatus) -> CatalogKey | None:
    """The catalog key that refuses `action` on a ticket in `status`; None: allowed."""
    step = LIFECYCLE[action]
    if status in step.allowed:
        return None
    return step.refusals.get(status, step.refused)
