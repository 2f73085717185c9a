"""The time bank's shop 爱心银行 (SPEC §13) over both stores: partners in the map file, clerks'
invites, the ledger, one-time codes spent exactly once, expiry, wrong codes slowed down."""

from __future__ import annotations

import asyncio
import io
import textwrap

import pytest

from bot.services import shop as shop_module
from bot.services.errors import Refused
from bot.services.mapfile import export_map, import_map
from bot.services.report_files import render_workbook
from bot.services.shop import (
    CODE_TTL,
    MISS_LIMIT,
    ShopService,
    codes_from,
    is_code,
    new_code_default,
)
from storage.store import Store
from tests.support.harness import grant, seed_map
from tests.support.services import ADMIN, STAFF, build_services, queued, refused

VOLUNTEER, CLERK, OTHER_CLERK = 8, 20, 21

PARTNERS = textwrap.dedent("""
    communities:
      - code: C01
        name: 欣山社区
        partners:
          - code: P01
            name: 爱心超市
            address: 欣山路 1 号
            chat: -1009000000001
          - code: P02
            name: 便民理发店
    departments: []
    """).lstrip().encode("utf-8")


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def world(store: Store):
    await seed_map(store)
    result = await import_map(store, PARTNERS, "partners.yaml")
    assert result.ok, result.errors
    await grant(store, STAFF, "community_staff", "C01")
    clock = Clock()
    services = build_services(store)
    shop = ShopService(store, services.access, services.people, services.outbox,
                       services.settings, clock=clock)
    for clerk, partner in ((CLERK, "P01"), (OTHER_CLERK, "P02")):
        payload, unit = await services.people.create_invite(
            await services.actor(STAFF), "partner_clerk", partner)
        assert unit.code == partner
        async with store.transaction():
            await store.people.ensure(clerk)
        redeemed = await services.people.redeem(clerk, payload)
        assert redeemed.role == "partner_clerk" and redeemed.unit.code == partner
    async with store.transaction():
        await store.people.ensure(VOLUNTEER)
        await store.shop.credit(VOLUNTEER, 100, clock(), horn_id=None)
    return services, shop, clock


def test_codes_are_six_characters_with_a_letter():
    codes = {new_code_default() for _ in range(500)}
    assert len(codes) == 500
    assert all(len(c) == 6 and is_code(c) for c in codes)
    tokens = iter(str(n) for n in range(10_000))
    drawn = codes_from(lambda: next(tokens))
    assert all(is_code(drawn()) for _ in range(200))
    # the same tokens give the same codes (the playground's replays)
    assert codes_from(lambda: "seed")() == codes_from(lambda: "seed")()
    assert not is_code("123456") and not is_code("50") and is_code("ab12cd")


async def test_partners_round_trip_through_the_map_file(store: Store):
    await seed_map(store)
    assert (await import_map(store, PARTNERS, "p.yaml")).ok
    text = await export_map(store)
    assert "    partners:\n      - code: P01\n        name: 爱心超市\n" in text
    assert "        address: 欣山路 1 号\n        chat: -1009000000001\n" in text
    again = await import_map(store, text.encode(), "p.yaml")
    assert again.ok and again.created == 0 and again.updated == 0
    assert [p.code for p in await store.shop.partners()] == ["P01", "P02"]


PARTNERS_CSV = ("community_code,partner_code,partner_name,partner_address,chat\n"
                "C01,P01,爱心超市,欣山路 1 号,-1009000000001\n"
                "\n"
                "C01,P02,便民理发店,,\n").encode()


async def test_partners_in_the_csv_shape_are_the_yaml_files_partners(store: Store):
    """The third CSV shape (SPEC §13): one partner per row under a community of the map; the
    export writes them back (in YAML), and importing either gives the same map again."""
    await seed_map(store)
    result = await import_map(store, PARTNERS_CSV, "partners.csv")
    assert result.ok, result.errors
    assert result.created == 2 and result.updated == 0
    partners = await store.shop.partners()
    assert [(p.code, p.community_code, p.name, p.address, p.chat_id, p.position)
            for p in partners] == [("P01", "C01", "爱心超市", "欣山路 1 号", -1009000000001, 0),
                                   ("P02", "C01", "便民理发店", "", None, 1)]
    text = await export_map(store)
    assert "    partners:\n      - code: P01\n        name: 爱心超市\n" in text
    for data, name in ((PARTNERS, "p.yaml"), (text.encode(), "export.yaml"),
                       (PARTNERS_CSV, "partners.csv")):
        again = await import_map(store, data, name)
        assert again.ok and (again.created, again.updated) == (0, 0), (name, again)
        assert await export_map(store) == text


