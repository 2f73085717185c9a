"""What the benchmarks share: the emulator, a map of bound chats, the bot as a process, figures.

Everything binds to 127.0.0.1 and stops by itself; databases live in a temporary folder that
is removed at the end, or (`--database postgresql`) in a PostgreSQL database created for the
run and dropped at the end (`database()`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import itertools
import os
import platform
import signal
import sqlite3
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from emulator import BotAPIEmulator, EmuChat, EmuUser, FloodLimits
from storage.models import Chat, Unit
from storage.store import Store

TOKEN = "123456:BENCH-TOKEN"
ROOT = Path(__file__).resolve().parents[1]
#: Telegram's own flood limits, as the emulator enforces them (exact sliding windows).
TELEGRAM = FloodLimits(overall_per_s=30, group_per_min=20, chat_per_s=1)
#: The bot's settings that match them (SPEC §8 defaults).
TELEGRAM_RATES = {"rate_overall_per_s": 30, "rate_group_per_min": 20, "rate_chat_per_s": 1}

#: The speed options of this run (`add_speed_flags`): in the settings of every bot it starts.
SPEED: dict[str, Any] = {"http_worker": True, "event_loop": "asyncio"}


def add_speed_flags(parser: argparse.ArgumentParser) -> None:
    """The options whose worth the benchmarks measure (docs/benchmarks.md)."""
    parser.add_argument("--no-http-worker", dest="http_worker", action="store_false",
                        help="the bot makes its Bot API calls itself (GRIDHORN_HTTP_WORKER=0)")
    parser.add_argument("--event-loop", choices=("asyncio", "uvloop"), default="asyncio",
                        help="the bot's event loop (GRIDHORN_EVENT_LOOP); a bot in this "
                             "process shares it with the emulator")
    parser.set_defaults(http_worker=True)


def use_speed_flags(args: argparse.Namespace, report: Report) -> str:
    """Take the run's speed options, say them in the report; the event loop to run on."""
    SPEED.update(http_worker=args.http_worker, event_loop=args.event_loop)
    report.figure("speed options", f"HTTP worker {'on' if args.http_worker else 'off'}, "
                                   f"{args.event_loop} event loop")
    return str(args.event_loop)


#: The PostgreSQL server of the `--database postgresql` runs: a URL to its maintenance database
#: (read before the GRIDHORN_* variables are cleared below). Each run creates its own database
#: there and drops it at the end.
PG_ADMIN_URL = os.environ.get("GRIDHORN_BENCH_POSTGRESQL",
                              "postgresql://postgres@127.0.0.1:5432/postgres")
ENGINES = ("sqlite", "postgresql")

# A benchmark's settings come from its options alone, never from the shell or a .env file.
for _name in [n for n in os.environ if n.startswith("GRIDHORN_")]:
    del os.environ[_name]


def machine() -> str:
    return (f"{datetime.date.today().isoformat()}, nproc {os.cpu_count()}, "
            f"Python {platform.python_version()}, {platform.system()} {platform.machine()}")


