"""`gridhorn check`, `backup` and `restore` (SPEC §15) on a store of either engine: what each
finds, says and refuses."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest

from bot.cli import main
from storage import storebackup
from storage.store import Store

MIGRATIONS = Path(storebackup.__file__).parent / "migrations"

pytestmark = pytest.mark.asyncio


async def check(database_url: str, monkeypatch: pytest.MonkeyPatch,
                capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    monkeypatch.setenv("GRIDHORN_ENV_FILE", "")
    monkeypatch.setenv("GRIDHORN_DATABASE_URL", database_url)
    code = await asyncio.to_thread(main, ["check"])
    return code, capsys.readouterr().out


async def test_check_finds_an_outbox_item_stuck_in_sending(
        database_url: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    store = await Store.open(database_url)
    try:
        code, said = await check(database_url, monkeypatch, capsys)
        assert code == 0, said
        assert "ok    migrations: all applied" in said
        assert "ok    outbox: nothing stuck in sending" in said
        assert said.rstrip().endswith("all is well")
        long_ago = time.time() - 3600
        async with store.transaction():
            fresh = await store.outbox.enqueue(-100, "sendMessage", {"text": "now"}, 10)
            stuck = await store.outbox.enqueue(-101, "sendMessage", {"text": "old"}, 10)
            await store.db.execute("UPDATE outbox SET created_at = ?, attempts = 3, "
                                   "last_error = 'Timed out' WHERE id = ?", (long_ago, stuck))
        assert fresh is not None and stuck is not None
        code, said = await check(database_url, monkeypatch, capsys)
        assert code == 1, said
        assert "FAIL  outbox: 1 item(s) due over 15 min ago and not sent" in said
        assert f"#{stuck} sendMessage to -101, queued 60 min ago, 3 failed tries, " \
               "last: Timed out" in said
        assert f"#{fresh} " not in said
        assert said.rstrip().endswith("problems found (above)")
    finally:
        await store.close()


async def test_check_finds_pending_migrations_and_a_damaged_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "g.db"
    store = await Store.open_sqlite(str(path))
    await store.close()
    # the numbers have gaps (each feature reserved its own): two back is the third last file
    numbers = sorted(int(f.name[:3]) for f in MIGRATIONS.glob("[0-9][0-9][0-9]_*.sql"))
    with sqlite3.connect(path) as db:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        assert version == numbers[-1]
        db.execute(f"PRAGMA user_version={numbers[-3]}")
    code, said = await check(f"sqlite:///{path}", monkeypatch, capsys)
    assert code == 1
    assert f"FAIL  migrations: 2 pending ({numbers[-3]} → {version})" in said
    damaged = tmp_path / "bad.db"
    damaged.write_bytes(b"SQLite format 3\x00" + b"\x07" * 5000)
    code, said = await check(f"sqlite:///{damaged}", monkeypatch, capsys)
    assert code == 1 and "FAIL" in said
    code, said = await check(f"sqlite:///{tmp_path / 'none.db'}", monkeypatch, capsys)
    assert code == 1 and "none.db: no such file" in said
    assert not (tmp_path / "none.db").exists()  # a typo never makes an empty store


async def test_backup_refuses_what_it_cannot_copy_and_postgresql_is_pg_dumps(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "g.db"
    store = await Store.open_sqlite(str(path))
    await store.close()
    with pytest.raises(storebackup.BackupError, match="is the store itself"):
        storebackup.backup(str(path), path)
    with pytest.raises(storebackup.BackupError, match="is the store itself"):
        storebackup.restore(path, str(path))
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE t (x)")
    with pytest.raises(storebackup.BackupError, match="is not a Gridhorn store"):
        storebackup.backup(str(other), tmp_path / "copy.db")
    with pytest.raises(storebackup.BackupError, match="is not a Gridhorn store"):
        storebackup.restore(other, str(path))
    newer = tmp_path / "newer.db"
    storebackup.backup(str(path), newer)
    with sqlite3.connect(newer) as db:
        db.execute("PRAGMA user_version=999")
    with pytest.raises(storebackup.BackupError, match="made by a newer Gridhorn"):
        storebackup.restore(newer, str(path))
    assert not Path(f"{path}.before-restore").exists()  # refused before anything changed
    monkeypatch.setenv("GRIDHORN_ENV_FILE", "")
    monkeypatch.setenv("GRIDHORN_DATABASE_URL", "postgresql://gridhorn@127.0.0.1/gridhorn")
    for command in ("backup", "restore"):
        assert main([command, str(tmp_path / "x.db")]) == 2
        said = capsys.readouterr().err
        assert "pg_dump" in said
        assert said.count("\n") == 1  # one line
