"""The time bank's shop 爱心银行 (SPEC §13) end to end: a volunteer earns points at a horn,
redeems part of them at a partner shop, the clerk confirms; the same code again and an
expired code are refused; a storm of taps on one Confirm spends the code once."""

from __future__ import annotations

import asyncio
import re
import textwrap

import pytest

from bot.services.mapfile import import_map
from tests.support.harness import grant, seed_map
from tests.support.texts import counted, shown

pytestmark = pytest.mark.asyncio

PARTNERS = textwrap.dedent("""
    communities:
      - code: C01
        name: 欣山社区
        partners:
          - code: P01
            name: 爱心超市
            address: 欣山路 1 号
          - code: P02
            name: 便民理发店
    departments: []
    """).lstrip().encode("utf-8")
CODE = re.compile(r"\b([A-Z0-9]{6})\b")


class World:
    def __init__(self, harness):
        self.h = harness
        emu = harness.emu
        self.staff = emu.add_user(first_name="Staff", language_code="en")
        self.volunteer = emu.add_user(first_name="Vera", language_code="en")
        self.clerk = emu.add_user(first_name="Clerk", language_code="en")
        self.barber = emu.add_user(first_name="Barber", language_code="en")

    async def setup(self):
        h = self.h
        await h.start_bot()
        await seed_map(h.store)
        assert (await import_map(h.store, PARTNERS, "partners.yaml")).ok
        await grant(h.store, self.staff.id, "community_staff", "C01")
        await grant(h.store, self.volunteer.id, "volunteer", "G0101")
        for user in (self.staff, self.volunteer, self.clerk, self.barber):
            await h.say(user, "/start")
        for user, partner in ((self.clerk, "P01"), (self.barber, "P02")):
            invite = (await h.say(self.staff, f"/invite partner_clerk {partner}"))[-1].text
            payload = invite.split("start=")[1].split()[0]
            welcome = (await h.say(user, f"/start {payload}"))[-1].text
            assert shown("en", "role.partner_clerk") in welcome, welcome

    async def earn(self, needed=1):
        """A major horn answered and confirmed: 2 h, 20 points to the volunteer."""
        h, emu = self.h, self.h.emu
        preview = (await h.say(self.staff, f"/horn major G0101 {needed} Tea for elders"))[-1]
        await h.press(self.staff, preview, "hf:pub")
        horn = max(x.id for x in await h.store.horns.active())
        call = [m for m in emu.messages(self.volunteer.id)
                if any(b.callback_data == f"h:in:{horn}" for row in m.buttons for b in row)]
        await h.press(self.volunteer, call[-1], f"h:in:{horn}")
        await h.say(self.staff, f"/horn_close {horn}")
        card = [m for m in emu.messages(self.staff.id)
                if any(b.callback_data == f"h:ok:{horn}" for row in m.buttons for b in row)]
        await h.press(self.staff, card[-1], f"h:ok:{horn}")
        assert (await h.last(self.volunteer.id)).text == counted(
            "en", "horn.credited", id=horn, title="Tea for elders", hours=2, points=20)
        return horn

    async def redeem(self, amount):
        """/redeem N: the code arrives as a photo (its QR image) with the code in its
        caption."""
        said = await self.h.say(self.volunteer, f"/redeem {amount}")
        photos = [m for m in said if m.photo]
        assert len(photos) == 1, [m.text for m in said]
        found = CODE.search(photos[0].text)
        assert found, photos[0].text
        return photos[0], found.group(1)