class Report:
    """Figures and targets; `exit_code()` is 1 when any target was missed."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.missed: list[str] = []
        print(f"== {title} ({machine()})", flush=True)

    def figure(self, name: str, value: Any, note: str = "") -> None:
        print(f"  {name}: {value}{'  (' + note + ')' if note else ''}", flush=True)

    def target(self, name: str, ok: bool, detail: str) -> None:
        print(f"  [{'ok' if ok else 'MISSED'}] {name}: {detail}", flush=True)
        if not ok:
            self.missed.append(name)

    def exit_code(self) -> int:
        if self.missed:
            print(f"targets missed: {', '.join(self.missed)}", flush=True)
            return 1
        print("all targets met", flush=True)
        return 0


@contextlib.contextmanager
def workdir(keep: bool = False) -> Iterator[Path]:
    if keep:
        path = Path(tempfile.mkdtemp(prefix="gridhorn-bench-"))
        print(f"  (keeping {path})")
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="gridhorn-bench-") as name:
        yield Path(name)


async def start_emulator(flood: FloodLimits | None) -> BotAPIEmulator:
    emu = BotAPIEmulator(token=TOKEN, bot_username="gridhorn_bot", bot_first_name="Gridhorn",
                         flood=flood)
    await emu.start(host="127.0.0.1", port=0)
    return emu


async def start_runtime(values: dict[str, Any]):
    """The real Runtime in this process, set up as `gridhorn run` sets it up (the garbage
    collector tuned after start-up). Here the emulator shares the process: a long
    collection stalls Telegram's side too, and the calls it held arrive bunched, which a
    real server never sees (one 44 ms collection made one 429 in a 600-chat horn)."""
    from bot.app import build_runtime
    from bot.cli import tune_garbage_collector
    from bot.settings import load_settings

    runtime = await build_runtime(load_settings(**values))
    await runtime.start()
    tune_garbage_collector()
    return runtime


def add_database_flag(parser: argparse.ArgumentParser, default: str = "sqlite") -> None:
    parser.add_argument("--database", choices=(*ENGINES, "both"), default=default,
                        help="the store's engine; both: SQLite, then PostgreSQL, in one run "
                             "(PostgreSQL: a fresh database on GRIDHORN_BENCH_POSTGRESQL, "
                             "default postgresql://postgres@127.0.0.1:5432/postgres)")


def engines(choice: str) -> list[str]:
    return list(ENGINES) if choice == "both" else [choice]


_databases = itertools.count(1)


def _pg_admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql)


def _drop_stale() -> None:
    """Databases of benchmark runs whose process is gone (killed before its cleanup)."""
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
        names = [row[0] for row in conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE 'gridhorn\\_bench\\_%'")]
        for name in names:
            pid = name.split("_")[2]
            if pid.isdigit() and not Path(f"/proc/{pid}").exists():
                conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@contextlib.asynccontextmanager
async def database(engine: str, tmp: Path) -> AsyncIterator[str]:
    """The URL of a fresh, empty database for one run: a file in `tmp`, or a database
    `gridhorn_bench_<pid>_<n>` created on the PostgreSQL server and dropped at the end."""
    if engine == "sqlite":
        yield f"sqlite:///{tmp / 'gridhorn.db'}"
        return
    name = f"gridhorn_bench_{os.getpid()}_{next(_databases)}"
    await asyncio.to_thread(_drop_stale)
    await asyncio.to_thread(_pg_admin, f"CREATE DATABASE {name}")
    try:
        yield urlunsplit(urlsplit(PG_ADMIN_URL)._replace(path="/" + name))
    finally:
        await asyncio.to_thread(_pg_admin, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def engine_of(database_url: str) -> str:
    return "sqlite" if database_url.startswith("sqlite:") else "postgresql"


def settings_values(emu: BotAPIEmulator, db: Path | str, **overrides: Any) -> dict[str, Any]:
    """The bot's settings; `db` is a database URL (`database()`) or an SQLite file."""
    url = db if isinstance(db, str) else f"sqlite:///{db}"
    values: dict[str, Any] = {
        "bot_token": TOKEN, "api_base_url": emu.base_url,
        "database_url": url, "quiet_hours": "", **TELEGRAM_RATES,
        **SPEED,
    }
    values.update(overrides)
    return values


