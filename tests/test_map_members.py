"""Member units in the map file (成员单位, SPEC §10): `members:` under a community, the
member CSV shape, an estate's `property`, checked line by line (all or nothing) and written
back by the export."""

from __future__ import annotations

import textwrap

from bot.services.mapfile import export_map, import_map
from storage.store import Store

MAP = """\
communities:
  - code: C01
    name: 欣山社区
    grids:
      - code: G0101
        name: 第一网格
        estates:
          - code: E010101
            name: 阳光小区
            property: M01
            buildings:
              - code: B01010101
                name: 1栋
    members:
      - code: M01
        name: 安居物业
        type: property
        chat: -1001000000051
      - code: M02
        name: 县税务局
        type: dual_report
  - code: C02
    name: 河东社区
    members:
      - code: M03
        name: 河东物业
        type: property
departments: []
"""


def y(text: str) -> bytes:
    return textwrap.dedent(text).lstrip("\n").encode("utf-8")


async def test_members_import_and_export_back_the_same(store: Store):
    result = await import_map(store, MAP.encode(), "map.yaml")
    assert result.ok, result.errors
    m01 = await store.map.get("M01")
    assert m01 is not None and m01.kind == "member" and m01.member_type == "property"
    assert m01.parent_code == "C01"
    estate = await store.map.get("E010101")
    assert estate is not None and estate.property_code == "M01"
    binding = await store.map.binding("M01")
    assert binding is not None and binding.chat_id == -1001000000051
    assert [u.code for u in await store.map.members(["C01"])] == ["M01", "M02"]
    assert [u.code for u in await store.map.members(None, "property")] == ["M01", "M03"]
    assert await export_map(store) == MAP
    again = await import_map(store, MAP.encode(), "map.yaml")
    assert again.ok and again.created == 0 and again.updated == 0


async def test_members_do_not_count_as_the_communitys_grids_or_buildings(store: Store):
    assert (await import_map(store, MAP.encode(), "map.yaml")).ok
    assert [u.code for u in await store.map.descendants("C01", "building")] == ["B01010101"]
    assert [u.code for u in await store.map.descendants("C01", "grid")] == ["G0101"]
    chain = [u.code for u in await store.map.ancestors("M01")]
    assert chain == ["M01", "C01"]


async def test_member_csv_shape(store: Store):
    assert (await import_map(store, MAP.encode(), "map.yaml")).ok
    csv = ("community_code,member_code,member_name,member_type,chat\n"
           "C01,M04,欣山业委会,owners,\n"
           "C02,M05,河东社工站,social,-1001000000052\n")
    result = await import_map(store, csv.encode(), "members.csv")
    assert result.ok, result.errors
    assert result.created == 2 and result.bindings == 1
    m05 = await store.map.get("M05")
    assert m05 is not None and m05.parent_code == "C02" and m05.member_type == "social"
    text = await export_map(store)
    assert "      - code: M04\n        name: 欣山业委会\n        type: owners\n" in text


async def test_bad_members_are_refused_with_their_lines_and_nothing_changes(store: Store):
    assert (await import_map(store, MAP.encode(), "map.yaml")).ok
    before = await export_map(store)
    bad = y("""
        communities:
          - code: C01
            name: 欣山社区
            grids:
              - code: G0101
                name: 第一网格
                estates:
                  - code: E010101
                    name: 阳光小区
                    property: M03
                  - code: E010102
                    name: 新区
                    property: M02
                  - code: E010103
                    name: 北区
                    property: M99
            members:
              - code: M06
                name: 无名
                type: company
              - code: M07
                name: 新物业
        """)
    result = await import_map(store, bad, "map.yaml")
    got = [(e.line, e.code, e.reason) for e in result.errors]
    assert not result.ok
    assert (10, "E010101", "property M03 is a member unit of C02, not of this estate's "
                           "community C01") in got
    assert any(g[:2] == (13, "E010102") and "not a property firm" in g[2] for g in got), got
    assert (16, "E010103", "unknown member unit M99") in got
    assert any(g[:2] == (20, "M06") and "unknown member type 'company'" in g[2] for g in got)
    assert any(g[:2] == (21, "M07") and "member without type" in g[2] for g in got), got
    assert len(got) == 5, got
    assert await export_map(store) == before


async def test_bad_member_csv_rows(store: Store):
    assert (await import_map(store, MAP.encode(), "map.yaml")).ok
    before = await export_map(store)
    csv = ("community_code,member_code,member_name,member_type,chat\n"
           "C09,M08,某单位,social,\n"
           "G0101,M09,某单位,social,\n"
           "C01,M10,,nobody,x\n")
    result = await import_map(store, csv.encode(), "members.csv")
    got = [(e.line, e.code, e.reason) for e in result.errors]
    assert (2, "M08", "unknown community C09") in got
    assert (3, "M09", "G0101 is a grid, not a community") in got
    assert any(g[:2] == (4, "M10") and "member_name is empty" in g[2] for g in got), got
    assert any(g[:2] == (4, "M10") and "unknown member type 'nobody'" in g[2] for g in got)
    assert any(g[:2] == (4, "M10") and "chat must be an integer" in g[2] for g in got)
    assert await export_map(store) == before
