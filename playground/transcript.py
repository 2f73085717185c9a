"""Transcripts: a playground session as JSON lines that replays as a regression test.

The first line names the format and the world's language; each further line is one step:
a person's action and what the bot did in answer (messages sent or changed, tap answers).
Ids and times are normalised: people and chats by their keys in the sample world, no update,
call or file ids, no dates; the step's minute on the demo clock (`playground.clock`) is kept,
so that texts naming a time replay the same.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

FORMAT = "gridhorn-transcript/1"

ActionKind = Literal["send", "photo", "press", "clock", "location"]


@dataclass(frozen=True)
class Action:
    """What a person did (or, for `clock`, the demo moving its clock to `at`)."""

    kind: ActionKind
    person: str | None = None      # a key of the world's people
    chat: str | None = None        # a key of the world's chats ("private:<person>", …)
    text: str | None = None        # what was typed (send) or the caption (photo)
    thread: int | None = None      # the forum topic written in
    reply_to: int | None = None    # the message replied to
    message: int | None = None     # the message whose button was pressed
    data: str | None = None        # the pressed button's callback data
    button: str | None = None      # …and its label, for people reading the transcript
    at: str | None = None          # clock: the local time moved to, ISO 8601
    lat: float | None = None       # location: the place shared (SPEC §13's patrol checkpoints)
    lon: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Action:
        return cls(**data)


@dataclass
class StepRecord:
    step: int
    minute: int
    action: Action
    bot: list[dict[str, Any]] = field(default_factory=list)
    answers: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"step": self.step, "minute": self.minute, "action": self.action.to_json(),
                "bot": self.bot, "answers": self.answers}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StepRecord:
        return cls(step=int(data["step"]), minute=int(data["minute"]),
                   action=Action.from_json(data["action"]), bot=list(data.get("bot", [])),
                   answers=list(data.get("answers", [])))


class TranscriptError(ValueError):
    """A file that is not a transcript (its line number said)."""


def dumps(lang: str, steps: Iterable[StepRecord]) -> str:
    lines = [json.dumps({"format": FORMAT, "lang": lang}, ensure_ascii=False)]
    lines += [json.dumps(step.to_json(), ensure_ascii=False, sort_keys=True) for step in steps]
    return "\n".join(lines) + "\n"


def loads(text: str) -> tuple[str, list[StepRecord]]:
    """The language and the steps of a transcript; `TranscriptError` naming the bad line."""
    rows = [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    if not rows:
        raise TranscriptError("an empty file is not a transcript")
    steps: list[StepRecord] = []
    lang = ""
    for number, line in rows:
        try:
            data = json.loads(line)
            if number == rows[0][0]:
                if data.get("format") != FORMAT:
                    raise TranscriptError(f"line {number}: not a {FORMAT} file")
                lang = str(data["lang"])
                continue
            steps.append(StepRecord.from_json(data))
        except TranscriptError:
            raise
        except (ValueError, KeyError, TypeError) as exc:
            raise TranscriptError(f"line {number}: {exc}") from None
    return lang, steps


def _in_order(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Messages by chat and id (the order in which several chats were sent to is not part of
    what the bot did); answers as they came."""
    if all("chat" in item and "id" in item for item in items):
        return sorted(items, key=lambda m: (str(m["chat"]), int(m["id"])))
    return items


def difference(expected: StepRecord, actual: StepRecord) -> str | None:
    """How a replayed step differs from its record (the first thing found), or None."""
    for what in ("bot", "answers"):
        want, got = _in_order(getattr(expected, what)), _in_order(getattr(actual, what))
        for index, (a, b) in enumerate(zip(want, got, strict=False)):
            if a != b:
                keys = sorted(set(a) | set(b))
                first = next(k for k in keys if a.get(k) != b.get(k))
                return (f"{what}[{index}].{first}: expected {a.get(first)!r}, "
                        f"got {b.get(first)!r}")
        if len(want) != len(got):
            extra = got[len(want):] if len(got) > len(want) else want[len(got):]
            side = "more" if len(got) > len(want) else "fewer"
            return f"{what}: {side} than recorded ({len(want)} recorded, {len(got)} now): " \
                   f"{extra[0]!r}"
    return None
