"""The `gridhorn` command: run the bot, import and export the map, write a report."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import signal
import sqlite3
import sys
from datetime import datetime
from pathlib import Path

from telegram import Bot
from telegram.error import InvalidToken, NetworkError, TelegramError

from bot import eventloop, logs
from bot.app import build_runtime
from bot.chatprobe import TelegramChatProbe
from bot.http import AiohttpRequest
from bot.services import periods
from bot.services.access import Access
from bot.services.assessment import AssessmentService
from bot.services.assessment import filename as assessment_filename
from bot.services.chats import ChatService, missing_rights
from bot.services.errors import Refused
from bot.services.mapfile import export_map, import_map, parse_map
from bot.services.outbox import Outbox
from bot.services.people import PeopleService
from bot.services.privacy import PrivacyService
from bot.services.reports import ReportService
from bot.services.scopes import Scope, city_scope, unit_scope
from bot.services.tickets import TicketService
from bot.settings import Settings, SettingsError, load_settings
from bot.textsplit import plain_text
from handlers.common import refusal_text
from playground import main as playground
from storage import storebackup
from storage.dbapi import DatabaseUnavailable
from storage.runlock import AlreadyRunning, only_runner
from storage.store import Store

TOKEN_HELP = ("GRIDHORN_BOT_TOKEN is not set or empty. Create a bot with @BotFather in "
              "Telegram, then run: GRIDHORN_BOT_TOKEN=123456:ABC... gridhorn run (or put it in "
              "a .env file).")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gridhorn",
        description="Gridhorn (网格集结号): a Telegram bot for grid governance of city "
                    "communities. Settings come from GRIDHORN_* environment variables or .env "
                    "(GRIDHORN_ENV_FILE names another file; empty: none).")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    run = commands.add_parser("run", help="start the bot (long polling, or --webhook)")
    run.add_argument("--webhook", action="store_true",
                     help="receive updates by webhook at GRIDHORN_WEBHOOK_URL (with "
                          "GRIDHORN_WEBHOOK_SECRET; the server listens on GRIDHORN_LISTEN)")
    map_parser = commands.add_parser("map", help="import or export the five-level map")
    map_commands = map_parser.add_subparsers(dest="map_command", metavar="ACTION")
    imp = map_commands.add_parser("import", help="create or update units from a YAML or CSV file")
    imp.add_argument("file", type=Path)
    exp = map_commands.add_parser("export", help="write the map as YAML (stdout without FILE)")
    exp.add_argument("file", type=Path, nargs="?")
    report = commands.add_parser(
        "report", help="write a month's public report: text, chart (PNG) and workbook (XLSX)")
    report.add_argument("month", help="the month, YYYY-MM")
    _output_arguments(report)
    backup = commands.add_parser(
        "backup", help="write a consistent copy of the SQLite store to FILE, also while the "
                       "bot runs (PostgreSQL: use pg_dump)")
    backup.add_argument("file", type=Path)
    restore = commands.add_parser(
        "restore", help="replace the SQLite store with the backup FILE (refused while a bot "
                        "runs on it; the store as it was is kept as <store>.before-restore)")
    restore.add_argument("file", type=Path)
    commands.add_parser(
        "check", help="check the store: integrity, pending migrations, outbox items stuck in "
                      "sending; exit 0 when all is well, 1 otherwise")
    people = commands.add_parser("people", help="personal data (SPEC §14)")
    people_commands = people.add_subparsers(dest="people_command", metavar="ACTION")
    erase = people_commands.add_parser(
        "erase", help="erase a person as /forget does (staff: revoke their roles first)")
    erase.add_argument("user_id", type=int, metavar="USER_ID")
    assess = commands.add_parser(
        "assess", help="write a year's assessment (SPEC §12): workbook (XLSX) and text")
    assess.add_argument("year", help="the year, YYYY")
    _output_arguments(assess)
    demo = commands.add_parser(
        "demo", help="the playground: the bot and a sample county in the browser, no token "
                     "and no network (SPEC §17)")
    playground.add_arguments(demo)
    return parser


def _output_arguments(command: argparse.ArgumentParser) -> None:
    """--out, --unit and --lang of the commands that write a report's files."""
    command.add_argument("--out", type=Path, required=True, help="the folder to write into")
    command.add_argument("--unit", help="a community or grid code (default: the whole city)")
    command.add_argument("--lang", choices=("zh-Hans", "zh-Hant", "en"),
                         help="the language (default: GRIDHORN_DEFAULT_LOCALE)")


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if args.command == "demo":  # its own world and settings: none of GRIDHORN_* applies
        return playground.run(args)
    try:
        settings = load_settings()
        if args.command == "run":
            return _run(settings, webhook=args.webhook)
        if args.command == "map":
            if args.map_command == "import":
                return asyncio.run(_map_import(settings, args.file))
            if args.map_command == "export":
                return asyncio.run(_map_export(settings, args.file))
            parser.parse_args(["map", "--help"])
        if args.command == "report":
            return asyncio.run(_report(settings, args.month, args.out, args.unit, args.lang))
        if args.command == "backup":
            return _backup(settings, args.file)
        if args.command == "restore":
            return _restore(settings, args.file)
        if args.command == "check":
            return _check(settings)
        if args.command == "people":
            if args.people_command == "erase":
                return asyncio.run(_people_erase(settings, args.user_id))
            parser.parse_args(["people", "--help"])
        if args.command == "assess":
            return asyncio.run(_assess(settings, args.year, args.out, args.unit, args.lang))
    except SettingsError as exc:
        print(f"gridhorn: {exc}", file=sys.stderr)
        return 2
    return 2


