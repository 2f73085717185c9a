"""Broadcast benchmark: one emergency post to every building chat, under Telegram's limits.

    python -m bench.broadcast                 # 600 chats through the outbox,
                                              # then PTB's AIORateLimiter
    python -m bench.broadcast --faults 0.05   # 5 % of calls answered 429/500/502
    python -m bench.broadcast --priority      # 2,000 routine posts queued first
    python -m bench.broadcast --kill          # bot as a process, kill -9 halfway, restart
    python -m bench.broadcast --no-http-worker --event-loop uvloop   # the speed options
    python -m bench.broadcast --database postgresql   # the store on PostgreSQL
    python -m bench.broadcast --database both --no-ptb   # SQLite, then PostgreSQL, one run

The emulator enforces Telegram's limits exactly (30/s overall, 20/min per group, 1/s per chat);
the bot runs with the same figures (SPEC §8 defaults) and no quiet hours. The floor is
chats / 30 s (600 chats: 20 s). Exit status 1 when a target is missed.

`--database postgresql` puts the store on PostgreSQL (SPEC §16): a fresh database
`gridhorn_bench_<pid>_<n>` created on GRIDHORN_BENCH_POSTGRESQL (default
postgresql://postgres@127.0.0.1:5432/postgres) and dropped at the end; its target is issue
16's ratio ≤ 1.05. `--kill` runs on SQLite only.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import Any

from bench.common import (
    TELEGRAM,
    TOKEN,
    BotProcess,
    Report,
    Watcher,
    add_database_flag,
    add_speed_flags,
    bot_env,
    build_world,
    database,
    engines,
    join_groups,
    outbox_counts,
    quiesce_schedules,
    settings_values,
    start_emulator,
    start_runtime,
    use_speed_flags,
    wait_for,
    workdir,
)
from bot import eventloop
from emulator import BotAPIEmulator, Faults
from storage.store import Store

EMERGENCY_MARK = "紧急集结号"
ROUTINE_MARK = "本月主题"
RATIO_TARGET = 1.10
#: issue 16: the broadcast with the store on PostgreSQL
PG_RATIO_TARGET = 1.05
FIRST_TARGET_S = 2.0


def classify(text: str) -> str | None:
    if EMERGENCY_MARK in text:
        return "emergency"
    if ROUTINE_MARK in text:
        return "routine"
    return None


def emergency_text(index: int) -> str:
    return (f"🚨 <b>{EMERGENCY_MARK}</b>（紧急）第 {index + 1} 号楼：燃气管道泄漏，"
            f"请立即从楼梯撤离到小区广场集合，勿乘电梯。")


def routine_text(index: int) -> str:
    return f"📌 {ROUTINE_MARK}：垃圾分类宣传月（第 {index + 1} 条）"


def floor_s(chats: int) -> float:
    return chats / TELEGRAM.overall_per_s


class Flood:
    """Counters of the emulator's answers over one phase."""

    def __init__(self, emu: BotAPIEmulator) -> None:
        self.emu = emu
        self.start = self._now()

    def _now(self) -> tuple[int, int, int, int]:
        s = self.emu.stats
        return s.too_many_requests, s.flood_rejections, s.server_errors, s.faults_injected

    def delta(self) -> dict[str, int]:
        now = self._now()
        keys = ("429", "flood_429", "5xx", "injected")
        return {k: b - a for k, a, b in zip(keys, self.start, now, strict=True)}


# ------------------------------------------------------------------ the bot in this process

async def queue_emergency(runtime: Any, chat_ids: list[int]) -> float:
    """One EMERGENCY post per chat in one transaction (as a horn publish does); commit time."""
    from bot.services.outbox import Priority

    async with runtime.store.transaction():
        for index, chat_id in enumerate(chat_ids):
            await runtime.outbox.send(chat_id, emergency_text(index),
                                      priority=Priority.EMERGENCY)
    return time.monotonic()


def ratio_target(engine: str) -> float:
    return PG_RATIO_TARGET if engine == "postgresql" else RATIO_TARGET


