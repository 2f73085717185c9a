"""The time bank's shop 爱心银行 (SPEC §13): partners, their clerks, the points ledger and the
one-time redemption codes.

A person's balance (`point_accounts`) is the sum of their ledger's deltas; every change of it
writes its ledger line in the same transaction, and its CHECK keeps it from going below zero.
Whether a code is spent, or returned, is decided by one conditional UPDATE each: the store, not
the code, decides "exactly once".
"""

from __future__ import annotations

from collections.abc import Iterable

from storage.dbapi import Database, Row
from storage.models import LedgerKind, LedgerLine, Partner, PartnerSpending, Redemption
from storage.util import placeholders


def _partner(row: Row) -> Partner:
    return Partner(**dict(row))


def _redemption(row: Row) -> Redemption:
    return Redemption(**dict(row))


class ShopRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    # partners and clerks

    async def partners(self) -> list[Partner]:
        rows = await self.db.fetchall(
            "SELECT * FROM partners ORDER BY community_code, position, code")
        return [_partner(r) for r in rows]

    async def partner(self, code: str) -> Partner | None:
        row = await self.db.fetchone("SELECT * FROM partners WHERE code = ?", (code,))
        return _partner(row) if row else None

    async def upsert_partner(self, partner: Partner) -> None:
        await self.db.execute(
            """INSERT INTO partners (code, community_code, name, address, chat_id, position)
               VALUES (?, ?, ?, ?, ?, ?)
               ON CONFLICT(code) DO UPDATE SET community_code = excluded.community_code,
                   name = excluded.name, address = excluded.address,
                   chat_id = excluded.chat_id, position = excluded.position""",
            (partner.code, partner.community_code, partner.name, partner.address,
             partner.chat_id, partner.position))

    async def add_clerk(self, user_id: int, partner_code: str, by: int | None,
                        at: float) -> bool:
        return await self.db.execute_rowcount(
            """INSERT INTO partner_clerks (user_id, partner_code, granted_by, granted_at)
               VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING""",
            (user_id, partner_code, by, at)) > 0

    async def clerk_of(self, user_id: int) -> list[Partner]:
        """The partners this person is a clerk of: a row of their own, and the role
        `partner_clerk` still held on the partner's community (a revoke ends both)."""
        rows = await self.db.fetchall(
            """SELECT p.* FROM partner_clerks c JOIN partners p ON p.code = c.partner_code
               JOIN roles r ON r.user_id = c.user_id AND r.role = 'partner_clerk'
                            AND r.unit_code = p.community_code
               WHERE c.user_id = ? ORDER BY p.community_code, p.position, p.code""",
            (user_id,))
        return [_partner(r) for r in rows]

    async def set_invite_partner(self, token: str, partner_code: str) -> None:
        await self.db.execute("UPDATE invites SET partner_code = ? WHERE token = ?",
                              (partner_code, token))

    async def invite_partner(self, token: str) -> str | None:
        value = await self.db.fetchval("SELECT partner_code FROM invites WHERE token = ?",
                                       (token,))
        return str(value) if value is not None else None

    # the ledger

    async def balance(self, user_id: int) -> int:
        value = await self.db.fetchval(
            "SELECT balance FROM point_accounts WHERE user_id = ?", (user_id,))
        return int(value or 0)

    async def _line(self, user_id: int, at: float, delta: int, kind: LedgerKind,
                    horn_id: int | None = None, redemption_id: int | None = None,
                    ticket_id: int | None = None) -> None:
        await self.db.execute(
            """INSERT INTO point_ledger (user_id, at, delta, kind, horn_id, redemption_id,
                                         ticket_id)
               VALUES (?, ?, ?, ?, ?, ?, ?)""",
            (user_id, at, delta, kind, horn_id, redemption_id, ticket_id))

    async def credit(self, user_id: int, points: int, at: float, horn_id: int | None,
                     ticket_id: int | None = None) -> None:
        """Points earned (a horn's confirmed hours, or a resolved assignment's, SPEC §10):
        the balance and its line. A ticket's line is written once a person (a unique key):
        a second credit for it raises."""
        if points <= 0:
            return
        await self._add(user_id, points)
        await self._line(user_id, at, points, "credit", horn_id=horn_id, ticket_id=ticket_id)

    async def opening(self, user_id: int, points: int, at: float) -> None:
        """Points earned before the ledger began (as migration 019 opens a ledger with the
        points a person had; a county's data brought in, the playground's sample world)."""
        if points <= 0:
            return
        await self._add(user_id, points)
        await self._line(user_id, at, points, "opening")

    async def _add(self, user_id: int, points: int) -> None:
        await self.db.execute(
            """INSERT INTO point_accounts (user_id, balance) VALUES (?, ?)
               ON CONFLICT(user_id) DO UPDATE SET balance = point_accounts.balance
                                                         + excluded.balance""",
            (user_id, points))

    async def reserve(self, code: str, user_id: int, points: int, at: float,
                      expires_at: float) -> Redemption | None:
        """Take `points` off the balance for a new code; None when the balance is short (or
        the code is taken: the caller draws another)."""
        if await self.db.fetchval("SELECT 1 FROM redemptions WHERE code = ?", (code,)):
            return None
        taken = await self.db.execute_rowcount(
            "UPDATE point_accounts SET balance = balance - ? WHERE user_id = ? AND balance >= ?",
            (points, user_id, points))
        if not taken:
            return None
        redemption_id = await self.db.execute(
            """INSERT INTO redemptions (code, user_id, points, created_at, expires_at)
               VALUES (?, ?, ?, ?, ?)""", (code, user_id, points, at, expires_at))
        await self._line(user_id, at, -points, "reserve", redemption_id=redemption_id)
        return await self.redemption(redemption_id)

    async def code_taken(self, code: str) -> bool:
        return bool(await self.db.fetchval("SELECT 1 FROM redemptions WHERE code = ?", (code,)))

    async def redemption(self, redemption_id: int) -> Redemption | None:
        row = await self.db.fetchone("SELECT * FROM redemptions WHERE id = ?", (redemption_id,))
        return _redemption(row) if row else None

    async def by_code(self, code: str) -> Redemption | None:
        row = await self.db.fetchone("SELECT * FROM redemptions WHERE code = ?", (code,))
        return _redemption(row) if row else None

    async def open(self, redemption_id: int, partner_code: str, clerk_id: int,
                   at: float) -> bool:
        """The first clerk to open a code binds it to their partner; False when another
        partner's clerk opened it first (the same partner again is fine)."""
        await self.db.execute(
            """UPDATE redemptions SET partner_code = ?, opened_by = ?, opened_at = ?
               WHERE id = ? AND partner_code IS NULL""",
            (partner_code, clerk_id, at, redemption_id))
        value = await self.db.fetchval(
            "SELECT partner_code FROM redemptions WHERE id = ?", (redemption_id,))
        return bool(value == partner_code)

    async def spend(self, redemption_id: int, partner_code: str, clerk_id: int,
                    at: float) -> bool:
        """Spend a reserved, unexpired code opened at this partner: True exactly once."""
        return await self.db.execute_rowcount(
            """UPDATE redemptions SET status = 'spent', spent_by = ?, spent_at = ?
               WHERE id = ? AND status = 'reserved' AND expires_at > ?
                 AND partner_code = ?""",
            (clerk_id, at, redemption_id, at, partner_code)) > 0

    async def expire(self, redemption_id: int, at: float) -> Redemption | None:
        """An expired code: its points back to the balance, once; the redemption if it was
        this call that returned them."""
        if not await self.db.execute_rowcount(
                """UPDATE redemptions SET status = 'expired'
                   WHERE id = ? AND status = 'reserved' AND expires_at <= ?""",
                (redemption_id, at)):
            return None
        redemption = await self.redemption(redemption_id)
        assert redemption is not None
        await self.db.execute(
            "UPDATE point_accounts SET balance = balance + ? WHERE user_id = ?",
            (redemption.points, redemption.user_id))
        await self._line(redemption.user_id, at, redemption.points, "return",
                         redemption_id=redemption_id)
        return redemption

    async def due(self, at: float, user_id: int | None = None) -> list[int]:
        """Reserved codes past their time (of one person, or everyone's)."""
        if user_id is None:
            rows = await self.db.fetchall(
                "SELECT id FROM redemptions WHERE status = 'reserved' AND expires_at <= ? "
                "ORDER BY id", (at,))
        else:
            rows = await self.db.fetchall(
                "SELECT id FROM redemptions WHERE status = 'reserved' AND expires_at <= ? "
                "AND user_id = ? ORDER BY id", (at, user_id))
        return [int(r["id"]) for r in rows]

    async def next_expiry(self) -> float | None:
        value = await self.db.fetchval(
            "SELECT MIN(expires_at) FROM redemptions WHERE status = 'reserved'")
        return float(value) if value is not None else None

    async def ledger(self, user_id: int, limit: int) -> list[LedgerLine]:
        """The person's last lines, newest first."""
        rows = await self.db.fetchall(
            """SELECT l.*, r.status AS status, p.name AS partner_name
               FROM point_ledger l LEFT JOIN redemptions r ON r.id = l.redemption_id
               LEFT JOIN partners p ON p.code = r.partner_code
               WHERE l.user_id = ? ORDER BY l.id DESC LIMIT ?""", (user_id, limit))
        return [LedgerLine(**dict(r)) for r in rows]

    async def ledger_sum(self, user_id: int) -> int:
        return int(await self.db.fetchval(
            "SELECT COALESCE(SUM(delta), 0) FROM point_ledger WHERE user_id = ?",
            (user_id,)) or 0)

    # erasure (SPEC §14)

    async def erase_person(self, user_id: int, erased_id: int) -> None:
        """Inside the erasure's transaction, before the person's row goes: their balance,
        ledger and codes move to the erased id (a spent code's points stay counted for its
        partner); what they did as a former clerk stays, by no one; their clerkships and
        wrong tries go."""
        ex = self.db.execute
        await ex("UPDATE point_accounts SET user_id = ? WHERE user_id = ?", (erased_id, user_id))
        await ex("UPDATE point_ledger SET user_id = ? WHERE user_id = ?", (erased_id, user_id))
        for column in ("user_id", "opened_by", "spent_by"):
            await ex(f"UPDATE redemptions SET {column} = ? WHERE {column} = ?",
                     (erased_id, user_id))
        await ex("UPDATE partner_clerks SET granted_by = ? WHERE granted_by = ?",
                 (erased_id, user_id))
        await ex("DELETE FROM partner_clerks WHERE user_id = ?", (user_id,))
        await ex("DELETE FROM redeem_misses WHERE clerk_id = ?", (user_id,))

    # wrong codes

    async def miss(self, clerk_id: int, at: float) -> None:
        await self.db.execute("INSERT INTO redeem_misses (clerk_id, at) VALUES (?, ?)",
                              (clerk_id, at))

    async def misses_since(self, clerk_id: int, since: float) -> list[float]:
        rows = await self.db.fetchall(
            "SELECT at FROM redeem_misses WHERE clerk_id = ? AND at > ? ORDER BY at",
            (clerk_id, since))
        return [float(r["at"]) for r in rows]

    async def forget_misses(self, before: float) -> None:
        await self.db.execute("DELETE FROM redeem_misses WHERE at <= ?", (before,))

    # the report

    async def spent_per_partner(self, start: float, end: float,
                                communities: Iterable[str] | None) -> list[PartnerSpending]:
        """Codes spent in [start, end) per partner (of these communities; None: all)."""
        params: list[object] = [start, end]
        where = ""
        if communities is not None:
            codes = list(communities)
            if not codes:
                return []
            where = f" AND p.community_code IN ({placeholders(codes)})"
            params += codes
        rows = await self.db.fetchall(
            f"""SELECT p.code AS partner_code, p.name AS partner_name, p.community_code,
                       COUNT(*) AS redemptions, SUM(r.points) AS points
                FROM redemptions r JOIN partners p ON p.code = r.partner_code
                WHERE r.status = 'spent' AND r.spent_at >= ? AND r.spent_at < ?{where}
                GROUP BY p.code, p.name, p.community_code, p.position
                ORDER BY p.community_code, p.position, p.code""", params)
        return [PartnerSpending(**dict(r)) for r in rows]