async def _open_store(settings: Settings) -> Store:
    """The store of GRIDHORN_DATABASE_URL; one it cannot open (a bad file, a server that
    does not answer or refuses us) is a bad setting, said in one line."""
    if settings.database_url.startswith("sqlite:"):
        try:
            return await Store.open(settings.database_url)
        except (sqlite3.Error, OSError) as exc:
            raise SettingsError(f"GRIDHORN_DATABASE_URL: cannot open {settings.database_url}: "
                                f"{_why_unusable(settings.sqlite_path, exc)}") from None
    try:
        return await Store.open(settings.database_url)
    except (DatabaseUnavailable, OSError) as exc:
        raise SettingsError(f"GRIDHORN_DATABASE_URL: cannot open "
                            f"{settings.database_url_shown}: {exc}") from None


def _why_unusable(path: str, exc: Exception) -> str:
    target = Path(path)
    if target.is_dir():
        return f"{target} is a directory"
    folder = next((p for p in target.parents if p.exists()), None)
    if folder is not None and not folder.is_dir():
        return f"{folder} is not a directory"
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return str(exc)


def tune_garbage_collector() -> None:
    """After start-up: what was loaded stays (frozen out of every later collection), and the
    young generation is collected every 20,000 net allocations instead of 700. A burst builds
    and drops python-telegram-bot objects by the hundred thousand: with the defaults the
    collector took 10 % of the bot's CPU (gen-2 passes of 40 ms over the start-up heap);
    after this, about 1 % (docs/benchmarks.md)."""
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)


def _run(settings: Settings, *, webhook: bool = False) -> int:
    if settings.bot_token is None:
        print(f"gridhorn: {TOKEN_HELP}", file=sys.stderr)
        return 2
    if webhook:
        settings.check_webhook()  # before anything starts: one line naming what is missing
    logs.configure(settings)  # GRIDHORN_LOG_FORMAT, GRIDHORN_LOG_LEVEL (SPEC §15)

    async def go() -> None:
        # the store is opened first, once, and handed to the runtime: a bad
        # GRIDHORN_DATABASE_URL is one line (nothing is logged before the store fails to
        # open), no traceback, and Telegram is not called
        # one bot per SQLite file (SPEC §16); replicas share a PostgreSQL store
        with only_runner(settings.sqlite_path) if settings.database_url.startswith(
                "sqlite:") else contextlib.nullcontext():
            store = await _open_store(settings)
            runtime = await build_runtime(settings, store=store, webhook=webhook)
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, runtime.request_stop)
            await runtime.run_until_stopped(started=tune_garbage_collector)

    try:
        eventloop.run(go(), settings.event_loop)
    except Exception as exc:  # one clear line, not a traceback
        if isinstance(exc, AlreadyRunning):
            print(f"gridhorn: {exc}", file=sys.stderr)
            return 2
        if isinstance(exc, InvalidToken):
            print("gridhorn: Telegram rejected GRIDHORN_BOT_TOKEN; check it with @BotFather.",
                  file=sys.stderr)
            return 2
        if isinstance(exc, NetworkError):
            print(f"gridhorn: cannot reach the Bot API at GRIDHORN_API_BASE_URL "
                  f"({settings.api_base_url}): {exc}", file=sys.stderr)
            return 2
        raise
    return 0


async def _map_import(settings: Settings, path: Path) -> int:
    try:
        data = path.read_bytes()
    except OSError as exc:
        print(f"gridhorn: cannot read {path}: {exc.strerror}", file=sys.stderr)
        return 2
    store = await _open_store(settings)
    try:
        result = await import_map(store, data, path.name)
        if result.ok:
            print(f"map imported: {result.created} created, {result.updated} updated, "
                  f"{result.unchanged} unchanged, {result.bindings} chats bound")
            await _check_chats(settings, store, data, path.name)
    finally:
        await store.close()
    if not result.ok:
        for error in result.errors:
            where = f"{path}:{error.line}" if error.line else str(path)
            code = f" [{error.code}]" if error.code else ""
            print(f"{where}:{code} {error.reason}", file=sys.stderr)
        print(f"gridhorn: {len(result.errors)} error(s); nothing was changed.", file=sys.stderr)
        return 1
    return 0


