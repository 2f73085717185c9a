"""Domain records as the store returns them (pydantic models, no Telegram types)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

UnitKind = Literal["community", "grid", "estate", "building", "department", "member"]
#: member units' types (SPEC §10): 物业企业, 业委会, 社会组织, 驻地单位, 双报到单位, 执法力量
MEMBER_TYPES: tuple[str, ...] = ("property", "owners", "social", "resident_unit", "dual_report",
                                 "enforcement")
TREE_KINDS: tuple[UnitKind, ...] = ("community", "grid", "estate", "building")
ROLES = ("superadmin", "community_staff", "grid_leader", "grid_worker", "building_head",
         "department_liaison", "volunteer", "resident", "partner_clerk", "unit_contact",
         "unit_member")
PARTY_MEMBER = "party_member"


class Record(BaseModel):
    model_config = ConfigDict(frozen=True)


class Unit(Record):
    """A unit of the five-level map (社区/网格/小区/楼栋) or a department (部门)."""

    code: str
    kind: UnitKind
    name: str
    parent_code: str | None = None
    domains: tuple[str, ...] = ()
    patrol: str | None = None
    position: int = 0
    #: a member unit's type (MEMBER_TYPES); None for the map's other units
    member_type: str | None = None
    #: an estate's property firm: the code of a `property` member unit of its community
    property_code: str | None = None


class Chat(Record):
    chat_id: int
    type: str
    title: str | None = None
    is_forum: bool = False
    active: bool = True
    locale: str | None = None
    bot_is_admin: bool = False
    can_pin: bool = False
    can_manage_topics: bool = False


class Binding(Record):
    """A unit's chat (楼事群, grid staff chat …); thread_id 0 means the whole chat."""

    unit_code: str
    chat_id: int
    thread_id: int = 0


class Person(Record):
    user_id: int
    first_name: str = ""
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = None
    locale: str | None = None
    building_code: str | None = None
    started: bool = False
    blocked: bool = False
    skills: tuple[str, ...] = ()
    availability: str | None = None
    hours: float = 0
    points: int = 0
    #: SPEC §14: when they agreed to the notice (None: their first Submit asks first)
    consented_at: float | None = None
    #: an erased person's row (`/forget`): no name, no username, no language
    erased: bool = False

    @property
    def display_name(self) -> str:
        return " ".join(p for p in (self.first_name, self.last_name) if p) or str(self.user_id)


class RoleGrant(Record):
    """A role held on a unit; covers everything below that unit."""

    user_id: int
    role: str
    unit_code: str


class Invite(Record):
    token: str
    kind: Literal["role", "join"]
    role: str | None
    unit_code: str
    created_by: int | None
    created_at: datetime
    expires_at: datetime | None
    used_by: int | None = None
    used_at: datetime | None = None


class Draft(Record):
    """A person's opinion draft, not yet a ticket: text, photo, domain, anonymous, card."""

    user_id: int
    data: dict[str, Any]


class Flow(Record):
    """A person's guided flow (the `data` dict is the flow's own)."""

    user_id: int
    name: str
    step: str
    data: dict[str, Any]


class OutboxItem(Record):
    id: int
    chat_id: int
    method: str
    payload: dict[str, Any]
    priority: int
    quiet: bool
    not_before: float
    ref: str | None
    attempts: int
    status: str = "pending"
    message_id: int | None = None
    created_at: float
    coalesce_key: str | None = None   # a pending edit that a newer one replaces


class TicketStatus(StrEnum):
    """Where a ticket stands (SPEC §4); the values are what the store holds."""

    NEW = "new"
    ACKNOWLEDGED = "acknowledged"
    ESCALATED = "escalated"
    WHISTLED = "whistled"
    ACCEPTED = "accepted"
    RESOLVED = "resolved"
    RATED = "rated"
    REJECTED = "rejected"
    MERGED = "merged"


OPEN_STATUSES: tuple[TicketStatus, ...] = (
    TicketStatus.NEW, TicketStatus.ACKNOWLEDGED, TicketStatus.ESCALATED, TicketStatus.WHISTLED,
    TicketStatus.ACCEPTED)


