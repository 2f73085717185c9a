"""Patrol checkpoints 专项巡更点 (SPEC §13) through the Bot API emulator: /checkpoints add and
edit, /patrol with the location button, visits with a note and a photo, a free patrol far from
every checkpoint, a period that ends without a visit (reminded once, across a restart), the
coverage in /patrol status and the monthly report, and a checkpoint retired from the list."""

from __future__ import annotations

import io
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine
from openpyxl import load_workbook

from bot.i18n import t
from bot.services.checkpoints import distance_m
from tests.support.harness import grant, seed_map
from tests.support.texts import shown

pytestmark = pytest.mark.asyncio

TZ = ZoneInfo("Asia/Shanghai")
MONDAY = datetime(2026, 3, 2, 10, 0, tzinfo=TZ)
#: three checkpoints of grid G0101: (matter, lat, lon, radius, name)
POINTS = (("food_safety", 31.8612, 117.2801, 80, "East market"),
          ("vacant_land", 31.8650, 117.2850, 100, "North plot"),
          ("key_visit", 31.8700, 117.2900, 50, "Mr Wang"))


async def send_location(harness, user, lat: float, lon: float) -> list:
    before = {m.message_id for m in harness.emu.messages(user.id)}
    harness.emu.send_location(user, lat, lon)
    await harness.settle()
    return [m for m in harness.emu.messages(user.id) if m.message_id not in before]


async def test_two_of_three_visited_the_third_missed_once_and_coverage_reads_2_of_3(harness):
    travel = time_machine.travel(MONDAY, tick=True)
    clock = travel.start()
    try:
        await _scenario(harness, clock)
    finally:
        travel.stop()