#: what the bot lacks in a chat (`missing_rights`), as the importer reads it
_RIGHTS = {"admin": "the bot is not an admin", "pin": "it cannot pin messages",
           "topics": "it cannot manage topics (each ticket's topic)"}


async def _check_chats(settings: Settings, store: Store, data: bytes, filename: str) -> None:
    """Tell the importer which chats of the file lack the bot or its rights, as /bind does,
    and record what Telegram says of each (as /bind records a chat). Without a token here,
    the bot checks each chat at its first use."""
    _, bindings, _ = parse_map(data, filename)
    units: dict[int, list[str]] = {}
    for binding in bindings:
        units.setdefault(binding.chat_id, []).append(binding.unit_code)
    if not units:
        return
    if settings.bot_token is None:
        print(f"{len(units)} bound chat(s) not checked (no GRIDHORN_BOT_TOKEN here): the bot "
              "checks each chat, its forum topics and its admin rights at its first use.")
        return
    access = Access(store, settings.superadmins)
    chats = ChatService(store, access, PeopleService(store, access, settings),
                        Outbox(store, settings))
    try:
        async with Bot(settings.bot_token.get_secret_value(), base_url=settings.api_base_url,
                       base_file_url=settings.api_base_file_url,
                       request=AiohttpRequest(connection_pool_size=2)) as bot:
            probe = TelegramChatProbe(bot)
            problems = 0
            for chat_id, codes in units.items():
                info = await probe(chat_id)
                bound = ", ".join(codes)
                if info is None:
                    problems += 1
                    print(f"  chat {chat_id} ({bound}): the bot is not in this chat; add it "
                          "there as an admin (it is checked again at its first use)")
                    continue
                await chats.seen(info)
                missing = missing_rights(info)
                if missing:
                    problems += 1
                    print(f"  chat {chat_id} “{info.title or ''}” ({bound}): "
                          + "; ".join(_RIGHTS[right] for right in missing))
    except (TelegramError, OSError) as exc:
        print(f"could not check the bound chats with Telegram ({exc}): the bot checks each "
              "at its first use.")
        return
    print(f"{len(units)} bound chat(s) checked: "
          + (f"{problems} need the bot or its rights (above)." if problems else "all ready."))


async def _map_export(settings: Settings, path: Path | None) -> int:
    store = await _open_store(settings)
    try:
        stamp = datetime.now().isoformat(timespec="seconds")
        text = await export_map(store, header_comment=f"exported {stamp}" if path else None)
    finally:
        await store.close()
    if path is None:
        sys.stdout.write(text)
    else:
        path.write_text(text, encoding="utf-8")
        print(f"map written to {path}")
    return 0


async def _report(settings: Settings, month_text: str, out: Path, unit_code: str | None,
                  lang: str | None) -> int:
    """The same report `/report` gives, written as files (a finished month: the whole month;
    the current one: so far)."""
    month = periods.parse_month(month_text)
    if month is None:
        print(f"gridhorn: {month_text!r} is not a month like 2026-11", file=sys.stderr)
        return 2
    locale = lang or settings.default_locale
    store = await _open_store(settings)
    try:
        scope = await _report_scope(store, unit_code)
        if scope is None:
            return 2
        reports = ReportService(store, Outbox(store, settings), settings)
        report = await reports.build(scope, month, datetime.now(settings.tz))
        files = await reports.files(report, locale)
    finally:
        await store.close()
    out.mkdir(parents=True, exist_ok=True)
    png_name, xlsx_name = files.filenames(month)
    text = plain_text(files.text)
    (out / png_name).write_bytes(files.chart)
    (out / xlsx_name).write_bytes(files.workbook)
    (out / png_name.replace(".png", ".txt")).write_text(text + "\n", encoding="utf-8")
    print(f"report of {month} written to {out}: {png_name}, {xlsx_name}, "
          f"{png_name.replace('.png', '.txt')}")
    return 0


PG_DUMP_HELP = ("GRIDHORN_DATABASE_URL is a PostgreSQL database: back it up with PostgreSQL's "
                "own tools, e.g. `pg_dump --format=custom --file=gridhorn.dump URL`, and "
                "restore with `pg_restore --clean --dbname=URL gridhorn.dump` while no replica "
                "runs (docs/deploy.md)")


