"""A building's chain of units (`MapRepo.ancestors`, read on every Submit) is kept in memory
and never served stale: not after a change by another process, not after a rollback."""

from __future__ import annotations

import pytest

from storage.models import Unit
from storage.store import Store
from tests.support.harness import seed_map


def names(chain: list[Unit]) -> list[str]:
    return [u.name for u in chain]


async def test_a_change_by_another_process_is_seen_at_the_next_read(store, database_url):
    await seed_map(store)
    assert names(await store.map.ancestors("B01010101")) == ["1栋", "阳光小区", "第一网格",
                                                             "欣山社区"]
    other = await Store.open(database_url)  # `gridhorn map import`
    try:
        async with other.transaction():
            await other.map.upsert(Unit(code="G0101", kind="grid", name="一网格（新）",
                                        parent_code="C01"))
            await other.map.upsert(Unit(code="E010101", kind="estate", name="阳光小区",
                                        parent_code="G0102"))  # the estate moves grid
    finally:
        await other.close()
    assert names(await store.map.ancestors("B01010101")) == ["1栋", "阳光小区", "第二网格",
                                                             "欣山社区"]
    assert names(await store.map.ancestors("G0101")) == ["一网格（新）", "欣山社区"]


async def test_a_chain_read_in_a_transaction_that_rolls_back_is_not_kept(store):
    await seed_map(store)
    with pytest.raises(RuntimeError):
        async with store.transaction():
            await store.map.upsert(Unit(code="G0101", kind="grid", name="临时", parent_code="C01"))
            assert names(await store.map.ancestors("B01010101"))[2] == "临时"  # its own change
            raise RuntimeError("rolled back")
    async with store.transaction():  # the version is where the rolled-back one's was
        await store.map.upsert(Unit(code="G0102", kind="grid", name="二网格", parent_code="C01"))
    assert names(await store.map.ancestors("B01010101"))[2] == "第一网格"
    assert names(await store.map.ancestors("B01020101"))[1:3] == ["月亮小区", "二网格"]


async def test_an_unknown_code_has_no_chain(store):
    await seed_map(store)
    assert await store.map.ancestors("B99") == []
