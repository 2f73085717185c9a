"""What the map file's readers share: the specs they produce, the errors they report, and the
checks of single fields.

Both readers (`map_yaml`, `map_csv`) fill one `Collector`, so a code or a chat used twice is
found across the whole file, whatever its format, and every error carries the line it is on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC

from pydantic import BaseModel

from bot.cron import cron_trigger
from bot.settings import parse_duration
from storage.models import MEMBER_TYPES, UnitKind

DOMAINS: tuple[str, ...] = ("red", "orange", "gold", "green", "cyan", "blue", "purple")
PATROLS: tuple[str, ...] = ("daily", "weekly", "monthly")

# kind -> (key of its children list, the children's kind)
CHILDREN: dict[str, tuple[str, UnitKind]] = {
    "community": ("grids", "grid"),
    "grid": ("estates", "estate"),
    "estate": ("buildings", "building"),
}

#: a checkpoint's radius when the file gives none, and its largest (metres)
DEFAULT_RADIUS_M = 100
MAX_RADIUS_M = 100_000
DEFAULT_CHECKPOINT_FREQUENCY = "weekly"

_CODE = re.compile(r"[A-Za-z0-9_-]{1,32}")
#: a whistle item's points: a whole number in this range (none: the board's fixed values)
MAX_POINTS = 1000
_DURATION_UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


class MapError(BaseModel):
    """One problem found in a map file."""

    line: int | None
    code: str | None
    reason: str

    def __str__(self) -> str:
        where = f"line {self.line}" if self.line is not None else "file"
        return f"{where}: {self.code}: {self.reason}" if self.code else f"{where}: {self.reason}"


class MapImportResult(BaseModel):
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    bindings: int = 0
    errors: list[MapError] = []

    @property
    def ok(self) -> bool:
        return not self.errors

    def tally(self, old: object | None, new: object) -> bool:
        """Count a record as created, updated or unchanged; whether it must be written."""
        if old == new:
            self.unchanged += 1
            return False
        if old is None:
            self.created += 1
        else:
            self.updated += 1
        return True


class UnitSpec(BaseModel):
    """A unit as the file describes it; `None` domains and `patrol_given=False` mean "keep"."""

    code: str
    kind: UnitKind
    name: str
    parent_code: str | None = None
    position: int = 0
    line: int
    domains: tuple[str, ...] | None = None
    patrol: str | None = None
    patrol_given: bool = False
    #: a member unit's type (SPEC §10)
    member_type: str | None = None
    #: an estate's `property` member unit; `property_given=False` means "keep"
    property_code: str | None = None
    property_given: bool = False
    property_line: int = 0


class BindingSpec(BaseModel):
    """A unit's chat as the file gives it (thread 0: the whole chat)."""

    unit_code: str
    chat_id: int
    thread_id: int = 0
    line: int


class WhistleItemSpec(BaseModel):
    """An item of the whistle catalogue as the file gives it (`whistle_items`)."""

    code: str
    category: str
    name: str
    department: str
    points: int | None = None
    deadline: int | None = None
    position: int = 0
    line: int
    department_line: int


class PartnerSpec(BaseModel):
    """A partner shop of a community (`partners`, SPEC §13) as the file gives it."""

    code: str
    community: str
    name: str
    address: str = ""
    chat_id: int | None = None
    position: int = 0
    line: int
class CheckpointSpec(BaseModel):
    """A patrol checkpoint 专项巡更点 as the file gives it, under its grid (SPEC §13)."""

    code: str
    grid_code: str
    name: str
    matter: str
    lat: float
    lon: float
    radius_m: int = DEFAULT_RADIUS_M
    frequency: str = DEFAULT_CHECKPOINT_FREQUENCY
    building: str | None = None
    position: int = 0
    line: int
    building_line: int = 0


@dataclass
class Collector:
    """What parsing found so far; shared by the YAML and CSV readers."""

    units: list[UnitSpec] = field(default_factory=list)
    bindings: list[BindingSpec] = field(default_factory=list)
    errors: list[MapError] = field(default_factory=list)
    codes: dict[str, tuple[int, str]] = field(default_factory=dict)
    chats: dict[tuple[int, int], tuple[str, int]] = field(default_factory=dict)
    positions: dict[tuple[str, str | None], int] = field(default_factory=dict)
    from_csv: bool = False
    items: list[WhistleItemSpec] = field(default_factory=list)
    item_codes: dict[str, int] = field(default_factory=dict)
    partners: list[PartnerSpec] = field(default_factory=list)
    checkpoints: list[CheckpointSpec] = field(default_factory=list)
    checkpoint_codes: dict[str, int] = field(default_factory=dict)

    def error(self, line: int | None, code: str | None, reason: str) -> None:
        self.errors.append(MapError(line=line, code=code, reason=reason))

    def claim_code(self, code: str, kind: str, line: int) -> bool:
        """Record the first use of `code`; False (and an error) when it is taken."""
        first = self.codes.get(code)
        if first is None:
            self.codes[code] = (line, kind)
            return True
        first_line, first_kind = first
        also = "" if first_kind == kind else f", as {with_article(first_kind)}"
        self.error(line, code, f"duplicate code {code} (first at line {first_line}{also})")
        return False

    def claim_item_code(self, code: str, line: int) -> bool:
        """Record the first use of a whistle item's code; False (and an error) when taken.
        Items have codes of their own, apart from the units'."""
        first = self.item_codes.get(code)
        if first is None:
            self.item_codes[code] = line
            return True
        self.error(line, code, f"duplicate whistle item code {code} (first at line {first})")
        return False

    def claim_checkpoint_code(self, code: str, line: int) -> bool:
        """Record the first use of a checkpoint's code (checkpoints have codes of their own,
        apart from the units'); False (and an error) when it is taken."""
        first = self.checkpoint_codes.get(code)
        if first is None:
            self.checkpoint_codes[code] = line
            return True
        self.error(line, code, f"duplicate checkpoint code {code} (first at line {first})")
        return False

    def next_position(self, kind: str, parent_code: str | None) -> int:
        # Communities and departments both have no parent: they count apart.
        key = (kind if parent_code is None else "child", parent_code)
        position = self.positions.get(key, 0)
        self.positions[key] = position + 1
        return position

    def add_binding(self, code: str, chat: int, thread: int, line: int) -> None:
        other = self.chats.get((chat, thread))
        if other is not None:
            self.error(line, code, f"{chat_text(chat, thread)} is also given to {other[0]} "
                                   f"(line {other[1]})")
            return
        self.chats[(chat, thread)] = (code, line)
        self.bindings.append(BindingSpec(unit_code=code, chat_id=chat, thread_id=thread,
                                         line=line))


