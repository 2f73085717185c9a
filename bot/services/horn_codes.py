"""The codes a horn leaves outside the bot, built and read in this one place: the callback data
of its buttons and the `ref`s and dedupe keys of its outbox items.

Old buttons stay pressable after a restart and Telegram keeps at most 64 bytes of callback
data, so the data is short and stable: `h:<action>:<horn>[:<arg>]` on a horn's copies and the
owner's cards, `hf:<action>[:<arg>]` in /horn's guided flow, `vf:<action>[:<arg>]` in
/volunteer. The enums give the short codes readable names; the data is client input, so
reading it refuses anything unknown as a stale button, and the service checks every press
again. An outbox `ref` (`hcopy:<horn>:<kind>`, `hedit:<horn>:<kind>`) tells the sender's hook
which horn's copy went out.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TypeVar

from bot.services.errors import Refused
from storage.models import CopyKind


class HornPress(StrEnum):
    """A button on a horn's copy or on its owner's cards: `h:<action>:<horn>[:<arg>]`."""

    CHECK_IN = "in"
    CANT_COME = "out"
    CLOSE = "close"              # asks first
    CLOSE_CONFIRMED = "closeok"
    KEEP_OPEN = "keep"
    TOGGLE_PRESENT = "pr"        # arg: the person
    ASK_HOURS = "hrs"
    CONFIRM = "ok"


class FlowPress(StrEnum):
    """A button of /horn's guided flow: `hf:<action>[:<arg>]`."""

    LEVEL = "lvl"                # arg: the level
    SCOPE = "scope"              # arg: a unit code
    SKIP = "skip"                # no fill-by time
    SKILL = "sk"                 # arg: the skill toggled
    SKILLS_DONE = "skd"
    PUBLISH = "pub"
    CANCEL = "x"
    UNIT = "un"                  # at the preview, arg: a member unit called too, or not


class VolunteerPress(StrEnum):
    """A button of /volunteer: `vf:<action>[:<arg>]`."""

    SKILL = "sk"                 # arg: the skill toggled
    NEXT = "next"
    AVAILABILITY = "av"          # arg: the availability toggled
    DONE = "done"
    CANCEL = "x"


Press = TypeVar("Press", HornPress, FlowPress, VolunteerPress, "UnitPress")
HORN_PREFIX = "h"
FLOW_PREFIX = "hf"
VOLUNTEER_PREFIX = "vf"
HORN_PATTERN = rf"^{HORN_PREFIX}:"
FLOW_PATTERN = rf"^{FLOW_PREFIX}:"
VOLUNTEER_PATTERN = rf"^{VOLUNTEER_PREFIX}:"


def horn_data(action: HornPress, horn_id: int, arg: int | None = None) -> str:
    tail = "" if arg is None else f":{arg}"
    return f"{HORN_PREFIX}:{action.value}:{horn_id}{tail}"


def flow_data(action: FlowPress, arg: str = "") -> str:
    return f"{FLOW_PREFIX}:{action.value}:{arg}" if arg else f"{FLOW_PREFIX}:{action.value}"


def volunteer_data(action: VolunteerPress, arg: str = "") -> str:
    return f"{VOLUNTEER_PREFIX}:{action.value}:{arg}" if arg else \
        f"{VOLUNTEER_PREFIX}:{action.value}"


def read_horn_press(data: str) -> tuple[HornPress, int, int | None]:
    """(action, horn, the person for a toggle); anything else is a stale button."""
    parts = data.split(":")
    if len(parts) not in (3, 4) or parts[0] != HORN_PREFIX or not parts[2].isdecimal():
        raise Refused("button.stale")
    action = _member(HornPress, parts[1])
    arg = parts[3] if len(parts) == 4 else None
    if (action == HornPress.TOGGLE_PRESENT) != (arg is not None) or \
            (arg is not None and not arg.isdecimal()):
        raise Refused("button.stale")
    return action, int(parts[2]), None if arg is None else int(arg)


# member units answering a horn (SPEC §10): `hu:<action>:<horn>[:<arg>]`
UNIT_PREFIX = "hu"
UNIT_PATTERN = rf"^{UNIT_PREFIX}:"


class UnitPress(StrEnum):
    PLEDGE = "p"                 # a contact opens the numbers
    PEOPLE = "n"                 # arg: the number of people pledged
    LESS = "d"                   # at the close, arg: the unit; one fewer confirmed
    MORE = "i"                   # at the close, arg: the unit; one more confirmed


