"""The map file (SPEC §2): import and export of communities, grids, estates, buildings and
departments, with their chat bindings."""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import pytest
import yaml

from bot.services import mapfile
from bot.services.mapfile import MapImportResult, export_map, import_map, parse_map
from storage.models import Unit
from storage.store import Store

MAPS = Path(__file__).parent / "data" / "maps"
SPEC_EXAMPLE = (MAPS / "spec_example.yaml").read_bytes()
XUNYANG = (MAPS / "xunyang.yaml").read_bytes()
BUILDINGS_CSV = (MAPS / "buildings.csv").read_bytes()
CSV_HEADER = ("community_code,community_name,grid_code,grid_name,estate_code,estate_name,"
              "building_code,building_name,chat,thread")


def y(text: str) -> bytes:
    """A YAML snippet; its first line is line 1."""
    return textwrap.dedent(text).lstrip("\n").encode("utf-8")


def rows(*lines: str) -> bytes:
    """A CSV file: the header on line 1, then the rows."""
    return ("\n".join((CSV_HEADER, *lines)) + "\n").encode("utf-8")


@pytest.fixture
async def other_store(other_database_url: str):
    """A second store (the conftest's `store` is the first), to import an export into."""
    s = await Store.open(other_database_url)
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture
async def seeded(store: Store) -> Store:
    """The SPEC example: C01 欣山社区 > G0101 > E010101 > B01010101, and department CGJ."""
    result = await import_map(store, SPEC_EXAMPLE, "map.yaml")
    assert result.ok, result.errors
    return store


async def reject(store: Store, data: bytes, filename: str,
                 expected: list[tuple[int | None, str | None, str]]) -> MapImportResult:
    """Import must fail with exactly these errors (line, code, part of the reason) and change
    nothing."""
    before = await export_map(store)
    bindings_before = await store.map.bindings()
    result = await import_map(store, data, filename)
    assert not result.ok
    assert (result.created, result.updated, result.bindings) == (0, 0, 0)
    got = [(e.line, e.code, e.reason) for e in result.errors]
    assert len(got) == len(expected), got
    for line, code, fragment in expected:
        assert any(g[0] == line and g[1] == code and fragment in g[2] for g in got), (
            (line, code, fragment), got)
    assert await export_map(store) == before
    assert await store.map.bindings() == bindings_before
    return result


# Round trips and idempotence


async def test_spec_example_imports_and_exports_back(store: Store, other_store: Store):
    result = await import_map(store, SPEC_EXAMPLE, "map.yaml")
    assert result.ok
    assert (result.created, result.updated, result.unchanged, result.bindings) == (5, 0, 0, 4)

    exported = await export_map(store)
    assert yaml.safe_load(exported) == yaml.safe_load(SPEC_EXAMPLE)
    assert "欣山社区" in exported and "\\u" not in exported  # Chinese stays readable
    assert await export_map(store) == exported

    again = await import_map(other_store, exported.encode("utf-8"), "export.yaml")
    assert (again.created, again.bindings) == (5, 4)
    assert await export_map(other_store) == exported


async def test_spec_example_in_store(seeded: Store):
    grid = await seeded.map.get("G0101")
    assert grid == Unit(code="G0101", kind="grid", name="第一网格", parent_code="C01",
                        patrol="weekly", position=0)
    dept = await seeded.map.get("CGJ")
    assert dept is not None and dept.kind == "department" and dept.domains == ("green",)
    assert dept.parent_code is None
    binding = await seeded.map.binding("B01010101")
    assert binding is not None and (binding.chat_id, binding.thread_id) == (-1001000000003, 7)
    assert (await seeded.map.binding("E010101")) is None


async def test_export_keeps_file_order_and_quotes_what_yaml_needs(store: Store,
                                                                 other_store: Store):
    result = await import_map(store, XUNYANG, "xunyang.yaml")
    assert result.ok, result.errors
    assert (result.created, result.bindings) == (12, 5)
    exported = await export_map(store)
    assert yaml.safe_load(exported) == yaml.safe_load(XUNYANG)
    # file order, not code order
    assert exported.index("G0202") < exported.index("G0201")
    assert exported.index("B02010102") < exported.index("B02010101")
    assert exported.index("code: C02") < exported.index("code: C01")
    assert exported.index("MZJ") < exported.index("CGJ")
    assert "code: '0101'" in exported and "name: 'yes'" in exported
    assert "domains: [orange, gold]" in exported

    await import_map(other_store, exported.encode("utf-8"), "again.yaml")
    assert await export_map(other_store) == exported


