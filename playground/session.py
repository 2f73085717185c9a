"""A running playground: the Bot API emulator, the real bot (the same `Runtime` as
`gridhorn run`) and the sample world, in one process, and every step people take in it.

Steps are taken one at a time: a step moves the demo clock, acts as a person through the
emulator's control API (as a Telegram client would), waits until the bot has handled it and
sent what it queued, and records what the bot did, for the transcript (`playground.transcript`).
What happens in the world is told to the page through the `Feed`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import random
import tempfile
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

from bot.app import Runtime, build_runtime
from bot.http import AiohttpRequest
from bot.i18n import t
from bot.settings import load_settings
from bot.textsplit import plain_text
from emulator import (
    BotAPIEmulator,
    CallRecord,
    EmuCallbackQuery,
    EmuChat,
    EmuMessage,
    FloodLimits,
)
from emulator.server import UPDATE_HEADER
from emulator.state import CURRENT_CALL
from playground import keep
from playground.clock import DemoClock
from playground.feed import Feed
from playground.transcript import Action, StepRecord, difference
from playground.views import chat_view, message_view
from playground.world import World, build_world
from storage.store import Store

logger = logging.getLogger(__name__)

#: The emulator's token: not a secret, it opens nothing but this process's own emulator.
TOKEN = "123456:PLAYGROUND"
BOT_USERNAME = "gridhorn_bot"
BOT_NAME = "Gridhorn"
#: How long a step waits for the bot to answer and to send what it queued.
SETTLE_SECONDS = 15.0
#: The bot's own pacing when the emulator enforces no flood limits (tests, headless replays).
UNPACED = {"rate_overall_per_s": 10_000.0, "rate_chat_per_s": 10_000.0,
           "rate_group_per_min": 600_000.0}


def sample_photo() -> bytes:
    """The photo a person sends from the page (a street lamp, broken)."""
    return resources.files("playground").joinpath("data", "sample-photo.jpg").read_bytes()


def demo_tokens(seed: int) -> Callable[[], str]:
    """The secrets of invite links in the playground: a sequence, the same in every run from
    the same start (`seed`: the clock's minute then), so that a replay shows the same links.
    Not secret at all, which is right for a demo that serves 127.0.0.1 only."""
    draw = random.Random(seed)

    def token() -> str:
        return base64.urlsafe_b64encode(draw.randbytes(18)).decode("ascii")
    return token


class LoopbackRequest(AiohttpRequest):
    """The bot's transport in the playground: a call aimed anywhere but this process's own
    emulator fails instead of leaving the machine."""

    def __init__(self, emulator_url: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.emulator_url = emulator_url

    async def do_request(self, url: str, *args: Any, **kwargs: Any) -> tuple[int, bytes]:
        if not url.startswith(self.emulator_url):
            raise RuntimeError(f"the playground's bot may only call its emulator, not {url}")
        return await super().do_request(url, *args, **kwargs)


class StepError(ValueError):
    """An action that cannot be taken (unknown person, chat or button): said to the page."""


class Playground:
    def __init__(self, lang: str = "zh-Hans", db: Path | None = None,
                 flood: FloodLimits | None = None) -> None:
        self.lang = lang
        self.db = db
        self.flood = flood
        self.feed = Feed()
        self.clock = DemoClock()
        self.steps: list[StepRecord] = []
        self._lock = asyncio.Lock()
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._emu: BotAPIEmulator | None = None
        self._runtime: Runtime | None = None
        self._world: World | None = None
        self._calls: dict[int, CallRecord] = {}
        self._call_times: dict[int, str] = {}  # on the demo clock
        self._updates: dict[int, dict[str, Any]] = {}
        self._message_calls: defaultdict[tuple[int, int], list[int]] = defaultdict(list)
        self._known_chats: dict[int, dict[str, Any]] = {}

    # ------------------------------------------------------------------ lifecycle

    @property
    def emu(self) -> BotAPIEmulator:
        assert self._emu is not None, "the playground is not running"
        return self._emu

    @property
    def runtime(self) -> Runtime:
        assert self._runtime is not None, "the playground is not running"
        return self._runtime

    @property
    def world(self) -> World:
        assert self._world is not None, "the playground is not running"
        return self._world

    async def start(self) -> None:
        self.clock.begin()
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> None:
        if self.db is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="gridhorn-demo-")
            path = Path(self._tmp.name) / "gridhorn.db"
        else:
            path = self.db
        self._emu = BotAPIEmulator(token=TOKEN, bot_username=BOT_USERNAME,
                                   bot_first_name=BOT_NAME, flood=self.flood)
        await self._emu.start(host="127.0.0.1", port=0)
        settings = load_settings(
            bot_token=TOKEN, api_base_url=self._emu.base_url, database_url=f"sqlite:///{path}",
            default_locale=self.lang, quiet_hours="", http_worker=False,
            # an emulator without flood limits: nothing to pace for, and a step's record must
            # not depend on how fast (in real time) the steps before it were taken
            **({} if self.flood is not None else UNPACED))
        kept = None
        if self.db is not None and self.db.exists():
            kept = keep.load(self.db)  # before the store is opened: a bad file changes nothing
        store = await Store.open_sqlite(str(path))
        try:
            if kept is not None:
                state, self._world, minute = kept
                self._emu.restore_world(state)
                self.clock.move_to(minute)
            else:
                self._world = await build_world(self._emu, store, self.lang, settings=settings,
                                                now=self.clock.now())
        except BaseException:
            await store.close()
            raise
        origin = self._emu.base_url.rsplit("/bot", 1)[0] + "/"
        request = LoopbackRequest(origin, connection_pool_size=64, read_timeout=20,
                                  update_header=UPDATE_HEADER)
        updates = LoopbackRequest(origin, connection_pool_size=2, read_timeout=20)
        self._runtime = await build_runtime(settings, store=store, request=request,
                                            get_updates_request=updates, poll_timeout=2,
                                            new_token=demo_tokens(self.clock.minute),
                                            trace_origins=True)
        self.steps = []
        self._calls.clear()
        self._call_times.clear()
        self._updates.clear()
        self._message_calls.clear()
        self._known_chats.clear()
        self.feed.reset()
        self._emu.listeners.append(self._heard)
        await self._runtime.start()
        await self.settle()

    async def stop(self) -> None:
        runtime, self._runtime = self._runtime, None
        emu, self._emu = self._emu, None
        try:
            if runtime is not None:
                await runtime.stop()
            if self.db is not None and emu is not None and self._world is not None:
                keep.save(self.db, emu, self._world, self.clock.minute)
        finally:
            try:
                if emu is not None:
                    emu.listeners.clear()
                    await emu.stop()
            finally:
                if self._tmp is not None:
                    self._tmp.cleanup()
                    self._tmp = None
                self.clock.end()

    async def reset(self) -> None:
        """A fresh world (the same one as at the start): everything done since is gone."""
        async with self._lock:
            await self.stop()
            if self.db is not None:
                keep.forget(self.db)
            await self.start()

    async def settle(self, timeout: float = SETTLE_SECONDS) -> None:
        """Wait until the bot has handled every update and sent what it could send now."""
        runtime, emu = self.runtime, self.emu
        try:
            async with asyncio.timeout(timeout):
                await emu.wait_until(lambda: not emu.pending_updates(), timeout=timeout)
                await runtime.intake.drain()
                await runtime.card_backlog.drain()
                await runtime.sender.drain()
        except TimeoutError:
            logger.warning("the bot was still busy %.0f s after a step", timeout)

    # ------------------------------------------------------------------ what happens

    def _heard(self, kind: str, subject: Any) -> None:
        if kind == "message":
            self._message_changed(subject)
        elif kind == "answer":
            self._answered(subject)
        elif kind == "call":
            self._called(subject)
        elif kind == "update":
            update_id, payload = subject
            self._updates[update_id] = payload

    def _message_changed(self, message: EmuMessage) -> None:
        chat = self.emu.chats[message.chat_id]
        call = CURRENT_CALL.get()
        calls = self._message_calls[(chat.id, message.message_id)]
        if call is not None and message.sender is None and call not in calls:
            calls.append(call)
        # the chat first: a new one, or its pin or topics changed with this message (the
        # emulator tells of a message once the call is done with it, so both are final here)
        self._tell_chat(chat)
        self.feed.publish("message", message_view(self.emu, message, list(calls), self.lang,
                                                  self._tz()))

    def _tz(self) -> Any:
        return self.runtime.settings.tz

    def _tell_chat(self, chat: EmuChat) -> None:
        view = chat_view(self.emu, chat)
        if self._known_chats.get(chat.id) != view:
            self._known_chats[chat.id] = view
            self.feed.publish("chat", view)

    def _answered(self, query: EmuCallbackQuery) -> None:
        answer = query.answer
        assert answer is not None
        self.feed.publish("answer", {
            "user_id": query.user.id, "chat_id": query.message.chat_id,
            "message_id": query.message.message_id, "text": answer.text,
            "alert": answer.show_alert})

    def _called(self, record: CallRecord) -> None:
        self._calls[record.id] = record
        self._call_times[record.id] = self.clock.now().strftime("%H:%M:%S")
        if record.method.lower() == "getupdates" and record.status_code == 200:
            return
        self.feed.publish("call", self._call_summary(record))

    def _call_summary(self, record: CallRecord) -> dict[str, Any]:
        return {"id": record.id, "method": record.method, "chat_id": record.chat_id,
                "status": record.status_code, "error": record.error_description,
                "update_id": record.update_id, "at": self._call_times.get(record.id)}

    # ------------------------------------------------------------------ the page's reads

    def world_view(self, lang: str) -> dict[str, Any]:
        emu, world = self.emu, self.world
        people = [{"id": p.user.id, "key": p.key, "name": p.user.full_name,
                   "role": plain_text(t(lang, p.role_key)) + (f" · {p.unit}" if p.unit else ""),
                   "lang": p.user.language_code or self.lang} for p in world.people]
        messages = [message_view(emu, m, self._message_calls.get((m.chat_id, m.message_id), []),
                                 lang, self._tz())
                    for chat in emu.chats.values() for m in chat.messages.values()]
        return {
            "lang": lang, "bot": {"id": emu.bot_id, "name": emu.bot_first_name,
                                  "username": emu.bot_username},
            "people": people, "columns": world.columns,
            "chats": [chat_view(emu, chat) for chat in emu.chats.values()],
            "messages": messages, "last_event_id": self.feed.last_id,
            "clock": self.clock.label(),
        }

    def inspect(self, chat_id: int, message_id: int) -> dict[str, Any]:
        calls = []
        for call_id in self._message_calls.get((chat_id, message_id), []):
            record = self._calls.get(call_id)
            if record is None:
                continue
            calls.append({**self._call_summary(record), "params": _jsonable(record.params),
                          "update": (self._updates.get(record.update_id)
                                     if record.update_id is not None else None)})
        return {"calls": calls}

    def call_log(self, limit: int = 500) -> list[dict[str, Any]]:
        records = [r for r in self._calls.values()
                   if not (r.method.lower() == "getupdates" and r.status_code == 200)]
        return [self._call_summary(r) for r in records[-limit:]]

    def button_text(self, chat_id: int, message_id: int, data: str) -> str | None:
        """The label of the button carrying `data` on that message, if there is one."""
        chat = self.emu.chats.get(chat_id)
        message = chat.messages.get(message_id) if chat is not None else None
        if message is None:
            return None
        return next((b.text for row in message.buttons for b in row if b.callback_data == data),
                    None)

    def media(self, file_id: str) -> tuple[bytes, str] | None:
        emu_file = self.emu.files.get(file_id)
        if emu_file is None or emu_file.data is None:
            return None
        return emu_file.data, emu_file.mime_type or (
            "image/jpeg" if emu_file.file_path.startswith("photos/")
            else "application/octet-stream")

    # ------------------------------------------------------------------ steps

    async def act(self, action: Action, minute: int | None = None) -> StepRecord:
        """Take one step: move the clock, act, wait for the bot, record what it did."""
        async with self._lock:
            minute = self.clock.next_minute() if minute is None else minute
            self.clock.move_to(minute)
            self.feed.publish("clock", {"clock": self.clock.label()})
            mark = self.feed.last_id
            await self._perform(action)
            await self.settle()
            record = self._record(len(self.steps) + 1, minute, action, mark)
            self.steps.append(record)
            if self.db is not None:
                keep.save(self.db, self.emu, self.world, self.clock.minute)
            return record

    async def _perform(self, action: Action) -> None:
        emu = self.emu
        if action.kind == "clock":
            assert action.at is not None
            self.clock.move_to(self._minute_of(datetime.fromisoformat(action.at)))
            self.feed.publish("clock", {"clock": self.clock.label()})
            await self.runtime.scheduler.run_due()
            return
        user = self._person(action.person).user
        chat = self._chat(action.chat)
        if action.kind == "send":
            emu.send_text(user, action.text or "", chat=chat if chat.is_group else None,
                          reply_to=action.reply_to, thread_id=action.thread)
        elif action.kind == "photo":
            emu.send_photo(user, action.text or None, chat=chat if chat.is_group else None,
                           reply_to=action.reply_to, thread_id=action.thread,
                           data=sample_photo())
        elif action.kind == "location":
            if action.lat is None or action.lon is None:
                raise StepError("a location needs lat and lon")
            emu.send_location(user, action.lat, action.lon,
                              chat=chat if chat.is_group else None)
        elif action.kind == "press":
            message = chat.messages.get(action.message or 0)
            if message is None or action.data is None:
                raise StepError(f"no message {action.message} in {action.chat}")
            try:
                query = emu.press(user, message, action.data)
            except LookupError as exc:
                raise StepError(str(exc)) from None
            with contextlib.suppress(TimeoutError):
                await query.wait_answered(timeout=SETTLE_SECONDS)

    def _minute_of(self, when: datetime) -> int:
        if when.tzinfo is None:  # a local time of the county
            when = when.replace(tzinfo=self.clock.start.tzinfo)
        return max(self.clock.minute + 1,
                   int((when - self.clock.start).total_seconds() // 60))

    def _record(self, number: int, minute: int, action: Action, mark: int) -> StepRecord:
        record = StepRecord(step=number, minute=minute, action=action)
        latest: dict[tuple[int, int], dict[str, Any]] = {}
        for event in self.feed.since(mark):
            if event.type == "message" and event.data["from"]["bot"]:
                data = event.data
                latest.pop((data["chat_id"], data["message_id"]), None)
                latest[(data["chat_id"], data["message_id"])] = data
            elif event.type == "answer":
                record.answers.append({"person": self._person_key(event.data["user_id"]),
                                       "text": event.data["text"],
                                       "alert": event.data["alert"]})
        # by chat and message: the outbox sends to several chats at once, so the order in
        # which their messages arrive is not part of what the bot did
        record.bot = sorted((self._normalised(data) for data in latest.values()),
                            key=lambda m: (m["chat"], m["id"]))
        return record

    def _normalised(self, data: dict[str, Any]) -> dict[str, Any]:
        return {"chat": self.chat_key(data["chat_id"]), "id": data["message_id"],
                "thread": data["thread_id"], "kind": data["kind"], "text": data["text"],
                "buttons": [[b["text"] for b in row] for row in data["buttons"]],
                "edited": data["edited"], "deleted": data["deleted"], "pinned": data["pinned"],
                "force_reply": data["force_reply"] is not None}

    # ------------------------------------------------------------------ names

    def _person(self, key: str | None) -> Any:
        for person in self.world.people:
            if person.key == key:
                return person
        raise StepError(f"no person {key!r} in the sample world")

    def _person_key(self, user_id: int) -> str:
        for person in self.world.people:
            if person.user.id == user_id:
                return str(person.key)
        return str(user_id)

    def person_key(self, user_id: int) -> str:
        key = self._person_key(user_id)
        if key == str(user_id):
            raise StepError(f"no person {user_id} in the sample world")
        return key

    def chat_key(self, chat_id: int) -> str:
        for key, chat in self.world.chats.items():
            if chat.id == chat_id:
                return key
        found = self.emu.chats.get(chat_id)
        if found is not None and found.type == "private" and found.user is not None:
            return f"private:{self._person_key(found.user.id)}"
        return str(chat_id)

    def chat_by_key(self, key: str | None) -> EmuChat:
        return self._chat(key)

    def _chat(self, key: str | None) -> EmuChat:
        if key is not None and key.startswith("private:"):
            return self.emu.private_chat(self._person(key.removeprefix("private:")).user)
        if key in self.world.chats:
            chat = self.world.chats[key]
            return self.emu.chats[chat.migrated_to_chat_id or chat.id]
        raise StepError(f"no chat {key!r} in the sample world")

    # ------------------------------------------------------------------ replay

    async def replay(self, steps: list[StepRecord]) -> tuple[int | None, str | None]:
        """Replay recorded steps on a fresh world: (None, None), or the first step that
        differs and how."""
        await self.reset()
        for expected in steps:
            try:
                actual = await self.act(expected.action, minute=expected.minute)
            except StepError as exc:
                return expected.step, str(exc)
            diff = difference(expected, actual)
            if diff is not None:
                return expected.step, diff
        return None, None


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return repr(value)