async def test_earn_redeem_confirm_and_refusals(harness):
    w = World(harness)
    await w.setup()
    h, emu = harness, harness.emu
    await w.earn()
    assert shown("en", "shop.points_title", balance=20) in \
        (await h.say(w.volunteer, "/points"))[-1].text

    refused = (await h.say(w.volunteer, "/redeem 50"))[-1].text
    assert refused == shown("en", "shop.above_balance", points=50, balance=20)

    photo, code = await w.redeem(15)
    assert photo.photo[:8] == b"\x89PNG\r\n\x1a\n"          # the QR image
    assert re.search(r"[A-Z]", code) and len(code) == 6
    assert shown("en", "shop.points_title", balance=5) in \
        (await h.say(w.volunteer, "/points"))[-1].text

    # the clerk sends the code alone (lower case too); not an opinion draft
    card = (await h.say(w.clerk, code.lower()))[-1]
    assert card.text.startswith(shown("en", "shop.opened", code=code, partner="爱心超市",
                                      volunteer="Vera", points=15, until="")[:40])
    assert await h.store.drafts.get(w.clerk.id) is None
    # the barber cannot take a code opened at the supermarket
    said = (await h.say(w.barber, f"/redeem {code}"))[-1].text
    assert said == shown("en", "shop.other_partner")

    await h.press(w.clerk, card, f"rd:ok:{(await h.store.shop.by_code(code)).id}")
    assert card.text == shown("en", "shop.spent_clerk", volunteer="Vera", points=15,
                              partner="爱心超市", code=code, balance=5)
    assert not card.buttons
    assert (await h.last(w.volunteer.id)).text == shown(
        "en", "shop.spent_volunteer", points=15, partner="爱心超市", code=code, balance=5)

    # the same code again: refused, by command and by the old button
    assert (await h.say(w.clerk, f"/redeem {code}"))[-1].text == \
        shown("en", "shop.code_used", code=code)
    again = emu.inject_callback(w.clerk, card, f"rd:ok:{(await h.store.shop.by_code(code)).id}")
    assert (await again.wait_answered(timeout=5)).text == shown("en", "shop.code_used", code=code)
    ledger = (await h.say(w.volunteer, "/points"))[-1].text
    assert shown("en", "shop.points_title", balance=5) in ledger
    assert "-15 spent at 爱心超市" in ledger and "+20 horn #" in ledger

    # an expired code: refused, its points back (ten minutes pass in the store)
    _, late = await w.redeem(5)
    assert shown("en", "shop.points_title", balance=0) in \
        (await h.say(w.volunteer, "/points"))[-1].text
    async with h.store.transaction():
        await h.store.db.execute("UPDATE redemptions SET expires_at = expires_at - 601 "
                                 "WHERE code = ?", (late,))
    assert (await h.say(w.clerk, late))[-1].text == shown("en", "shop.code_expired", code=late)
    await h.settle()
    assert (await h.last(w.volunteer.id)).text == shown(
        "en", "shop.expired_returned", code=late, points=5, balance=5)
    assert shown("en", "shop.points_title", balance=5) in \
        (await h.say(w.volunteer, "/points"))[-1].text

    # a clerk's wrong code is answered; anyone else's six letters are an opinion as before
    assert (await h.say(w.clerk, "ZZZZZ9"))[-1].text == \
        shown("en", "shop.unknown_code", code="ZZZZZ9")
    assert await h.store.drafts.get(w.clerk.id) is None
    await h.say(w.volunteer, "ZZZZZ9")
    assert await h.store.drafts.get(w.volunteer.id) is not None


async def test_a_storm_of_confirming_taps_spends_the_code_once(harness):
    w = World(harness)
    await w.setup()
    h, emu = harness, harness.emu
    await w.earn()
    _, code = await w.redeem(20)
    card = (await h.say(w.clerk, f"/redeem {code}"))[-1]
    redemption = await h.store.shop.by_code(code)
    queries = [emu.inject_callback(w.clerk, card, f"rd:ok:{redemption.id}") for _ in range(20)]
    answers = await asyncio.gather(*(q.wait_answered(timeout=10) for q in queries))
    await h.settle()
    refusals = [a for a in answers if a.text == shown("en", "shop.code_used", code=code)]
    assert len(refusals) == 19, [a.text for a in answers]
    assert (await h.store.shop.redemption(redemption.id)).status == "spent"
    assert await h.store.shop.balance(w.volunteer.id) == 0
    spent = [m for m in emu.messages(w.volunteer.id)
             if m.text == shown("en", "shop.spent_volunteer", points=20, partner="爱心超市",
                                code=code, balance=0)]
    assert len(spent) == 1


async def test_an_untouched_code_returns_its_points_by_itself(harness):
    w = World(harness)
    await w.setup()
    h, emu = harness, harness.emu
    await w.earn()
    _, code = await w.redeem(12)
    assert await h.store.shop.balance(w.volunteer.id) == 8
    async with h.store.transaction():   # ten minutes pass, as the store sees them
        await h.store.db.execute("UPDATE redemptions SET expires_at = expires_at - 601 "
                                 "WHERE code = ?", (code,))
    h.runtime.shop_watch.wake()
    told = shown("en", "shop.expired_returned", code=code, points=12, balance=20)
    await emu.wait_until(lambda: told in h.texts(w.volunteer.id), timeout=10)
    assert await h.store.shop.balance(w.volunteer.id) == 20
    assert (await h.say(w.clerk, code))[-1].text == shown("en", "shop.code_expired", code=code)
    assert h.texts(w.volunteer.id).count(told) == 1