async def test_export_shape_and_key_order(seeded: Store):
    text = await export_map(seeded)
    assert text == textwrap.dedent("""\
        communities:
          - code: C01
            name: 欣山社区
            chat: -1001000000001
            grids:
              - code: G0101
                name: 第一网格
                chat: -1001000000002
                patrol: weekly
                estates:
                  - code: E010101
                    name: 阳光小区
                    buildings:
                      - code: B01010101
                        name: 1栋
                        chat: -1001000000003
                        thread: 7
        departments:
          - code: CGJ
            name: 县城管局
            chat: -1001000000009
            domains: [green]
        """)


async def test_export_header_comment_and_empty_store(store: Store):
    assert await export_map(store) == "communities: []\ndepartments: []\n"
    text = await export_map(store, header_comment="gridhorn map export 2024-05-01 09:00")
    assert text.startswith("# gridhorn map export 2024-05-01 09:00\ncommunities: []\n")
    assert (await import_map(store, text.encode(), "empty.yaml")).ok


async def test_second_import_changes_nothing(seeded: Store):
    before = await export_map(seeded)
    again = await import_map(seeded, SPEC_EXAMPLE, "map.yaml")
    assert (again.created, again.updated, again.unchanged, again.bindings) == (0, 0, 5, 0)
    assert await export_map(seeded) == before


async def test_update_of_a_name(seeded: Store):
    renamed = SPEC_EXAMPLE.decode().replace("阳光小区", "阳光花园小区").encode()
    result = await import_map(seeded, renamed, "map.yaml")
    assert (result.created, result.updated, result.unchanged, result.bindings) == (0, 1, 4, 0)
    estate = await seeded.map.get("E010101")
    assert estate is not None and estate.name == "阳光花园小区"
    assert "阳光花园小区" in await export_map(seeded)


async def test_unit_without_chat_keeps_binding_and_missing_units_stay(seeded: Store):
    result = await import_map(seeded, y("""
        communities:
          - code: C01
            name: 欣山社区
        """), "partial.yaml")
    assert (result.created, result.updated, result.unchanged, result.bindings) == (0, 0, 1, 0)
    binding = await seeded.map.binding("C01")
    assert binding is not None and binding.chat_id == -1001000000001
    assert await seeded.map.get("B01010101") is not None
    assert await seeded.map.get("CGJ") is not None


async def test_patrol_and_domains_kept_when_absent_cleared_when_null(seeded: Store):
    file = y("""
        communities:
          - code: C01
            name: 欣山社区
            grids:
              - code: G0101
                name: 第一网格
        departments:
          - code: CGJ
            name: 县城管局
        """)
    result = await import_map(seeded, file, "m.yaml")
    assert (result.updated, result.unchanged) == (0, 3)
    grid = await seeded.map.get("G0101")
    assert grid is not None and grid.patrol == "weekly"

    cleared = file.decode().replace("name: 第一网格", "name: 第一网格\n        patrol: null")
    cleared = cleared.replace("name: 县城管局", "name: 县城管局\n    domains: []")
    result = await import_map(seeded, cleared.encode(), "m.yaml")
    assert (result.updated, result.unchanged) == (2, 1)
    grid, dept = await seeded.map.get("G0101"), await seeded.map.get("CGJ")
    assert grid is not None and grid.patrol is None
    assert dept is not None and dept.domains == ()


async def test_binding_changes_count_as_updates_and_swaps_work(store: Store):
    two = y("""
        communities:
          - code: C01
            name: 欣山社区
            grids:
              - code: G0101
                name: 第一网格
                estates:
                  - code: E010101
                    name: 阳光小区
                    buildings:
                      - code: B01010101
                        name: 1栋
                        chat: -1001000000003
                      - code: B01010102
                        name: 2栋
                        chat: -1001000000004
        """)
    assert (await import_map(store, two, "m.yaml")).bindings == 2
    swapped = (two.decode().replace("-1001000000003", "X")
               .replace("-1001000000004", "-1001000000003").replace("X", "-1001000000004"))
    result = await import_map(store, swapped.encode(), "m.yaml")
    assert (result.created, result.updated, result.unchanged, result.bindings) == (0, 2, 3, 2)
    assert [(b.unit_code, b.chat_id) for b in await store.map.bindings()] == [
        ("B01010101", -1001000000004), ("B01010102", -1001000000003)]