async def test_bad_partner_csv_rows_are_refused_with_their_lines(store: Store):
    await seed_map(store)
    assert (await import_map(store, PARTNERS_CSV, "partners.csv")).ok
    before = await export_map(store)
    bad = ("community_code,partner_code,partner_name,partner_address,chat\n"
           "C09,P03,某店,,\n"
           "G0101,P04,某店,,\n"
           "C01,P05,,,abc\n"
           "C01,P05,又一店,,0\n"
           ",B01010101,楼栋店,,\n"
           "C01,P06,某店\n"
           "C01,G0101,网格店,,\n").encode()
    result = await import_map(store, bad, "partners.csv")
    got = [(e.line, e.code, e.reason) for e in result.errors]
    assert (2, "P03", "unknown community C09") in got
    assert (3, "P04", "G0101 is a grid, not a community") in got
    assert (4, "P05", "partner_name is empty") in got
    assert any(g[:2] == (4, "P05") and "chat must be a non-zero integer" in g[2] for g in got)
    assert any(g[:2] == (5, "P05") and "duplicate code P05 (first at line 4)" in g[2]
               for g in got)
    assert any(g[:2] == (5, "P05") and "not '0'" in g[2] for g in got), got
    assert (6, "B01010101", "community_code is empty") in got
    assert (7, None, "the row has 3 fields, the header 5") in got
    assert (8, "G0101", "G0101 is a grid in the map, here a partner") in got
    assert len(got) == 9, got
    assert not result.ok and await export_map(store) == before
    header = await import_map(store, b"community_code,partner_code,partner_name,chat\n"
                                     b"C01,P07,\xe5\xba\x97,\n", "partners.csv")
    assert [(e.line, e.reason) for e in header.errors] == [(1, "missing column partner_address")]


async def test_bad_partners_are_refused_with_their_lines(store: Store):
    bad = textwrap.dedent("""
        communities:
          - code: C01
            name: 欣山社区
            partners:
              - code: P01
                chat: abc
              - name: 无码店
              - code: C01
                name: 重名
                color: red
        """).lstrip().encode()
    result = await import_map(store, bad, "bad.yaml")
    reasons = [(e.line, e.reason) for e in result.errors]
    assert (5, "partner without name") in reasons
    assert any(line == 6 and "chat must be" in r for line, r in reasons)
    assert (7, "partner without code") in reasons
    assert any(line == 8 and "duplicate code C01" in r for line, r in reasons)
    assert any(line == 10 and "unknown key 'color'" in r for line, r in reasons)
    assert await store.shop.partners() == []


async def test_only_community_staff_invite_clerks(world, store: Store):
    services, _, _ = world
    await grant(store, 3, "grid_leader", "G0101")
    with pytest.raises(Refused, match="invite.not_allowed"):
        await services.people.create_invite(await services.actor(3), "partner_clerk", "P01")
    with pytest.raises(Refused, match="map.unknown_code"):
        await services.people.create_invite(await services.actor(STAFF), "partner_clerk",
                                            "NOPE")
    assert [p.code for p in await store.shop.clerk_of(CLERK)] == ["P01"]
    # a revoked role ends the clerkship
    async with store.transaction():
        await store.people.revoke(CLERK, "partner_clerk", "C01")
    assert await store.shop.clerk_of(CLERK) == []


