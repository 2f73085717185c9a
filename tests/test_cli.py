"""The `gridhorn` commands (map, run), as an operator runs them."""

import asyncio
import contextlib
import logging
import threading
from collections.abc import Iterator
from pathlib import Path

from telegram.request import HTTPXRequest

from bot.app import Runtime
from bot.cli import main
from emulator import BotAPIEmulator
from storage.store import Store
from tests.support.env import child_env
from tests.support.harness import TOKEN

MAPS = Path(__file__).parent / "data" / "maps"


def test_map_import_then_export_round_trips(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GRIDHORN_DATABASE_URL", f"sqlite:///{tmp_path / 'g.db'}")
    assert main(["map", "import", str(MAPS / "spec_example.yaml")]) == 0
    assert "created" in capsys.readouterr().out
    assert main(["map", "export"]) == 0
    exported = capsys.readouterr().out
    assert "欣山社区" in exported and "B01010101" in exported
    out = tmp_path / "map.yaml"
    assert main(["map", "export", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert text.startswith("# exported ") and text.split("\n", 1)[1] == exported
    assert main(["map", "import", str(out)]) == 0
    assert "0 created, 0 updated" in capsys.readouterr().out


def test_map_import_reports_every_error_with_its_line_and_changes_nothing(
        tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GRIDHORN_DATABASE_URL", f"sqlite:///{tmp_path / 'g.db'}")
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "community_code,community_name,grid_code,grid_name,estate_code,estate_name,building_code,building_name,chat,thread\n"
        "C01,欣山社区,G0101,第一网格,E010101,阳光小区,B01010101,1栋,,\n"
        "C01,欣山社区,G0101,第一网格,E010101,阳光小区,B01010101,1栋,,\n", encoding="utf-8")
    assert main(["map", "import", str(bad)]) == 1
    err = capsys.readouterr().err
    assert f"{bad}:3: [B01010101] duplicate code" in err and "nothing was changed" in err
    assert main(["map", "export"]) == 0
    assert "C01" not in capsys.readouterr().out


def test_map_import_of_a_missing_file(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GRIDHORN_DATABASE_URL", f"sqlite:///{tmp_path / 'g.db'}")
    assert main(["map", "import", str(tmp_path / "nope.yaml")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_run_with_the_bot_api_unreachable_says_so_and_leaves_nothing_open(tmp_path):
    """One clear line and exit 2; the HTTP sessions opened before getMe failed are closed
    (aiohttp would otherwise log "Unclosed client session" at exit)."""
    import socket
    import subprocess
    import sys

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = child_env(GRIDHORN_BOT_TOKEN="123456:TEST",
                    GRIDHORN_API_BASE_URL=f"http://127.0.0.1:{port}/bot",
                    GRIDHORN_DATABASE_URL=f"sqlite:///{tmp_path / 'g.db'}")
    root = Path(__file__).resolve().parents[1]
    result = subprocess.run([sys.executable, "-m", "bot.cli", "run"], cwd=root, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "gridhorn: cannot reach the Bot API at GRIDHORN_API_BASE_URL" in result.stderr
    assert "Unclosed" not in result.stderr and "Traceback" not in result.stderr


def test_a_second_run_on_the_same_sqlite_file_is_refused_naming_the_first(tmp_path):
    """SPEC §16: one bot per SQLite file; the first holds the file's run lock (here this
    process does), the second says so in one line, touches nothing and exits 2."""
    import os
    import subprocess
    import sys

    from storage.runlock import only_runner

    database = tmp_path / "g.db"
    env = child_env(GRIDHORN_BOT_TOKEN="123456:TEST",
                    GRIDHORN_API_BASE_URL="http://127.0.0.1:9/bot",
                    GRIDHORN_DATABASE_URL=f"sqlite:///{database}")
    root = Path(__file__).resolve().parents[1]
    with only_runner(str(database)):
        result = subprocess.run([sys.executable, "-m", "bot.cli", "run"], cwd=root, env=env,
                                capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"gridhorn: another gridhorn run (pid {os.getpid()}) is using {database}; stop it "
        "first, or give this one another GRIDHORN_DATABASE_URL")
    assert not database.exists()  # refused before the store was opened
    # once the first is gone, the lock is free again
    with only_runner(str(database)):
        pass


def test_run_with_an_empty_token_says_it_is_not_set_not_rejected(monkeypatch, capsys):
    monkeypatch.setenv("GRIDHORN_BOT_TOKEN", "")
    monkeypatch.setenv("GRIDHORN_API_BASE_URL", "http://127.0.0.1:9/bot")  # never the internet
    assert main(["run"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gridhorn: GRIDHORN_BOT_TOKEN is not set or empty.")
    assert "@BotFather" in err and "rejected" not in err and "Traceback" not in err


def test_map_export_with_an_unusable_database_says_so_in_one_line(tmp_path, monkeypatch, capsys):
    db = tmp_path / "notes.db"
    db.write_text("meeting notes, not a database\n" * 10, encoding="utf-8")
    monkeypatch.setenv("GRIDHORN_DATABASE_URL", f"sqlite:///{db}")
    assert main(["map", "export"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"gridhorn: GRIDHORN_DATABASE_URL: cannot open sqlite:///{db}: "
                   "file is not a database"]


def test_an_unreachable_postgresql_server_is_said_in_one_line(monkeypatch, capsys):
    """Nothing listens on port 1: start-up stops naming the setting, never its password."""
    monkeypatch.setenv("GRIDHORN_DATABASE_URL", "postgresql://gridhorn:s3cret@127.0.0.1:1/g")
    assert main(["map", "export"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("gridhorn: GRIDHORN_DATABASE_URL: cannot open "
                             "postgresql://gridhorn:***@127.0.0.1:1/g: ")
    assert "s3cret" not in err[0] and "Traceback" not in err[0]


def test_run_reads_dotenv_in_the_working_directory_and_environment_variables_win(
        tmp_path, monkeypatch, capsys):
    """SPEC §8: environment variables or a .env file, the environment first. The .env names
    a Bot API nobody listens on: the answer shows which URL was used."""
    import socket

    ports = []
    for _ in range(2):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            ports.append(probe.getsockname()[1])
    (tmp_path / ".env").write_text(
        "GRIDHORN_BOT_TOKEN=123456:FROM-DOTENV\n"
        f"GRIDHORN_API_BASE_URL=http://127.0.0.1:{ports[0]}/bot\n"
        f"GRIDHORN_DATABASE_URL=sqlite:///{tmp_path / 'g.db'}\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GRIDHORN_ENV_FILE", raising=False)  # the default: .env, here
    assert main(["run"]) == 2
    assert f"(http://127.0.0.1:{ports[0]}/bot)" in capsys.readouterr().err
    monkeypatch.setenv("GRIDHORN_API_BASE_URL", f"http://127.0.0.1:{ports[1]}/bot")
    assert main(["run"]) == 2
    assert f"(http://127.0.0.1:{ports[1]}/bot)" in capsys.readouterr().err


@contextlib.contextmanager
def emulator_beside() -> Iterator[BotAPIEmulator]:
    """The Bot API emulator on its own event loop, in a thread: `main(["run"])` runs its own
    loop in this one, as an operator's shell does."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    emu = BotAPIEmulator(token=TOKEN, bot_username="gridhorn_bot", bot_first_name="Gridhorn")
    try:
        asyncio.run_coroutine_threadsafe(emu.start(), loop).result(10)
        yield emu
    finally:
        asyncio.run_coroutine_threadsafe(emu.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def test_run_opens_the_store_once_and_calls_telegram_without_httpx(tmp_path, monkeypatch):
    """The store `gridhorn run` opens first (to name a bad GRIDHORN_DATABASE_URL in one line)
    is the one the bot runs on, not opened a second time; and the bot's calls go through its
    own HTTP stack, so the run leaves httpx's logger as it found it."""
    opened: list[str] = []
    open_sqlite = Store.__dict__["open_sqlite"].__func__

    async def counted(cls: type[Store], path: str) -> Store:
        opened.append(path)
        return await open_sqlite(cls, path)

    requests: list[object] = []

    async def start_and_stop(self: Runtime, started: object = None) -> None:
        await self.start()
        requests.append(self.app.bot.request)  # what the bot's calls go through
        await self.stop()

    monkeypatch.setattr(Store, "open_sqlite", classmethod(counted))
    monkeypatch.setattr(Runtime, "run_until_stopped", start_and_stop)
    httpx_level = logging.getLogger("httpx").level
    with emulator_beside() as emu:
        monkeypatch.setenv("GRIDHORN_ENV_FILE", "")
        monkeypatch.setenv("GRIDHORN_BOT_TOKEN", TOKEN)
        monkeypatch.setenv("GRIDHORN_API_BASE_URL", emu.base_url)
        monkeypatch.setenv("GRIDHORN_DATABASE_URL", f"sqlite:///{tmp_path / 'g.db'}")
        monkeypatch.setenv("GRIDHORN_HTTP_WORKER", "0")
        assert main(["run"]) == 0
        assert emu.stats.total > 0  # it did start against Telegram
    assert opened == [str(tmp_path / "g.db")]
    assert requests and not [r for r in requests if isinstance(r, HTTPXRequest)]
    assert logging.getLogger("httpx").level == httpx_level
