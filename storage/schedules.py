"""Schedules repository: monthly themes, the record of scheduled runs and posts, patrols."""

from __future__ import annotations

from collections.abc import Iterable

from storage.dbapi import Database, Row
from storage.models import Patrol, Theme
from storage.util import epoch, placeholders

CITY = ""  # the community code of the city-wide theme


def _theme(row: Row) -> Theme:
    return Theme(community_code=row["community_code"], month=row["month"], text=row["text"],
                 set_by=row["set_by"], set_at=row["set_at"])


def _patrol(row: Row) -> Patrol:
    return Patrol(id=row["id"], grid_code=row["grid_code"], user_id=row["user_id"],
                  at=row["at"], location=row["location"], note=row["note"])



class SchedulesRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    # themes

    async def set_theme(self, community_code: str, month: str, text: str,
                        by: int | None) -> None:
        await self.db.execute(
            """INSERT INTO themes (community_code, month, text, set_by, set_at)
               VALUES (?, ?, ?, ?, ?)
               ON CONFLICT(community_code, month) DO UPDATE SET text = excluded.text,
                   set_by = excluded.set_by, set_at = excluded.set_at""",
            (community_code, month, text, by, epoch()))

    async def theme(self, community_code: str, month: str) -> Theme | None:
        """The community's own theme of the month, else the city-wide one."""
        row = await self.db.fetchone(
            """SELECT * FROM themes WHERE month = ? AND community_code IN (?, ?)
               ORDER BY community_code = ? LIMIT 1""",
            (month, community_code, CITY, CITY))
        return _theme(row) if row else None

    # runs and posts

    async def has_run(self, job: str, period: str) -> bool:
        return await self.db.fetchval(
            "SELECT 1 FROM schedule_runs WHERE job = ? AND period = ?", (job, period)) is not None

    async def record_run(self, job: str, period: str, posts: int = 0) -> bool:
        """Claim a job's period, first thing in the run's transaction: False when it was
        run (or is being run: PostgreSQL makes this wait for the other transaction, then
        says False if it committed), so exactly one run writes, whichever replica it is."""
        return await self.db.execute_rowcount(
            "INSERT INTO schedule_runs (job, period, ran_at, posts) VALUES (?, ?, ?, ?) "
            "ON CONFLICT DO NOTHING",
            (job, period, epoch(), posts)) > 0

    async def set_run_posts(self, job: str, period: str, posts: int) -> None:
        """What the claimed run posted (in its transaction)."""
        await self.db.execute("UPDATE schedule_runs SET posts = ? WHERE job = ? AND period = ?",
                              (posts, job, period))

    async def claim_post(self, job: str, period: str, chat_id: int, thread_id: int = 0) -> bool:
        """Record a post to a chat for a period; False when that chat already had it.
        Call it in the transaction that queues the post: the store decides "once"."""
        return await self.db.execute_rowcount(
            """INSERT INTO schedule_posts (job, period, chat_id, thread_id, at)
               VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING""",
            (job, period, chat_id, thread_id, epoch())) > 0

    async def posted(self, job: str, period: str) -> list[tuple[int, int]]:
        rows = await self.db.fetchall(
            "SELECT chat_id, thread_id FROM schedule_posts WHERE job = ? AND period = ? "
            "ORDER BY chat_id, thread_id", (job, period))
        return [(r["chat_id"], r["thread_id"]) for r in rows]

    async def migrate_chat(self, old_id: int, new_id: int) -> None:
        """A group became a supergroup: what it had stays had."""
        # a post the new id already had stays once (what UPDATE OR IGNORE did, portably)
        await self.db.execute(
            """DELETE FROM schedule_posts WHERE chat_id = ? AND EXISTS (
                   SELECT 1 FROM schedule_posts p WHERE p.job = schedule_posts.job
                   AND p.period = schedule_posts.period AND p.chat_id = ?
                   AND p.thread_id = schedule_posts.thread_id)""", (old_id, new_id))
        await self.db.execute(
            "UPDATE schedule_posts SET chat_id = ? WHERE chat_id = ?", (new_id, old_id))

    # patrols

    async def add_patrol(self, grid_code: str, user_id: int, at: float, location: str | None,
                         note: str | None, source_update_id: int | None) -> int:
        """Record a patrol and return its id; a replayed update finds the one it made."""
        if source_update_id is not None:
            exists = await self.db.fetchval(
                "SELECT id FROM patrols WHERE source_update_id = ?", (source_update_id,))
            if exists is not None:
                return int(exists)
        return await self.db.execute(
            """INSERT INTO patrols (grid_code, user_id, at, location, note, source_update_id)
               VALUES (?, ?, ?, ?, ?, ?)""",
            (grid_code, user_id, at, location, note, source_update_id))

    async def set_patrol_note(self, patrol_id: int, note: str) -> None:
        """A patrol's note given after it was recorded (a checkpoint visit's, SPEC §13)."""
        await self.db.execute("UPDATE patrols SET note = ? WHERE id = ?", (note, patrol_id))

    async def patrol(self, patrol_id: int) -> Patrol | None:
        row = await self.db.fetchone("SELECT * FROM patrols WHERE id = ?", (patrol_id,))
        return _patrol(row) if row else None

    async def patrols(self, grid_codes: Iterable[str] | None, start: float,
                      end: float) -> list[Patrol]:
        """Patrols in [start, end), of the given grids (None: every grid)."""
        sql = "SELECT * FROM patrols WHERE at >= ? AND at < ?"
        params: list[object] = [start, end]
        if grid_codes is not None:
            codes = list(grid_codes)
            if not codes:
                return []
            sql += f" AND grid_code IN ({placeholders(codes)})"
            params += codes
        rows = await self.db.fetchall(sql + " ORDER BY at, id", params)
        return [_patrol(r) for r in rows]
