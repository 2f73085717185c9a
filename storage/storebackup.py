"""Backing up, restoring and checking a store (SPEC §15): `gridhorn backup`, `restore`,
`check`. (Not the AB岗 stand-ins of `storage/backups.py`.)

A backup of a SQLite store is SQLite's online backup API, copying every page in one step:
one read transaction on the store, a snapshot as of its start (every commit before it, none
after), while the bot goes on writing beside it (WAL: a reader never holds a writer back).
Copied in smaller steps, each write of the bot would restart the copy, which under a steady
load never ends. The copy is written beside the target and renamed onto it once it is whole
and passes `PRAGMA quick_check`, so a backup cut short never leaves a half file under the
name given.

A restore copies the backup into the store with the same API, as one write transaction of
SQLite's own (the store's WAL and readers stay consistent); the store as it was is first
backed up beside it (`<store>.before-restore`). The caller holds the run lock
(`storage.runlock`): no bot runs meanwhile.

PostgreSQL has its own tools (pg_dump, pg_restore); `check` reads its pending migrations and
outbox alike.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from storage.db import _migrations as sqlite_migrations

#: an outbox item due this long ago and still pending is stuck (the sender is not sending)
STUCK_AFTER_S = 15 * 60
#: … a group post held for quiet hours, this long after it was queued
STUCK_QUIET_AFTER_S = 12 * 3600
#: at most this many of integrity_check's complaints are shown
SHOWN_PROBLEMS = 10

STUCK_SQL = """SELECT id, chat_id, method, attempts, last_error, created_at, not_before
    FROM outbox WHERE status = 'pending'
      AND created_at < {p} AND not_before < {p} AND (quiet = 0 OR created_at < {p})
    ORDER BY id"""


class BackupError(Exception):
    """The backup or restore could not be made; the message says why, in one line."""


@dataclass(frozen=True)
class Copied:
    """A backup written: its size, the tickets it holds, how long it took."""

    path: Path
    bytes: int
    tickets: int
    seconds: float


@dataclass
class Findings:
    """What `check` found: lines to print, and whether all is well."""

    lines: list[str] = field(default_factory=list)
    ok: bool = True

    def good(self, text: str) -> None:
        self.lines.append(f"ok    {text}")

    def bad(self, text: str) -> None:
        self.lines.append(f"FAIL  {text}")
        self.ok = False

    def note(self, text: str) -> None:
        self.lines.append(f"-     {text}")


@contextlib.contextmanager
def _open(path: str | Path, *, readonly: bool = False) -> Iterator[sqlite3.Connection]:
    """An existing SQLite file (never a new empty one made by a typo)."""
    if not Path(path).is_file():
        raise BackupError(f"{path}: no such file")
    mode = "ro" if readonly else "rw"
    try:
        conn = sqlite3.connect(f"file:{Path(path).resolve()}?mode={mode}", uri=True,
                               isolation_level=None)
    except sqlite3.Error as exc:
        raise BackupError(f"{path}: cannot open: {exc}") from None
    try:
        conn.execute("PRAGMA busy_timeout=10000")
        yield conn
    finally:
        conn.close()


def backup(store: str, target: Path) -> Copied:
    """Copy the SQLite store at `store` into `target` while a bot may run on it."""
    target = Path(target)
    if target.resolve() == Path(store).resolve():
        raise BackupError(f"{target} is the store itself")
    if target.is_dir():
        raise BackupError(f"{target} is a directory")
    partial = target.with_name(target.name + ".partial")
    began = time.perf_counter()
    try:
        with _open(store) as source:
            _is_gridhorn(source, store)
            partial.unlink(missing_ok=True)
            copy = sqlite3.connect(partial, isolation_level=None)
            try:
                source.backup(copy)  # every page in one step: one snapshot (see above)
                # one self-contained file (no -wal beside it; the bot turns WAL on again)
                copy.execute("PRAGMA journal_mode=DELETE")
                _quick_check(copy, target)
                tickets = int(copy.execute("SELECT COUNT(*) FROM tickets").fetchone()[0])
            finally:
                copy.close()
        os.replace(partial, target)
    except sqlite3.Error as exc:
        raise BackupError(f"{target}: {exc}") from None
    except OSError as exc:
        raise BackupError(f"{target}: {exc.strerror or exc}") from None
    finally:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
    return Copied(target, target.stat().st_size, tickets, time.perf_counter() - began)


def restore(source: Path, store: str) -> Path | None:
    """Replace the store's contents with the backup `source` (checked first). The store as
    it was is kept beside it: that copy's path (None: there was no store)."""
    if Path(source).resolve() == Path(store).resolve():
        raise BackupError(f"{source} is the store itself")
    with _open(source, readonly=True) as backup_db:
        _is_gridhorn(backup_db, source)
        problems = _integrity(backup_db)
        if problems:
            raise BackupError(f"{source} is damaged: {problems[0]}")
        version = int(backup_db.execute("PRAGMA user_version").fetchone()[0])
        latest = max(n for n, _, _ in sqlite_migrations())
        if version > latest:
            raise BackupError(f"{source} was made by a newer Gridhorn (schema {version}, this "
                              f"one knows {latest}); restore it with that version")
        kept = None
        if Path(store).is_file():
            kept = Path(f"{store}.before-restore")
            backup(store, kept)
        try:
            target = sqlite3.connect(store, isolation_level=None)
            try:
                target.execute("PRAGMA busy_timeout=10000")
                backup_db.backup(target)
                target.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                target.close()
        except sqlite3.Error as exc:
            raise BackupError(f"{store}: {exc}") from None
    return kept