class TicketLevel(StrEnum):
    """Who owes the ticket: its building heads, its grid, its community."""

    BUILDING = "building"
    GRID = "grid"
    COMMUNITY = "community"


class Urgency(StrEnum):
    ROUTINE = "routine"
    MAJOR = "major"
    URGENT = "urgent"


class DueKind(StrEnum):
    """Which deadline a ticket owes next (each urgency sets all three)."""

    ACKNOWLEDGE = "ack"
    ACCEPT = "accept"
    RESOLVE = "resolve"


DOMAINS: tuple[str, ...] = ("red", "orange", "gold", "green", "cyan", "blue", "purple")


class TicketSource(StrEnum):
    """Where a ticket came from (SPEC §11): a resident's own opinion, or a case staff
    entered (工单录入); the values are what the store holds."""

    RESIDENT = "resident"
    HOTLINE = "hotline"    # 12345热线
    MAILBOX = "mailbox"    # 省长信箱/书记留言
    WALK_IN = "walk_in"    # 来访
    PHONE = "phone"        # 来电
    PATROL = "patrol"      # 巡查发现
    MEETING = "meeting"    # 会议


#: the sources staff enter, in the order the intake offers them
INTAKE_SOURCES: tuple[TicketSource, ...] = tuple(s for s in TicketSource
                                                 if s != TicketSource.RESIDENT)
#: the sources whose cases carry an external reference number
SOURCES_WITH_REF: tuple[TicketSource, ...] = (TicketSource.HOTLINE, TicketSource.MAILBOX)


class Ticket(Record):
    """An opinion (民声) once submitted: #id, its place on the map and its lifecycle."""

    id: int
    reporter_id: int
    anonymous: bool
    building_code: str
    grid_code: str
    community_code: str
    domain: str | None
    text: str
    photo_file_id: str | None
    more_photos: tuple[str, ...] = ()
    status: TicketStatus
    level: TicketLevel
    urgency: Urgency
    department_code: str | None
    merged_into: int | None
    service_request: bool
    assignee_id: int | None
    rating: int | None
    rating_comment: str | None
    result_note: str | None
    me_too: int
    due_kind: DueKind | None
    due_at: float | None
    due_from: float | None
    remind_at: float | None
    staff_thread_id: int | None
    created_at: float
    updated_at: float
    resolved_at: float | None
    whistle_item: str | None = None
    source: TicketSource = TicketSource.RESIDENT
    source_ref: str | None = None
    caller_name: str | None = None   # staff-only (cards, exports)
    caller_phone: str | None = None  # staff-only (cards, exports)
    #: the update whose Submit made it (a replay makes no second ticket); the cards queued
    #: later name it as what they answer (the playground's inspector)
    source_update_id: int | None = None

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def entered(self) -> bool:
        """A case staff entered: no Telegram reporter; its notices go to `reporter_id`, the
        staff member who entered it, who records the caller's verdict."""
        return self.source != TicketSource.RESIDENT

    @property
    def photos(self) -> tuple[str, ...]:
        return (self.photo_file_id, *self.more_photos) if self.photo_file_id else ()


class TicketEvent(Record):
    id: int
    ticket_id: int
    at: float
    actor_id: int | None
    kind: str
    note: str | None
    data: dict[str, Any] | None


class TicketCard(Record):
    ticket_id: int
    chat_id: int
    message_id: int
    kind: str


class Prompt(Record):
    chat_id: int
    message_id: int
    user_id: int | None
    ticket_id: int
    action: str


class Theme(Record):
    """每月主题: a community's theme of a month ("" as community_code: the city-wide one)."""

    community_code: str
    month: str
    text: str
    set_by: int | None
    set_at: float


class Patrol(Record):
    """巡查: one patrol of a grid, recorded by its staff."""

    id: int
    grid_code: str
    user_id: int
    at: float
    location: str | None
    note: str | None


