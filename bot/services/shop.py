"""The time bank's shop 爱心银行 (SPEC §13): volunteers spend their points at partner shops.

`/redeem N` reserves N points under a one-time code (6 characters, at least one a letter, so
`/redeem 50` is always an amount; drawn with `secrets`; valid 10 minutes) and sends it with its
QR image through the outbox. A partner's clerk sends the code (`/redeem CODE`, or the code alone
in a private chat): the first clerk to open it binds it to their partner; a confirming tap
spends it, once (a conditional UPDATE decides). A code past its time returns its points, once,
whoever notices first: the watcher (`run_due`, a `bot.watcher.DueWatcher` woken for each new
code), or before that the volunteer's `/points` or `/redeem`, or a clerk's try (so no balance
is read before its due returns are made). Wrong codes count per clerk: past
`MISS_LIMIT` in `MISS_WINDOW`, the clerk's next tries are refused until the window has passed.
"""

from __future__ import annotations

import hashlib
import io
import math
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import segno

from bot.hooks import Wakeup
from bot.i18n import t
from bot.services.access import Access, Actor
from bot.services.base import Service
from bot.services.errors import Refused
from bot.services.outbox import Outbox, Priority, file_field
from bot.services.people import PeopleService
from bot.settings import Settings
from storage.models import LedgerLine, Partner, Redemption
from storage.store import Store

#: letters and digits that are not mistaken for each other (no 0/O, 1/I/L)
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 6
CODE_TTL = 600.0             # seconds a code stays valid
MISS_LIMIT = 5               # wrong codes a clerk may send in MISS_WINDOW before waiting
MISS_WINDOW = 600.0
LEDGER_LINES = 20            # lines /points shows
MAX_REDEEM = 1_000_000
_CODE = re.compile(rf"[A-Za-z0-9]{{{CODE_LENGTH}}}")
#: callback data of the clerk's confirming tap: rd:ok:<redemption id>
CONFIRM_PREFIX = "rd:ok:"


def new_code_default() -> str:
    """An unguessable code of CODE_LENGTH characters with at least one letter."""
    while True:
        code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
        if any(ch.isalpha() for ch in code):
            return code


def codes_from(token: Callable[[], str]) -> Callable[[], str]:
    """Codes drawn from another source of secrets (the playground's seeded invite tokens, so
    that a replayed transcript shows the same codes), each still with a letter."""
    def code() -> str:
        while True:
            digest = hashlib.sha256(token().encode()).digest()
            drawn = "".join(CODE_ALPHABET[b % len(CODE_ALPHABET)] for b in digest[:CODE_LENGTH])
            if any(ch.isalpha() for ch in drawn):
                return drawn
    return code


def is_code(text: str) -> bool:
    """Whether `text` is shaped like a code (an amount is all digits, a code never is)."""
    text = text.strip()
    return bool(_CODE.fullmatch(text)) and any(ch.isalpha() for ch in text)


def confirm_data(redemption_id: int) -> str:
    return f"{CONFIRM_PREFIX}{redemption_id}"


def read_confirm(data: str) -> int | None:
    rest = data.removeprefix(CONFIRM_PREFIX)
    return int(rest) if rest != data and rest.isdigit() else None


def qr_png(code: str) -> bytes:
    """The code as a QR image (PNG)."""
    buffer = io.BytesIO()
    segno.make(code, error="m").save(buffer, kind="png", scale=10, border=3)
    return buffer.getvalue()


@dataclass(frozen=True)
class Opened:
    """A code a clerk opened, waiting for the confirming tap."""

    redemption: Redemption
    partner: Partner
    volunteer: str


@dataclass(frozen=True)
class Spent:
    redemption: Redemption
    partner: Partner
    volunteer: str
    balance: int               # the volunteer's balance after it


@dataclass(frozen=True)
class Ledger:
    balance: int
    lines: list[LedgerLine]