async def test_redeem_confirm_and_both_notices(world, store: Store):
    services, shop, clock = world
    volunteer, clerk = await services.actor(VOLUNTEER), await services.actor(CLERK)
    redemption = await shop.request(volunteer, "30")
    assert await store.shop.balance(VOLUNTEER) == 70
    photo = [i for i in await queued(store, "sendPhoto") if i.chat_id == VOLUNTEER]
    assert len(photo) == 1 and redemption.code in photo[0].payload["caption"]
    assert photo[0].payload["photo"]["_file_b64"]
    opened = await shop.open(clerk, redemption.code.lower())
    assert opened.partner.code == "P01" and opened.redemption.points == 30
    spent = await shop.confirm(clerk, redemption.id)
    assert spent.balance == 70 and spent.redemption.status == "spent"
    notice = [i.payload["text"] for i in await queued(store) if i.chat_id == VOLUNTEER]
    assert any("爱心超市" in text and "70" in text for text in notice)
    # the same code again: refused, nothing changes
    await refused(store, shop.open(clerk, redemption.code), "shop.code_used")
    await refused(store, shop.confirm(clerk, redemption.id), "shop.code_used")
    ledger = await shop.ledger(volunteer)
    assert ledger.balance == 70 == await store.shop.ledger_sum(VOLUNTEER)
    assert [(line.kind, line.delta, line.status) for line in ledger.lines] == [
        ("reserve", -30, "spent"), ("credit", 100, None)]


async def test_above_balance_and_bad_amounts_are_refused(world, store: Store):
    services, shop, _ = world
    volunteer = await services.actor(VOLUNTEER)
    await refused(store, shop.request(volunteer, "101"), "shop.above_balance")
    await refused(store, shop.request(volunteer, "0"), "shop.usage")
    await refused(store, shop.request(volunteer, "-5"), "shop.usage")
    await shop.request(volunteer, "100")
    assert await store.shop.balance(VOLUNTEER) == 0
    await refused(store, shop.request(volunteer, "1"), "shop.above_balance")


async def test_an_expired_code_is_refused_and_its_points_return_once(world, store: Store):
    services, shop, clock = world
    volunteer, clerk = await services.actor(VOLUNTEER), await services.actor(CLERK)
    redemption = await shop.request(volunteer, "40")
    opened = await shop.open(clerk, redemption.code)
    clock.now += CODE_TTL + 1
    with pytest.raises(Refused, match="shop.code_expired"):
        await shop.confirm(clerk, opened.redemption.id)
    assert await store.shop.balance(VOLUNTEER) == 100
    with pytest.raises(Refused, match="shop.code_expired"):
        await shop.open(clerk, redemption.code)
    assert (await shop.ledger(volunteer)).balance == 100 == \
        await store.shop.ledger_sum(VOLUNTEER)
    # a code nobody tried: returned when the volunteer next looks
    other = await shop.request(volunteer, "25")
    assert await store.shop.balance(VOLUNTEER) == 75
    clock.now += CODE_TTL + 1
    ledger = await shop.ledger(volunteer)
    assert ledger.balance == 100
    assert [line.kind for line in ledger.lines][:2] == ["return", "reserve"]
    assert (await store.shop.redemption(other.id)).status == "expired"
    returned = [i.payload["text"] for i in await queued(store) if i.chat_id == VOLUNTEER
                and other.code in i.payload["text"]]
    assert len(returned) == 1


async def test_a_clerk_of_another_partner_is_refused(world, store: Store):
    services, shop, _ = world
    redemption = await shop.request(await services.actor(VOLUNTEER), "10")
    await shop.open(await services.actor(CLERK), redemption.code)
    other = await services.actor(OTHER_CLERK)
    await refused(store, shop.open(other, redemption.code), "shop.other_partner")
    await refused(store, shop.confirm(other, redemption.id), "shop.other_partner")
    await refused(store, shop.open(await services.actor(VOLUNTEER), redemption.code),
                  "shop.not_clerk")
    await refused(store, shop.open(await services.actor(ADMIN), redemption.code),
                  "shop.not_clerk")
    assert (await store.shop.redemption(redemption.id)).status == "reserved"


async def test_wrong_codes_from_one_clerk_are_slowed_down(world, store: Store):
    services, shop, clock = world
    clerk = await services.actor(CLERK)
    for _ in range(MISS_LIMIT):
        with pytest.raises(Refused, match="shop.unknown_code"):
            await shop.open(clerk, "ZZZZZ9")
    clock.now += 300
    redemption = await shop.request(await services.actor(VOLUNTEER), "10")
    # even the right code waits now; another clerk is not slowed
    with pytest.raises(Refused, match="shop.slow_down") as slowed:
        await shop.open(clerk, redemption.code)
    assert slowed.value.values["minutes"] == 5
    opened = await shop.open(await services.actor(OTHER_CLERK), redemption.code)
    assert opened.partner.code == "P02"
    clock.now += shop_module.MISS_WINDOW - 300    # the code is still valid, the wait is over
    with pytest.raises(Refused, match="shop.other_partner"):
        await shop.open(clerk, redemption.code)