async def test_yaml_may_move_a_unit_to_another_parent(seeded: Store):
    moved = y("""
        communities:
          - code: C01
            name: 欣山社区
            grids:
              - code: G0102
                name: 第二网格
                estates:
                  - code: E010101
                    name: 阳光小区
        """)
    result = await import_map(seeded, moved, "m.yaml")
    assert result.ok, result.errors
    assert (result.created, result.updated) == (1, 1)
    estate = await seeded.map.get("E010101")
    assert estate is not None and estate.parent_code == "G0102"
    assert [u.code for u in await seeded.map.children("E010101")] == ["B01010101"]


async def test_byte_order_mark_is_fine(store: Store):
    assert (await import_map(store, b"\xef\xbb\xbf" + SPEC_EXAMPLE, "map.yml")).ok
    assert (await import_map(store, b"\xef\xbb\xbf" + BUILDINGS_CSV, "map.CSV")).ok


# CSV


async def test_csv_import_of_several_buildings(store: Store):
    result = await import_map(store, BUILDINGS_CSV, "buildings.csv")
    assert result.ok, result.errors
    # 2 communities, 3 grids, 4 estates, 6 buildings
    assert (result.created, result.updated, result.unchanged, result.bindings) == (15, 0, 0, 5)
    b = await store.map.get("B01020101")
    assert b == Unit(code="B01020101", kind="building", name="和顺苑A座",
                     parent_code="E010201", position=0)
    assert [u.code for u in await store.map.children("G0101")] == ["E010101", "E010102"]
    assert [u.code for u in await store.map.children("E010101")] == ["B01010101", "B01010102"]
    assert [(u.code, u.position) for u in await store.map.children("C01")] == [
        ("G0101", 0), ("G0102", 1)]
    thread = await store.map.binding("B02010102")
    assert thread is not None and (thread.chat_id, thread.thread_id) == (-1001000000006, 4)
    assert await store.map.binding("B01010201") is None

    again = await import_map(store, BUILDINGS_CSV, "buildings.csv")
    assert (again.created, again.updated, again.unchanged, again.bindings) == (0, 0, 15, 0)


async def test_csv_then_yaml_agree(store: Store, other_store: Store):
    await import_map(store, BUILDINGS_CSV, "buildings.csv")
    exported = await export_map(store)
    data = yaml.safe_load(exported)
    assert [c["code"] for c in data["communities"]] == ["C01", "C02"]
    assert data["communities"][1]["grids"][0]["estates"][0]["buildings"][1] == {
        "code": "B02010102", "name": "凤凰新村13栋", "chat": -1001000000006, "thread": 4}
    await import_map(other_store, exported.encode(), "m.yaml")
    assert await export_map(other_store) == exported


async def test_csv_keeps_a_grids_patrol(seeded: Store):
    result = await import_map(seeded, rows(
        "C01,欣山社区,G0101,第一网格,E010101,阳光小区,B01010102,2栋,,"), "more.csv")
    assert (result.created, result.updated, result.unchanged) == (1, 0, 3)
    grid = await seeded.map.get("G0101")
    assert grid is not None and grid.patrol == "weekly"


# Errors: each with its line and code, and nothing changed


async def test_yaml_syntax_error(seeded: Store):
    await reject(seeded, y("""
        communities:
          - code: C01
            name: 欣山社区
          - code: C02
            name: [凤凰社区
        departments: []
        """), "m.yaml", [(6, None, "YAML syntax error")])


async def test_bad_encoding(seeded: Store):
    gbk = SPEC_EXAMPLE.decode().replace("第一网格", "第二网格").encode("gbk")
    result = await reject(seeded, gbk, "m.yaml", [(3, None, "not UTF-8")])
    assert len(result.errors) == 1
    await reject(seeded, BUILDINGS_CSV.decode().encode("gb18030"), "m.csv", [(2, None, "UTF-8")])