async def _scenario(harness, clock) -> None:
    emu = harness.emu
    worker = emu.add_user(first_name="Worker", language_code="en")
    leader = emu.add_user(first_name="Leader", language_code="en")
    resident = emu.add_user(first_name="Resident", language_code="en")
    await harness.start_bot()
    await seed_map(harness.store)
    await grant(harness.store, worker.id, "grid_worker", "G0101")
    await grant(harness.store, leader.id, "grid_leader", "G0101")
    for user in (worker, leader, resident):
        await harness.say(user, "/start")
    say = harness.say

    # bad input first: a latitude out of range, an unknown matter, a resident
    assert (await say(leader, "/checkpoints add G0101 food_safety 123 117.28 80 X"))[-1].text \
        == shown("en", "checkpoints.bad_lat", value="123")
    assert (await say(leader, "/checkpoints add G0101 food 31.8 117.28 80 X"))[-1].text == \
        shown("en", "checkpoints.bad_matter", value="food",
              matters="food_safety, vacant_land, key_visit, fire, other")
    assert (await say(resident, "/checkpoints add G0101 fire 31.8 117.28 80 X"))[-1].text == \
        shown("en", "patrol.not_allowed")
    assert await harness.store.checkpoints.all() == []

    codes = []
    for matter, lat, lon, radius, name in POINTS:
        said = (await say(leader, f"/checkpoints add G0101 {matter} {lat} {lon} {radius} "
                                  f"{name}"))[-1].text
        code = f"G0101-K{len(codes) + 1:02d}"
        assert said.startswith(shown("en", "checkpoints.added", code=code))
        codes.append(code)
        said = (await say(leader, f"/checkpoints edit {code} frequency daily"))[-1].text
        assert said.startswith(shown("en", "checkpoints.edited", code=code))
    said = (await say(leader, f"/checkpoints edit {codes[0]} building B01020101"))[-1].text
    assert said == shown("en", "checkpoints.bad_building", code="B01020101", grid="G0101")
    await say(leader, f"/checkpoints edit {codes[0]} building B01010101")
    listed = (await say(worker, "/checkpoints"))[-1].text
    assert all(code in listed for code in codes) and "East market" in listed

    # /patrol privately asks for the location with the location button
    asked = (await say(worker, "/patrol"))[-1]
    assert asked.text == shown("en", "checkpoints.ask_location")
    assert asked.reply_markup["keyboard"][0][0] == {
        "text": t("en", "checkpoints.btn_location"), "request_location": True}

    # far from every checkpoint: a free patrol, the nearest named
    far = (31.9000, 117.3000)
    answer = (await send_location(harness, worker, *far))[-1].text
    nearest = min(POINTS, key=lambda p: distance_m(*far, p[1], p[2]))
    distance = round(distance_m(*far, nearest[1], nearest[2]))
    assert answer == shown("en", "checkpoints.free_far", name=nearest[4],
                           code=codes[POINTS.index(nearest)], distance=distance,
                           radius=nearest[3], grid="第一网格", grid_code="G0101")
    assert [v for v in await harness.store.checkpoints.visits(codes, 0, 4e9)] == []

    # at the first checkpoint (about 40 m away): a visit; two still due; a note
    said = await send_location(harness, worker, 31.8615, 117.2803)
    assert said[0].text.startswith("✅") and codes[0] in said[0].text
    due = said[-1]
    assert codes[1] in due.text and codes[2] in due.text and codes[0] not in due.text
    await say(worker, "Stalls clean, <b>no</b> expired goods")
    visits = await harness.store.checkpoints.visits(codes, 0, 4e9)
    assert [(v.checkpoint_code, v.note) for v in visits] == [
        (codes[0], "Stalls clean, <b>no</b> expired goods")]
    patrols = await harness.store.schedules.patrols(["G0101"], 0, 4e9)
    assert [(p.location, p.note) for p in patrols] == [
        ("31.90000, 117.30000", None), ("East market", "Stalls clean, <b>no</b> expired goods")]
    # "Report a problem" opens staff intake with the checkpoint's building filled in
    await harness.press(worker, due, t("en", "intake.btn_report_problem"))
    flow = await harness.store.flows.get(worker.id)
    assert flow.name == "intake" and flow.data["building"] == "B01010101"
    assert flow.data["source"] == "patrol" and flow.step == "domain"
    await say(worker, "/cancel")

    # at the second: a visit with a photo; only the third is still due
    said = await send_location(harness, worker, 31.8650, 117.2850)
    assert codes[2] in said[-1].text and codes[1] not in said[-1].text.split("\n", 1)[1]
    emu.send_photo(worker, caption="Fence intact")
    await harness.settle()
    visits = await harness.store.checkpoints.visits(codes, 0, 4e9)
    assert visits[-1].checkpoint_code == codes[1] and visits[-1].photo_file_id
    assert visits[-1].note == "Fence intact"

    # the day ends: the third checkpoint is missed, and the workers reminded once
    before = len(emu.messages(worker.id))
    clock.move_to(datetime(2026, 3, 3, 0, 0, 5, tzinfo=TZ))
    # the watcher's date job was armed on the old clock: APScheduler looks again now
    harness.runtime.scheduler.aps.wakeup()
    reminder = shown("en", "checkpoints.missed", name="Mr Wang", code=codes[2],
                     matter=t("en", "checkpoints.matter_key_visit"), grid="第一网格",
                     start="03-02 00:00", end="03-03 00:00", next="03-04 00:00")
    await emu.wait_for_message(worker.id, lambda m: m.text == reminder)
    await harness.settle()
    # a restart, and another look: nothing more
    await harness.stop_bot()
    await harness.start_bot()
    harness.runtime.checkpoint_watch.wake()
    await harness.settle()
    reminders = [m for m in emu.messages(worker.id)[before:] if m.text == reminder]
    assert len(reminders) == 1
    assert not [m for m in emu.messages(leader.id) if m.text == reminder]  # workers first
    misses = await harness.store.checkpoints.misses(codes, 0, 4e9)
    assert [(m.checkpoint_code, m.period) for m in misses] == [(codes[2], "2026-03-02")]

    # coverage: 2/3 visited, 1 missed (per grid, and per matter)
    status = (await say(leader, "/patrol status"))[-1].text
    coverage = shown("en", "checkpoints.coverage", visited=2, counted=3, missed=1)
    assert shown("en", "checkpoints.status_grid", grid="第一网格", code="G0101",
                 coverage=coverage) in status
    assert shown("en", "checkpoints.status_matter",
                 matter=t("en", "checkpoints.matter_key_visit"),
                 coverage=shown("en", "checkpoints.coverage", visited=0, counted=1,
                                missed=1)) in status
    report = (await say(leader, "/report"))
    text = next(m.text for m in report if m.kind == "text")
    assert shown("en", "report.checkpoints", coverage=coverage) in text
    workbook = next(m for m in report if m.kind == "document")
    sheet = load_workbook(io.BytesIO(workbook.document))[t("en", "xlsx.sheet_checkpoints")]
    assert [list(r) for r in sheet.iter_rows(min_row=2, values_only=True)] == [
        ["第一网格 (G0101)", t("en", "xlsx.cp_all_matters"), 3, 2, 1],
        ["第一网格 (G0101)", t("en", "checkpoints.matter_food_safety"), 1, 1, 0],
        ["第一网格 (G0101)", t("en", "checkpoints.matter_vacant_land"), 1, 1, 0],
        ["第一网格 (G0101)", t("en", "checkpoints.matter_key_visit"), 1, 0, 1]]
    # the resident may not ask
    assert (await say(resident, "/patrol status"))[-1].text == shown("en", "patrol.not_allowed")


