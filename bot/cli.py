"""The `gridhorn` command: run the bot, import and export the map."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

from bot.settings import Settings, SettingsError, load_settings

TOKEN_HELP = ("GRIDHORN_BOT_TOKEN is not set. Create a bot with @BotFather in Telegram, then "
              "run: GRIDHORN_BOT_TOKEN=123456:ABC... gridhorn run (or put it in a .env file).")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gridhorn",
        description="Gridhorn (网格集结号): a Telegram bot for grid governance of city "
                    "communities. Settings come from GRIDHORN_* environment variables or .env.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser("run", help="start the bot (long polling)")
    map_parser = commands.add_parser("map", help="import or export the five-level map")
    map_commands = map_parser.add_subparsers(dest="map_command", metavar="ACTION")
    imp = map_commands.add_parser("import", help="create or update units from a YAML or CSV file")
    imp.add_argument("file", type=Path)
    exp = map_commands.add_parser("export", help="write the map as YAML (stdout without FILE)")
    exp.add_argument("file", type=Path, nargs="?")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"gridhorn: {exc}", file=sys.stderr)
        return 2
    if args.command == "run":
        return _run(settings)
    if args.command == "map":
        if args.map_command == "import":
            return asyncio.run(_map_import(settings, args.file))
        if args.map_command == "export":
            return asyncio.run(_map_export(settings, args.file))
        parser.parse_args(["map", "--help"])
    return 2


def _run(settings: Settings) -> int:
    if settings.bot_token is None:
        print(f"gridhorn: {TOKEN_HELP}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    from bot.app import Runtime

    async def go() -> None:
        runtime = Runtime(settings)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, runtime.request_stop)
        await runtime.run_until_stopped()

    try:
        asyncio.run(go())
    except Exception as exc:  # one clear line, not a traceback
        from telegram.error import InvalidToken, NetworkError

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
    from bot.services.mapfile import import_map
    from storage.store import Store

    try:
        data = path.read_bytes()
    except OSError as exc:
        print(f"gridhorn: cannot read {path}: {exc.strerror}", file=sys.stderr)
        return 2
    store = await Store.open_sqlite(settings.sqlite_path)
    try:
        result = await import_map(store, data, path.name)
    finally:
        await store.close()
    if not result.ok:
        for error in result.errors:
            where = f"{path}:{error.line}" if error.line else str(path)
            code = f" [{error.code}]" if error.code else ""
            print(f"{where}:{code} {error.reason}", file=sys.stderr)
        print(f"gridhorn: {len(result.errors)} error(s); nothing was changed.", file=sys.stderr)
        return 1
    print(f"map imported: {result.created} created, {result.updated} updated, "
          f"{result.unchanged} unchanged, {result.bindings} chats bound")
    return 0


async def _map_export(settings: Settings, path: Path | None) -> int:
    from datetime import datetime

    from bot.services.mapfile import export_map
    from storage.store import Store

    store = await Store.open_sqlite(settings.sqlite_path)
    try:
        text = await export_map(store, header_comment=f"exported {datetime.now().isoformat(timespec='seconds')}" if path else None)
    finally:
        await store.close()
    if path is None:
        sys.stdout.write(text)
    else:
        path.write_text(text, encoding="utf-8")
        print(f"map written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
