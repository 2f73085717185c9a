"""Member units answer a horn (SPEC §10, issue 17's speed section).

    .venv/bin/python -m bench.unit_horn                 # both parts
    .venv/bin/python -m bench.unit_horn --part call     # (1) only
    .venv/bin/python -m bench.unit_horn --part storm    # (2) only
    .venv/bin/python -m bench.unit_horn --units 20 --volunteers 100 --pledges 30 --taps 50

(1) **call**: a major horn over one community that calls `--units` member units (200), each
with a bound group chat, and reaches `--volunteers` volunteers (2,000) privately: the real
short form (`+M001 … +M200`) and Publish by a superadmin. The floor is Telegram's own limit for
that many sends, copies / 30 s (2,200: 73.3 s), as `bench.broadcast` computes it; target
commit → last copy ≤ 1.05 × the floor with 0 × 429.

(2) **storm**: one major horn over a building calling `--pledges` member units (300), each with
a bound chat and a contact. Each contact has pressed "Unit check in" on their unit's copy (the
numbers arrive privately); then within `--window` seconds (2) the 300 contacts press a number
(1, 2, 3, 5, 10 in turn) and `--taps` residents (500) press "Check in" on the building chat's
post, interleaved. Targets: every press answered, p95 press → answer < 50 ms, the counts in the
store exact (the horn full, no one waiting, each unit's pledge, `单位 300`) and the counter text
on every copy (the building's post and the 300 units' copies) final.

Telegram's limits in the emulator, the real Runtime in this process (SPEC §8 default rates, no
quiet hours). Exit status 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from typing import Any

from bench.broadcast import Flood, floor_s
from bench.common import (
    TELEGRAM,
    Report,
    Watcher,
    add_speed_flags,
    build_world,
    join_groups,
    percentile,
    quiesce_schedules,
    settings_values,
    start_emulator,
    start_runtime,
    use_speed_flags,
    workdir,
)
from bot import eventloop
from bot.i18n import t
from emulator import BotAPIEmulator, EmuChat, EmuUser
from emulator.html import parse_html
from storage.models import MEMBER_TYPES, Chat, Unit
from storage.store import Store

CALL_MARK = "防汛单位集结"
STORM_MARK = "单位报到演练"
RATIO_TARGET = 1.05
P95_TARGET_S = 0.050
PLEDGE_CYCLE = (1, 2, 3, 5, 10)
LOCALES = ("zh-Hans", "zh-Hant", "en")
#: between the last prompt's arrival and the storm
READ_S = 1.5


def member_code(index: int) -> str:
    return f"M{index + 1:03d}"


async def add_member_units(emu: BotAPIEmulator, store: Store, owner: EmuUser, count: int,
                           contacts: bool) -> tuple[dict[str, EmuChat], dict[str, EmuUser]]:
    """`count` member units of C01, each with a bound group chat (the bot an admin there) and,
    with `contacts`, a contact who has started the bot and sits in the unit's chat."""
    chats: dict[str, EmuChat] = {}
    people: dict[str, EmuUser] = {}
    for index in range(count):
        code = member_code(index)
        members = [owner]
        if contacts:
            contact = emu.add_user(f"联络员{index + 1}", language_code="zh-hans")
            contact.started = True
            emu.private_chat(contact)
            people[code] = contact
            members.append(contact)
        chats[code] = emu.add_group(f"第{index + 1}单位工作群", members=members)
    await join_groups(emu, chats.values(), owner)
    async with store.transaction():
        for index in range(count):
            code = member_code(index)
            await store.map.upsert(Unit(code=code, kind="member", name=f"共建单位{index + 1}",
                                        parent_code="C01", position=index,
                                        member_type=MEMBER_TYPES[index % len(MEMBER_TYPES)]))
            chat = chats[code]
            await store.map.upsert_chat(Chat(chat_id=chat.id, type=chat.type, title=chat.title,
                                             is_forum=False, bot_is_admin=True, can_pin=True,
                                             can_manage_topics=True))
            await store.map.bind(code, chat.id, 0, None)
            if code in people:
                user = people[code]
                await store.people.touch(user.id, user.first_name, None, None,
                                         user.language_code, private=True)
                await store.people.grant(user.id, "unit_contact", code, None)
    return chats, people


# ------------------------------------------------------------------ (1) the call