class ReportTicket(Record):
    """A ticket as a report of one period sees it (no reporter: reports are shared)."""

    id: int
    grid_code: str
    building_code: str
    community_code: str
    domain: str | None
    urgency: str
    status: str
    text: str
    created_at: float
    first_resolved_at: float | None
    overdue_in_period: bool
    ratings_in_period: tuple[int, ...]
    source: str = "resident"
    source_ref: str | None = None
    caller_name: str | None = None   # exports go to staff chats only
    caller_phone: str | None = None


class DepartmentEvent(Record):
    """A step of a whistled ticket, for the departments' leaderboard (吹哨报到)."""

    ticket_id: int
    at: float
    kind: str
    note: str | None
    data: dict[str, Any] | None


class WhistleItem(Record):
    """An item of the whistle catalogue 吹哨清单 (SPEC §11): a matter a community may
    whistle, the department it goes to, its points and its own time to accept (seconds)."""

    code: str
    category: str
    name: str
    department_code: str
    points: int | None = None
    deadline: int | None = None
    position: int = 0


class WhistleRating(Record):
    """评价: the whistling staff's 1–5 rating of a department's work on one whistle."""

    whistle_event: int
    ticket_id: int
    department_code: str
    item_code: str | None
    points: int | None
    rater_id: int
    stars: int
    comment: str | None = None
    at: float


class HornLevel(StrEnum):
    """How loud a horn is (SPEC §5): who may sound it, who is called up, whether it is pinned."""

    SERVICE = "service"      # 服务
    MAJOR = "major"          # 攻坚
    EMERGENCY = "emergency"  # 紧急


HORN_LEVELS: tuple[HornLevel, ...] = tuple(HornLevel)


class HornStatus(StrEnum):
    """Active from Publish until the owner closes it."""

    ACTIVE = "active"
    CLOSED = "closed"


class CheckInState(StrEnum):
    """A person's answer to a horn (报到)."""

    IN = "in"
    WAITING = "waiting"        # past the quota: on the waiting list
    WITHDRAWN = "withdrawn"    # "Can't come" after checking in or waiting
    DECLINED = "declined"      # "Can't come" as a first answer


class CopyKind(StrEnum):
    """Where a copy of a horn is: a bound chat's post, or a volunteer's private call-up."""

    GROUP = "group"
    PRIVATE = "private"


class Skill(StrEnum):
    """What a volunteer can do, and what a horn may ask for (SPEC §5)."""

    MEDICAL = "medical"
    LEGAL = "legal"
    ELDERLY = "elderly"
    CHILDCARE = "childcare"
    REPAIRS = "repairs"
    IT = "it"
    TRANSLATION = "translation"
    DRIVING = "driving"
    SANITATION = "sanitation"
    PATROL = "patrol"


SKILLS: tuple[Skill, ...] = tuple(Skill)


class Availability(StrEnum):
    """When a volunteer said they can come (/volunteer); kept comma-joined, or as their own
    words when they typed them."""

    WEEKDAYS = "weekdays"
    WEEKENDS = "weekends"
    EVENINGS = "evenings"
    ANYTIME = "anytime"

    @classmethod
    def read(cls, stored: str | None) -> list[Availability] | None:
        """The buttons' words a stored availability is made of; None when the person typed
        their own words (or gave none)."""
        words = (stored or "").split(",")
        known = {member.value for member in cls}
        if not all(w in known for w in words):
            return None
        return [cls(w) for w in words]


class Horn(Record):
    """An assembly horn (集结号): a call for people, sounded by staff over part of the map."""

    id: int
    owner_id: int
    level: HornLevel
    scope: tuple[str, ...]
    grid_code: str | None
    community_code: str
    title: str
    details: str
    place: str
    starts_at: float | None
    ends_at: float | None
    needed: int
    fill_by: float | None
    widened: bool
    skills: tuple[str, ...]
    short_form: bool
    status: HornStatus
    resound_at: float | None
    resounds: int
    created_at: float
    closed_at: float | None
    closed_by: int | None
    hours: float | None
    confirmed_at: float | None
    confirmed_by: int | None
    #: member units (SPEC §10): how many it calls, and how many of them pledged people
    units_called: int = 0
    units_pledged: int = 0

    @property
    def active(self) -> bool:
        return self.status == HornStatus.ACTIVE


