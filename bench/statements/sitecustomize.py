"""Count the statements a process sends to PostgreSQL (docs/benchmarks.md, "Session 9").

    BENCH_COUNT_STATEMENTS=DIR PYTHONPATH=bench/statements \\
        python -m bench.submit_burst --replicas 2 --webhook --database postgresql --residents 200

Every Python process started with this on its path and the variable set wraps psycopg's
`AsyncCursor.execute`; from the first statement that stores a button press (the burst's
start) it counts statements by their text, and at exit writes `DIR/statements.<pid>` (a
count and the text's first 110 characters a line). A round trip is one statement: `BEGIN`
and `NOTIFY …; COMMIT` are statements of their own. Sum the bot processes' files.
"""

from __future__ import annotations

import atexit
import collections
import os
import re

_DIR = os.environ.get("BENCH_COUNT_STATEMENTS")
_counts: collections.Counter[str] = collections.Counter()
_burst = False


def _press(params: object) -> bool:
    values = params if isinstance(params, (list, tuple)) else ()
    return any(isinstance(v, (str, bytes)) and
               b"callback_query" in (v if isinstance(v, bytes) else v.encode())
               for v in values)


def _install() -> None:
    import psycopg

    execute = psycopg.AsyncCursor.execute

    async def counted(self, query, params=None, **kwargs):  # type: ignore[no-untyped-def]
        global _burst
        if not _burst and _press(params):
            _burst = True
            _counts.clear()
        text = query.decode() if isinstance(query, bytes) else str(query)
        _counts[re.sub(r"\s+", " ", text)[:110]] += 1
        return await execute(self, query, params, **kwargs)

    psycopg.AsyncCursor.execute = counted  # type: ignore[method-assign]


def _write() -> None:
    if _burst and _DIR:
        with open(os.path.join(_DIR, f"statements.{os.getpid()}"), "w") as out:
            for text, count in _counts.most_common():
                out.write(f"{count:7d} {text}\n")


if _DIR:
    try:
        _install()
    except ImportError:  # a process without psycopg (the HTTP worker may not load it)
        pass
    else:
        atexit.register(_write)
