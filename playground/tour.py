""""Play the tour": a scripted scenario in the sample world, one step at a time, captioned in
the page's language (SPEC §17).

Each step is a person's action written the way a person thinks of it — "the resident taps the
button starting `dr:dom:`", "the head writes …" — and resolved against the world as it is
when the step runs (the latest bot message in that chat carrying such a button). The
resolved action is taken through `Playground.act` like a tap on the page, so a played tour
is also a transcript.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any

from bot.i18n import LOCALES, CatalogKey, t
from bot.services.shop import is_code
from bot.textsplit import plain_text
from emulator import EmuChat
from playground.session import Playground, StepError
from playground.transcript import Action

#: Seconds between two steps at speed 1 (the reader's time for a caption).
PAUSE = 3.0
SPEEDS = (0.5, 1.0, 2.0, 4.0)


@dataclass(frozen=True)
class TourStep:
    caption: CatalogKey
    person: str | None = None           # a key of the world's people
    chat: str | None = None             # a key of the world's chats, or "private:<person>"
    kind: str = "send"                  # send | press | clock | location | note (a caption)
    text: CatalogKey | None = None      # send: what the person writes, in the world's language
    data: str | None = None             # press: the button's callback data, or its start
    choose: str | None = None           # press: a person (key) whose user id ends the data
    code_from: str | None = None        # send: `{code}` in the text is the time bank's code
                                        # shown by the bot's latest message carrying one there
    thread_of: str | None = None        # send: in the forum topic whose name contains this
    reply_to_last: bool = False         # send: as a reply to the bot's latest message there
    at: str | None = None               # clock: local time, ISO 8601
    lat: float | None = None            # location: the place shared
    lon: float | None = None


#: The scenario of SPEC §17.
TOUR: tuple[TourStep, ...] = (
    TourStep("playground.tour.opinion", "resident", "private:resident",
             text="playground.tour_says.opinion"),
    TourStep("playground.tour.category", "resident", "private:resident", "press",
             data="dr:dom:orange"),
    TourStep("playground.tour.submit", "resident", "private:resident", "press",
             data="dr:submit"),
    TourStep("playground.tour.acknowledge", "head", "private:head", "press", data="t:ack:"),
    TourStep("playground.tour.escalate", "head", "private:head", "press", data="t:esc:"),
    TourStep("playground.tour.whistle", "worker", "staff:G0101", "press", data="t:wh:"),
    TourStep("playground.tour.department", "worker", "staff:G0101", "press",
             data="t:wh:1:MZJ"),
    TourStep("playground.tour.accept", "department", "department:MZJ", "press",
             data="t:acc:"),
    TourStep("playground.tour.resolve", "department", "department:MZJ", "press",
             data="t:res:"),
    TourStep("playground.tour.result", "department", "department:MZJ",
             text="playground.tour_says.result",
             reply_to_last=True),
    TourStep("playground.tour.rate", "resident", "private:resident", "press", data="t:rate:1:5"),
    TourStep("playground.tour.theme", "staff", "private:staff",
             text="playground.tour_says.theme"),
    TourStep("playground.tour.horn", "staff", "private:staff",
             text="playground.tour_says.horn"),
    TourStep("playground.tour.publish", "staff", "private:staff", "press", data="hf:pub"),
    TourStep("playground.tour.check_in_1", "volunteer1", "building:B01010101", "press",
             data="h:in:"),
    TourStep("playground.tour.check_in_2", "volunteer2", "building:B01010102", "press",
             data="h:in:"),
    # a member unit answers the horn (SPEC §10, 响应吹号): its contact pledges two people
    TourStep("playground.tour.unit_check_in", "unit_contact", "private:unit_contact", "press",
             data="hu:p:"),
    TourStep("playground.tour.unit_pledge", "unit_contact", "private:unit_contact", "press",
             data="hu:n:1:2"),
    TourStep("playground.tour.check_in_3", "volunteer3", "building:B01020101", "press",
             data="h:in:"),
    # a patrol checkpoint's visit (SPEC §13): the worker shares a location at the market
    TourStep("playground.tour.checkpoint", "worker", "private:worker", "location",
             lat=31.8614, lon=117.2803),
    TourStep("playground.tour.month_end", kind="clock", at="2026-04-01T10:00:00+08:00"),
    TourStep("playground.tour.evaluate", "staff", "private:staff", "press",
             data="ev:4:2026-03:G0101:"),
    # a joint meeting (SPEC §12): staff chats and the member unit's contact (no chat) invited
    TourStep("playground.tour.meeting", "staff", "private:staff",
             text="playground.tour_says.meeting"),
    TourStep("playground.tour.meeting_publish", "staff", "private:staff", "press",
             data="mt:pub"),
    # a member unit (SPEC §10): its contact looks at the unit's record
    TourStep("playground.tour.unit", "unit_contact", "private:unit_contact",
             text="playground.tour_says.unit"),
    # 点将 (SPEC §10): a hotline case entered by the grid worker, assigned from its card in
    # the grid's forum to a volunteer, who accepts privately
    TourStep("playground.tour.intake", "worker", "private:worker",
             text="playground.tour_says.intake"),
    TourStep("playground.tour.intake_domain", "worker", "private:worker", "press",
             data="ik:dom:orange"),
    TourStep("playground.tour.assign", "worker", "staff:G0101", "press", data="t:asg:2"),
    TourStep("playground.tour.assign_pick", "worker", "staff:G0101", "press",
             data="t:asg:2:p", choose="volunteer1"),
    TourStep("playground.tour.assign_accept", "volunteer1", "private:volunteer1", "press",
             data="t:asa:2"),
    # the time bank's shop (SPEC §13, 爱心银行): the volunteer spends points at the partner
    # shop (60 of them opened her ledger in the sample world: hours served before the bot)
    TourStep("playground.tour.redeem", "volunteer1", "private:volunteer1",
             text="playground.tour_says.redeem"),
    TourStep("playground.tour.redeem_code", "clerk", "private:clerk",
             text="playground.tour_says.redeem_code", code_from="private:volunteer1"),
    TourStep("playground.tour.redeem_confirm", "clerk", "private:clerk", "press",
             data="rd:ok:"),
    TourStep("playground.tour.mydata", "resident", "private:resident",
             text="playground.tour_says.mydata"),  # SPEC §14
)


class TourPlayer:
    def __init__(self, playground: Playground, steps: tuple[TourStep, ...] | None = None,
                 pause: float = PAUSE) -> None:
        self.playground = playground
        self.steps = TOUR if steps is None else steps
        self.pause = pause
        self.position = 0     # steps done
        self.speed = 1.0
        self.playing = False
        self.error: str | None = None
        self._task: asyncio.Task[None] | None = None

    def state(self, lang: str) -> dict[str, Any]:
        caption = self._caption_key()
        return {"playing": self.playing, "step": self.position, "steps": len(self.steps),
                "speed": self.speed, "error": self.error,
                "caption": t(lang, caption) if caption else None,
                "captions": {loc: t(loc, caption) for loc in LOCALES} if caption else None}

    def _caption_key(self) -> CatalogKey | None:
        if self.position == 0:
            return None
        return self.steps[self.position - 1].caption

    def _tell(self) -> None:
        self.playground.feed.publish("tour", self.state(self.playground.lang))

    async def command(self, action: str, speed: Any, lang: str) -> dict[str, Any]:
        if speed is not None:
            with contextlib.suppress(TypeError, ValueError):
                value = float(speed)
                if value in SPEEDS:
                    self.speed = value
        if action == "play":
            await self.play()
        elif action == "pause":
            await self.stop()
        elif action == "step":
            await self.stop()
            await self.next_step()
        self._tell()
        return self.state(lang)

    async def play(self) -> None:
        if self._task is not None and not self._task.done():
            return
        if self.position >= len(self.steps) or self.position == 0:
            await self.playground.reset()
            self.position = 0
        self.playing = True
        self.error = None
        self._task = asyncio.create_task(self._run(), name="playground:tour")

    async def stop(self) -> None:
        self.playing = False
        task, self._task = self._task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        try:
            while self.playing and self.position < len(self.steps):
                await self.next_step()
                if self.error is not None:
                    break
                await asyncio.sleep(self.pause / self.speed)  # the reader's time, not a wait
        finally:
            self.playing = False
            self._tell()

    async def next_step(self) -> None:
        """Take the next step of the tour (from a fresh world when at the start)."""
        if self.position >= len(self.steps):
            return
        if self.position == 0 and self.playground.steps:
            await self.playground.reset()
        step = self.steps[self.position]
        try:
            action = self.resolve(step)
            if action is not None:
                await self.playground.act(action)
        except StepError as exc:
            self.error = f"step {self.position + 1}: {exc}"
        self.position += 1
        self._tell()

    async def play_through(self) -> None:
        """Every step, no pauses (tests and `--replay`'s recordings)."""
        self.position = 0
        while self.position < len(self.steps):
            await self.next_step()
            if self.error is not None:
                raise StepError(self.error)

    def resolve(self, step: TourStep) -> Action | None:
        """The concrete action of a step in the world as it is now."""
        playground = self.playground
        if step.kind == "note":
            return None
        if step.kind == "clock":
            return Action("clock", at=step.at)
        if step.kind == "location":
            return Action("location", step.person, step.chat, lat=step.lat, lon=step.lon)
        chat = playground.chat_by_key(step.chat)
        if step.kind == "press":
            assert step.data is not None
            wanted = step.data
            if step.choose is not None:  # a picker's line: the person's button
                chosen = next((p for p in playground.world.people if p.key == step.choose),
                              None)
                if chosen is None:
                    raise StepError(f"no person {step.choose!r} in the sample world")
                wanted += str(chosen.user.id)
            for message in reversed(list(chat.messages.values())):
                if message.sender is not None or message.deleted:
                    continue
                for row in message.buttons:
                    for button in row:
                        data = button.callback_data or ""
                        if data == wanted or (step.choose is None
                                              and data.startswith(wanted)):
                            return Action("press", step.person, step.chat,
                                          message=message.message_id, data=data,
                                          button=button.text)
            raise StepError(f"no button {wanted!r} in {step.chat}")
        thread = reply_to = None
        if step.thread_of is not None:
            topic = next((tp for tp in chat.topics.values() if step.thread_of in tp.name), None)
            if topic is None:
                raise StepError(f"no topic {step.thread_of!r} in {step.chat}")
            thread = topic.thread_id
        if step.reply_to_last:
            bot_messages = [m for m in chat.messages.values()
                            if m.sender is None and not m.deleted
                            and (thread is None or m.thread_id == thread)]
            if not bot_messages:
                raise StepError(f"no bot message to reply to in {step.chat}")
            reply_to = bot_messages[-1].message_id
        text = None
        if step.text is not None and step.code_from is not None:
            code = redemption_code(playground.chat_by_key(step.code_from))
            text = plain_text(t(playground.lang, step.text, code=code))
        elif step.text is not None:
            text = plain_text(t(playground.lang, step.text))
        return Action(step.kind, step.person, step.chat, text=text,  # type: ignore[arg-type]
                      thread=thread, reply_to=reply_to)


def redemption_code(chat: EmuChat) -> str:
    """The time bank's code (SPEC §13) the bot last showed in `chat`: the bold one of its
    latest message that carries a code (the volunteer reads it to the clerk)."""
    for message in reversed(list(chat.messages.values())):
        if message.sender is not None or message.deleted:
            continue
        units = message.text.encode("utf-16-le")  # entities count UTF-16 code units
        for entity in message.entities:
            if entity.get("type") != "bold":
                continue
            start, end = 2 * entity["offset"], 2 * (entity["offset"] + entity["length"])
            word = units[start:end].decode("utf-16-le")
            if is_code(word):
                return word
    raise StepError(f"no time bank code in chat {chat.id}")