class HornCopy(Record):
    """One message showing a horn: a group post or a private call-up."""

    horn_id: int
    chat_id: int
    message_id: int
    thread_id: int
    kind: CopyKind


class CheckIn(Record):
    """A person's answer to a horn (报到): in, waiting, withdrawn or declined."""

    horn_id: int
    person_id: int
    state: CheckInState
    seq: int
    at: float
    present: bool
    hours: float
    points: int


class Conflict(Exception):
    """The database undid a transaction for a conflict with another one running at the same
    time (PostgreSQL: a deadlock, a serialization failure); done again it succeeds."""


class UpdateTaken(Exception):
    """The update was marked processed by another replica before this one's work committed:
    this work is rolled back (PostgreSQL; a fence that only a lost lane lock can need). The
    handlers' error path lets it pass quietly: the other replica answered the person."""


# the time bank's shop 爱心银行 (SPEC §13; storage/shop.py)

RedemptionStatus = Literal["reserved", "spent", "expired"]
LedgerKind = Literal["opening", "credit", "reserve", "return"]


class Partner(Record):
    """A partner shop 合作商家 of a community, where volunteers spend their points."""

    code: str
    community_code: str
    name: str
    address: str = ""
    chat_id: int | None = None
    position: int = 0


class Redemption(Record):
    id: int
    code: str
    user_id: int
    points: int
    created_at: float
    expires_at: float
    status: RedemptionStatus
    partner_code: str | None = None
    opened_by: int | None = None
    opened_at: float | None = None
    spent_by: int | None = None
    spent_at: float | None = None


class LedgerLine(Record):
    """One change of a balance; a reserve line carries its redemption's state and partner."""

    id: int
    user_id: int
    at: float
    delta: int
    kind: LedgerKind
    horn_id: int | None = None
    redemption_id: int | None = None
    ticket_id: int | None = None       # a resolved assignment's hours (点将, SPEC §10)
    status: RedemptionStatus | None = None
    partner_name: str | None = None


# 点将 (SPEC §10; storage/assignments.py)

AssignmentState = Literal["offered", "accepted", "declined", "withdrawn", "resolved"]
#: an ask in these states may be made again once its ticket is reopened (SPEC §4)
REASKABLE: tuple[AssignmentState, ...] = ("withdrawn", "resolved")
#: an ask still open: waiting for an answer, or accepted and not resolved (a person's load)
OPEN_ASKS: tuple[AssignmentState, ...] = ("offered", "accepted")


class Assignment(Record):
    """A ticket offered to one person from 点将台 (a volunteer, a party member, or a member
    unit's contact, `unit_code` then naming the unit)."""

    id: int
    ticket_id: int
    user_id: int
    unit_code: str | None = None
    assigned_by: int | None = None
    state: AssignmentState
    created_at: float
    answered_at: float | None = None
    resolved_at: float | None = None
    hours: float = 0
    points: int = 0


class PartnerSpending(Record):
    """The redemptions spent at one partner in a period (the monthly workbook's sheet)."""

    partner_code: str
    partner_name: str
    community_code: str
    redemptions: int
    points: int


class MeetingKind(StrEnum):
    """The kinds of meeting (SPEC §12); the values are what the store holds."""

    JOINT = "joint"                # 联席会议: member units and staff
    FACE_TO_FACE = "face_to_face"  # 面对面: residents meet community and grid leaders
    BUILDING = "building"          # 楼栋见面会
    COUNCIL = "council"            # 恳谈会 / 居民议事会


MEETING_KINDS: tuple[MeetingKind, ...] = tuple(MeetingKind)


class Meeting(Record):
    """A meeting (会议) as published: its scope, its times and its timed steps."""

    id: int
    kind: MeetingKind
    unit_code: str
    grid_code: str | None
    community_code: str
    title: str
    place: str
    agenda: str
    starts_at: float
    ends_at: float
    organiser_id: int
    remind_at: float | None
    offer_at: float | None
    wrap_at: float | None
    signin_opened: bool
    minutes: str | None
    created_at: float


