"""Whistle repository: the whistle catalogue 吹哨清单 and the staff's ratings of departments'
work on whistles (评价), SPEC §11."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from storage.dbapi import Database, Row
from storage.models import WhistleItem, WhistleRating
from storage.util import placeholders


def _item(row: Row) -> WhistleItem:
    return WhistleItem(code=row["code"], category=row["category"], name=row["name"],
                       department_code=row["department_code"], points=row["points"],
                       deadline=row["deadline"], position=row["position"])


def _rating(row: Row) -> WhistleRating:
    return WhistleRating(**{k: row[k] for k in row.keys() if k in WhistleRating.model_fields})


class WhistleRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def items(self) -> list[WhistleItem]:
        """The catalogue in its file order."""
        rows = await self.db.fetchall("SELECT * FROM whistle_items ORDER BY position, code")
        return [_item(r) for r in rows]

    async def item(self, code: str) -> WhistleItem | None:
        row = await self.db.fetchone("SELECT * FROM whistle_items WHERE code = ?", (code,))
        return _item(row) if row else None

    async def upsert(self, item: WhistleItem) -> None:
        await self.db.execute(
            """INSERT INTO whistle_items (code, category, name, department_code, points,
                                          deadline, position)
               VALUES (?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT(code) DO UPDATE SET category = excluded.category,
                   name = excluded.name, department_code = excluded.department_code,
                   points = excluded.points, deadline = excluded.deadline,
                   position = excluded.position""",
            (item.code, item.category, item.name, item.department_code, item.points,
             item.deadline, item.position))

    # ratings

    async def add_rating(self, rating: WhistleRating) -> bool:
        """Record a rating; False when this whistle was rated already (the store decides)."""
        return await self.db.execute_rowcount(
            """INSERT INTO whistle_ratings (whistle_event, ticket_id,
                   department_code, item_code, points, rater_id, stars, comment, at)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING""",
            (rating.whistle_event, rating.ticket_id, rating.department_code, rating.item_code,
             rating.points, rating.rater_id, rating.stars, rating.comment, rating.at)) > 0

    async def rating(self, whistle_event: int) -> WhistleRating | None:
        row = await self.db.fetchone(
            "SELECT * FROM whistle_ratings WHERE whistle_event = ?", (whistle_event,))
        return _rating(row) if row else None

    async def set_comment(self, whistle_event: int, comment: str) -> bool:
        return await self.db.execute_rowcount(
            "UPDATE whistle_ratings SET comment = ? WHERE whistle_event = ?",
            (comment, whistle_event)) > 0

    async def ratings(self, grid_codes: Sequence[str] | None, start: float,
                      end: float) -> list[WhistleRating]:
        """Ratings given in [start, end) on tickets of these grids (None: the whole city)."""
        if grid_codes is not None and not grid_codes:
            return []
        params: list[Any] = [start, end]
        where = ""
        if grid_codes is not None:
            where = f" AND t.grid_code IN ({placeholders(grid_codes)})"
            params += list(grid_codes)
        rows = await self.db.fetchall_long(
            f"""SELECT r.* FROM whistle_ratings r JOIN tickets t ON t.id = r.ticket_id
                WHERE r.at >= ? AND r.at < ?{where} ORDER BY r.at, r.whistle_event""", params)
        return [_rating(r) for r in rows]
