"""The audit log (SPEC §11): every change of who holds what — a role granted by an invite, a
role revoked, a backup named, someone away and back — with who did it, when, on which unit,
to whom.

`AuditLog.record` is the one way in, called inside the transaction of the change it records,
so a change and its row commit (or roll back) together.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import StrEnum

from storage.audit import AuditEntry
from storage.store import Store


class AuditAction(StrEnum):
    """What an audit row records; the values are what the store holds."""

    GRANT = "grant"      # an invite redeemed: the inviter is the actor, the role the detail
    REVOKE = "revoke"    # /people's button or /revoke: the role is the detail
    REGISTER = "register"  # /volunteer finished: the volunteer role, taken by oneself
    BACKUP = "backup"    # AB岗: a backup named (the backup's id or name in the detail)
    AWAY = "away"        # AB岗: a holder away (until when, in the detail)
    BACK = "back"        # AB岗: back again


class AuditLog:
    def __init__(self, store: Store, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock

    async def record(self, actor: int | None, action: AuditAction | str, unit: str,
                     subject: int | None, detail: str | None = None) -> None:
        """One row: `actor` did `action` on `unit` to `subject` (None: the bot itself, no
        one). Only inside the transaction of the change, which it belongs to."""
        if not self.store.db.in_transaction:
            raise RuntimeError("an audit row is written in the transaction of its change")
        await self.store.audit.add(self.clock(), actor, str(action), unit, subject, detail)

    async def latest(self, unit_codes: list[str], limit: int,
                     offset: int = 0) -> tuple[list[AuditEntry], int]:
        """The rows on these units, newest first, and how many there are in all."""
        return await self.store.audit.latest(unit_codes, limit, offset)
