"""Flow repository: each person's current guided flow (drafts: storage/drafts.py)."""

from __future__ import annotations

from typing import Any

from storage import codec
from storage.dbapi import Database
from storage.models import Flow
from storage.util import now_iso


class FlowRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, user_id: int) -> Flow | None:
        row = await self.db.fetchone("SELECT * FROM flows WHERE user_id = ?", (user_id,))
        if row is None:
            return None
        return Flow(user_id=row["user_id"], name=row["name"], step=row["step"],
                    data=codec.loads(row["data"]))

    async def set(self, user_id: int, name: str, step: str, data: dict[str, Any]) -> None:
        await self.db.execute(
            """INSERT INTO flows (user_id, name, step, data, updated_at) VALUES (?, ?, ?, ?, ?)
               ON CONFLICT(user_id) DO UPDATE SET name = excluded.name, step = excluded.step,
                   data = excluded.data, updated_at = excluded.updated_at""",
            (user_id, name, step, codec.dumps(data), now_iso()))

    async def clear(self, user_id: int) -> bool:
        return await self.db.execute_rowcount(
            "DELETE FROM flows WHERE user_id = ?", (user_id,)) > 0
