"""Several `gridhorn run --webhook` processes on one PostgreSQL database, behind a load
balancer, with the emulator delivering by webhook (SPEC §16): the fault tests' world.

`Balancer` is what an operator puts in front of the replicas (nginx, a cloud load balancer):
it passes each POST from Telegram to the next replica in turn and, when one does not answer
(killed, not yet listening), to the one after; when none answers, Telegram gets 502 and
posts again later.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path

from emulator.balancer import Balancer, free_port, listening
from tests.support.env import child_env

ROOT = Path(__file__).resolve().parents[2]
SECRET = "replicas-secret_123"
#: the bot's own pacing as in production (SPEC §8 defaults), for an emulator that enforces
#: Telegram's flood limits
PRODUCTION_RATES = {"GRIDHORN_RATE_OVERALL_PER_S": "30", "GRIDHORN_RATE_CHAT_PER_S": "1",
                    "GRIDHORN_RATE_GROUP_PER_MIN": "20"}


@dataclass
class Replica:
    number: int
    listen: str
    process: asyncio.subprocess.Process | None = None
    log: Path | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid


@dataclass
class Replicas:
    """`count` replicas of the bot on `database_url`, the emulator at `api_base_url`."""

    api_base_url: str
    database_url: str
    tmp_path: Path
    count: int = 2
    extra: dict[str, str] = field(default_factory=dict)
    replicas: list[Replica] = field(default_factory=list)
    balancer: Balancer | None = None

    async def __aenter__(self) -> Replicas:
        self.replicas = [Replica(n, f"127.0.0.1:{free_port()}") for n in range(self.count)]
        self.balancer = Balancer([r.listen for r in self.replicas])
        await self.balancer.start()
        for replica in self.replicas:
            await self.start(replica)
        return self

    async def __aexit__(self, *exc: object) -> None:
        for replica in self.replicas:
            await self.stop(replica)
        if self.balancer is not None:
            await self.balancer.stop()

    def env(self, replica: Replica) -> dict[str, str]:
        assert self.balancer is not None
        settings = {
            "GRIDHORN_BOT_TOKEN": "123456:TEST-TOKEN", "GRIDHORN_API_BASE_URL": self.api_base_url,
            "GRIDHORN_DATABASE_URL": self.database_url, "GRIDHORN_QUIET_HOURS": "",
            "GRIDHORN_WEBHOOK_URL": self.balancer.url, "GRIDHORN_WEBHOOK_SECRET": SECRET,
            "GRIDHORN_LISTEN": replica.listen, "GRIDHORN_HTTP_WORKER": "false",
            # unless a test says otherwise (`extra`), the emulator enforces no flood limits:
            # the bot need not pace for them
            "GRIDHORN_RATE_OVERALL_PER_S": "1000", "GRIDHORN_RATE_CHAT_PER_S": "1000",
            "GRIDHORN_RATE_GROUP_PER_MIN": "100000"}
        settings.update(self.extra)
        return child_env(**settings)

    async def start(self, replica: Replica) -> None:
        """Start the replica's process and wait until it listens."""
        replica.log = self.tmp_path / f"replica{replica.number}.log"
        with replica.log.open("ab") as log:  # the child keeps its own descriptor
            replica.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot.cli", "run", "--webhook", cwd=ROOT,
                env=self.env(replica), stdout=asyncio.subprocess.DEVNULL, stderr=log)
        try:
            await listening(replica.listen, timeout=60)
        except TimeoutError:
            raise AssertionError(f"replica {replica.number} does not listen: {self.logs()}"
                                 ) from None

    async def stop(self, replica: Replica, sig: int = signal.SIGTERM) -> int | None:
        process = replica.process
        if process is None or process.returncode is not None:
            return None if process is None else process.returncode
        process.send_signal(sig)
        try:
            return await asyncio.wait_for(process.wait(), 30)
        except TimeoutError:  # never leave a replica behind (it would hold its locks)
            process.kill()
            await process.wait()
            raise

    async def kill(self, replica: Replica) -> None:
        """kill -9: no shutdown at all, as a machine that dies."""
        assert replica.process is not None
        os.kill(replica.pid, signal.SIGKILL)
        await replica.process.wait()

    def logs(self) -> str:
        parts = []
        for replica in self.replicas:
            if replica.log is not None and replica.log.exists():
                text = replica.log.read_text(encoding="utf-8", errors="replace")
                parts.append(f"--- replica {replica.number}\n{text[-4000:]}")
        return "\n".join(parts)


async def bound_building_chats(emu, store, count: int) -> list[int]:
    """`count` buildings of one community (C01, grids of 40), each with its group chat, the
    bot an admin there since long ago (the updates of its arrival dropped), bound in the
    store: the chats a county-wide post goes to."""
    from storage.models import Chat, Unit

    owner = emu.add_user("楼长", language_code="zh-hans")
    units = [Unit(code="C01", kind="community", name="欣山社区")]
    chats: list[tuple[str, object]] = []
    for index in range(count):
        grid, estate = f"G{index // 40 + 1:03d}", f"E{index // 40 + 1:03d}"
        if index % 40 == 0:
            units += [Unit(code=grid, kind="grid", name=f"第{index // 40 + 1}网格",
                           parent_code="C01", position=index // 40),
                      Unit(code=estate, kind="estate", name=f"小区{index // 40 + 1}",
                           parent_code=grid)]
        code = f"B{index + 1:05d}"
        units.append(Unit(code=code, kind="building", name=f"{index + 1}栋",
                          parent_code=estate, position=index % 40))
        chats.append((code, emu.add_group(f"{index + 1}栋楼事群", members=[owner])))
    for _, chat in chats:
        await emu.add_bot_to_group(chat, by=owner, admin=True, can_pin=True,
                                   can_manage_topics=True)
    emu.drop_pending_updates()
    async with store.transaction():
        await store.people.ensure(owner.id)
        for unit in units:
            await store.map.upsert(unit)
        for code, chat in chats:
            await store.map.upsert_chat(Chat(chat_id=chat.id, type=chat.type, title=chat.title,
                                             is_forum=False, bot_is_admin=True, can_pin=True,
                                             can_manage_topics=True))
            await store.map.bind(code, chat.id, 0, None)
    return [chat.id for _, chat in chats]


async def leader(store) -> tuple[int, int | None]:
    """The leadership's epoch and the leader's process id (None: nobody leads yet)."""
    row = await store.db.fetchone("SELECT epoch, holder FROM leadership WHERE id = 1")
    assert row is not None
    holder = row["holder"]
    return int(row["epoch"]), int(holder.split(":")[1]) if holder else None


def posts_per_chat(emu, chat_ids: list[int], mark: str) -> dict[int, int]:
    """How many bot messages containing `mark` each chat received."""
    return {chat_id: sum(1 for m in emu.chats[chat_id].messages.values()
                         if m.sender is None and mark in m.text) for chat_id in chat_ids}
