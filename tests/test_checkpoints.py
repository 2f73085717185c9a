"""Patrol checkpoints 专项巡更点 (SPEC §13): the map file's `checkpoints` under a grid (checked
with their lines, exported and read back), the great-circle distance, visits and free
patrols, the end of a period (missed once), and coverage."""

from __future__ import annotations

import textwrap
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from bot.services.checkpoints import (
    CheckpointService,
    FreePatrol,
    Visited,
    distance_m,
    grid_coverage,
)
from bot.services.errors import Refused
from bot.services.mapfile import export_map, import_map
from storage.store import Store
from tests.support.harness import grant
from tests.support.services import HEAD, WORKER, build_services, queued, staffed_map

OTHER_WORKER = 31

TZ = ZoneInfo("Asia/Shanghai")


def y(text: str) -> bytes:
    return textwrap.dedent(text).lstrip("\n").encode("utf-8")


MAP = y("""
    communities:
      - code: C01
        name: 欣山社区
        grids:
          - code: G0101
            name: 第一网格
            checkpoints:
              - code: K01
                name: 东门菜市场
                matter: food_safety
                lat: 31.8612
                lon: 117.2801
                radius_m: 80
                frequency: daily
                building: B01010101
              - code: K02
                name: 空置地
                matter: vacant_land
                lat: 31.865
                lon: 117.285
            estates:
              - code: E010101
                name: 阳光小区
                buildings:
                  - code: B01010101
                    name: 1栋
    departments: []
""")


async def test_checkpoints_in_the_map_file_are_imported_exported_and_read_back(store: Store):
    result = await import_map(store, MAP, "map.yaml")
    assert result.ok, result.errors
    k01, k02 = await store.checkpoints.all()
    assert (k01.code, k01.grid_code, k01.matter, k01.lat, k01.lon, k01.radius_m,
            k01.frequency, k01.building_code) == (
        "K01", "G0101", "food_safety", 31.8612, 117.2801, 80, "daily", "B01010101")
    assert (k02.radius_m, k02.frequency, k02.building_code) == (100, "weekly", None)
    exported = await export_map(store)
    assert "        checkpoints:\n          - code: K01\n" in exported
    assert "            lat: 31.8612\n" in exported and "            radius_m: 100\n" in exported
    again = await import_map(store, exported.encode(), "map.yaml")
    assert again.ok and again.created == again.updated == 0
    assert await export_map(store) == exported
    assert (await store.checkpoints.get("K01")).created_at == k01.created_at


@pytest.mark.parametrize(("old", "new", "line", "reason"), [
    ("lat: 31.8612", "lat: 123", 11,
     "lat 123 is out of range: use -90 to 90 degrees"),
    ("lon: 117.2801", "lon: east", 12, "lon must be a number of degrees from -180 to 180"),
    ("radius_m: 80", "radius_m: 0", 13, "radius_m must be a whole number of metres"),
    ("frequency: daily", "frequency: sometimes", 14, "bad frequency 'sometimes'"),
    ("matter: food_safety", "matter: food", 10, "unknown matter 'food'"),
    ("building: B01010101", "building: E010101", 15, "E010101 is an estate, not a building"),
    ("\n            name: 东门菜市场", "", 8, "checkpoint without name"),
    ("code: K02", "code: K01", 16, "duplicate checkpoint code K01 (first at line 8)"),
])
async def test_a_bad_checkpoint_is_refused_with_its_line_and_nothing_changes(
        store: Store, old: str, new: str, line: int, reason: str):
    data = MAP.decode().replace(old, new, 1).encode()
    result = await import_map(store, data, "map.yaml")
    assert not result.ok
    assert [(e.line, e.code) for e in result.errors][:1] == [(line, "K01")]
    assert reason in result.errors[0].reason, result.errors
    assert await store.checkpoints.all() == [] and await store.map.all() == []


async def test_a_checkpoint_building_unknown_is_refused(store: Store):
    data = MAP.decode().replace("building: B01010101", "building: B09")
    result = await import_map(store, data.encode(), "map.yaml")
    assert [(e.line, e.code, e.reason) for e in result.errors] == [
        (15, "K01", "unknown building B09")]


def test_distance_is_the_great_circle_distance():
    assert distance_m(31.8612, 117.2801, 31.8612, 117.2801) == 0
    # one degree of latitude is about 111.2 km on the mean sphere
    assert 111_100 < distance_m(0, 0, 1, 0) < 111_300
    assert 20_015_000 < distance_m(0, 0, 0, 180) < 20_016_000
    # the east market's stalls, 38 m from its point
    assert 37 < distance_m(31.8612, 117.2801, 31.8615, 117.2803) < 39