def bot_env(values: dict[str, Any]) -> dict[str, str]:
    """The same settings as GRIDHORN_* environment variables, for a bot process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDHORN_")}
    env.update({f"GRIDHORN_{k.upper()}": str(v) for k, v in values.items()})
    env["GRIDHORN_ENV_FILE"] = ""  # a developer's .env never reaches a benchmark's bot
    env["PYTHONUNBUFFERED"] = "1"
    return env


@dataclass
class World:
    """A map whose building chats (and optionally grid staff chats) exist in the emulator."""

    owner: EmuUser
    buildings: list[str] = field(default_factory=list)
    building_chats: dict[str, int] = field(default_factory=dict)   # code -> chat id
    grids: list[str] = field(default_factory=list)
    grid_chats: dict[str, int] = field(default_factory=dict)
    building_grid: dict[str, str] = field(default_factory=dict)


async def build_world(emu: BotAPIEmulator, store: Store, *, buildings: int, per_grid: int,
                      grids_per_community: int = 10, bind_buildings: bool = True,
                      bind_grids: bool = False, forum_grids: bool = False) -> World:
    """Communities of `grids_per_community` grids, one estate per grid, `per_grid` buildings
    per estate.

    Chats are created in the emulator with the bot already an admin there (the updates of its
    arrival are dropped: the bench starts from a map that was bound long ago) and recorded and
    bound in the store.
    """
    owner = emu.add_user("楼长", language_code="zh-hans")
    world = World(owner=owner)
    units: list[Unit] = []
    chats: list[tuple[str, EmuChat]] = []
    grid_count = -(-buildings // per_grid)
    for g in range(grid_count):
        c = g // grids_per_community
        community = f"C{c + 1:02d}"
        if g % grids_per_community == 0:
            units.append(Unit(code=community, kind="community", name=f"第{c + 1}社区",
                              position=c))
        grid = f"G{g + 1:04d}"
        estate = f"E{g + 1:04d}"
        units.append(Unit(code=grid, kind="grid", name=f"第{g + 1}网格", parent_code=community,
                          position=g % grids_per_community))
        units.append(Unit(code=estate, kind="estate", name=f"小区{g + 1}", parent_code=grid))
        world.grids.append(grid)
        if bind_grids:
            chats.append((grid, emu.add_group(f"第{g + 1}网格工作群", forum=forum_grids,
                                              members=[owner])))
        for b in range(per_grid):
            index = g * per_grid + b
            if index >= buildings:
                break
            code = f"B{index + 1:05d}"
            units.append(Unit(code=code, kind="building", name=f"{index + 1}栋",
                              parent_code=estate, position=b))
            world.buildings.append(code)
            world.building_grid[code] = grid
            if bind_buildings:
                chats.append((code, emu.add_group(f"{index + 1}栋楼事群", members=[owner])))
    await join_groups(emu, [chat for _, chat in chats], owner)
    async with store.transaction():
        await store.people.ensure(owner.id)
        for unit in units:
            await store.map.upsert(unit)
        for code, chat in chats:
            await store.map.upsert_chat(Chat(chat_id=chat.id, type=chat.type, title=chat.title,
                                             is_forum=chat.is_forum, bot_is_admin=True,
                                             can_pin=True, can_manage_topics=True))
            await store.map.bind(code, chat.id, 0, None)
            if code.startswith("B"):
                world.building_chats[code] = chat.id
            else:
                world.grid_chats[code] = chat.id
    return world


async def join_groups(emu: BotAPIEmulator, chats: Iterable[EmuChat], by: EmuUser) -> None:
    """The bot becomes an admin of each chat; the updates of its arrival are dropped."""
    for chat in chats:
        await emu.add_bot_to_group(chat, by=by, admin=True, can_pin=True,
                                   can_manage_topics=True)
    emu.drop_pending_updates()


async def quiesce_schedules(store: Store, values: dict[str, Any]) -> int:
    """Record this period's scheduled runs (theme, report, boards, daily) as done.

    A fresh database would otherwise make the bot catch up at start-up and post a monthly
    report and a theme to every bound chat (what a county that has run for months has long
    had): the broadcast benchmarks measure the broadcast alone.
    """
    from types import SimpleNamespace

    from bot.scheduler import Scheduler
    from bot.settings import load_settings

    settings = load_settings(**values)
    idle = SimpleNamespace(themes=None, reports=None, boards=None, patrols=None)
    scheduler = Scheduler(store, idle, settings)  # type: ignore[arg-type]
    now = scheduler.now()
    recorded = 0
    async with store.transaction():
        for job in scheduler.jobs:
            fire = scheduler.last_fire(job, now)
            if fire is not None:
                recorded += bool(await store.schedules.record_run(job.name, job.period(fire), 0))
    return recorded


class Watcher:
    """Bot messages that reached the emulator, per chat and per kind, read incrementally.

    `classify(text)` names a message's kind (None: not counted). Only chats in `chats` are
    watched. `update()` costs only what arrived since the last call, so it can run as the
    condition of `emu.wait_until` (re-checked after every API call) without slowing the bot.
    """

    def __init__(self, emu: BotAPIEmulator, chats: Iterable[int],
                 classify: Callable[[str], str | None]) -> None:
        self.emu = emu
        self.chats = set(chats)
        self.classify = classify
        self.counts: dict[str, Counter[int]] = {}
        self.times: dict[str, list[float]] = {}
        self._last_id: dict[int, int] = {}
        self._seen = len(emu.requests)

    def update(self) -> None:
        requests = self.emu.requests
        touched = {entry.chat_id for entry in requests[self._seen:]
                   if entry.status_code == 200 and entry.chat_id in self.chats}
        self._seen = len(requests)
        for chat_id in touched:
            chat = self.emu.chats.get(chat_id)  # type: ignore[arg-type]
            if chat is None:
                continue
            last = self._last_id.get(chat.id, 0)
            for message in reversed(chat.messages.values()):
                if message.message_id <= last:
                    break
                if message.sender is not None or message.kind == "service":
                    continue
                kind = self.classify(message.text)
                if kind is not None:
                    self.counts.setdefault(kind, Counter())[chat.id] += 1
                    self.times.setdefault(kind, []).append(message.sent_at)
            if chat.messages:
                self._last_id[chat.id] = max(last, next(reversed(chat.messages)))

    def total(self, kind: str) -> int:
        self.update()
        return sum(self.counts.get(kind, Counter()).values())

    def chats_with(self, kind: str) -> int:
        self.update()
        return len(self.counts.get(kind, Counter()))

    def nth_time(self, kind: str, n: int) -> float:
        """When the n-th message of a kind arrived (monotonic clock)."""
        return sorted(self.times.get(kind, []))[n - 1]


async def press_spread(emu: BotAPIEmulator, people: list[Any], cards: dict[int, Any],
                       data: str, spread: float, slices: int = 20
                       ) -> tuple[float, dict[int, float]]:
    """Everyone presses `data` on their card, evenly over `spread` seconds (in `slices`
    steps). Returns the start and each presser's moment."""
    pressed: dict[int, float] = {}
    per_slice = -(-len(people) // slices)
    start = time.monotonic()
    for s in range(slices):
        for user in people[s * per_slice:(s + 1) * per_slice]:
            pressed[user.id] = time.monotonic()
            emu.press(user, cards[user.id], data)
        await asyncio.sleep(max(0.0, start + spread * (s + 1) / slices - time.monotonic()))
    return start, pressed


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    return statistics.quantiles(ordered, n=100, method="inclusive")[int(p) - 1]


def _status(pid: int, key: str) -> str | None:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(key + ":"):
            return line.split(":", 1)[1].strip()
    return None


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def postgres_cpu_seconds() -> float | None:
    """User + system CPU of this machine's PostgreSQL server processes (backends that ended
    are not counted: the bot's pooled connections live as long as the bot); None when no
    server runs here."""
    total, found = 0.0, False
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                comm = (entry / "comm").read_text().strip()
            except OSError:
                continue
            if comm.startswith("postgres"):
                found = True
                total += _cpu_seconds(int(entry.name))
    return total if found else None


class BotProcess:
    """`gridhorn run` (the production entry point) as a child process, logs to a file."""

    def __init__(self, env: dict[str, str], log_path: Path, args: tuple[str, ...] = ()) -> None:
        self.env = env
        self.log_path = log_path
        self.args = args  # e.g. ("--webhook",)
        self.proc: asyncio.subprocess.Process | None = None
        self._log: Any = None

    async def start(self) -> None:
        self._log = open(self.log_path, "ab")
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot.cli", "run", *self.args, cwd=ROOT, env=self.env,
            stdout=self._log, stderr=self._log, stdin=asyncio.subprocess.DEVNULL)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def status(self, key: str) -> str | None:
        """A line of /proc/<pid>/status (e.g. VmHWM: the peak resident set)."""
        return _status(self.pid, key)

    def cpu_seconds(self) -> float:
        """User + system CPU time the bot process has used so far."""
        return _cpu_seconds(self.pid)

    def children(self) -> list[int]:
        """The bot's child processes (its HTTP worker, `bot.httpworker`)."""
        try:
            text = Path(f"/proc/{self.pid}/task/{self.pid}/children").read_text()
        except OSError:
            return []
        return [int(pid) for pid in text.split()]

    def children_cpu_seconds(self) -> float:
        return sum(_cpu_seconds(pid) for pid in self.children())

    def peak_rss_mb(self) -> float | None:
        """Peak resident set of the bot, its children's added."""
        total = None
        for pid in [self.pid, *self.children()]:
            value = _status(pid, "VmHWM")
            if value:
                total = (total or 0) + int(value.split()[0]) / 1024
        return total

    async def kill(self) -> None:
        """SIGKILL: no shutdown code runs."""
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)
            await self.proc.wait()
        self._close_log()

    async def stop(self, timeout: float = 20) -> int | None:
        """SIGTERM and wait (SIGKILL after `timeout`)."""
        if self.proc is None:
            return None
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), timeout)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        self._close_log()
        return self.proc.returncode

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


async def query_row(database_url: str, sql: str) -> tuple[Any, ...]:
    """One row of a query on a run's database, through the store (either engine), after the
    bot has stopped."""
    store = await Store.open(database_url)
    try:
        row = await store.db.fetchone(sql)
    finally:
        await store.close()
    assert row is not None
    return tuple(row)


def outbox_counts(db_path: Path) -> dict[str, int]:
    """Outbox rows by status, read with plain sqlite3 (another process may own the store)."""
    with contextlib.closing(sqlite3.connect(db_path, timeout=10)) as db:
        return dict(db.execute("SELECT status, COUNT(*) FROM outbox GROUP BY status").fetchall())


async def wait_for(condition: Any, timeout: float, every: float = 0.05) -> bool:
    """Poll a condition that no event announces (another process's database)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        await asyncio.sleep(every)
    return bool(condition())
