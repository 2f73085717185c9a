"""Run the Bot API emulator standalone: ``python -m emulator --port 8081 --token 123:ABC``.

Point a bot at the printed ``base_url``.  Nobody plays users in this mode
unless a program drives the control API, so it is mostly useful to check that
a bot starts, registers its commands and polls.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal

from .limits import FloodLimits
from .server import BotAPIEmulator


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--token", default="123456:TEST")
    parser.add_argument("--username", default="gridhorn_bot", help="the bot's username")
    parser.add_argument("--name", default="Gridhorn", help="the bot's first name")
    parser.add_argument("--no-flood", action="store_true", help="disable flood limits")
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser.parse_args(argv)


async def _serve(args: argparse.Namespace) -> None:
    emu = BotAPIEmulator(
        token=args.token,
        bot_username=args.username,
        bot_first_name=args.name,
        flood=None if args.no_flood else FloodLimits(),
    )
    await emu.start(host=args.host, port=args.port)
    print(f"base_url      {emu.base_url}", flush=True)
    print(f"base_file_url {emu.base_file_url}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # not on Windows
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await emu.stop()


def main(argv: list[str] | None = None) -> None:
    args = _parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args))


if __name__ == "__main__":
    main()
