"""`gridhorn demo`: the playground on 127.0.0.1 — the page, or a transcript replayed headless.

Nothing leaves this machine: the bot talks to the emulator in this process, the page server
listens on the loopback address only, and the page loads nothing from elsewhere.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
import webbrowser
from pathlib import Path

from emulator import DEFAULT_FLOOD_LIMITS
from playground.keep import KeptWorldError
from playground.server import LANGS, PageServer
from playground.session import Playground
from playground.tour import TourPlayer
from playground.transcript import StepRecord, TranscriptError, loads

DEFAULT_PORT = 8765


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=DEFAULT_PORT,
                        help=f"the page's port on 127.0.0.1 (default {DEFAULT_PORT}; 0: any)")
    parser.add_argument("--lang", choices=LANGS, default="zh-Hans",
                        help="the page's and the sample people's language")
    parser.add_argument("--db", type=Path, help="keep the world's store in FILE (default: a "
                        "temporary file, gone when the demo stops)")
    parser.add_argument("--no-browser", action="store_true", help="do not open the browser")
    parser.add_argument("--flood", action="store_true",
                        help="enforce Telegram's flood limits: the bot paces its sending as in "
                             "production and 429s show in the inspector's log (slower; the "
                             "tour's month end takes minutes)")
    parser.add_argument("--replay", type=Path, metavar="FILE",
                        help="replay a saved transcript, naming the first step that differs")
    parser.add_argument("--headless", action="store_true",
                        help="with --replay: no page; exit 0 if the replay matches, else 1")


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.headless and args.replay is None:
        print("gridhorn demo: --headless needs --replay FILE", file=sys.stderr)
        return 2
    steps = None
    lang = args.lang
    if args.replay is not None:
        try:
            # a transcript replays in the language it was recorded in
            lang, steps = loads(args.replay.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, TranscriptError) as exc:
            print(f"gridhorn demo: {args.replay}: {exc}", file=sys.stderr)
            return 2
        if lang not in LANGS:
            print(f"gridhorn demo: {args.replay}: line 1: unknown language {lang!r}",
                  file=sys.stderr)
            return 2
    if args.headless:
        assert steps is not None
        # no flood limits (and so no pacing by the bot): a step's record must not depend on
        # how fast, in real time, the steps before it were replayed
        playground = Playground(lang=lang, db=args.db, flood=None)
        try:
            return asyncio.run(_replay_headless(playground, steps))
        except KeptWorldError as exc:
            print(f"gridhorn demo: --db: {exc}", file=sys.stderr)
            return 2
    playground = Playground(lang=lang, db=args.db,
                            flood=DEFAULT_FLOOD_LIMITS if args.flood else None)
    try:
        return asyncio.run(_serve(playground, args, steps))
    except KeptWorldError as exc:
        print(f"gridhorn demo: --db: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"gridhorn demo: cannot listen on 127.0.0.1:{args.port}: {exc.strerror}; "
              "try --port 0", file=sys.stderr)
        return 2


async def _replay_headless(playground: Playground, steps: list[StepRecord]) -> int:
    await playground.start()
    try:
        failed, diff = await playground.replay(steps)
    finally:
        await playground.stop()
    if failed is None:
        print(f"replay: {len(steps)} steps, no difference")
        return 0
    print(f"replay: step {failed} differs: {diff}")
    return 1


async def _serve(playground: Playground, args: argparse.Namespace,
                 steps: list[StepRecord] | None) -> int:
    # Ctrl+C stops it cleanly from the first moment, also while the world is being built
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    server = PageServer(playground)
    server.tour = TourPlayer(playground)
    try:
        await playground.start()
        url = await server.start(args.port)
        print(f"Gridhorn playground: {url}", flush=True)
        print("Ctrl+C stops it.", flush=True)
        if not args.no_browser:
            with contextlib.suppress(Exception):
                webbrowser.open(url)
        if steps is not None:
            failed, diff = await playground.replay(steps)
            print(f"replay: {len(steps)} steps, no difference" if failed is None
                  else f"replay: step {failed} differs: {diff}", flush=True)
        await stop.wait()
    finally:
        await server.tour.stop()
        await server.stop()
        await playground.stop()
    return 0