def _backup(settings: Settings, target: Path) -> int:
    """`gridhorn backup FILE` (SPEC §15): a consistent copy while the bot runs."""
    if not settings.database_url.startswith("sqlite:"):
        print(f"gridhorn: {PG_DUMP_HELP}", file=sys.stderr)
        return 2
    try:
        copied = storebackup.backup(settings.sqlite_path, target)
    except storebackup.BackupError as exc:
        print(f"gridhorn: backup failed: {exc}", file=sys.stderr)
        return 1
    print(f"backup of {settings.sqlite_path} written to {copied.path}: "
          f"{copied.bytes / 1e6:.1f} MB, {copied.tickets} tickets, {copied.seconds:.1f} s")
    return 0


def _restore(settings: Settings, source: Path) -> int:
    """`gridhorn restore FILE` (SPEC §15): refused while a bot holds the store."""
    if not settings.database_url.startswith("sqlite:"):
        print(f"gridhorn: {PG_DUMP_HELP}", file=sys.stderr)
        return 2
    store = settings.sqlite_path
    try:
        with only_runner(store):  # and no bot starts on it meanwhile
            kept = storebackup.restore(source, store)
    except AlreadyRunning as exc:
        holder = str(exc).partition("(pid ")[2].partition(")")[0] or "another process"
        print(f"gridhorn: a bot is running on {store} (pid {holder}); stop it before "
              "restoring", file=sys.stderr)
        return 2
    except storebackup.BackupError as exc:
        print(f"gridhorn: restore failed: {exc}; the store is unchanged", file=sys.stderr)
        return 1
    print(f"{store} restored from {source}"
          + (f"; the store as it was is kept as {kept}" if kept else ""))
    return 0


def _check(settings: Settings) -> int:
    """`gridhorn check` (SPEC §15): what was found, exit 0 when all is well, 1 otherwise."""
    if settings.database_url.startswith("sqlite:"):
        found = storebackup.check_sqlite(settings.sqlite_path)
    else:
        found = asyncio.run(storebackup.check_postgresql(settings.database_url))
    print(f"checking {settings.database_url_shown}")
    for line in found.lines:
        print(line)
    print("all is well" if found.ok else "problems found (above)")
    return 0 if found.ok else 1


async def _report_scope(store: Store, unit_code: str | None) -> Scope | None:
    """The scope of `--unit CODE` (a community or grid; none: the whole city); None, said on
    stderr, for another code."""
    if not unit_code:
        return await city_scope(store)
    unit = await store.map.get(unit_code)
    if unit is None or unit.kind not in ("community", "grid"):
        print(f"gridhorn: {unit_code} is not a community or grid code", file=sys.stderr)
        return None
    return await unit_scope(store, unit)


async def _assess(settings: Settings, year: str, out: Path, unit_code: str | None,
                  lang: str | None) -> int:
    """The same workbook and text `/assess YYYY` gives, written as files."""
    now = datetime.now(settings.tz)
    if not (year.isdigit() and len(year) == 4) or int(year) > now.year:
        print(f"gridhorn: {year!r} is not a year like {now.year - 1} (this year or before)",
              file=sys.stderr)
        return 2
    locale = lang or settings.default_locale
    store = await _open_store(settings)
    try:
        scope = await _report_scope(store, unit_code)
        if scope is None:
            return 2
        service = AssessmentService(store, Access(store, settings.superadmins),
                                    Outbox(store, settings), settings)
        assessment = await service.build(scope, year, now)
        workbook = await service.workbook(assessment, locale)
        text = plain_text(service.text(assessment, locale))
    finally:
        await store.close()
    out.mkdir(parents=True, exist_ok=True)
    name = assessment_filename(year)
    (out / name).write_bytes(workbook)
    (out / name.replace(".xlsx", ".txt")).write_text(text + "\n", encoding="utf-8")
    print(f"assessment of {year} written to {out}: {name}, {name.replace('.xlsx', '.txt')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())


async def _people_erase(settings: Settings, user_id: int) -> int:
    """`gridhorn people erase USER_ID` (SPEC §14): what /forget does, for a superadmin at
    the server (the bot may be running: the store takes both)."""
    store = await _open_store(settings)
    try:
        access = Access(store, settings.superadmins)
        people = PeopleService(store, access, settings)
        outbox = Outbox(store, settings)
        tickets = TicketService(store, access, people, outbox, settings)
        privacy = PrivacyService(store, access, people, outbox, settings, tickets)
        try:
            erased = await privacy.erase(user_id)
        except Refused as refusal:
            print(f"gridhorn: {plain_text(refusal_text(settings.default_locale, refusal))}",
                  file=sys.stderr)
            return 1
    finally:
        await store.close()
    print(f"person {user_id} erased (what they leave in common records is now {erased})")
    return 0