def check_sqlite(store: str, now: float | None = None) -> Findings:
    """`gridhorn check` of a SQLite store: integrity, pending migrations, stuck outbox."""
    found = Findings()
    try:
        with _open(store, readonly=True) as db:
            problems = _integrity(db)
            if problems:
                found.bad(f"integrity: {len(problems)} problem(s), first: "
                          + "; ".join(problems[:SHOWN_PROBLEMS]))
            else:
                found.good("integrity: PRAGMA integrity_check found nothing wrong")
            version = int(db.execute("PRAGMA user_version").fetchone()[0])
            _migrations_found(found, version, [n for n, _, _ in sqlite_migrations()])
            if version:
                _stuck_found(found, db.execute(STUCK_SQL.format(p="?"), _stuck_params(now))
                             .fetchall())
    except sqlite3.DatabaseError as exc:
        found.bad(f"{store} cannot be read: {exc}")
    except BackupError as exc:
        found.bad(str(exc))
    return found


async def check_postgresql(url: str, now: float | None = None) -> Findings:
    """`gridhorn check` of a PostgreSQL store: its pending migrations and stuck outbox (its
    pages are PostgreSQL's to check: amcheck, pg_dump)."""
    import psycopg  # loaded only when it is used, as `Store.open` does

    from storage.pg import _migrations as pg_migrations

    found = Findings()
    found.note("integrity: not checked here on PostgreSQL (its own tools: amcheck, pg_dump)")
    try:
        async with await psycopg.AsyncConnection.connect(url, connect_timeout=10) as conn:
            cur = await conn.execute("SELECT to_regclass('schema_version') IS NOT NULL")
            row = await cur.fetchone()
            version = 0
            if row is not None and row[0]:
                cur = await conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version")
                got = await cur.fetchone()
                version = int(got[0]) if got is not None else 0
            _migrations_found(found, version, [n for n, _, _ in pg_migrations()])
            if version:
                cur = await conn.execute(STUCK_SQL.format(p="%s"), _stuck_params(now))
                _stuck_found(found, await cur.fetchall())
    except psycopg.Error as exc:
        found.bad(f"the store cannot be read: {str(exc).strip().splitlines()[0]}")
    return found


def _is_gridhorn(db: sqlite3.Connection, path: str | Path) -> None:
    try:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{path} is not a SQLite database: {exc}") from None
    if "tickets" not in tables or "outbox" not in tables:
        raise BackupError(f"{path} is not a Gridhorn store (no tickets or outbox table)")


def _integrity(db: sqlite3.Connection) -> list[str]:
    rows = [str(r[0]) for r in db.execute(f"PRAGMA integrity_check({SHOWN_PROBLEMS})")]
    return [] if rows == ["ok"] else rows


def _quick_check(db: sqlite3.Connection, target: Path) -> None:
    rows = [str(r[0]) for r in db.execute("PRAGMA quick_check(1)")]
    if rows != ["ok"]:
        raise BackupError(f"{target}: the copy failed its check: {rows[0]}")


def _migrations_found(found: Findings, version: int, known: list[int]) -> None:
    latest = max(known)
    pending = [n for n in known if n > version]
    if version > latest:
        found.bad(f"migrations: the store is at {version}, newer than this Gridhorn ({latest}): "
                  "run the newer version")
    elif pending:
        found.bad(f"migrations: {len(pending)} pending ({version} → {latest}); `gridhorn run` "
                  "applies them at its start")
    else:
        found.good(f"migrations: all applied ({version})")


def _stuck_params(now: float | None) -> tuple[float, float, float]:
    now = time.time() if now is None else now
    return (now - STUCK_AFTER_S, now - STUCK_AFTER_S, now - STUCK_QUIET_AFTER_S)


def _stuck_found(found: Findings, rows: list[Any]) -> None:
    if not rows:
        found.good("outbox: nothing stuck in sending")
        return
    found.bad(f"outbox: {len(rows)} item(s) due over {STUCK_AFTER_S // 60} min ago and not "
              "sent (is the bot running and Telegram reachable?)")
    for row in rows[:SHOWN_PROBLEMS]:
        item_id, chat_id, method, attempts, error, created_at, _ = row
        age = (time.time() - float(created_at)) / 60
        found.note(f"  #{item_id} {method} to {chat_id}, queued {age:.0f} min ago, "
                   f"{attempts} failed tries" + (f", last: {error}" if error else ""))