async def test_twenty_concurrent_confirmations_spend_a_code_once(world, store: Store):
    services, shop, _ = world
    clerk = await services.actor(CLERK)
    redemption = await shop.request(await services.actor(VOLUNTEER), "60")
    await shop.open(clerk, redemption.code)
    outcomes = await asyncio.gather(*(shop.confirm(clerk, redemption.id) for _ in range(20)),
                                    return_exceptions=True)
    spent = [o for o in outcomes if not isinstance(o, BaseException)]
    refusals = [o for o in outcomes if isinstance(o, Refused)]
    assert len(spent) == 1 and len(refusals) == 19, outcomes
    assert {r.key for r in refusals} == {"shop.code_used"}
    assert await store.shop.balance(VOLUNTEER) == 40 == await store.shop.ledger_sum(VOLUNTEER)
    notices = [i for i in await queued(store) if i.chat_id == VOLUNTEER
               and redemption.code in i.payload.get("text", "")]
    assert len(notices) == 1


async def test_the_workbook_has_the_redemptions_per_partner(world, store: Store):
    services, shop, _ = world
    clerk = await services.actor(CLERK)
    for amount in ("10", "15"):
        redemption = await shop.request(await services.actor(VOLUNTEER), amount)
        await shop.open(clerk, redemption.code)
        await shop.confirm(clerk, redemption.id)
    rows = await store.shop.spent_per_partner(0, 1e12, {"C01"})
    assert [(r.partner_code, r.redemptions, r.points) for r in rows] == [("P01", 2, 25)]
    assert await store.shop.spent_per_partner(0, 1e12, {"C99"}) == []
    from datetime import datetime

    from openpyxl import load_workbook

    from bot.services.scopes import city_scope

    scope = await city_scope(store)
    report = await services.schedule.reports.build(scope, datetime.fromtimestamp(
        1_800_000_000, services.settings.tz).strftime("%Y-%m"))
    assert [(r.partner_code, r.points) for r in report.redemptions] == [("P01", 25)]
    book = load_workbook(io.BytesIO(render_workbook(report, "en", services.settings.tz)))
    sheet = book["Redemptions"]
    assert [c.value for c in sheet[2]] == ["P01", "爱心超市", "欣山社区 (C01)", 2, 25]


async def test_the_ledger_shows_the_last_twenty_lines_and_never_goes_negative(world, store):
    services, shop, clock = world
    async with store.transaction():
        for horn in range(1, 26):
            await store.shop.credit(VOLUNTEER, 2, clock(), horn_id=horn)
    ledger = await shop.ledger(await services.actor(VOLUNTEER))
    assert ledger.balance == 150 == await store.shop.ledger_sum(VOLUNTEER)
    assert len(ledger.lines) == 20 and [line.horn_id for line in ledger.lines[:2]] == [25, 24]
    # the store itself refuses a balance below zero (the CHECK), whatever the code does
    with pytest.raises(Exception, match="(?i)check"):
        async with store.transaction():
            await store.db.execute(
                "UPDATE point_accounts SET balance = balance - 151 WHERE user_id = ?",
                (VOLUNTEER,))
    assert await store.shop.balance(VOLUNTEER) == 150


async def test_points_earned_before_the_ledger_open_it_with_one_line(store: Store):
    """A county's data brought in (or the playground's world): the points a person had
    become their balance, with one "opening" line; none is written for nothing."""
    await store.people.ensure(41)
    await store.people.ensure(42)
    async with store.transaction():
        await store.shop.opening(41, 60, 1_700_000_000.0)
        await store.shop.opening(42, 0, 1_700_000_000.0)
    assert await store.shop.balance(41) == 60
    assert [(line.delta, line.kind) for line in await store.shop.ledger(41, 20)] == \
        [(60, "opening")]
    assert await store.shop.balance(42) == 0
    assert await store.shop.ledger(42, 20) == []