class MeetingPost(Record):
    """A meeting's post in a chat: the invitation or the sign-in post."""

    meeting_id: int
    kind: Literal["invite", "signin"]
    chat_id: int
    thread_id: int
    unit_code: str
    message_id: int | None


class MeetingSignIn(Record):
    meeting_id: int
    user_id: int
    unit_code: str
    at: float
    late: bool


class Attendance(Record):
    """Meetings attended by a person or a unit in a span (read by evaluation, SPEC §12):
    one row per (meeting, person) signed in."""

    meeting_id: int
    kind: MeetingKind
    unit_code: str        # the unit the person signed in for (the chat's unit)
    scope_code: str       # the meeting's scope unit
    user_id: int
    at: float
    late: bool


# Patrol checkpoints 专项巡更点 (SPEC §13)

MATTERS: tuple[str, ...] = ("food_safety", "vacant_land", "key_visit", "fire", "other")


class Checkpoint(Record):
    """A place of a grid to visit once per period of its frequency, for a matter."""

    code: str
    grid_code: str
    name: str
    matter: str
    lat: float
    lon: float
    radius_m: int = 100
    frequency: str = "weekly"
    building_code: str | None = None
    position: int = 0
    created_at: float = 0.0
    retired_at: float | None = None   # 停用: no longer due, matched or exported
    retired_by: int | None = None

    @property
    def retired(self) -> bool:
        return self.retired_at is not None


class CheckpointVisit(Record):
    id: int
    checkpoint_code: str
    user_id: int
    at: float
    period: str
    lat: float
    lon: float
    distance_m: float
    note: str | None = None
    photo_file_id: str | None = None


class CheckpointMiss(Record):
    checkpoint_code: str
    period: str
    period_start: float
    period_end: float
class DualReport(Record):
    """双报到 (SPEC §10): a party member of a `dual_report` unit reported where they live."""

    user_id: int
    member_code: str
    community_code: str
    skills: tuple[str, ...] = ()
    reported_at: str


class HornUnit(Record):
    """A member unit a horn calls (SPEC §10): its pledge, and at the close the number the
    owner confirmed and the hours each served."""

    horn_id: int
    unit_code: str
    pledged: int = 0
    pledged_by: int | None = None
    confirmed: int | None = None
    hours: float | None = None


class Post(Record):
    """A standing post to claim (认领岗位, SPEC §10)."""

    id: int
    unit_code: str
    community_code: str
    title: str
    slots: int
    created_by: int
    created_at: float


class PostHolder(Record):
    """A claim on a post: a member unit's (its contact claimed) or a person's own."""

    post_id: int
    holder: str            # "u:<unit code>" or "p:<user id>"
    person_id: int
    unit_code: str | None
    state: str             # holding | waiting | released
    seq: int
    asked_at: float | None = None


RESOURCE_KINDS: tuple[str, ...] = ("venue", "vehicle", "equipment", "funds", "expertise",
                                   "goods")


class Resource(Record):
    """What a member unit offers (提供资源, SPEC §10)."""

    id: int
    unit_code: str
    kind: str
    name: str
    quantity: int
    created_by: int
    created_at: float
    domain: str | None = None      # the domain it serves (SPEC §10), once its contact says


class ResourceRequest(Record):
    """Staff's request for a resource, for a ticket or a horn, and the contact's answer."""

    id: int
    resource_id: int
    ticket_id: int | None
    horn_id: int | None
    requested_by: int
    state: str
    reason: str | None
    asked_at: float
    answered_at: float | None


class UnitVote(Record):
    """群众评单 (SPEC §10): a building chat's quarterly vote on its estate's property unit."""

    id: int
    period: str
    building_code: str
    unit_code: str
    chat_id: int
    thread_id: int = 0
    message_id: int | None = None
    opened_at: float
    closes_at: float
    closed_at: float | None = None


class VoteTally(Record):
    """A vote's ballots: how many, and the sum of their stars."""

    votes: int = 0
    stars: int = 0

    @property
    def average(self) -> float | None:
        return self.stars / self.votes if self.votes else None