async def service(store: Store, now: list[float]) -> CheckpointService:
    await staffed_map(store)
    s = build_services(store)
    return CheckpointService(store, s.access, s.people, s.outbox, s.settings,
                             clock=lambda: now[0])


async def test_visits_free_patrols_misses_once_and_coverage(store: Store):
    monday = datetime(2026, 3, 2, 10, 0, tzinfo=TZ)
    now = [monday.timestamp()]
    cps = await service(store, now)
    worker = await cps.access.actor(WORKER)
    added = [await cps.add(worker, ["G0101", m, f"{31.86 + i / 100:.4f}", "117.28", "60",
                                    f"P{i}"]) for i, m in enumerate(("fire", "fire", "other"))]
    for cp in added:
        await cps.edit(worker, [cp.code, "frequency", "daily"])
    with pytest.raises(Refused) as refused:
        await cps.edit(worker, [added[0].code, "lat", "123"])
    assert refused.value.key == "checkpoints.bad_lat"
    far = await cps.located(worker, 31.95, 117.28, monday, source_update_id=1)
    assert isinstance(far, FreePatrol) and far.nearest.code == added[2].code
    first = await cps.located(worker, 31.8601, 117.2801, monday, source_update_id=2)
    assert isinstance(first, Visited) and first.checkpoint.code == added[0].code
    assert [cp.code for cp, _ in first.due] == [added[1].code, added[2].code]
    again = await cps.located(worker, 31.8601, 117.2801, monday, source_update_id=2)
    assert isinstance(again, Visited) and again.visit.id == first.visit.id  # a replay
    await cps.located(worker, 31.87, 117.28, monday, source_update_id=3)
    assert len(await store.schedules.patrols(["G0101"], 0, 4e9)) == 3  # each is a patrol too

    assert await cps.run_due() == 0  # the day is not over
    now[0] = datetime(2026, 3, 3, 0, 1, tzinfo=TZ).timestamp()
    assert await cps.next_due() == datetime(2026, 3, 4, tzinfo=TZ).timestamp()
    assert await cps.run_due() == 1 and await cps.run_due() == 0
    reminders = [i for i in await queued(store) if i.chat_id == WORKER]
    assert len(reminders) == 1 and "P2" in reminders[0].payload["text"]

    status = await cps.status(worker, None, datetime.fromtimestamp(now[0], TZ))
    (total, parts), = status.grids
    assert (total.visited, total.missed, total.counted) == (2, 1, 3)
    assert [(p.matter, p.visited, p.missed) for p in parts] == [("fire", 2, 0), ("other", 0, 1)]
    assert len(status.due["G0101"]) == 3  # a new day: all three due again


def test_map_import_names_the_line_of_a_latitude_of_123(tmp_path, monkeypatch, capsys):
    from bot.cli import main

    monkeypatch.setenv("GRIDHORN_DATABASE_URL", f"sqlite:///{tmp_path / 'g.db'}")
    bad = tmp_path / "checkpoints.yaml"
    bad.write_bytes(MAP.decode().replace("lat: 31.8612", "lat: 123").encode())
    assert main(["map", "import", str(bad)]) == 1
    err = capsys.readouterr().err
    assert f"{bad}:11: [K01] lat 123 is out of range: use -90 to 90 degrees" in err
    assert "nothing was changed" in err
    assert main(["map", "export"]) == 0
    assert "K01" not in capsys.readouterr().out


async def test_a_visit_keeps_another_guided_flow_and_done_ends_the_note(store: Store):
    monday = datetime(2026, 3, 2, 10, 0, tzinfo=TZ)
    cps = await service(store, [monday.timestamp()])
    worker = await cps.access.actor(WORKER)
    cp = await cps.add(worker, ["G0101", "fire", "31.86", "117.28", "60", "Hydrant"])
    async with store.transaction():
        await store.flows.set(WORKER, "intake", "text", {"photos": []})
    kept = await cps.located(worker, 31.86, 117.28, monday, source_update_id=7)
    assert isinstance(kept, Visited) and not kept.awaits_note
    assert (await store.flows.get(WORKER)).name == "intake"
    with pytest.raises(Refused) as refused:
        await cps.annotate(worker, "a note", None)
    assert refused.value.key == "checkpoints.note_gone"
    async with store.transaction():
        await store.flows.clear(WORKER)
    visit = await cps.located(worker, 31.86, 117.28, monday, source_update_id=8)
    assert isinstance(visit, Visited) and visit.awaits_note and visit.checkpoint == cp
    assert await cps.finish(worker) and not await cps.finish(worker)
    assert await store.flows.get(WORKER) is None
    assert (await store.checkpoints.visit(visit.visit.id)).note is None


