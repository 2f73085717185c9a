"""The whistle catalogue in the map file (吹哨清单, SPEC §11): `whistle_items` beside
`departments`, checked line by line like the rest of the map (all or nothing), and written
back by the export, the same every time."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from bot.services.map_specs import duration_text
from bot.services.mapfile import MapImportResult, export_map, import_map
from storage.models import WhistleItem
from storage.store import Store

SPEC_EXAMPLE = (Path(__file__).parent / "data" / "maps" / "spec_example.yaml").read_bytes()

#: Decheng's catalogue in small: three categories, items with and without points and deadline
CATALOGUE = """\
departments:
  - code: MZJ
    name: 县民政局
    domains: [orange]
whistle_items:
  - code: CS01
    category: 城市管理
    name: 占道经营
    department: CGJ
    points: 5
    deadline: 24h
  - code: MZ01
    category: 民生保障
    name: 困难群众临时救助
    department: MZJ
    points: 8
  - code: CS02
    category: 城市管理
    name: 路灯维修
    department: CGJ
    deadline: 90m
  - code: "0101"
    category: "安全: 隐患"
    name: 消防通道堵塞
    department: CGJ
    points: 0
    deadline: 2d
"""


def y(text: str) -> bytes:
    """A YAML snippet; its first line is line 1."""
    return textwrap.dedent(text).lstrip("\n").encode("utf-8")


@pytest.fixture
async def other_store(other_database_url: str):
    s = await Store.open(other_database_url)
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture
async def seeded(store: Store) -> Store:
    """The SPEC example (C01 … B01010101, department CGJ) and the catalogue above."""
    assert (await import_map(store, SPEC_EXAMPLE, "map.yaml")).ok
    result = await import_map(store, CATALOGUE.encode(), "catalogue.yaml")
    assert result.ok, result.errors
    return store


async def reject(store: Store, data: bytes,
                 expected: list[tuple[int | None, str | None, str]]) -> MapImportResult:
    """The import fails with exactly these errors (line, code, part of the reason) and
    changes nothing: units, bindings and catalogue as they were."""
    before = await export_map(store)
    items_before = await store.whistles.items()
    result = await import_map(store, data, "map.yaml")
    assert not result.ok
    got = [(e.line, e.code, e.reason) for e in result.errors]
    assert len(got) == len(expected), got
    for line, code, fragment in expected:
        assert any(g[0] == line and g[1] == code and fragment in g[2] for g in got), (
            (line, code, fragment), got)
    assert await export_map(store) == before
    assert await store.whistles.items() == items_before
    return result


async def test_the_catalogue_is_stored_in_file_order(seeded: Store):
    assert await seeded.whistles.items() == [
        WhistleItem(code="CS01", category="城市管理", name="占道经营", department_code="CGJ",
                    points=5, deadline=24 * 3600, position=0),
        WhistleItem(code="MZ01", category="民生保障", name="困难群众临时救助",
                    department_code="MZJ", points=8, deadline=None, position=1),
        WhistleItem(code="CS02", category="城市管理", name="路灯维修", department_code="CGJ",
                    points=None, deadline=90 * 60, position=2),
        WhistleItem(code="0101", category="安全: 隐患", name="消防通道堵塞",
                    department_code="CGJ", points=0, deadline=2 * 86400, position=3)]


async def test_export_writes_the_catalogue_back_and_round_trips(seeded: Store,
                                                                other_store: Store):
    exported = await export_map(seeded)
    assert exported.endswith(
        "whistle_items:\n"
        "  - code: CS01\n    category: 城市管理\n    name: 占道经营\n    department: CGJ\n"
        "    points: 5\n    deadline: 1d\n"
        "  - code: MZ01\n    category: 民生保障\n    name: 困难群众临时救助\n"
        "    department: MZJ\n    points: 8\n"
        "  - code: CS02\n    category: 城市管理\n    name: 路灯维修\n    department: CGJ\n"
        "    deadline: 90m\n"
        "  - code: '0101'\n    category: '安全: 隐患'\n    name: 消防通道堵塞\n"
        "    department: CGJ\n    points: 0\n    deadline: 2d\n")
    assert await export_map(seeded) == exported  # deterministic
    again = await import_map(other_store, exported.encode(), "export.yaml")
    assert again.ok, again.errors
    assert await export_map(other_store) == exported
    assert await other_store.whistles.items() == await seeded.whistles.items()


async def test_a_second_import_changes_nothing_and_an_item_may_change(seeded: Store):
    again = await import_map(seeded, CATALOGUE.encode(), "catalogue.yaml")
    assert (again.created, again.updated, again.unchanged) == (0, 0, 5)
    changed = await import_map(seeded, y("""
        whistle_items:
          - code: CS02
            category: 城市管理
            name: 路灯维修
            department: MZJ
            points: 3
    """), "map.yaml")
    assert (changed.created, changed.updated) == (0, 1), changed.errors
    item = await seeded.whistles.item("CS02")
    # the file decides the item whole: no deadline given, none kept
    assert (item.department_code, item.points, item.deadline) == ("MZJ", 3, None)
    assert len(await seeded.whistles.items()) == 4  # items the file leaves out stay


async def test_an_empty_catalogue_writes_nothing(store: Store):
    assert (await import_map(store, SPEC_EXAMPLE, "map.yaml")).ok
    assert "whistle_items" not in await export_map(store)
    assert (await import_map(store, b"whistle_items: []\n", "map.yaml")).ok


@pytest.mark.parametrize("seconds, text", [(30, "30s"), (90, "90s"), (900, "15m"),
                                           (3600, "1h"), (5400, "90m"), (86400, "1d"),
                                           (36 * 3600, "36h")])
def test_a_deadline_is_written_in_its_largest_whole_unit(seconds, text):
    assert duration_text(seconds) == text


async def test_an_unknown_department_is_refused_and_nothing_is_imported(seeded: Store):
    await reject(seeded, y("""
        communities:
          - code: C02
            name: 新社区
        whistle_items:
          - code: X01
            category: 城市管理
            name: 井盖缺失
            department: JTJ
          - code: X02
            category: 城市管理
            name: 违章搭建
            department: C01
    """), [(8, "X01", "unknown department JTJ"),
           (12, "X02", "C01 is a community, not a department")])
    assert await seeded.map.get("C02") is None


async def test_a_department_of_the_same_file_is_known(store: Store):
    result = await import_map(store, y("""
        departments:
          - code: JTJ
            name: 县交通局
        whistle_items:
          - code: X01
            category: 交通
            name: 井盖缺失
            department: JTJ
    """), "map.yaml")
    assert result.ok, result.errors
    assert (result.created, result.updated) == (2, 0)
    assert (await store.whistles.item("X01")).department_code == "JTJ"


async def test_a_duplicate_item_code_names_both_lines(seeded: Store):
    await reject(seeded, y("""
        whistle_items:
          - code: N01
            category: 城市管理
            name: 井盖缺失
            department: CGJ
          - code: N01
            category: 城市管理
            name: 违章搭建
            department: CGJ
    """), [(6, "N01", "duplicate whistle item code N01 (first at line 2)")])


async def test_item_codes_are_apart_from_unit_codes(seeded: Store):
    result = await import_map(seeded, y("""
        whistle_items:
          - code: CGJ
            category: 城市管理
            name: 井盖缺失
            department: CGJ
    """), "map.yaml")
    assert result.ok, result.errors


@pytest.mark.parametrize("value", ["-1", "2.5", "many", "1001", "[5]", "'5'"])
async def test_bad_points(seeded: Store, value: str):
    await reject(seeded, y(f"""
        whistle_items:
          - code: N01
            category: 城市管理
            name: 井盖缺失
            department: CGJ
            points: {value}
    """), [(6, "N01", "points must be a whole number from 0 to 1000")])


@pytest.mark.parametrize("value", ["tomorrow", "24", "0h", "1.5h", "[24h]", "24 hours"])
async def test_bad_deadline(seeded: Store, value: str):
    await reject(seeded, y(f"""
        whistle_items:
          - code: N01
            category: 城市管理
            name: 井盖缺失
            department: CGJ
            deadline: {value}
    """), [(6, "N01", "bad deadline")])


async def test_missing_fields_unknown_keys_and_shapes(seeded: Store):
    await reject(seeded, y("""
        whistle_items:
          - code: N01
            name: 井盖缺失
            department: CGJ
            owner: 张三
          - category: 城市管理
            name: 违章搭建
            department: CGJ
          - code: N03
            category: ""
            name:
          - 路灯
          - code: bad code
            category: 城市管理
            name: 路灯
            department: CGJ
          - code: N06
            category: 城市管理
            name: 路灯
            department: [CGJ]
    """), [(2, "N01", "whistle item without category"),
           (5, "N01", "unknown key 'owner'"),
           (6, None, "whistle item without code"),
           (9, "N03", "whistle item without department"),
           (10, "N03", "whistle item category must be text"),
           (11, "N03", "whistle item name must be text"),
           (12, None, "each whistle item must be a mapping"),
           (13, "bad code", "bad code 'bad code'"),
           (20, "N06", "department must be a department's code")])


async def test_whistle_items_must_be_a_list(seeded: Store):
    await reject(seeded, y("""
        whistle_items:
          code: N01
    """), [(1, None, "whistle_items must be a list")])
