"""The store: one object holding every repository over one database.

Handlers never see it; services do. The repositories run over either database
(storage/dbapi.py): SQLite (`sqlite:///path`, the embedded default) or PostgreSQL
(`postgresql://…`, SPEC §16), chosen by `Store.open` from GRIDHORN_DATABASE_URL.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from storage.assignments import AssignmentRepo
from storage.audit import AuditRepo
from storage.backups import BackupRepo
from storage.checkpoints import CheckpointRepo
from storage.db import SqliteDatabase
from storage.dbapi import Database
from storage.drafts import DraftRepo
from storage.evaluations import EvaluationRepo
from storage.flows import FlowRepo
from storage.health import HealthRepo
from storage.horns import HornRepo
from storage.inbox import InboxRepo, MetaRepo, current_update, update_memo
from storage.leadership import LeadershipRepo
from storage.map import MapRepo
from storage.meetings import MeetingRepo
from storage.models import Conflict, UpdateTaken
from storage.outbox import OutboxRepo
from storage.people import PeopleRepo
from storage.privacy import PrivacyRepo
from storage.reports import ReportRepo
from storage.schedules import SchedulesRepo
from storage.shop import ShopRepo
from storage.tickets import TicketRepo
from storage.units import UnitRepo
from storage.votes import VoteRepo
from storage.whistles import WhistleRepo

POSTGRESQL_SCHEMES = ("postgresql", "postgres")


def sqlite_path(database_url: str) -> str:
    """The file of a `sqlite:///path` URL (`sqlite:///:memory:`: a private in-memory one)."""
    return database_url.removeprefix("sqlite:///")


class Store:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.map = MapRepo(db)
        self.people = PeopleRepo(db)
        self.inbox = InboxRepo(db)
        self.meta = MetaRepo(db)
        self.flows = FlowRepo(db)
        self.drafts = DraftRepo(db)
        self.outbox = OutboxRepo(db)
        self.tickets = TicketRepo(db)
        self.horns = HornRepo(db)
        self.schedules = SchedulesRepo(db)
        self.reports = ReportRepo(db)
        self.health = HealthRepo(db)
        self.whistles = WhistleRepo(db)
        self.audit = AuditRepo(db)
        self.units = UnitRepo(db)  # member units' records (SPEC §10)
        self.backups = BackupRepo(db)
        self.leadership = LeadershipRepo(db)
        self.shop = ShopRepo(db)
        self.meetings = MeetingRepo(db)
        self.checkpoints = CheckpointRepo(db)
        self.privacy = PrivacyRepo(db)
        self.evaluations = EvaluationRepo(db)
        self.assignments = AssignmentRepo(db)  # 点将 (SPEC §10)
        self.votes = VoteRepo(db)  # the residents' quarterly vote (SPEC §10)

    @classmethod
    async def open(cls, database_url: str) -> Store:
        """The store of a database URL: `sqlite:///path` or `postgresql://…`."""
        scheme = database_url.partition(":")[0].lower()
        if scheme == "sqlite":
            return await cls.open_sqlite(sqlite_path(database_url))
        if scheme in POSTGRESQL_SCHEMES:
            from storage.pg import PgDatabase  # psycopg is loaded only when it is used

            return await cls._open(PgDatabase(database_url))
        raise ValueError(f"unsupported database URL scheme {scheme!r}: expected sqlite:///path "
                         f"or postgresql://…")

    @classmethod
    async def open_sqlite(cls, path: str) -> Store:
        return await cls._open(SqliteDatabase(path))

    @classmethod
    async def _open(cls, db: Database) -> Store:
        try:
            await db.open()
        except BaseException:
            await db.close()  # what opened before the failure (a file that is no database)
            raise
        return cls(db)

    async def close(self) -> None:
        await self.db.close()

    async def migrate_chat(self, old_id: int, new_id: int) -> None:
        """A group became a supergroup: everything that names the chat follows it."""
        async with self.transaction():
            await self.map.migrate_chat(old_id, new_id)
            await self.outbox.migrate_chat(old_id, new_id)
            await self.tickets.migrate_chat(old_id, new_id)
            await self.horns.migrate_chat(old_id, new_id)
            await self.schedules.migrate_chat(old_id, new_id)
            await self.meetings.migrate_chat(old_id, new_id)
            await self.votes.migrate_chat(old_id, new_id)

    @staticmethod
    def _forget_reads(outermost: bool) -> None:
        """A failed transaction: what the update read inside it may never have been
        committed (`storage.inbox.update_memo`)."""
        memo = update_memo()
        if outermost and memo:
            memo.clear()

    @asynccontextmanager
    async def transaction(self, urgent: bool = False,
                          marks_update: bool = True) -> AsyncIterator[None]:
        """Every state change is one transaction: `async with store.transaction(): ...`.
        `urgent`: bookkeeping that takes the next turn on the write lock (see Database).
        `marks_update=False`: a side write (recording who sent the update) that must not
        count as the update's work: the update stays unprocessed until its handler commits."""
        outermost = not self.db.in_transaction
        mark = current_update.get() if outermost and marks_update else None
        body_done = False
        try:
            async with self.db.transaction(urgent):
                yield
                if mark is not None and not mark.done:
                    # The update's first state change and "processed" commit together.
                    if not self.inbox.shared:
                        await self.inbox.mark_processed([mark.update_id])
                    elif not await self.inbox.mark_once(mark.update_id):
                        # several replicas: marked by another one meanwhile (only if this
                        # one's lane lock was lost): this work is undone, not done twice
                        raise UpdateTaken(mark.update_id)
                body_done = True
        except Conflict:
            if mark is not None and not mark.done:
                mark.lost = True  # undone for another's sake (PostgreSQL): replay the update
            self._forget_reads(outermost)
            raise
        except BaseException:
            if body_done and mark is not None:
                mark.lost = True  # the commit failed (its group's): replay the update
            self._forget_reads(outermost)
            raise
        if mark is not None:
            mark.done = True