async def test_a_retired_checkpoint_keeps_its_past_but_is_no_longer_due_matched_or_exported(
        store: Store):
    """停用 (a closed restaurant): once retired a checkpoint is not due, reminded, matched by a
    location, counted in current coverage or exported; its visits and its past miss still
    count in the report of the month it served. Retiring takes the right to edit it, once."""
    monday = datetime(2026, 3, 2, 10, 0, tzinfo=TZ)
    now = [monday.timestamp()]
    cps = await service(store, now)
    await grant(store, OTHER_WORKER, "grid_worker", "G0102")
    worker = await cps.access.actor(WORKER)
    hydrant = await cps.add(worker, ["G0101", "fire", "31.86", "117.28", "60", "Hydrant"])
    diner = await cps.add(worker, ["G0101", "food_safety", "31.87", "117.28", "60", "Diner"])
    for cp in (hydrant, diner):
        await cps.edit(worker, [cp.code, "frequency", "daily"])
    assert isinstance(await cps.located(worker, 31.87, 117.28, monday, 1), Visited)
    now[0] = datetime(2026, 3, 3, 0, 1, tzinfo=TZ).timestamp()
    assert await cps.run_due() == 1                       # the hydrant missed Monday

    # who may not edit it may not retire it; the one who may, does, once
    for user_id, key in ((HEAD, "patrol.not_allowed"), (OTHER_WORKER, "patrol.not_allowed_here")):
        with pytest.raises(Refused) as refused:
            await cps.retire(await cps.access.actor(user_id), diner.code)
        assert refused.value.key == key
    now[0] = datetime(2026, 3, 3, 9, 0, tzinfo=TZ).timestamp()
    retired = await cps.retire(worker, diner.code)
    assert (retired.retired_at, retired.retired_by) == (now[0], WORKER)
    for call, key in ((cps.retire(worker, diner.code), "checkpoints.already_retired"),
                      (cps.to_retire(worker, diner.code), "checkpoints.already_retired"),
                      (cps.edit(worker, [diner.code, "name", "New diner"]),
                       "checkpoints.is_retired")):
        with pytest.raises(Refused) as refused:
            await call
        assert refused.value.key == key

    tuesday = datetime.fromtimestamp(now[0], TZ)
    assert [cp.code for cp, _ in await cps.due("G0101", tuesday)] == [hydrant.code]
    at_the_diner = await cps.located(worker, 31.87, 117.28, tuesday, 2)
    assert isinstance(at_the_diner, FreePatrol) and at_the_diner.nearest.code == hydrant.code
    assert [v.checkpoint_code for v in await store.checkpoints.visits(
        [diner.code], 0, 4e9)] == [diner.code]             # its visit stays
    now[0] = datetime(2026, 3, 4, 0, 1, tzinfo=TZ).timestamp()
    before = len(await queued(store))
    assert await cps.run_due() == 1                       # the hydrant only, again
    assert all("Diner" not in i.payload["text"] for i in (await queued(store))[before:])
    assert await cps.next_due() == datetime(2026, 3, 5, tzinfo=TZ).timestamp()

    # current coverage: the hydrant alone; the month's report: the diner's visit counts too
    status = await cps.status(worker, None, datetime.fromtimestamp(now[0], TZ))
    (total, parts), = status.grids
    assert (total.total_checkpoints, total.visited, total.missed) == (1, 0, 2)
    assert [p.matter for p in parts] == ["fire"]
    grid = await store.map.get("G0101")
    march = datetime(2026, 3, 1, tzinfo=TZ).timestamp()
    (total, parts), = await grid_coverage(store, [grid], march, now[0])
    assert (total.total_checkpoints, total.visited, total.missed) == (2, 1, 2)
    april = datetime(2026, 4, 1, tzinfo=TZ).timestamp()
    (total, parts), = await grid_coverage(store, [grid], april, april + 86400 * 30)
    assert total.total_checkpoints == 1                   # retired before April

    # the map's export leaves it out; importing the export, or an older file naming it,
    # leaves it retired
    exported = await export_map(store)
    assert hydrant.code in exported and diner.code not in exported
    again = await import_map(store, exported.encode(), "map.yaml")
    assert again.ok and again.created == again.updated == 0
    assert (await store.checkpoints.get(diner.code)).retired
    older = exported.replace(
        "        checkpoints:\n",
        f"        checkpoints:\n          - code: {diner.code}\n            name: Diner\n"
        "            matter: food_safety\n            lat: 31.87\n            lon: 117.28\n"
        "            radius_m: 60\n            frequency: daily\n", 1)
    assert (await import_map(store, older.encode(), "map.yaml")).ok
    assert (await store.checkpoints.get(diner.code)).retired
    assert [cp.code for cp in await store.checkpoints.all()] == [hydrant.code]
    assert {cp.code for cp in await store.checkpoints.all(retired=True)} == {
        hydrant.code, diner.code}
