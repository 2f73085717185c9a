"""`/tickets` for a community with 10,000 open tickets (issue 14): the first page's bot time.

A community of 10 grids and 200 buildings holds `--tickets` open tickets (every state open,
deadlines spread over two weeks, some "Me too", a tenth whistled); its community staff member
sends `/tickets` privately, `--runs` times. Figures: the time from the command reaching the
emulator to the page's last message there (the title, 10 cards with their buttons, "More":
12 calls to a local emulator, flood limits off), p50/p95/max; and, measured in this process,
the service's part (the query, the cards' texts and buttons). Target: p50 < 100 ms.

    .venv/bin/python -m bench.tickets_page [--tickets 10000] [--runs 20] [--no-http-worker]
"""

from __future__ import annotations

import argparse
import random
import sys
import time

from bench.common import (
    Report,
    add_speed_flags,
    build_world,
    percentile,
    quiesce_schedules,
    settings_values,
    start_emulator,
    start_runtime,
    use_speed_flags,
    workdir,
)
from bot import eventloop
from storage.models import OPEN_STATUSES, TicketStatus, Unit
from storage.store import Store

PAGE_MESSAGES = 12  # the title, ten cards, "More"


async def fill(store: Store, world, count: int, reporter: int) -> None:
    """`count` open tickets over the community's buildings, in one transaction."""
    rng = random.Random(14)
    now = time.time()
    domains = ("red", "orange", "gold", "green", "cyan", "blue", "purple", None)
    async with store.transaction():
        await store.people.ensure(reporter)
        for n in range(count):
            building = world.buildings[n % len(world.buildings)]
            due = now + rng.uniform(0.5, 14) * 86400  # none due while measured
            ticket = await store.tickets.create(
                reporter_id=reporter, anonymous=n % 7 == 0, building_code=building,
                grid_code=world.building_grid[building], community_code="C01",
                domain=domains[n % len(domains)], text=f"第{n + 1}件：楼道灯不亮，已经一周了",
                photo_file_id=None, source_update_id=None, due_kind="ack",
                due_from=due - 86400, due_at=due, remind_at=due - 21600)
            assert ticket is not None
            status = OPEN_STATUSES[n % len(OPEN_STATUSES)]
            fields: dict[str, object] = {"status": status, "me_too": rng.choice((0, 0, 1, 3))}
            if status in (TicketStatus.WHISTLED, TicketStatus.ACCEPTED):
                fields["department_code"] = "MZJ"
            await store.tickets.update(ticket.id, **fields)


async def measure(report: Report, count: int, runs: int) -> None:
    with workdir() as tmp:
        emu = await start_emulator(None)
        try:
            db_path = tmp / "gridhorn.db"
            values = settings_values(emu, db_path)
            store = await Store.open_sqlite(str(db_path))
            world = await build_world(emu, store, buildings=200, per_grid=20,
                                      bind_buildings=False)
            async with store.transaction():
                await store.map.upsert(Unit(code="MZJ", kind="department", name="县民政局"))
            staff = emu.add_user("社区干部", language_code="zh-hans")
            staff.started = True
            async with store.transaction():
                await store.people.touch(staff.id, staff.first_name, None, None,
                                         staff.language_code, private=True)
                await store.people.grant(staff.id, "community_staff", "C01", None)
            started = time.monotonic()
            await fill(store, world, count, world.owner.id)
            report.figure("tickets written", f"{count} in {time.monotonic() - started:.1f} s")
            await quiesce_schedules(store, values)
            await store.close()
            runtime = await start_runtime(values)
            try:
                latencies = []
                for _ in range(runs + 1):  # the first warms the caches
                    seen = len(emu.messages(staff.id))
                    sent = time.monotonic()
                    emu.send_text(staff, "/tickets")
                    await emu.wait_until(
                        lambda seen=seen: len(emu.messages(staff.id)) >= seen + PAGE_MESSAGES,
                        timeout=30)
                    page = emu.messages(staff.id)[seen:]
                    latencies.append((page[-1].sent_at - sent) * 1000)
                    assert page[-1].buttons, "the page ends with More"
                latencies = latencies[1:]
                services = runtime.services
                actor = await services.access.actor(staff.id)
                service_times = []
                for _ in range(runs):
                    started = time.perf_counter()
                    shown = await services.tickets.open_tickets(actor)
                    await services.tickets.card_views(actor, "zh-Hans", shown.tickets)
                    service_times.append((time.perf_counter() - started) * 1000)
                total = shown.total
            finally:
                await runtime.stop()
        finally:
            await emu.stop()
    p50, p95 = percentile(latencies, 50), percentile(latencies, 95)
    report.figure("open tickets in the community", total)
    report.figure("command → page's last message p50 / p95 / max",
                  f"{p50:.1f} ms / {p95:.1f} ms / {max(latencies):.1f} ms ({runs} runs)")
    report.figure("service part (query, cards' texts and buttons) p50 / max",
                  f"{percentile(service_times, 50):.1f} ms / {max(service_times):.1f} ms")
    report.target("first page p50 < 100 ms", p50 < 100, f"{p50:.1f} ms")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.tickets_page", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tickets", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=20)
    add_speed_flags(parser)
    args = parser.parse_args(argv)
    report = Report(f"/tickets' first page, a community with {args.tickets} open tickets")
    eventloop.run(measure(report, args.tickets, args.runs), use_speed_flags(args, report))
    return report.exit_code()


if __name__ == "__main__":
    sys.exit(main())