def with_article(kind: str) -> str:
    return f"an {kind}" if kind[:1] in "aeiou" else f"a {kind}"


def chat_text(chat: int, thread: int) -> str:
    return f"chat {chat} thread {thread}" if thread else f"chat {chat}"


def by_line(errors: list[MapError]) -> list[MapError]:
    """The errors in file order; those of the whole file first, each kept in finding order."""
    return sorted(errors, key=lambda e: (e.line if e.line is not None else 0))


def check_code(c: Collector, raw: str, line: int) -> bool:
    if _CODE.fullmatch(raw):
        return True
    c.error(line, raw[:40] or None,
            f"bad code {raw!r}: use 1-32 letters, digits, '_' or '-'")
    return False


def check_name(c: Collector, name: str, code: str | None, line: int, kind: str) -> str | None:
    name = name.strip()
    if not name:
        c.error(line, code, f"{kind} name is empty")
        return None
    if any(ch < " " or ch == "\x7f" for ch in name):
        c.error(line, code, f"{kind} name must be one line of text")
        return None
    return name


def check_patrol(c: Collector, value: str, code: str | None, line: int,
                 what: str = "patrol") -> str | None:
    value = " ".join(value.split())
    if value in PATROLS:
        return value
    try:
        # crontab's weekdays (0 and 7 = Sunday), as the scheduler reads them
        cron_trigger(value, UTC)
    except ValueError as e:
        c.error(line, code, f"bad {what} {value!r}: use daily, weekly, monthly or a 5-field "
                            f"crontab ({e})")
        return None
    return value


def check_chat(c: Collector, chat: int | None, thread: int | None, code: str | None,
               line: int, thread_line: int) -> None:
    """Validate a parsed chat/thread pair and record the binding."""
    ok = True
    if chat is not None and chat == 0:
        c.error(line, code, "chat must be a non-zero integer (a group's id is negative)")
        ok = False
    if thread is not None:
        if thread <= 0:
            c.error(thread_line, code, "thread must be a positive integer")
            ok = False
        if chat is None:
            c.error(thread_line, code, "thread is given without chat")
            ok = False
    if ok and chat is not None and code is not None:
        c.add_binding(code, chat, thread or 0, line)


def check_member_type(c: Collector, value: str | None, code: str | None, line: int
                      ) -> str | None:
    """A member unit's type (SPEC §10), one of MEMBER_TYPES."""
    if value in MEMBER_TYPES:
        return value
    c.error(line, code, f"unknown member type {value!r} (use {', '.join(MEMBER_TYPES)})")
    return None


def check_points(c: Collector, value: int | None, code: str | None, line: int) -> int | None:
    """A whistle item's points (`value` None: not a whole number)."""
    if value is None or not 0 <= value <= MAX_POINTS:
        c.error(line, code, f"points must be a whole number from 0 to {MAX_POINTS}")
        return None
    return value


def check_deadline(c: Collector, text: str | None, code: str | None, line: int) -> int | None:
    """A whistle item's time to accept, a duration such as `24h`, in seconds."""
    try:
        seconds = int(parse_duration(text or "").total_seconds())
    except ValueError:
        seconds = 0
    if seconds <= 0:
        c.error(line, code, f"bad deadline {text!r}: use a duration longer than zero, like "
                            "30m, 24h or 3d")
        return None
    return seconds


def duration_text(seconds: int) -> str:
    """Seconds as the map file writes a duration, in the largest whole unit (`90m`, `2d`)."""
    for unit, size in _DURATION_UNITS:
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def check_coordinate(c: Collector, text: str | None, key: str, code: str | None,
                     line: int) -> float | None:
    """A checkpoint's `lat` (-90 to 90) or `lon` (-180 to 180), in decimal degrees."""
    limit = 90 if key == "lat" else 180
    try:
        value = float(text) if text is not None else None
    except ValueError:
        value = None
    if value is None or value != value or value in (float("inf"), float("-inf")):
        c.error(line, code, f"{key} must be a number of degrees from -{limit} to {limit}")
        return None
    if not -limit <= value <= limit:
        c.error(line, code, f"{key} {text} is out of range: use -{limit} to {limit} degrees")
        return None
    return value


def check_radius(c: Collector, value: int | None, code: str | None, line: int) -> int | None:
    """A checkpoint's radius: whole metres, more than zero."""
    if value is None or not 0 < value <= MAX_RADIUS_M:
        c.error(line, code, f"radius_m must be a whole number of metres from 1 to {MAX_RADIUS_M}")
        return None
    return value
