"""Draft repository: each person's opinion draft, apart from their guided flow."""

from __future__ import annotations

from typing import Any

from storage import codec
from storage.dbapi import Database
from storage.models import Draft
from storage.util import now_iso


class DraftRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, user_id: int) -> Draft | None:
        row = await self.db.fetchone("SELECT * FROM drafts WHERE user_id = ?", (user_id,))
        return Draft(user_id=row["user_id"], data=codec.loads(row["data"])) if row else None

    async def set(self, user_id: int, data: dict[str, Any]) -> None:
        await self.db.execute(
            """INSERT INTO drafts (user_id, data, updated_at) VALUES (?, ?, ?)
               ON CONFLICT(user_id) DO UPDATE SET data = excluded.data,
                   updated_at = excluded.updated_at""",
            (user_id, codec.dumps(data), now_iso()))

    async def clear(self, user_id: int) -> bool:
        return await self.db.execute_rowcount(
            "DELETE FROM drafts WHERE user_id = ?", (user_id,)) > 0