async def call(report: Report, units: int, volunteers: int, keep: bool) -> None:
    label = "call"
    with workdir(keep) as tmp:
        emu = await start_emulator(TELEGRAM)
        try:
            url = f"sqlite:///{tmp / 'gridhorn.db'}"
            values = settings_values(emu, url)
            store = await Store.open(url)
            buildings = 100
            world = await build_world(emu, store, buildings=buildings, per_grid=10,
                                      grids_per_community=10, bind_buildings=False)
            unit_chats, _ = await add_member_units(emu, store, world.owner, units,
                                                   contacts=False)
            people = [emu.add_user(f"志愿者{i}", language_code="zh-hans")
                      for i in range(volunteers)]
            async with store.transaction():
                for index, user in enumerate(people):
                    user.started = True
                    emu.private_chat(user)
                    await store.people.touch(user.id, user.first_name, None, None,
                                             user.language_code, private=True)
                    await store.people.grant(user.id, "volunteer",
                                             world.buildings[index % buildings], None)
            await quiesce_schedules(store, values)
            await store.close()
            values["superadmins"] = str(world.owner.id)
            runtime = await start_runtime(values)
            try:
                copies = units + volunteers
                watched = [c.id for c in unit_chats.values()] + [u.id for u in people]
                watcher = Watcher(emu, watched, lambda text: "horn" if CALL_MARK in text
                                  else None)
                flood = Flood(emu)
                services = runtime.services
                actor = await services.access.actor(world.owner.id)
                codes = " ".join(f"+{member_code(i)}" for i in range(units))
                await services.horns.short_form(
                    actor, f"major C01 {min(copies, 10_000)} {CALL_MARK}：沿河沙袋加固 {codes}")
                pressed = time.monotonic()
                published = await services.horns.publish(actor)
                committed = time.monotonic()
                await emu.wait_until(lambda: watcher.chats_with("horn") >= copies,
                                     timeout=floor_s(copies) * 3 + 60)
                last_at = max(watcher.times["horn"])
                await runtime.sender.drain(timeout=60)
                answers = flood.delta()
                calls = dict(emu.stats.by_method)
                called = await runtime.store.units.horn_units(published.horn.id)
            finally:
                await runtime.stop()
        finally:
            await emu.stop()
    floor = floor_s(copies)
    last = last_at - committed
    ratio = last / floor
    per_chat = watcher.counts["horn"]
    unit_ids = {c.id for c in unit_chats.values()}
    to_units = sum(1 for chat in per_chat if chat in unit_ids)
    doubled = sum(1 for n in per_chat.values() if n > 1)
    report.figure(f"[{label}] horn", f"major over C01, {units} member units (bound chats), "
                  f"{volunteers} volunteers (private); Publish queued {published.chats} chats "
                  f"+ {published.volunteers} call-ups in {committed - pressed:.2f} s")
    report.figure(f"[{label}] calls", f"{calls.get('sendMessage', 0)} sendMessage in all")
    report.figure(f"[{label}] commit → last copy", f"{last:.2f} s",
                  f"floor {copies} / 30 = {floor:.1f} s, ratio {ratio:.3f}; "
                  f"from the Publish call {last_at - pressed:.2f} s, "
                  f"ratio {(last_at - pressed) / floor:.3f}")
    report.figure(f"[{label}] answers", answers)
    report.target(f"[{label}] ratio ≤ {RATIO_TARGET}", ratio <= RATIO_TARGET, f"{ratio:.3f}")
    report.target(f"[{label}] flood 429 = 0", answers["flood_429"] == 0 and answers["429"] == 0,
                  f"{answers['flood_429']} flood-limit 429s")
    report.target(f"[{label}] one copy each",
                  len(per_chat) == copies and doubled == 0 and to_units == units
                  and len(called) == units,
                  f"{to_units}/{units} unit chats, {len(per_chat) - to_units}/{volunteers} "
                  f"volunteers, {doubled} with more than one; {len(called)} units recorded")


# ------------------------------------------------------------------ (2) the storm

def final_counters(count: int, needed: int, units: int) -> list[str]:
    """The counter line every copy should end with, as a person sees it, in each locale."""
    return [parse_html(t(locale, "horn.counter", count=count, needed=needed)
                       + t(locale, "unit.horn_counter", units=units)).text
            for locale in LOCALES]