def _data(message) -> list[str]:
    return [b.callback_data for row in (message.buttons or []) for b in row]


async def test_a_closed_restaurant_is_retired_from_the_list_with_one_confirming_tap(harness):
    """停用: the list offers Retire per checkpoint; Confirm retires it (the same right as to
    edit it, checked on every press); the short form asks the same; once retired it is
    listed as retired, no longer due, and a location there is a free patrol."""
    emu, say = harness.emu, harness.say
    worker = emu.add_user(first_name="Worker", language_code="en")
    resident = emu.add_user(first_name="Resident", language_code="en")
    await harness.start_bot()
    await seed_map(harness.store)
    await grant(harness.store, worker.id, "grid_worker", "G0101")
    for user in (worker, resident):
        await say(user, "/start")
    market, diner = "G0101-K01", "G0101-K02"
    await say(worker, "/checkpoints add G0101 food_safety 31.8612 117.2801 80 East market")
    await say(worker, "/checkpoints add G0101 food_safety 31.8700 117.2900 50 Noodle diner")

    listed = (await say(worker, "/checkpoints"))[-1]
    assert _data(listed) == [f"cp:rt:{market}", f"cp:rt:{diner}"]
    assert [b.text for row in listed.buttons for b in row][1] == \
        t("en", "checkpoints.btn_retire", code=diner) + " Noodle diner"
    # a resident's crafted press is refused and changes nothing
    forged = emu.inject_callback(resident, await harness.last(resident.id), f"cp:rty:{diner}")
    assert (await forged.wait_answered(timeout=5)).text == shown("en", "patrol.not_allowed")
    await harness.settle()
    assert not (await harness.store.checkpoints.get(diner)).retired

    await harness.press(worker, listed, f"cp:rt:{diner}")
    prompt = await harness.last(worker.id)
    assert prompt.text == shown("en", "checkpoints.retire_confirm", code=diner,
                                name="Noodle diner", grid="G0101")
    assert _data(prompt) == [f"cp:rty:{diner}", f"cp:rtn:{diner}"]
    done = await harness.press(worker, prompt, t("en", "checkpoints.btn_confirm_retire"))
    assert done.text == shown("en", "checkpoints.retired", code=diner, name="Noodle diner")
    assert (await harness.last(worker.id)).text == done.text      # the prompt, edited
    assert (await harness.store.checkpoints.get(diner)).retired_by == worker.id
    again = emu.inject_callback(worker, prompt, f"cp:rty:{diner}")
    assert (await again.wait_answered(timeout=5)).text == shown(
        "en", "checkpoints.already_retired", code=diner, name="Noodle diner")
    await harness.settle()

    listed = (await say(worker, "/checkpoints"))[-1]
    assert _data(listed) == [f"cp:rt:{market}"]
    assert shown("en", "checkpoints.list_retired", items=f"{diner} Noodle diner") in listed.text
    assert (await say(worker, f"/checkpoints retire {diner}"))[-1].text == shown(
        "en", "checkpoints.already_retired", code=diner, name="Noodle diner")
    # the short form asks the same; Cancel keeps it
    prompt = (await say(worker, f"/checkpoints retire {market}"))[-1]
    assert _data(prompt) == [f"cp:rty:{market}", f"cp:rtn:{market}"]
    # asked in a group: a resident there can neither confirm nor cancel the worker's question
    group = emu.add_group(title="Grid one", members=[worker, resident])
    await emu.add_bot_to_group(group, by=worker)
    await harness.settle()
    asked = (await say(worker, f"/checkpoints retire {market}", chat=group))[-1]
    for data in (f"cp:rtn:{market}", f"cp:rty:{market}"):
        forged = emu.inject_callback(resident, asked, data)
        assert (await forged.wait_answered(timeout=5)).text == shown("en", "patrol.not_allowed")
    await harness.settle()
    assert _data(await harness.last(group.id)) == [f"cp:rty:{market}", f"cp:rtn:{market}"]
    assert (await harness.press(worker, prompt, f"cp:rtn:{market}")).text == \
        shown("en", "checkpoints.retire_cancelled")
    assert not (await harness.store.checkpoints.get(market)).retired

    status = (await say(worker, "/patrol status"))[-1].text
    assert market in status and diner not in status
    answer = (await send_location(harness, worker, 31.8700, 117.2900))[-1].text
    assert answer == shown("en", "checkpoints.free_far", name="East market", code=market,
                           distance=round(distance_m(31.87, 117.29, 31.8612, 117.2801)),
                           radius=80, grid="第一网格", grid_code="G0101")
    assert await harness.store.checkpoints.visits([diner], 0, 4e9) == []