async def test_unsupported_extension(seeded: Store):
    await reject(seeded, SPEC_EXAMPLE, "map.xlsx", [(None, None, "unsupported file type")])


async def test_missing_code_and_name(seeded: Store):
    await reject(seeded, y("""
        communities:
          - name: 欣山社区
          - code: C02
            grids:
              - code: G0201
                name:
        """), "m.yaml", [
        (2, None, "community without code"),
        (3, "C02", "community without name"),
        (6, "G0201", "grid name is empty"),
    ])


async def test_wrong_types(seeded: Store):
    await reject(seeded, y("""
        communities:
          - code: C01
            name: [欣山, 社区]
            grids: 第一网格
          - 凤凰社区
        departments:
          code: MZJ
        """), "m.yaml", [
        (3, "C01", "name must be text"),
        (4, "C01", "grids must be a list"),
        (5, None, "community must be a mapping"),
        (6, None, "departments must be a list"),
    ])


async def test_code_format(seeded: Store):
    long = "B" + "0" * 32
    await reject(seeded, y(f"""
        communities:
          - code: C 01
            name: 欣山社区
          - code: {long}
            name: 凤凰社区
          - code: 社区三
            name: 三里社区
        """), "m.yaml", [
        (2, "C 01", "bad code"),
        (4, long, "bad code"),
        (6, "社区三", "bad code"),
    ])


async def test_duplicate_codes_in_the_file(seeded: Store):
    await reject(seeded, y("""
        communities:
          - code: C01
            name: 欣山社区
            grids:
              - code: G0101
                name: 第一网格
                estates:
                  - code: E010101
                    name: 阳光小区
                    buildings:
                      - code: B01010101
                        name: 1栋
                      - code: B01010101
                        name: 2栋
        departments:
          - code: G0101
            name: 县民政局
        """), "m.yaml", [
        (13, "B01010101", "duplicate code B01010101 (first at line 11)"),
        (16, "G0101", "duplicate code G0101 (first at line 5, as a grid)"),
    ])


async def test_kind_conflicts_with_the_store(seeded: Store):
    await reject(seeded, y("""
        communities:
          - code: CGJ
            name: 城关社区
        departments:
          - code: E010101
            name: 县住建局
        """), "m.yaml", [
        (2, "CGJ", "CGJ is a department in the map, here a community"),
        (5, "E010101", "E010101 is an estate in the map, here a department"),
    ])


async def test_unknown_keys(seeded: Store):
    await reject(seeded, y("""
        communites:
          - code: C09
            name: 新建社区
        departments:
          - code: MZJ
            nmae: 县民政局
            name: 县民政局
            patrol: daily
        """), "m.yaml", [
        (1, None, "unknown key 'communites'"),
        (6, "MZJ", "unknown key 'nmae' for a department"),
        (8, "MZJ", "unknown key 'patrol' for a department"),
    ])


async def test_duplicate_keys(seeded: Store):
    await reject(seeded, y("""
        departments:
          - code: MZJ
            name: 县民政局
            name: 县民政局二
        """), "m.yaml", [(4, "MZJ", "duplicate key 'name' (first at line 3)")])


async def test_chat_and_thread(seeded: Store):
    await reject(seeded, y("""
        communities:
          - code: C02
            name: 凤凰社区
            chat: "-1002000000001"
            grids:
              - code: G0201
                name: 凤凰第一网格
                chat: 0
              - code: G0202
                name: 凤凰第二网格
                thread: 3
              - code: G0203
                name: 凤凰第三网格
                chat: -1002000000003
                thread: 0
              - code: G0204
                name: 凤凰第四网格
                chat: 1.5
        """), "m.yaml", [
        (4, "C02", "chat must be an integer"),
        (8, "G0201", "chat must be a non-zero integer"),
        (11, "G0202", "thread is given without chat"),
        (15, "G0203", "thread must be a positive integer"),
        (18, "G0204", "chat must be an integer"),
    ])


