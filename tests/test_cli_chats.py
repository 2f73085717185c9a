"""`gridhorn map import` checks the chats a map file binds, as /bind does (SPEC §2, §11)."""

import asyncio
import contextlib
import sqlite3
import threading
from collections.abc import Iterator

from bot.cli import main
from emulator import BotAPIEmulator
from tests.support.harness import TOKEN

MAP = """\
communities:
  - code: C01
    name: 欣山社区
    chat: {community}
    grids:
      - code: G0101
        name: 第一网格
        chat: {grid}
        estates:
          - code: E010101
            name: 阳光小区
            buildings:
              - code: B01010101
                name: 1栋
                chat: {building}
"""


def test_map_import_tells_which_bound_chats_lack_the_bot_or_its_rights(
        tmp_path, monkeypatch, capsys):
    with emulator_beside() as (emu, loop):
        owner = emu.add_user("Owner")
        ready = emu.add_group("社区工作群", members=[owner])
        forum = emu.add_group("网格工作群", forum=True, members=[owner])
        absent = emu.add_group("1栋楼事群", members=[owner])
        for chat, topics in ((ready, True), (forum, False)):
            future = asyncio.run_coroutine_threadsafe(
                emu.add_bot_to_group(chat, by=owner, admin=True, can_pin=True,
                                     can_manage_topics=topics), loop)
            future.result(10)
        path = tmp_path / "county.yaml"
        path.write_text(MAP.format(community=ready.id, grid=forum.id, building=absent.id),
                        encoding="utf-8")
        db = tmp_path / "g.db"
        monkeypatch.setenv("GRIDHORN_ENV_FILE", "")
        monkeypatch.setenv("GRIDHORN_BOT_TOKEN", TOKEN)
        monkeypatch.setenv("GRIDHORN_API_BASE_URL", emu.base_url)
        monkeypatch.setenv("GRIDHORN_DATABASE_URL", f"sqlite:///{db}")
        assert main(["map", "import", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"chat {absent.id} (B01010101): the bot is not in this chat" in out
    assert f"chat {forum.id} “网格工作群” (G0101): it cannot manage topics" in out
    assert f"chat {ready.id}" not in out
    assert "3 bound chat(s) checked: 2 need the bot or its rights" in out
    with sqlite3.connect(db) as conn:  # recorded as /bind records a chat
        rows = dict(conn.execute(
            "SELECT chat_id, is_forum FROM chats WHERE bot_is_admin = 1").fetchall())
    assert rows == {ready.id: 0, forum.id: 1}


def test_map_import_without_a_token_leaves_the_chats_to_the_bot(tmp_path, monkeypatch, capsys):
    path = tmp_path / "county.yaml"
    path.write_text(MAP.format(community=-1001, grid=-1002, building=-1003), encoding="utf-8")
    monkeypatch.setenv("GRIDHORN_ENV_FILE", "")
    monkeypatch.delenv("GRIDHORN_BOT_TOKEN", raising=False)
    monkeypatch.setenv("GRIDHORN_DATABASE_URL", f"sqlite:///{tmp_path / 'g.db'}")
    assert main(["map", "import", str(path)]) == 0
    assert "3 bound chat(s) not checked (no GRIDHORN_BOT_TOKEN here)" in capsys.readouterr().out


@contextlib.contextmanager
def emulator_beside() -> Iterator[tuple[BotAPIEmulator, asyncio.AbstractEventLoop]]:
    """The emulator on its own event loop, in a thread (the command runs its own loop)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    emu = BotAPIEmulator(token=TOKEN, bot_username="gridhorn_bot", bot_first_name="Gridhorn")
    try:
        asyncio.run_coroutine_threadsafe(emu.start(), loop).result(10)
        yield emu, loop
    finally:
        asyncio.run_coroutine_threadsafe(emu.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