def unit_data(action: UnitPress, horn_id: int, arg: str | int | None = None) -> str:
    tail = "" if arg is None else f":{arg}"
    return f"{UNIT_PREFIX}:{action.value}:{horn_id}{tail}"


def read_unit_press(data: str) -> tuple[UnitPress, int, str | None]:
    parts = data.split(":")
    if len(parts) not in (3, 4) or parts[0] != UNIT_PREFIX or not parts[2].isdecimal():
        raise Refused("button.stale")
    action = _member(UnitPress, parts[1])
    arg = parts[3] if len(parts) == 4 else None
    if (action == UnitPress.PLEDGE) != (arg is None) or \
            (action == UnitPress.PEOPLE and not (arg or "").isdecimal()):
        raise Refused("button.stale")
    return action, int(parts[2]), arg


def unit_call_key(horn_id: int, chat_id: int) -> str:
    """A called member unit's copy of the horn: once per chat (its chat, or a contact)."""
    return f"hunit:{horn_id}:{chat_id}"


def read_flow_press(data: str) -> tuple[FlowPress, str]:
    code, arg = _action_and_arg(data, FLOW_PREFIX)
    return _member(FlowPress, code), arg


def read_volunteer_press(data: str) -> tuple[VolunteerPress, str]:
    code, arg = _action_and_arg(data, VOLUNTEER_PREFIX)
    return _member(VolunteerPress, code), arg


def _action_and_arg(data: str, prefix: str) -> tuple[str, str]:
    parts = data.split(":")
    if len(parts) not in (2, 3) or parts[0] != prefix:
        raise Refused("button.stale")
    return parts[1], parts[2] if len(parts) == 3 else ""


def _member(enum: type[Press], code: str) -> Press:
    try:
        return enum(code)
    except ValueError:
        raise Refused("button.stale") from None


COPY_REF = "hcopy"   # a copy going out: its message is recorded
EDIT_REF = "hedit"   # an edit of a copy going out: what it said is checked
NOTE_REF = "hnote"   # any other message about the horn, nothing to learn: `hnote:<horn>`


def copy_ref(horn_id: int, kind: CopyKind) -> str:
    return f"{COPY_REF}:{horn_id}:{kind.value}"


def copies_on_their_way(horn_id: int) -> str:
    """The prefix of every copy of a horn not yet sent (dropped when the horn closes)."""
    return f"{COPY_REF}:{horn_id}:"


def edit_ref(horn_id: int, kind: CopyKind) -> str:
    return f"{EDIT_REF}:{horn_id}:{kind.value}"


def read_ref(ref: str | None) -> tuple[int, CopyKind]:
    """The horn and kind of copy a `hcopy:` or `hedit:` ref names."""
    prefix, horn_id, kind = (ref or "").split(":")
    if prefix not in (COPY_REF, EDIT_REF):
        raise ValueError(f"not a horn copy's ref: {ref!r}")
    return int(horn_id), CopyKind(kind)


def note_ref(horn_id: int) -> str:
    """A message about the horn that tells it nothing when sent (its log lines name it)."""
    return f"{NOTE_REF}:{horn_id}"


def about(ref: str) -> dict[str, int]:
    """The horn a copy's or a note's ref names, for the sender's log lines
    (`OutboxHooks.about`)."""
    prefix, _, rest = ref.partition(":")
    horn_id = rest.partition(":")[0]
    if prefix not in (COPY_REF, EDIT_REF, NOTE_REF) or not horn_id.isdigit():
        raise ValueError(f"not a horn's ref: {ref!r}")
    return {"horn_id": int(horn_id)}


def post_key(horn_id: int, chat_id: int, round_: int) -> str:
    """One post per chat and sounding (round 0: Publish; then each re-sound)."""
    return f"hpost:{horn_id}:{chat_id}" if round_ == 0 else f"hsound:{horn_id}:{round_}:{chat_id}"


def call_key(horn_id: int, user_id: int) -> str:
    """One private call-up per volunteer and horn, whether at Publish or when it widens."""
    return f"hcall:{horn_id}:{user_id}"


def summary_key(horn_id: int, chat_id: int) -> str:
    return f"hsum:{horn_id}:{chat_id}"


def unpin_key(horn_id: int, chat_id: int, message_id: int) -> str:
    return f"hunpin:{horn_id}:{chat_id}:{message_id}"


def attendance_key(horn_id: int, stand_in: int | None = None) -> str:
    """The owner's attendance list, once; or once for each who stands in (AB岗)."""
    return f"hatt:{horn_id}" if stand_in is None else f"hatt:{horn_id}:{stand_in}"