async def test_same_chat_twice_in_the_file(seeded: Store):
    await reject(seeded, y("""
        communities:
          - code: C02
            name: 凤凰社区
            chat: -1002000000001
            grids:
              - code: G0201
                name: 凤凰第一网格
                chat: -1002000000001
                thread: 9
              - code: G0202
                name: 凤凰第二网格
                chat: -1002000000001
                thread: 9
        """), "m.yaml", [
        (12, "G0202", "chat -1002000000001 thread 9 is also given to G0201 (line 8)"),
    ])


async def test_chat_already_bound_to_a_unit_the_file_keeps(seeded: Store):
    await reject(seeded, y("""
        communities:
          - code: C02
            name: 凤凰社区
            chat: -1001000000009
        """), "m.yaml", [(4, "C02", "chat -1001000000009 is already bound to CGJ")])


async def test_domains(seeded: Store):
    await reject(seeded, y("""
        departments:
          - code: MZJ
            name: 县民政局
            domains: [orange, pink, orange]
          - code: GAJ
            name: 县公安局
            domains: blue
        """), "m.yaml", [
        (4, "MZJ", "unknown domain 'pink'"),
        (4, "MZJ", "domain orange is listed twice"),
        (7, "GAJ", "domains must be a list"),
    ])


async def test_a_domain_is_led_by_one_department(seeded: Store):
    await reject(seeded, y("""
        departments:
          - code: GAJ
            name: 县公安局
            domains: [blue]
          - code: JTJ
            name: 县交通局
            domains: [blue, cyan]
        """), "m.yaml", [(5, "JTJ", "domain blue is already led by GAJ")])
    led = {u.code: u.domains for u in await seeded.map.all() if u.kind == "department"}
    taken = [d for domains in led.values() for d in domains]
    await reject(seeded, y(f"""
        departments:
          - code: JTJ
            name: 县交通局
            domains: [{taken[0]}]
        """), "m.yaml", [(2, "JTJ", f"domain {taken[0]} is already led by "
                                    f"{next(c for c, d in led.items() if taken[0] in d)}")])


async def test_patrol(seeded: Store):
    await reject(seeded, y("""
        communities:
          - code: C01
            name: 欣山社区
            grids:
              - code: G0101
                name: 第一网格
                patrol: fortnightly
              - code: G0102
                name: 第二网格
                patrol: "61 9 * * *"
              - code: G0103
                name: 第三网格
                patrol: "0 9 * *"
              - code: G0104
                name: 第四网格
                patrol: "*/30 8-18 * * mon-fri"
              - code: G0105
                name: 第五网格
                patrol: "0 9 * * 7"
              - code: G0106
                name: 第六网格
                patrol: "0 9 * * 8"
        """), "m.yaml", [
        (7, "G0101", "bad patrol 'fortnightly'"),
        (10, "G0102", "bad patrol"),
        (13, "G0103", "bad patrol"),
        (22, "G0106", "bad patrol"),  # weekday 7 (Sunday in crontab) is fine, 8 is not
    ])


async def test_several_errors_are_all_reported(seeded: Store):
    result = await reject(seeded, y("""
        communities:
          - code: C01
            name: 欣山社区
            grids:
              - code: G0101
                name: 第一网格
                patrol: hourly
                estates:
                  - code: E010101
                    name: 阳光小区
                    buildings:
                      - code: B01010101
                        name: 1栋
                        chat: 一号群
                      - code: B01010101
                        name: 2栋
                      - code: B0101/03
                        name: 3栋
                        floor: 6
        departments:
          - code: CGJ
            name: 县城管局
            domains: [grey]
        """), "m.yaml", [
        (7, "G0101", "bad patrol"),
        (14, "B01010101", "chat must be an integer"),
        (15, "B01010101", "duplicate code"),
        (17, "B0101/03", "bad code"),
        (19, "B0101/03", "unknown key 'floor'"),
        (23, "CGJ", "unknown domain 'grey'"),
    ])
    assert [e.line for e in result.errors] == sorted(e.line or 0 for e in result.errors)
    _, _, parsed = parse_map(y("""
        communities:
          - code: C01
            name: 欣山社区
            patrol: daily
          - code: C01
        """), "m.yaml")
    assert [(e.line, e.code) for e in parsed] == [(4, "C01"), (5, "C01"), (5, "C01")]


