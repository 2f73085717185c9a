"""Meetings repository (SPEC §12): meetings, their posts, answers, sign-ins and decisions."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from storage.dbapi import Database, Row
from storage.models import Attendance, Meeting, MeetingKind, MeetingPost, MeetingSignIn
from storage.util import epoch, placeholders

#: the columns a timed step clears once done (the watcher's due times)
DUE_COLUMNS = ("remind_at", "offer_at", "wrap_at")


def _meeting(row: Row) -> Meeting:
    return Meeting(
        id=row["id"], kind=MeetingKind(row["kind"]), unit_code=row["unit_code"],
        grid_code=row["grid_code"], community_code=row["community_code"], title=row["title"],
        place=row["place"], agenda=row["agenda"], starts_at=row["starts_at"],
        ends_at=row["ends_at"], organiser_id=row["organiser_id"], remind_at=row["remind_at"],
        offer_at=row["offer_at"], wrap_at=row["wrap_at"],
        signin_opened=bool(row["signin_opened"]), minutes=row["minutes"],
        created_at=row["created_at"])


def _post(row: Row) -> MeetingPost:
    return MeetingPost(meeting_id=row["meeting_id"], kind=row["kind"], chat_id=row["chat_id"],
                       thread_id=row["thread_id"], unit_code=row["unit_code"],
                       message_id=row["message_id"])


def _signin(row: Row) -> MeetingSignIn:
    return MeetingSignIn(meeting_id=row["meeting_id"], user_id=row["user_id"],
                         unit_code=row["unit_code"], at=row["at"], late=bool(row["late"]))


class MeetingRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, *, kind: str, unit_code: str, grid_code: str | None,
                     community_code: str, title: str, place: str, agenda: str,
                     starts_at: float, ends_at: float, organiser_id: int,
                     remind_at: float | None, offer_at: float | None, wrap_at: float | None,
                     source_update_id: int | None) -> Meeting | None:
        """A new meeting; None when this update already made one (a replay)."""
        row = await self.db.fetchone(
            """INSERT INTO meetings (kind, unit_code, grid_code, community_code, title, place,
                   agenda, starts_at, ends_at, organiser_id, remind_at, offer_at, wrap_at,
                   source_update_id, created_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT DO NOTHING RETURNING *""",
            (kind, unit_code, grid_code, community_code, title, place, agenda, starts_at,
             ends_at, organiser_id, remind_at, offer_at, wrap_at, source_update_id, epoch()))
        return _meeting(row) if row is not None else None

    async def get(self, meeting_id: int) -> Meeting | None:
        row = await self.db.fetchone("SELECT * FROM meetings WHERE id = ?", (meeting_id,))
        return _meeting(row) if row else None

    async def claim_step(self, meeting_id: int, column: str) -> bool:
        """Clear a due step (one of DUE_COLUMNS); False when it was already done: the store
        decides "exactly once" (call it in the transaction that queues the step's posts)."""
        assert column in DUE_COLUMNS
        return await self.db.execute_rowcount(
            f"UPDATE meetings SET {column} = NULL WHERE id = ? AND {column} IS NOT NULL",
            (meeting_id,)) > 0

    async def open_signin(self, meeting_id: int) -> bool:
        """The organiser opened sign-in; False when it was open already."""
        return await self.db.execute_rowcount(
            "UPDATE meetings SET signin_opened = 1 WHERE id = ? AND signin_opened = 0",
            (meeting_id,)) > 0

    async def set_minutes(self, meeting_id: int, minutes: str) -> None:
        await self.db.execute("UPDATE meetings SET minutes = ? WHERE id = ?",
                              (minutes, meeting_id))

    async def due(self, now: float) -> list[Meeting]:
        """Meetings with a timed step due by `now`."""
        rows = await self.db.fetchall(
            """SELECT * FROM meetings WHERE remind_at <= ? OR offer_at <= ? OR wrap_at <= ?
               ORDER BY starts_at, id""", (now, now, now))
        return [_meeting(r) for r in rows]

    async def next_due(self) -> float | None:
        values = [await self.db.fetchval(f"SELECT MIN({column}) FROM meetings")
                  for column in DUE_COLUMNS]
        found = [float(v) for v in values if v is not None]
        return min(found) if found else None

    async def between(self, start: float, end: float,
                      units: Iterable[str] | None = None) -> list[Meeting]:
        """Meetings starting in [start, end), of the given scope units (None: all)."""
        sql = "SELECT * FROM meetings WHERE starts_at >= ? AND starts_at < ?"
        params: list[Any] = [start, end]
        if units is not None:
            codes = list(units)
            if not codes:
                return []
            sql += f" AND unit_code IN ({placeholders(codes)})"
            params += codes
        rows = await self.db.fetchall(sql + " ORDER BY starts_at, id", params)
        return [_meeting(r) for r in rows]

    async def face_to_face_grids(self, start: float, end: float) -> set[str]:
        """The grids with a face-to-face meeting starting in [start, end)."""
        rows = await self.db.fetchall(
            """SELECT DISTINCT grid_code FROM meetings WHERE kind = ? AND grid_code IS NOT NULL
               AND starts_at >= ? AND starts_at < ?""",
            (MeetingKind.FACE_TO_FACE.value, start, end))
        return {r["grid_code"] for r in rows}

    # posts

    async def add_post(self, meeting_id: int, kind: str, chat_id: int, thread_id: int,
                       unit_code: str) -> bool:
        """A post to queue; False when the chat has it already."""
        return await self.db.execute_rowcount(
            """INSERT INTO meeting_posts (meeting_id, kind, chat_id, thread_id, unit_code)
               VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING""",
            (meeting_id, kind, chat_id, thread_id, unit_code)) > 0

    async def post_sent(self, meeting_id: int, kind: str, chat_id: int, message_id: int) -> None:
        await self.db.execute(
            "UPDATE meeting_posts SET message_id = ? WHERE meeting_id = ? AND kind = ? "
            "AND chat_id = ?", (message_id, meeting_id, kind, chat_id))

    async def posts(self, meeting_id: int, kind: str | None = None) -> list[MeetingPost]:
        sql = "SELECT * FROM meeting_posts WHERE meeting_id = ?"
        params: list[Any] = [meeting_id]
        if kind is not None:
            sql += " AND kind = ?"
            params.append(kind)
        rows = await self.db.fetchall(sql + " ORDER BY chat_id", params)
        return [_post(r) for r in rows]

    async def post_in(self, meeting_id: int, kind: str, chat_id: int) -> MeetingPost | None:
        row = await self.db.fetchone(
            "SELECT * FROM meeting_posts WHERE meeting_id = ? AND kind = ? AND chat_id = ?",
            (meeting_id, kind, chat_id))
        return _post(row) if row else None

    async def migrate_chat(self, old_id: int, new_id: int) -> None:
        await self.db.execute("UPDATE meeting_posts SET chat_id = ? WHERE chat_id = ?",
                              (new_id, old_id))

    # answers and sign-ins

    async def record_answer(self, meeting_id: int, user_id: int, attend: bool,
                            unit_code: str) -> None:
        await self.db.execute(
            """INSERT INTO meeting_replies (meeting_id, user_id, attend, unit_code, at)
               VALUES (?, ?, ?, ?, ?)
               ON CONFLICT(meeting_id, user_id) DO UPDATE SET attend = excluded.attend,
                   unit_code = excluded.unit_code, at = excluded.at""",
            (meeting_id, user_id, int(attend), unit_code, epoch()))

    async def attending(self, meeting_id: int) -> list[int]:
        """Who tapped Attend (their last answer), in order of the answer."""
        rows = await self.db.fetchall(
            "SELECT user_id FROM meeting_replies WHERE meeting_id = ? AND attend = 1 "
            "ORDER BY at, user_id", (meeting_id,))
        return [r["user_id"] for r in rows]

    async def counts(self, meeting_id: int) -> tuple[int, int]:
        """(attending, can't attend)."""
        row = await self.db.fetchone(
            """SELECT COALESCE(SUM(attend), 0) AS yes, COUNT(*) - COALESCE(SUM(attend), 0) AS no
               FROM meeting_replies WHERE meeting_id = ?""", (meeting_id,))
        return (int(row["yes"]), int(row["no"])) if row else (0, 0)

    async def sign_in(self, meeting_id: int, user_id: int, unit_code: str, at: float,
                      late: bool) -> bool:
        """Record a sign-in; False when the person had signed in already."""
        return await self.db.execute_rowcount(
            """INSERT INTO meeting_signins (meeting_id, user_id, unit_code, at, late)
               VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING""",
            (meeting_id, user_id, unit_code, at, int(late))) > 0

    async def signins(self, meeting_ids: Iterable[int]) -> list[MeetingSignIn]:
        ids = list(meeting_ids)
        if not ids:
            return []
        rows = await self.db.fetchall(
            f"SELECT * FROM meeting_signins WHERE meeting_id IN ({placeholders(ids)}) "
            "ORDER BY at, user_id", ids)
        return [_signin(r) for r in rows]

    async def attendance_between(self, start: float, end: float) -> list[Attendance]:
        """Every sign-in at a meeting that started in [start, end): who, for which unit, on
        time or late (SPEC §12's "meetings attended", read by the evaluation)."""
        rows = await self.db.fetchall(
            """SELECT s.meeting_id, m.kind, s.unit_code, m.unit_code AS scope_code, s.user_id,
                   s.at, s.late
               FROM meeting_signins s JOIN meetings m ON m.id = s.meeting_id
               WHERE m.starts_at >= ? AND m.starts_at < ? ORDER BY m.starts_at, s.at""",
            (start, end))
        return [Attendance(meeting_id=r["meeting_id"], kind=MeetingKind(r["kind"]),
                           unit_code=r["unit_code"], scope_code=r["scope_code"],
                           user_id=r["user_id"], at=r["at"], late=bool(r["late"]))
                for r in rows]

    # decisions

    async def add_decision(self, meeting_id: int, ticket_id: int, assignee_id: int | None,
                           due_at: float) -> None:
        await self.db.execute(
            "INSERT INTO meeting_decisions (meeting_id, ticket_id, assignee_id, due_at) "
            "VALUES (?, ?, ?, ?)", (meeting_id, ticket_id, assignee_id, due_at))

    async def decisions(self, meeting_id: int) -> list[int]:
        rows = await self.db.fetchall(
            "SELECT ticket_id FROM meeting_decisions WHERE meeting_id = ? ORDER BY ticket_id",
            (meeting_id,))
        return [r["ticket_id"] for r in rows]

    async def erase_person(self, user_id: int, erased_id: int) -> None:
        """Inside the erasure's transaction (SPEC §14): their answers and sign-ins move to the
        erased id (they still count, by unit, naming no one); meetings a former staff member
        organised and decisions given to them stay, by no one. The invitations and sign-in
        posts sent to them privately (a member unit's contact) are forgotten."""
        await self.db.execute("DELETE FROM meeting_posts WHERE chat_id = ?", (user_id,))
        for table, column in (("meeting_replies", "user_id"), ("meeting_signins", "user_id"),
                              ("meetings", "organiser_id"),
                              ("meeting_decisions", "assignee_id")):
            await self.db.execute(f"UPDATE {table} SET {column} = ? WHERE {column} = ?",
                                  (erased_id, user_id))
