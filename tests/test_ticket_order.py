"""`/tickets` order (SPEC §4): soonest deadline first; among deadlines equal as shown (to the
minute), the most "Me too" first."""

from tests.support.harness import seed_map

BASE = 1_800_000_000.0  # a whole minute


async def _ticket(store, due_at: float, me_too: int) -> int:
    async with store.transaction():
        await store.people.ensure(1)
        ticket_id = (await store.tickets.create(
            reporter_id=1, anonymous=False, building_code="B01010101", grid_code="G0101",
            community_code="C01", domain=None, text="t", photo_file_id=None,
            source_update_id=None, due_kind="ack", due_from=BASE - 3600, due_at=due_at,
            remind_at=due_at - 60)).id
        await store.tickets.update(ticket_id, me_too=me_too)
    return ticket_id


async def test_more_me_too_first_among_deadlines_equal_to_the_minute(store):
    await seed_map(store)
    early = await _ticket(store, BASE + 10, 0)     # 00:00:10, nobody else
    popular = await _ticket(store, BASE + 50, 3)   # 00:00:50, three "Me too": same minute
    later = await _ticket(store, BASE + 70, 9)     # the next minute: after both
    tickets, total = await store.tickets.open_in(["B01010101"])
    assert total == 3
    assert [t.id for t in tickets] == [popular, early, later]


async def test_a_liaison_of_two_departments_sees_both_and_staff_their_buildings_too(store):
    await seed_map(store)
    to_mzj = await _ticket(store, BASE + 10, 0)
    to_cgj = await _ticket(store, BASE + 20, 0)
    await _ticket(store, BASE + 30, 0)  # not whistled
    async with store.transaction():
        await store.tickets.update(to_mzj, department_code="MZJ")
        await store.tickets.update(to_cgj, department_code="CGJ")
    tickets, _ = await store.tickets.open_in([], ["MZJ", "CGJ"])
    assert [t.id for t in tickets] == [to_mzj, to_cgj]
    tickets, total = await store.tickets.open_in(["B01010101"], ["MZJ"])
    assert total == 3  # the building's three, the MZJ one among them counted once
    assert await store.tickets.open_in([], []) == ([], 0)


async def test_a_replayed_submit_makes_no_second_ticket_and_the_first_comes_back_whole(store):
    """`create` is one INSERT … ON CONFLICT DO NOTHING RETURNING: the replay of an update
    that already made a ticket (a restart) gets None, and nothing is written."""
    await seed_map(store)
    fields = dict(reporter_id=1, anonymous=True, building_code="B01010101", grid_code="G0101",
                  community_code="C01", domain="orange", text="楼道灯 <b>", photo_file_id="P1",
                  more_photos=("P2", "P3"), source_update_id=4242, due_kind="ack",
                  due_from=BASE, due_at=BASE + 60, remind_at=BASE + 45, cards_pending=True)
    async with store.transaction():
        await store.people.ensure(1)
        first = await store.tickets.create(**fields)
    async with store.transaction():
        again = await store.tickets.create(**fields)
    assert again is None
    assert first == await store.tickets.get(first.id)
    assert (first.anonymous, first.text, first.photo_file_id, first.more_photos) == \
        (True, "楼道灯 <b>", "P1", ("P2", "P3"))
    assert await store.db.fetchval("SELECT COUNT(*) FROM tickets") == 1
