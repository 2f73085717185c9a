"""End-to-end harness: the Bot API emulator plus the real bot (its real HTTP stack)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from bot.app import Runtime, build_runtime
from bot.http import AiohttpRequest
from bot.httpworker import WorkerRequest
from bot.settings import Settings, load_settings
from emulator import BotAPIEmulator
from storage.models import Unit
from storage.store import Store

TOKEN = "123456:TEST-TOKEN"


class _EmulatorOnly(AiohttpRequest):
    """Fails loudly on any request not aimed at the emulator (tests never reach the internet)."""

    def __init__(self, allowed_prefix: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.allowed_prefix = allowed_prefix

    async def do_request(self, url: str, *args: Any, **kwargs: Any) -> tuple[int, bytes]:
        if not url.startswith(self.allowed_prefix):
            raise AssertionError(f"a test bot tried to reach {url}")
        return await super().do_request(url, *args, **kwargs)


class EmulatorOnlyRequest(_EmulatorOnly):
    pass


class EmulatorOnlyWorkerRequest(_EmulatorOnly, WorkerRequest):
    """The same, the calls made by the HTTP worker process (`bot.httpworker`)."""


class Harness:
    def __init__(self, tmp_path: Path, **emulator_options: Any) -> None:
        self.tmp_path = tmp_path
        # Flood limits are off unless a test asks for them (flood=FloodLimits(...)): the
        # features' tests then run at full speed; the outbox tests turn them on.
        emulator_options.setdefault("flood", None)
        self.emu = BotAPIEmulator(token=TOKEN, bot_username="gridhorn_bot",
                                  bot_first_name="Gridhorn", **emulator_options)
        self.runtime: Runtime | None = None
        # the bot's calls made in the test's process unless a test asks for the worker
        # (each worker is a process: 0.3 s to start)
        self.http_worker = False

    async def __aenter__(self) -> Harness:
        await self.emu.start(host="127.0.0.1", port=0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop_bot()
        await self.emu.stop()

    def settings(self, **overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "bot_token": TOKEN,
            "api_base_url": self.emu.base_url,
            "database_url": f"sqlite:///{self.tmp_path / 'gridhorn.db'}",
            "quiet_hours": "",
            "rate_overall_per_s": 1000, "rate_group_per_min": 1000, "rate_chat_per_s": 1000,
            "http_worker": self.http_worker,
        }
        values.update(overrides)
        return load_settings(**values)

    async def start_bot(self, **overrides: Any) -> Runtime:
        settings = self.settings(**overrides)
        prefix = self.emu.base_url.rsplit("/bot", 1)[0]
        kind = EmulatorOnlyWorkerRequest if settings.http_worker else EmulatorOnlyRequest
        request = kind(prefix, connection_pool_size=256, read_timeout=20)
        updates = EmulatorOnlyRequest(prefix, connection_pool_size=2, read_timeout=20)
        self.runtime = await build_runtime(settings, request=request, poll_timeout=1,
                                           get_updates_request=updates)
        await self.runtime.start()
        return self.runtime

    async def stop_bot(self) -> None:
        if self.runtime is not None:
            await self.runtime.stop()
            self.runtime = None

    @property
    def store(self) -> Store:
        assert self.runtime is not None, "start the bot first"
        return self.runtime.store

    async def settle(self, timeout: float = 10) -> None:
        """Wait until every update the emulator holds is handled and the outbox is idle."""
        runtime = self.runtime
        assert runtime is not None, "start the bot first"
        await self.emu.wait_until(lambda: not self.emu.pending_updates(), timeout=timeout)
        await asyncio.wait_for(runtime.intake.drain(), timeout)
        await runtime.card_backlog.drain(timeout)
        await runtime.sender.drain(timeout)

    # conversation helpers

    async def say(self, user: Any, text: str, chat: Any = None, **kwargs: Any) -> list[Any]:
        """Send a message as `user` and return the bot messages that it caused in that chat."""
        chat_id = chat.id if chat is not None else user.id
        before = {m.message_id for m in self.emu.messages(chat_id)}
        self.emu.send_text(user, text, chat=chat, **kwargs)
        await self.settle()
        return [m for m in self.emu.messages(chat_id) if m.message_id not in before]

    async def press(self, user: Any, message: Any, data: str) -> Any:
        """Tap a button (by data or label); wait for the answer and all that it caused."""
        query = self.emu.press(user, message, data)
        answer = await query.wait_answered(timeout=5)
        await self.settle()
        return answer

    def texts(self, chat_id: int) -> list[str]:
        return [m.text for m in self.emu.messages(chat_id)]

    async def bound_group(self, title: str, code: str, by: Any, members: list[Any], *,
                          supergroup: bool = True, forum: bool = False, can_pin: bool = True,
                          can_manage_topics: bool | None = None) -> Any:
        """A group with the bot as admin, bound to the unit `code` by `by`."""
        chat = self.emu.add_group(title=title, supergroup=supergroup, forum=forum,
                                  members=members)
        await self.emu.add_bot_to_group(chat, by=by, admin=True, can_pin=can_pin,
                                        can_manage_topics=can_manage_topics)
        await self.say(by, f"/bind {code}", chat=chat)
        return chat

    async def last(self, chat_id: int) -> Any:
        messages = self.emu.messages(chat_id)
        assert messages, f"no bot message in chat {chat_id}"
        return messages[-1]


async def seed_map(store: Store) -> None:
    """A small map: one community, two grids, buildings, and two departments."""
    units = [
        Unit(code="C01", kind="community", name="欣山社区"),
        Unit(code="G0101", kind="grid", name="第一网格", parent_code="C01"),
        Unit(code="E010101", kind="estate", name="阳光小区", parent_code="G0101"),
        Unit(code="B01010101", kind="building", name="1栋", parent_code="E010101"),
        Unit(code="B01010102", kind="building", name="2栋", parent_code="E010101", position=1),
        Unit(code="G0102", kind="grid", name="第二网格", parent_code="C01", position=1),
        Unit(code="E010201", kind="estate", name="月亮小区", parent_code="G0102"),
        Unit(code="B01020101", kind="building", name="3栋", parent_code="E010201"),
        Unit(code="MZJ", kind="department", name="县民政局", domains=("orange",)),
        Unit(code="CGJ", kind="department", name="县城管局", domains=("green",), position=1),
    ]
    async with store.transaction():
        for unit in units:
            await store.map.upsert(unit)


async def grant(store: Store, user_id: int, role: str, unit_code: str) -> None:
    async with store.transaction():
        await store.people.ensure(user_id)
        await store.people.grant(user_id, role, unit_code, None)


async def consent(store: Store, *user_ids: int) -> None:
    """People who agreed to the privacy notice (SPEC §14) before the test's Submits: the
    notice and its Agree have tests of their own (tests/e2e/test_privacy.py)."""
    async with store.transaction():
        for user_id in user_ids:
            await store.privacy.consent(user_id, time.time())