async def outbox_broadcast(report: Report, chats: int, faults: float, seed: int,
                           keep: bool, via_horn: bool = False,
                           engine: str = "sqlite") -> float:
    """The broadcast; returns its ratio to the floor."""
    label = f"{engine}, " + ("horn" if via_horn else "outbox")
    if faults:
        label += f", faults {faults:.0%}"
    target = ratio_target(engine)
    with workdir(keep) as tmp:
        async with database(engine, tmp) as url:
            emu = await start_emulator(TELEGRAM)
            try:
                values = settings_values(emu, url)
                store = await Store.open(url)
                # one community (a county official's emergency horn covers all of it)
                world = await build_world(emu, store, buildings=chats, per_grid=40,
                                          grids_per_community=chats // 40 + 1)
                await quiesce_schedules(store, values)
                await store.close()
                if via_horn:
                    values["superadmins"] = str(world.owner.id)
                runtime = await start_runtime(values)
                try:
                    chat_ids = list(world.building_chats.values())
                    watcher = Watcher(emu, chat_ids, classify)
                    flood = Flood(emu)
                    if faults:
                        emu.faults = Faults(rate=faults, kinds=("429", "500", "502"), seed=seed)
                    if via_horn:
                        committed = await sound_horn(runtime.services, world.owner.id, chats)
                    else:
                        committed = await queue_emergency(runtime, chat_ids)
                    await emu.wait_until(lambda: watcher.chats_with("emergency") >= chats,
                                         timeout=floor_s(chats) * 4 + 30)
                    last = max(watcher.times["emergency"]) - committed
                    await runtime.sender.drain(timeout=floor_s(chats) * 3 + 30)
                    drained = time.monotonic() - committed
                    emu.faults = None
                    answers = flood.delta()
                    calls = dict(emu.stats.by_method)
                finally:
                    await runtime.stop()
            finally:
                await emu.stop()
    if via_horn:
        report.figure(f"[{label}] calls", f"{calls.get('sendMessage', 0)} sendMessage, "
                      f"{calls.get('pinChatMessage', 0)} pinChatMessage; outbox empty "
                      f"{drained:.2f} s after Publish")
    per_chat = watcher.counts["emergency"]
    ratio = last / floor_s(chats)
    doubled = sum(1 for n in per_chat.values() if n > 1)
    report.figure(f"[{label}] commit → last post", f"{last:.2f} s",
                  f"floor {floor_s(chats):.0f} s, ratio {ratio:.3f}")
    report.figure(f"[{label}] answers", answers)
    if faults:  # a figure, not a target: the retry of a fault near the end adds ≥ 1 s
        report.figure(f"[{label}] ratio (no target with faults)", f"{ratio:.3f}")
    else:
        report.target(f"[{label}] ratio ≤ {target}", ratio <= target, f"{ratio:.3f}")
    report.target(f"[{label}] flood 429 = 0", answers["flood_429"] == 0,
                  f"{answers['flood_429']} flood-limit 429s"
                  + (f", {answers['injected']} faults injected" if faults else ""))
    report.target(f"[{label}] one post per chat", len(per_chat) == chats and doubled == 0,
                  f"{len(per_chat)}/{chats} chats, {doubled} with more than one")
    return ratio


async def sound_horn(services: Any, owner_id: int, chats: int) -> float:
    """A superadmin sounds an emergency horn over the community: the real publish (posts,
    pins after them, one transaction). Returns the time Publish returned (after its commit)."""
    actor = await services.access.actor(owner_id)
    await services.horns.short_form(
        actor, f"emergency C01 {chats} {EMERGENCY_MARK}：燃气管道泄漏，"
               "请立即从楼梯撤离到小区广场集合")
    await services.horns.publish(actor)
    return time.monotonic()


# ------------------------------------------------------------------ PTB's own limiter

async def ptb_broadcast(report: Report, chats: int) -> None:
    from telegram.error import TelegramError
    from telegram.ext import AIORateLimiter, ApplicationBuilder

    emu = await start_emulator(TELEGRAM)
    try:
        owner = emu.add_user("群主")
        groups = [emu.add_group(f"{i + 1}栋楼事群", members=[owner]) for i in range(chats)]
        await join_groups(emu, groups, owner)
        watcher = Watcher(emu, [g.id for g in groups], classify)
        app = (ApplicationBuilder().token(TOKEN).base_url(emu.base_url)
               .base_file_url(emu.base_file_url).updater(None)
               .rate_limiter(AIORateLimiter(max_retries=5)).build())
        async with app:
            flood = Flood(emu)
            started = time.monotonic()
            results = await asyncio.gather(
                *(app.bot.send_message(g.id, emergency_text(i), parse_mode="HTML")
                  for i, g in enumerate(groups)), return_exceptions=True)
            watcher.update()
            answers = flood.delta()
    finally:
        await emu.stop()
    failed = [r for r in results if isinstance(r, (TelegramError, Exception))]
    per_chat = watcher.counts.get("emergency", {})
    last = max(watcher.times.get("emergency", [started])) - started
    ratio = last / floor_s(chats)
    report.figure("[PTB AIORateLimiter(max_retries=5)] first call → last post", f"{last:.2f} s",
                  f"ratio {ratio:.3f}")
    report.figure("[PTB AIORateLimiter(max_retries=5)] answers", answers)
    report.figure("[PTB AIORateLimiter(max_retries=5)] delivered",
                  f"{len(per_chat)}/{chats} chats, {len(failed)} calls raised")


# ------------------------------------------------------------------ priority

async def priority_broadcast(report: Report, chats: int, routine: int, routine_chats: int,
                             head_start: int, keep: bool, engine: str = "sqlite") -> None:
    from bot.services.outbox import Priority

    with workdir(keep) as tmp:
        async with database(engine, tmp) as url:
            emu = await start_emulator(TELEGRAM)
            try:
                values = settings_values(emu, url)
                store = await Store.open(url)
                world = await build_world(emu, store, buildings=max(chats, routine_chats),
                                          per_grid=40)
                await quiesce_schedules(store, values)
                await store.close()
                runtime = await start_runtime(values)
                try:
                    all_chats = list(world.building_chats.values())
                    chat_ids = all_chats[:chats]
                    targets = all_chats[:routine_chats]
                    watcher = Watcher(emu, all_chats, classify)
                    flood = Flood(emu)
                    async with runtime.store.transaction():
                        for index in range(routine):  # round robin: several posts per chat
                            await runtime.outbox.send(targets[index % len(targets)],
                                                      routine_text(index),
                                                      priority=Priority.ROUTINE, quiet=True)
                    await emu.wait_until(lambda: watcher.total("routine") >= head_start,
                                         timeout=60)
                    committed = await queue_emergency(runtime, chat_ids)
                    await emu.wait_until(lambda: watcher.chats_with("emergency") >= chats,
                                         timeout=floor_s(chats) * 4 + 60)
                    first = watcher.nth_time("emergency", min(30, chats)) - committed
                    last = max(watcher.times["emergency"]) - committed
                    routine_during = sum(1 for t in watcher.times.get("routine", [])
                                         if committed < t <= committed + last)
                    await runtime.sender.drain(timeout=routine / 25 + 60)
                    answers = flood.delta()
                finally:
                    await runtime.stop()
            finally:
                await emu.stop()
    ratio = last / floor_s(chats)
    per_chat = watcher.counts["emergency"]
    routine_total = watcher.total("routine")
    report.figure(f"[priority, {engine}] routine posts", f"{routine} to {len(targets)} chats "
                  f"(~{routine / len(targets):.1f} each); emergency queued after "
                  f"{head_start} of them had arrived")
    report.target(f"[priority, {engine}] first 30 emergency chats ≤ {FIRST_TARGET_S:.0f} s",
                  first <= FIRST_TARGET_S, f"{first:.2f} s after the commit")
    report.figure(f"[priority, {engine}] commit → all emergency posts", f"{last:.2f} s",
                  f"ratio to the {floor_s(chats):.0f} s floor {ratio:.3f}; "
                  f"{routine_during} routine posts went out meanwhile")
    report.target(f"[priority, {engine}] all emergency ratio ≤ {ratio_target(engine)}",
                  ratio <= ratio_target(engine),
                  f"{ratio:.3f}")
    report.figure(f"[priority, {engine}] answers", answers)
    report.target(f"[priority, {engine}] flood 429 = 0", answers["flood_429"] == 0,
                  f"{answers['flood_429']}")
    report.target(f"[priority, {engine}] every post once",
                  len(per_chat) == chats and max(per_chat.values()) == 1
                  and routine_total == routine,
                  f"emergency {len(per_chat)}/{chats} chats, routine {routine_total}/{routine}")


# ------------------------------------------------------------------ kill -9 halfway

async def kill_broadcast(report: Report, chats: int, kill_at: int, keep: bool) -> None:
    from bot.services.outbox import Outbox, Priority
    from bot.settings import load_settings

    with workdir(keep) as tmp:
        emu = await start_emulator(TELEGRAM)
        try:
            db_path = tmp / "gridhorn.db"
            values = settings_values(emu, db_path)
            store = await Store.open_sqlite(str(db_path))
            world = await build_world(emu, store, buildings=chats, per_grid=40)
            await quiesce_schedules(store, values)
            chat_ids = list(world.building_chats.values())
            # The bot process finds the posts at start-up (a process cannot wake another's
            # sender; a horn published through the bot would be queued the same way).
            outbox = Outbox(store, load_settings(**values))
            async with store.transaction():
                for index, chat_id in enumerate(chat_ids):
                    await outbox.send(chat_id, emergency_text(index), priority=Priority.EMERGENCY)
            await store.close()
            watcher = Watcher(emu, chat_ids, classify)
            flood = Flood(emu)

            first = BotProcess(bot_env(values), tmp / "bot.log")
            started = time.monotonic()
            await first.start()
            try:
                await emu.wait_until(lambda: watcher.total("emergency") >= kill_at,
                                     timeout=floor_s(chats) * 3 + 30)
            except TimeoutError:
                print(first.log_tail(), file=sys.stderr)
                raise
            finally:
                await first.kill()
            killed_at = time.monotonic() - started
            # Requests that reached the emulator before the kill are answered now.
            await asyncio.sleep(0.5)
            delivered = watcher.total("emergency")
            counts = outbox_counts(db_path)
            recorded = counts.get("sent", 0)
            in_flight = delivered - recorded  # delivered by "Telegram", not recorded as sent

            second = BotProcess(bot_env(values), tmp / "bot.log")
            restarted = time.monotonic()
            await second.start()
            try:
                done = await wait_for(lambda: outbox_counts(db_path).get("pending", 0) == 0
                                      and watcher.chats_with("emergency") >= chats,
                                      timeout=floor_s(chats) * 3 + 30)
                finished = time.monotonic() - restarted
                await asyncio.sleep(0.5)  # anything still arriving would be a double
                watcher.update()
            finally:
                await second.stop()
            answers = flood.delta()
            final = outbox_counts(db_path)
        finally:
            await emu.stop()
    per_chat = watcher.counts["emergency"]
    doubled = sum(1 for n in per_chat.values() if n > 1)
    missing = chats - len(per_chat)
    report.figure("[kill] killed after", f"{killed_at:.2f} s, {delivered} posts delivered, "
                  f"{recorded} recorded as sent, {in_flight} in flight (delivered, unrecorded)")
    report.figure("[kill] restart → outbox empty", f"{finished:.2f} s" if done else "timed out")
    report.figure("[kill] outbox rows", final)
    report.figure("[kill] answers", answers)
    report.target("[kill] every chat got the post", missing == 0, f"{missing} chats without")
    report.target("[kill] doubles ≤ in flight", doubled <= max(in_flight, 0),
                  f"{doubled} chats got two, {in_flight} were in flight")
    report.target("[kill] flood 429 = 0", answers["flood_429"] == 0, f"{answers['flood_429']}")


# ------------------------------------------------------------------ main

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.broadcast", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chats", type=int, default=600, help="building chats (default 600)")
    parser.add_argument("--faults", type=float, default=0.0,
                        help="fraction of calls answered 429/500/502 (e.g. 0.05)")
    parser.add_argument("--seed", type=int, default=7, help="seed of the injected faults")
    parser.add_argument("--priority", action="store_true",
                        help="queue routine posts first, then the emergency broadcast")
    parser.add_argument("--routine", type=int, default=2000, help="routine posts (--priority)")
    parser.add_argument("--routine-chats", type=int, default=600,
                        help="chats the routine posts go to, round robin (--priority)")
    parser.add_argument("--head-start", type=int, default=90,
                        help="routine posts received before the emergency is queued")
    parser.add_argument("--kill", action="store_true",
                        help="bot as a process, kill -9 halfway, restart on the same database")
    parser.add_argument("--kill-at", type=int, default=300, help="posts seen before the kill")
    parser.add_argument("--via-horn", action="store_true",
                        help="sound a real emergency horn (posts and pins) instead of queueing")
    parser.add_argument("--no-ptb", action="store_true",
                        help="skip the comparison with PTB's AIORateLimiter")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    add_database_flag(parser)
    add_speed_flags(parser)
    args = parser.parse_args(argv)
    if args.kill and args.database != "sqlite":
        parser.error("--kill runs on SQLite only (it reads the outbox of a killed process)")

    async def run() -> int:
        if args.kill:
            report = Report(f"broadcast --kill: {args.chats} chats, kill -9 at ~{args.kill_at}")
            use_speed_flags(args, report)
            await kill_broadcast(report, args.chats, args.kill_at, args.keep)
        elif args.priority:
            report = Report(f"broadcast --priority: {args.routine} routine, then "
                            f"{args.chats} emergency")
            use_speed_flags(args, report)
            for engine in engines(args.database):
                await priority_broadcast(report, args.chats, args.routine, args.routine_chats,
                                         args.head_start, args.keep, engine)
        else:
            report = Report(f"broadcast: {args.chats} chats, one emergency post each"
                            + (" (a real emergency horn)" if args.via_horn else "")
                            + (f", faults {args.faults:.0%}" if args.faults else ""))
            use_speed_flags(args, report)
            ratios = {}
            for engine in engines(args.database):
                ratios[engine] = await outbox_broadcast(report, args.chats, args.faults,
                                                        args.seed, args.keep, args.via_horn,
                                                        engine)
            if len(ratios) > 1:
                report.figure("side by side (ratio to the floor)",
                              ", ".join(f"{e} {r:.3f}" for e, r in ratios.items()))
            if not args.no_ptb and not args.faults and not args.via_horn:
                await ptb_broadcast(report, args.chats)
        return report.exit_code()

    return eventloop.run(run(), args.event_loop)


if __name__ == "__main__":
    sys.exit(main())