async def storm(report: Report, pledges: int, taps: int, window: float, seed: int,
                keep: bool) -> None:
    label = "storm"
    amounts = [PLEDGE_CYCLE[i % len(PLEDGE_CYCLE)] for i in range(pledges)]
    needed = sum(amounts) + taps
    with workdir(keep) as tmp:
        emu = await start_emulator(TELEGRAM)
        try:
            url = f"sqlite:///{tmp / 'gridhorn.db'}"
            values = settings_values(emu, url)
            store = await Store.open(url)
            world = await build_world(emu, store, buildings=1, per_grid=1)
            unit_chats, contacts = await add_member_units(emu, store, world.owner, pledges,
                                                          contacts=True)
            residents = [emu.add_user(f"居民{i}", language_code="zh-hans") for i in range(taps)]
            async with store.transaction():  # residents the bot has met before
                for user in residents:
                    await store.people.touch(user.id, user.first_name, None, None,
                                             user.language_code, private=True)
            await quiesce_schedules(store, values)
            await store.close()
            values["superadmins"] = str(world.owner.id)
            building_chat = emu.chat(world.building_chats[world.buildings[0]])
            for user in residents:
                building_chat.members[user.id] = user
            runtime = await start_runtime(values)
            try:
                services = runtime.services
                actor = await services.access.actor(world.owner.id)
                codes = " ".join(f"+{member_code(i)}" for i in range(pledges))
                await services.horns.short_form(
                    actor, f"major {world.buildings[0]} {needed} {STORM_MARK} {codes}")
                horn = (await services.horns.publish(actor)).horn
                copy_chats = [building_chat.id, *(c.id for c in unit_chats.values())]

                def copy_of(chat_id: int) -> Any:
                    return next((m for m in emu.messages(chat_id)
                                 if STORM_MARK in m.text and m.buttons), None)

                await emu.wait_until(lambda: all(copy_of(c) for c in copy_chats[-1:]),
                                     timeout=120)
                await emu.wait_until(lambda: all(copy_of(c) for c in copy_chats), timeout=120)
                # each contact opens the numbers ("Unit check in"): they arrive privately
                opened = []
                start = time.monotonic()
                for index, (code, contact) in enumerate(contacts.items()):
                    due = start + window * index / pledges
                    if due > time.monotonic():
                        await asyncio.sleep(due - time.monotonic())
                    opened.append(emu.press(contact, copy_of(unit_chats[code].id),
                                            f"hu:p:{horn.id}"))
                open_answers = await asyncio.gather(*(q.wait_answered(timeout=60)
                                                      for q in opened))
                open_latencies = [a.at - q.created_at
                                  for a, q in zip(open_answers, opened, strict=True)]

                def prompt_of(contact: EmuUser) -> Any:
                    return next((m for m in reversed(emu.messages(contact.id)) if m.buttons),
                                None)

                await emu.wait_until(lambda: all(prompt_of(c) for c in contacts.values()),
                                     timeout=120)
                prompts_at = time.monotonic() - start
                # a person reads the numbers before pressing one (and Telegram's window of the
                # private chat, busy with the prompt, has passed)
                await asyncio.sleep(READ_S)
                # the storm: numbers and check-ins, interleaved, evenly over the window
                presses: list[tuple[str, EmuUser, Any, str]] = [
                    ("pledge", contact, prompt_of(contact), f"hu:n:{horn.id}:{amount}")
                    for contact, amount in zip(contacts.values(), amounts, strict=True)]
                post = copy_of(building_chat.id)
                presses += [("tap", user, post, f"h:in:{horn.id}") for user in residents]
                random.Random(seed).shuffle(presses)
                edits_before = len(emu.requests)
                contact_ids = {c.id for c in contacts.values()}
                flood = Flood(emu)
                queries = []
                start = time.monotonic()
                for index, (_, user, message, data) in enumerate(presses):
                    due = start + window * index / len(presses)
                    if due > time.monotonic():
                        await asyncio.sleep(due - time.monotonic())
                    queries.append(emu.press(user, message, data))
                pressed_in = time.monotonic() - start
                answers = await asyncio.gather(*(q.wait_answered(timeout=60) for q in queries),
                                               return_exceptions=True)
                answered = [a for a in answers if not isinstance(a, BaseException)]
                latency = {"pledge": [], "tap": []}  # type: dict[str, list[float]]
                refused = 0
                for (kind, *_), q, a in zip(presses, queries, answers, strict=True):
                    if isinstance(a, BaseException):
                        continue
                    latency[kind].append(a.at - q.created_at)
                    refused += not (a.text or "").startswith("✅") if kind == "pledge" else 0
                final = final_counters(needed, needed, pledges)
                pending = set(copy_chats)

                def settled() -> bool:
                    for chat_id in list(pending):
                        message = copy_of(chat_id) or next(
                            (m for m in emu.messages(chat_id) if STORM_MARK in m.text), None)
                        if message is not None and any(f in message.text for f in final):
                            pending.discard(chat_id)
                    return not pending

                try:
                    await emu.wait_until(settled, timeout=300)
                except TimeoutError:
                    pass
                shown_at = time.monotonic() - start
                count, waiting = await runtime.store.horns.counts(horn.id)
                stored = await runtime.store.horns.get(horn.id)
                called = {u.unit_code: u.pledged
                          for u in await runtime.store.units.horn_units(horn.id)}
                edits = [r for r in emu.requests[edits_before:]
                         if r.method == "editMessageText"]
                rejected = [r for r in edits if r.status_code != 200]
                rejected_private = sum(1 for r in rejected
                                       if isinstance(r.chat_id, int) and r.chat_id > 0)
                rejected_own = sum(1 for r in rejected if r.chat_id in contact_ids)
                flood_answers = flood.delta()
            finally:
                await runtime.stop()
        finally:
            await emu.stop()
    expected = {member_code(i): amount for i, amount in enumerate(amounts)}
    everything = latency["pledge"] + latency["tap"]
    p95 = percentile(everything, 95)

    def line(values: list[float]) -> str:
        return (f"p50 {percentile(values, 50) * 1000:.0f} ms / p95 "
                f"{percentile(values, 95) * 1000:.0f} ms / max {max(values) * 1000:.0f} ms")

    report.figure(f"[{label}] horn", f"major over {world.buildings[0]} for {needed}, "
                  f"{pledges} member units called ({len(copy_chats)} copies)")
    report.figure(f"[{label}] \"Unit check in\" (before the storm)",
                  f"{pledges} presses over {window:g} s: {line(open_latencies)}; "
                  f"all {pledges} prompts arrived {prompts_at:.2f} s after the first")
    report.figure(f"[{label}] presses", f"{pledges} pledges ({sum(amounts)} people) and "
                  f"{taps} check-ins within {pressed_in:.2f} s")
    if latency["pledge"]:
        report.figure(f"[{label}] pledge answer", line(latency["pledge"]))
    if latency["tap"]:
        report.figure(f"[{label}] check-in answer", line(latency["tap"]))
    report.figure(f"[{label}] counter on every copy",
                  f"{len(copy_chats) - len(pending)}/{len(copy_chats)} final "
                  f"{shown_at:.2f} s after the first press; {len(edits)} edits, "
                  f"{len(rejected)} rejected ({rejected_private} in private chats, "
                  f"{rejected_own} of them contacts'); answers {flood_answers}")
    report.target(f"[{label}] every press answered",
                  len(answered) == len(presses) and refused == 0,
                  f"{len(answered)}/{len(presses)}, {refused} pledges refused")
    report.target(f"[{label}] p95 answer < {P95_TARGET_S * 1000:.0f} ms", p95 < P95_TARGET_S,
                  f"{p95 * 1000:.0f} ms (all {len(everything)} presses)")
    report.target(f"[{label}] stored counts exact",
                  count == needed and waiting == 0 and called == expected
                  and stored is not None and stored.units_pledged == pledges,
                  f"{count}/{needed} checked in, {waiting} waiting, "
                  f"{sum(called.values())} pledged by "
                  f"{stored.units_pledged if stored else '?'} units "
                  f"({'each as pressed' if called == expected else 'NOT as pressed'})")
    report.target(f"[{label}] counter final on every copy", not pending,
                  f"{final[0]} on {len(copy_chats) - len(pending)}/{len(copy_chats)}")


# ------------------------------------------------------------------ main

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.unit_horn", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=("call", "storm", "both"), default="both")
    parser.add_argument("--units", type=int, default=200,
                        help="member units the horn calls, each with a bound chat (call)")
    parser.add_argument("--volunteers", type=int, default=2000,
                        help="volunteers called privately (call)")
    parser.add_argument("--pledges", type=int, default=300,
                        help="member units called, one pledge each (storm)")
    parser.add_argument("--taps", type=int, default=500, help="residents' check-ins (storm)")
    parser.add_argument("--window", type=float, default=2.0,
                        help="seconds the storm's presses are spread over (storm)")
    parser.add_argument("--seed", type=int, default=7, help="the order of the storm's presses")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    add_speed_flags(parser)
    args = parser.parse_args(argv)

    async def run() -> int:
        report = Report("member units' horn (issue 17), Telegram's limits")
        use_speed_flags(args, report)
        if args.part in ("call", "both"):
            await call(report, args.units, args.volunteers, args.keep)
        if args.part in ("storm", "both"):
            await storm(report, args.pledges, args.taps, args.window, args.seed, args.keep)
        return report.exit_code()

    return eventloop.run(run(), args.event_loop)


if __name__ == "__main__":
    sys.exit(main())