class ShopService(Service):
    def __init__(self, store: Store, access: Access, people: PeopleService, outbox: Outbox,
                 settings: Settings, clock: Callable[[], float] = time.time, *,
                 changed: Callable[[float | None], None] | None = None,
                 new_code: Callable[[], str] | None = None) -> None:
        """`changed(when)`: a code was reserved that expires at `when` (wakes the watcher that
        returns expired codes' points, `run_due`/`next_due`). `new_code`: how codes are drawn
        (default: `secrets`)."""
        super().__init__(store, access, people, outbox, settings, clock)
        self.changed: Callable[[float | None], None] = changed or Wakeup()
        self.new_code = new_code or new_code_default

    async def run_due(self) -> int:
        """The watcher's run: every code past its time returns its points (and says so)."""
        return await self.expire_due()

    async def next_due(self) -> float | None:
        return await self.store.shop.next_expiry()

    # the volunteer's side

    async def ledger(self, actor: Actor) -> Ledger:
        """/points: the balance and the last lines (due returns made first)."""
        await self.expire_due(actor.user_id)
        return Ledger(await self.store.shop.balance(actor.user_id),
                      await self.store.shop.ledger(actor.user_id, LEDGER_LINES))

    async def request(self, actor: Actor, amount_text: str) -> Redemption:
        """/redeem N: reserve N points under a new code, sent with its QR image."""
        try:
            amount = int(amount_text)
        except ValueError:
            raise Refused("shop.usage") from None
        if not 0 < amount <= MAX_REDEEM:
            raise Refused("shop.usage")
        await self.expire_due(actor.user_id)
        now = self.clock()
        async with self.store.transaction():
            redemption = None
            for _ in range(5):
                code = self.new_code()
                redemption = await self.store.shop.reserve(code, actor.user_id, amount, now,
                                                           now + CODE_TTL)
                if redemption is not None or not await self.store.shop.code_taken(code):
                    break
            if redemption is None:
                raise Refused("shop.above_balance", points=amount,
                              balance=await self.store.shop.balance(actor.user_id))
            balance = await self.store.shop.balance(actor.user_id)
            locale = await self.people.locale_for(actor.user_id)
            await self.outbox.call(actor.user_id, "sendPhoto", {
                "photo": file_field(qr_png(redemption.code), f"{redemption.code}.png"),
                "caption": t(locale, "shop.code", code=redemption.code, points=amount,
                             until=self._time(redemption.expires_at), balance=balance),
                "parse_mode": "HTML"}, priority=Priority.PERSONAL,
                dedupe_key=f"redeem:{redemption.id}")
        self.changed(redemption.expires_at)
        return redemption

    async def expire_due(self, user_id: int | None = None) -> int:
        """Return the points of codes past their time (one person's, or all); how many."""
        returned = 0
        for redemption_id in await self.store.shop.due(self.clock(), user_id):
            if await self._expire(redemption_id):
                returned += 1
        return returned

    async def _expire(self, redemption_id: int) -> bool:
        async with self.store.transaction():
            redemption = await self.store.shop.expire(redemption_id, self.clock())
            if redemption is None:
                return False
            locale = await self.people.locale_for(redemption.user_id)
            await self.outbox.send(
                redemption.user_id,
                t(locale, "shop.expired_returned", code=redemption.code,
                  points=redemption.points,
                  balance=await self.store.shop.balance(redemption.user_id)),
                priority=Priority.PERSONAL, dedupe_key=f"redeem-expired:{redemption.id}")
        return True

    # the clerk's side

    async def partners_of(self, actor: Actor) -> list[Partner]:
        return await self.store.shop.clerk_of(actor.user_id)

    async def open(self, actor: Actor, code_text: str) -> Opened:
        """A clerk sends a code: checked, bound to the clerk's partner, shown for the tap."""
        partners = await self.store.shop.clerk_of(actor.user_id)
        if not partners:
            raise Refused("shop.not_clerk")
        now = self.clock()
        misses = await self.store.shop.misses_since(actor.user_id, now - MISS_WINDOW)
        if len(misses) >= MISS_LIMIT:
            wait = misses[-MISS_LIMIT] + MISS_WINDOW - now
            raise Refused("shop.slow_down", minutes=max(1, math.ceil(wait / 60)))
        code = code_text.strip().upper()
        redemption = await self.store.shop.by_code(code) if is_code(code) else None
        if redemption is None:
            async with self.store.transaction():
                await self.store.shop.miss(actor.user_id, now)
                await self.store.shop.forget_misses(now - 2 * MISS_WINDOW)
            raise Refused("shop.unknown_code", code=code_text.strip()[:16])
        await self._refuse_unusable(redemption)
        mine = {p.code: p for p in partners}
        partner = mine.get(redemption.partner_code or "", partners[0])
        async with self.store.transaction():
            opened = await self.store.shop.open(redemption.id, partner.code, actor.user_id, now)
        if not opened:
            raise Refused("shop.other_partner")
        return Opened(redemption, partner, await self._name(redemption.user_id))

    async def confirm(self, actor: Actor, redemption_id: int) -> Spent:
        """The confirming tap: the code is spent exactly once; both sides are told."""
        redemption = await self.store.shop.redemption(redemption_id)
        if redemption is None:
            raise Refused("button.stale")
        partners = {p.code: p for p in await self.store.shop.clerk_of(actor.user_id)}
        if not partners:
            raise Refused("shop.not_clerk")
        partner = partners.get(redemption.partner_code or "")
        if partner is None:
            raise Refused("shop.other_partner")
        await self.expire_due(redemption.user_id)  # the balance told is the whole one
        now = self.clock()
        async with self.store.transaction():
            spent = await self.store.shop.spend(redemption_id, partner.code, actor.user_id, now)
            if spent:
                balance = await self.store.shop.balance(redemption.user_id)
                locale = await self.people.locale_for(redemption.user_id)
                await self.outbox.send(
                    redemption.user_id,
                    t(locale, "shop.spent_volunteer", points=redemption.points,
                      partner=partner.name, code=redemption.code, balance=balance),
                    priority=Priority.PERSONAL, dedupe_key=f"redeem-spent:{redemption_id}")
        if not spent:
            current = await self.store.shop.redemption(redemption_id)
            assert current is not None
            await self._refuse_unusable(current)
            raise Refused("shop.code_used", code=current.code)  # not reached: refused above
        done = await self.store.shop.redemption(redemption_id)
        assert done is not None
        return Spent(done, partner, await self._name(redemption.user_id), balance)

    async def _refuse_unusable(self, redemption: Redemption) -> None:
        """Refuse a spent or expired code (an expired one returns its points first)."""
        if redemption.status == "spent":
            raise Refused("shop.code_used", code=redemption.code)
        if redemption.status == "expired" or redemption.expires_at <= self.clock():
            await self._expire(redemption.id)
            raise Refused("shop.code_expired", code=redemption.code)

    async def _name(self, user_id: int) -> str:
        person = await self.store.people.get(user_id)
        return person.display_name if person is not None else str(user_id)

    def _time(self, moment: float) -> str:
        return datetime.fromtimestamp(moment, self.settings.tz).strftime("%H:%M")