async def test_csv_header(seeded: Store):
    header = CSV_HEADER.replace(",thread", ",floor")
    data = (header + "\nC01,欣山社区,G0101,第一网格,E010101,阳光小区,B01010102,2栋,,6\n").encode()
    await reject(seeded, data, "m.csv", [
        (1, None, "missing column thread"),
        (1, None, "unknown column 'floor'"),
    ])
    await reject(seeded, b"", "m.csv", [(1, None, "the file is empty")])


async def test_csv_header_of_the_partner_shape(seeded: Store):
    """The partner shops' shape (SPEC §13) is told by its header, and checked as the others;
    its rows are not buildings (a building's columns are unknown there)."""
    await reject(seeded, b"community_code,partner_code,partner_name,partner_address,chat,"
                         b"thread\nC01,P01,\xe5\xba\x97,,,\n", "p.csv", [
        (1, None, "unknown column 'thread' (the header is community_code,partner_code,"
                  "partner_name,partner_address,chat)"),
    ])
    parsed = await import_map(seeded, b"chat,partner_address,partner_name,partner_code,"
                                      b"community_code\n,,\xe5\xba\x97,P01,C01\n", "p.csv")
    assert parsed.ok and parsed.created == 1  # the columns in any order
    assert [(p.code, p.name) for p in await seeded.shop.partners()] == [("P01", "店")]


async def test_csv_rows(seeded: Store):
    await reject(seeded, rows(
        "C02,凤凰社区,G0201,凤凰第一网格,E020101,凤凰新村,B02010101,12栋,-1002000000001,",
        "C02,凤凰小区,G0201,凤凰第一网格,E020101,凤凰新村,B02010102,13栋,,",
        "C03,三里社区,G0201,凤凰第一网格,E020102,三里小区,B03010101,1栋,,",
        "C02,凤凰社区,G0201,凤凰第一网格,E020101,凤凰新村,B02010101,14栋,,",
        "C02,凤凰社区,G0201,凤凰第一网格,E020101,凤凰新村,B02010103,15栋,-1.002E+12,",
        "C02,凤凰社区,G0201,凤凰第一网格,E020101,凤凰新村,B02010104,16栋,,2",
        "C02,凤凰社区,G0201,凤凰第一网格,E020101,凤凰新村,B02010105,17栋,-1002000000001,",
        "C02,凤凰社区,G0201,凤凰第一网格,E020101,凤凰新村,B02010106",
        "C02,凤凰社区,,凤凰第一网格,E020101,凤凰新村,B02010107,19栋,,",
    ), "m.csv", [
        (3, "C02", "community C02 is named 凤凰社区 at line 2, here 凤凰小区"),
        (4, "G0201", "grid G0201 is under C02 at line 2, here under C03"),
        (5, "B02010101", "duplicate code B02010101 (first at line 2)"),
        (6, "B02010103", "chat must be an integer"),
        (7, "B02010104", "thread is given without chat"),
        (8, "B02010105", "is also given to B02010101 (line 2)"),
        (9, None, "the row has 7 fields, the header 10"),
        (10, None, "grid_code is empty"),
    ])


async def test_csv_unit_under_another_parent_in_the_store(seeded: Store):
    await reject(seeded, rows(
        "C02,凤凰社区,G0101,第一网格,E010101,阳光小区,B01010101,1栋,,",
    ), "m.csv", [(2, "G0101", "grid G0101 is under C01 in the map, here under C02")])


async def test_csv_code_used_at_two_levels(store: Store):
    await reject(store, rows(
        "C01,欣山社区,G0101,第一网格,E010101,阳光小区,B01010101,1栋,,",
        "C01,欣山社区,G0101,第一网格,G0101,阳光小区,B01010102,2栋,,",
    ), "m.csv", [(3, "G0101", "duplicate code G0101 (first at line 2, as a grid)")])


def test_the_service_does_not_import_telegram():
    entry = Path(mapfile.__file__)
    modules = [entry, *sorted(entry.parent.glob("map_*.py"))]
    assert len(modules) > 1  # the entry and its parts
    for module in modules:
        tree = ast.parse(module.read_text(encoding="utf-8"))
        names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        names += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
        assert not [n for n in names if n.split(".")[0] == "telegram"], module.name
