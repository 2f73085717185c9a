"""psycopg's cost per round trip on this machine (docs/benchmarks.md, "Session 9").

    python -m bench.roundtrip [--n 3000]

`SELECT 1` N times on one connection to GRIDHORN_BENCH_POSTGRESQL's server: synchronous,
asyncio (as the bot runs), and asyncio in a pipeline (no wait per statement). Prints the
wall time and this process's CPU time per statement.
"""

from __future__ import annotations

import argparse
import asyncio
import time

import psycopg

from bench.common import PG_ADMIN_URL


def _line(name: str, n: int, wall: float, cpu: float) -> None:
    print(f"  {name:<22} {wall / n * 1e6:6.0f} µs wall, {cpu / n * 1e6:6.0f} µs CPU per statement")


def sync(url: str, n: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(n):
            conn.execute("SELECT 1").fetchone()
        _line("sync", n, time.perf_counter() - wall, time.process_time() - cpu)


async def asynchronous(url: str, n: int) -> None:
    conn = await psycopg.AsyncConnection.connect(url, autocommit=True)
    try:
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(n):
            await (await conn.execute("SELECT 1")).fetchone()
        _line("asyncio", n, time.perf_counter() - wall, time.process_time() - cpu)
        wall, cpu = time.perf_counter(), time.process_time()
        async with conn.pipeline():
            for _ in range(n):
                await conn.execute("SELECT 1")
        _line("asyncio, pipelined", n, time.perf_counter() - wall, time.process_time() - cpu)
    finally:
        await conn.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.roundtrip", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=3000)
    args = parser.parse_args(argv)
    print(f"psycopg {psycopg.__version__} ({psycopg.pq.__impl__}), {args.n} statements")
    sync(PG_ADMIN_URL, args.n)
    asyncio.run(asynchronous(PG_ADMIN_URL, args.n))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
