"""One `gridhorn run` per SQLite file (SPEC §16): the running bot holds an exclusive lock on
`<file>.run.lock`; a second one is refused, naming the process that holds it.

`flock` is released by the kernel when the process ends, however it ends (`kill -9`
included), so a crash never leaves the file locked; the file itself stays, harmless.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class AlreadyRunning(RuntimeError):
    """Another process runs the bot on this store."""


def lock_path(database: str) -> Path:
    return Path(f"{database}.run.lock")


@contextmanager
def only_runner(database: str) -> Iterator[None]:
    """Hold the store's run lock for the block; `AlreadyRunning` if another process has it."""
    try:
        handle = open(lock_path(database), "a+", encoding="utf-8")  # noqa: SIM115 - held
    except OSError:  # no folder for it: opening the store will say what is wrong, in one line
        yield
        return
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise AlreadyRunning(
                f"another gridhorn run (pid {holder}) is using {database}; stop it first, "
                "or give this one another GRIDHORN_DATABASE_URL") from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        yield
    finally:
        handle.close()  # releases the lock
