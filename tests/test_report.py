"""The monthly public report and the leaderboards, checked against a hand-built month."""

from __future__ import annotations

import io
import warnings

import pytest

from bot.cli import main
from bot.services import periods, report_files
from bot.services.boards import DEPARTMENT_POINTS, parse_board_args
from bot.services.scopes import Scope, city_scope, unit_scope
from tests.support.harness import grant, seed_map
from tests.support.schedules import Clock, add_event, add_horn, add_ticket, at, build

WORKER = 102


async def november(store):
    """Tickets with known times (Asia/Shanghai), November 2026 being the month under test."""
    await seed_map(store)
    await grant(store, WORKER, "grid_worker", "G0101")
    t1 = await add_ticket(store, building="B01010101", grid="G0101", created=at(2026, 11, 2, 10))
    await add_event(store, t1, "resolved", at(2026, 11, 3, 10))                  # 24 h
    await add_event(store, t1, "rated", at(2026, 11, 3, 12), note="5")
    t2 = await add_ticket(store, building="B01010101", grid="G0101", created=at(2026, 11, 5, 8))
    await add_event(store, t2, "overdue", at(2026, 11, 6, 8), data={"due": "ack"})
    await add_event(store, t2, "resolved", at(2026, 11, 7, 20))                  # 60 h
    await add_event(store, t2, "reopened", at(2026, 11, 8, 9), note="2")
    await add_event(store, t2, "resolved", at(2026, 11, 9, 9))                   # not first
    await add_event(store, t2, "rated", at(2026, 11, 9, 12), note="4")
    await add_ticket(store, building="B01010102", grid="G0101", created=at(2026, 11, 20, 9))
    t4 = await add_ticket(store, building="B01010102", grid="G0101",
                          created=at(2026, 10, 28, 10))
    await add_event(store, t4, "resolved", at(2026, 11, 1, 10))                  # 96 h
    await add_event(store, t4, "rated", at(2026, 11, 1, 11), note="3")
    t5 = await add_ticket(store, building="B01020101", grid="G0102",
                          created=at(2026, 11, 30, 23, 30))
    await add_event(store, t5, "resolved", at(2026, 12, 1, 1))
    t6 = await add_ticket(store, building="B01020101", grid="G0102", created=at(2026, 12, 2, 9))
    await add_event(store, t6, "overdue", at(2026, 12, 3, 9), data={"due": "ack"})
    t7 = await add_ticket(store, building="B01010101", grid="G0101", created=at(2026, 9, 10, 9))
    await add_event(store, t7, "overdue", at(2026, 11, 15, 9), data={"due": "resolve"})
    async with store.transaction():
        await store.schedules.add_patrol("G0101", WORKER, at(2026, 11, 4, 9).timestamp(),
                                         "东门", "消防通道畅通", None)
        await store.schedules.add_patrol("G0101", WORKER, at(2026, 11, 30, 23).timestamp(),
                                         None, None, None)
        await store.schedules.add_patrol("G0101", WORKER, at(2026, 12, 1, 9).timestamp(),
                                         None, None, None)
        await store.schedules.add_patrol("G0102", WORKER, at(2026, 11, 12, 9).timestamp(),
                                         "北门", None, None)
    # horns: published (created) and hours confirmed in the month count; one over several
    # grids (grid None, the community's) counts in the community's totals and for its people
    await add_horn(store, grid="G0101", created=at(2026, 11, 10, 9),
                   confirmed=at(2026, 11, 10, 18), hours={203: 3, 204: 2.5})
    await add_horn(store, grid="G0102", created=at(2026, 10, 30, 9),
                   confirmed=at(2026, 11, 1, 9), hours={203: 1})
    await add_horn(store, grid=None, created=at(2026, 11, 11, 9),
                   confirmed=at(2026, 11, 11, 18), hours={204: 4})
    await add_horn(store, grid="G0101", created=at(2026, 11, 29, 9), confirmed=None, hours={})


async def community_report(store, month="2026-11", now=None):
    built = build(store, Clock(at(2026, 12, 15)))
    scope = await unit_scope(store, await store.map.get("C01"))
    return built, await built.schedule.reports.build(scope, month, now)


async def test_numbers_per_grid_match_a_hand_built_month(store):
    await november(store)
    _, report = await community_report(store)
    g1, g2 = report.grids
    assert (g1.code, g1.received, g1.resolved, g1.overdue) == ("G0101", 3, 3, 2)
    assert g1.median_hours == 60.0                      # of 24, 60 and 96 hours
    assert (g1.rating, g1.ratings) == (3.5, 4)          # 5, 2 (reopened), 4, 3
    assert (g1.patrols, g1.horns, g1.volunteer_hours) == (2, 2, 5.5)
    assert (g2.code, g2.received, g2.resolved, g2.overdue, g2.patrols) == ("G0102", 1, 0, 0, 1)
    assert (g2.horns, g2.volunteer_hours) == (0, 1.0)
    assert g2.median_hours is None and g2.rating is None
    total = report.total
    assert (total.received, total.resolved, total.overdue, total.patrols) == (4, 3, 2, 3)
    assert total.median_hours == 60.0 and total.rating == 3.5
    assert (total.horns, total.volunteer_hours) == (3, 10.5)  # the community's horn too
    assert sorted(x.id for x in report.tickets) == [1, 2, 3, 4, 5, 7]

    _, december = await community_report(store, "2026-12")
    g2 = december.grids[1]
    assert (g2.received, g2.resolved, g2.overdue, g2.median_hours) == (1, 1, 1, 1.5)
    assert december.grids[0].patrols == 1

    # a grid's own report holds that grid alone
    built = build(store, Clock(at(2026, 12, 15)))
    grid = await built.schedule.reports.build(
        await unit_scope(store, await store.map.get("G0102")), "2026-11")
    assert [g.code for g in grid.grids] == ["G0102"] and grid.total.received == 1


async def test_text_states_the_numbers_in_each_language(store):
    await november(store)
    built, report = await community_report(store)
    zh = built.schedule.reports.text(report, "zh-Hans")
    assert "一月一公示 · 2026-11 · 欣山社区" in zh
    assert "收到 3 · 办结 3 · 超时 2" in zh and "办结用时中位数 60.0 小时" in zh
    assert "群众评分 3.5★（4 人评）" in zh and "巡查 2" in zh and "<b>合计</b>" in zh
    assert "集结号 2 · 志愿服务 5.5 小时" in zh
    en = built.schedule.reports.text(report, "en")
    assert "Received 4 · resolved 3 · overdue 2" in en
    short = built.schedule.reports.short_text(report, "zh-Hant", "G0102")
    assert "第二网格" in short and "收到 1 件，辦結 0 件" in short and "評分 —" in short
    # a month still running says up to when
    so_far = await built.schedule.reports.build(report.scope, "2026-12", at(2026, 12, 15, 10))
    assert so_far.so_far and "截至 2026-12-15 10:00" in built.schedule.reports.text(
        so_far, "zh-Hans")


def _ink(text: str, settings: dict) -> object:
    """The pixels of `text` drawn large on its own, and the warnings drawing it raised."""
    import matplotlib
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with matplotlib.rc_context(settings):
            figure = Figure(figsize=(3, 1.5), dpi=100)
            canvas = FigureCanvasAgg(figure)
            figure.text(0.1, 0.3, text, fontsize=40)
            canvas.draw()
            pixels = np.asarray(canvas.buffer_rgba())[:, :, :3].copy()
    return pixels, [str(w.message) for w in caught]


async def test_chart_draws_chinese_glyphs_not_boxes(store):
    import matplotlib
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from PIL import Image

    await november(store)
    built, report = await community_report(store)
    files = await built.schedule.reports.files(report, "zh-Hans")   # warnings are errors here
    image = Image.open(io.BytesIO(files.chart))
    assert image.format == "PNG" and image.width > 600 and image.height > 400
    assert len(image.convert("RGB").getcolors(1 << 20)) > 20          # not a blank picture

    # the title of the chart has ink where its glyphs are, and no glyph was missing
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with matplotlib.rc_context(report_files.chart_settings()):
            figure = report_files.chart_figure(report, "zh-Hant")
            canvas = FigureCanvasAgg(figure)
            canvas.draw()
            title = figure.axes[0].title
            box = title.get_window_extent(canvas.get_renderer())
            pixels = np.asarray(canvas.buffer_rgba())[:, :, :3]
    assert not [w for w in caught if "missing from font" in str(w.message)]
    assert title.get_text() == "欣山社区 · 一月一公示 · 2026-11"
    height = pixels.shape[0]
    crop = pixels[int(height - box.y1):int(height - box.y0), int(box.x0):int(box.x1)]
    assert crop.size and (crop.mean(axis=2) < 128).mean() > 0.03

    # glyphs, not boxes: two different words look different in the CJK font ...
    cjk = report_files.chart_settings()
    first, warned = _ink("网格", cjk)
    second, _ = _ink("公示", cjk)
    assert not warned and (first != second).any(axis=2).mean() > 0.01
    # ... while a font without them draws the same empty boxes for both, and warns
    tofu = {"font.family": "sans-serif", "font.sans-serif": ["DejaVu Sans"]}
    boxes_a, warned = _ink("网格", tofu)
    boxes_b, _ = _ink("公示", tofu)
    assert any("missing from font" in w for w in warned)
    assert (boxes_a == boxes_b).all()


async def test_workbook_has_one_sheet_per_table_with_the_numbers(store):
    from openpyxl import load_workbook

    await november(store)
    built, report = await community_report(store)
    files = await built.schedule.reports.files(report, "zh-Hans")
    book = load_workbook(io.BytesIO(files.workbook))
    assert book.sheetnames == ["汇总", "工单", "巡查", "积分兑换"]
    summary = book["汇总"]
    assert summary["A1"].value == "一月一公示 · 欣山社区 · 2026-11"
    assert [c.value for c in summary[4]][:6] == ["网格代码", "网格", "社区", "收到", "办结", "超时"]
    assert [c.value for c in summary[5]] == ["G0101", "第一网格", "欣山社区", 3, 3, 2, 60.0, 3.5,
                                             4, 2, 5.5, 2]
    assert [c.value for c in summary[6]][:6] == ["G0102", "第二网格", "欣山社区", 1, 0, 0]
    assert summary["G6"].value is None
    assert [c.value for c in summary[7]][:6] == [None, "合计", None, 4, 3, 2]
    tickets = book["工单"]
    rows = list(tickets.iter_rows(min_row=2, values_only=True))
    assert [r[0] for r in rows] == [1, 2, 3, 4, 5, 7]
    t2 = rows[1]
    assert t2[1] == "第一网格 (G0101)" and t2[2] == "1栋 (B01010101)" and t2[3] == "橙色暖心"
    assert t2[6].strftime("%Y-%m-%d %H:%M") == "2026-11-05 08:00" and t2[8] == 60.0
    assert t2[9] == "是" and t2[10] == "2, 4"
    assert rows[4][8] is None                                 # #5 was resolved in December
    patrols = book["巡查"]
    assert [r[1:4] for r in patrols.iter_rows(min_row=2, values_only=True)] == [
        ("第一网格 (G0101)", str(WORKER), "东门"), ("第二网格 (G0102)", str(WORKER), "北门"),
        ("第一网格 (G0101)", str(WORKER), None)]
    english = load_workbook(io.BytesIO((await built.schedule.reports.files(report, "en")).workbook))
    assert english.sheetnames == ["Summary", "Tickets", "Patrols", "Redemptions"]


async def test_a_month_without_data_is_all_zeros(store):
    from openpyxl import load_workbook

    await november(store)
    built, report = await community_report(store, "2026-08")
    assert [(g.received, g.resolved, g.overdue, g.patrols, g.median_hours, g.rating)
            for g in report.grids] == [(0, 0, 0, 0, None, None)] * 2
    text = built.schedule.reports.text(report, "en")
    assert "Received 0 · resolved 0 · overdue 0" in text and "every figure is 0" in text
    files = await built.schedule.reports.files(report, "en")
    assert files.chart.startswith(b"\x89PNG")
    book = load_workbook(io.BytesIO(files.workbook))
    assert [c.value for c in book["Summary"][7]][3:6] == [0, 0, 0]
    assert book["Tickets"].max_row == 1 and book["Patrols"].max_row == 1
    # an empty map too
    empty = await built.schedule.reports.build(Scope(units=(), grids=()), "2026-08")
    assert "no grids" in built.schedule.reports.text(empty, "en")
    assert (await built.schedule.reports.files(empty, "en")).chart.startswith(b"\x89PNG")


async def test_department_board_follows_the_written_rule(store):
    await seed_map(store)
    q4 = periods.quarter("2026-Q4", at(2026, 1, 1).tzinfo)

    async def whistled(code, moment):
        ticket = await add_ticket(store, building="B01010101", grid="G0101", created=moment)
        await add_event(store, ticket, "whistled", moment, note="x", data={"department": code})
        return ticket

    a = await whistled("MZJ", at(2026, 10, 2, 9))
    await add_event(store, a, "accepted", at(2026, 10, 2, 12))            # in time: +3
    await add_event(store, a, "resolved", at(2026, 10, 3, 12))            # resolved: +2
    b = await whistled("MZJ", at(2026, 10, 5, 9))
    await add_event(store, b, "overdue", at(2026, 10, 6, 9), data={"due": "accept"})  # −2
    await add_event(store, b, "accepted", at(2026, 10, 6, 10))            # late: −1
    c = await whistled("CGJ", at(2026, 11, 1, 9))
    await add_event(store, c, "declined", at(2026, 11, 1, 10), data={"department": "CGJ"})  # −1
    d = await add_ticket(store, building="B01010101", grid="G0101", created=at(2026, 9, 30))
    await add_event(store, d, "whistled", at(2026, 9, 30), note="县城管局")  # old event: by name
    await add_event(store, d, "accepted", at(2026, 10, 1, 1))             # +3 in Q4
    e = await whistled("CGJ", at(2026, 12, 31, 22))
    await add_event(store, e, "accepted", at(2027, 1, 1, 1))              # next quarter
    built = build(store, Clock(at(2027, 1, 2)))
    board = await built.schedule.boards.board("departments", await city_scope(store), q4)
    lines = {line.name: line.values for line in board.lines}
    assert lines["县民政局 (MZJ)"]["points"] == 3 + 2 - 2 - 1
    assert (lines["县民政局 (MZJ)"]["in_time"], lines["县民政局 (MZJ)"]["late"],
            lines["县民政局 (MZJ)"]["missed"]) == (1, 1, 1)
    assert lines["县城管局 (CGJ)"]["points"] == -1 + 3
    text = built.schedule.boards.text(board, "en")
    assert "1. 县城管局 (CGJ) — 2 points" in text and "2. 县民政局 (MZJ) — 2 points" in text
    assert "accepted within the deadline +3" in text
    assert DEPARTMENT_POINTS == {"in_time": 3, "resolved": 2, "late": -1, "declined": -1,
                                 "missed": -2}


async def test_building_party_and_volunteer_boards(store):
    await november(store)
    for user, name, role, unit in ((201, "王芳", "party_member", "B01010101"),
                                   (202, "李强", "party_member", "B01020101"),
                                   (203, "赵敏", "volunteer", "B01010101"),
                                   (204, "孙丽", "volunteer", "G0102"),
                                   (204, "孙丽", "party_member", "G0102"),
                                   (205, "周杰", "volunteer", "B01010102")):
        await grant(store, user, role, unit)
        async with store.transaction():
            await store.db.execute("UPDATE people SET first_name = ?, hours = 9, points = 90 "
                                   "WHERE user_id = ?", (name, user))
    await add_event(store, 3, "taken", at(2026, 11, 21, 9), actor=201)
    await add_event(store, 1, "taken", at(2026, 10, 21, 9), actor=202)     # not in November
    built = build(store, Clock(at(2026, 12, 1)))
    scope = await unit_scope(store, await store.map.get("C01"))
    month = periods.month("2026-11", at(2026, 1, 1).tzinfo)
    buildings = await built.schedule.boards.board("buildings", scope, month)
    assert [(b.name, b.values["resolved"], b.values["rating"]) for b in buildings.lines] == [
        ("1栋 (B01010101)", 2, "3.7"), ("2栋 (B01010102)", 1, "3.0")]
    party = await built.schedule.boards.board("party", scope, month)
    assert [(p.name, p.values["taken"], p.values["hours"]) for p in party.lines] == [
        ("王芳", 1, "0"), ("孙丽", 0, "6.5")]          # 李强 did nothing in November
    volunteers = await built.schedule.boards.board("volunteers", scope, month)
    assert [(v.name, v.values["hours"]) for v in volunteers.lines] == [
        ("孙丽", "6.5"), ("赵敏", "4")]   # 孙丽's 4 h at the community's horn count; 周杰: none
    grid2 = await unit_scope(store, await store.map.get("G0102"))
    assert [(v.name, v.values["hours"]) for v in (await built.schedule.boards.board(
        "volunteers", grid2, month)).lines] == [("赵敏", "1")]   # served at G0102's horn
    text = built.schedule.boards.text(await built.schedule.boards.board(
        "party", await unit_scope(store, await store.map.get("G0101")), month), "zh-Hans")
    assert "党员先锋榜" in text and "1. 王芳 — 接单 1 · 0 小时 · 90 积分" in text
    quiet = periods.month("2026-08", at(2026, 1, 1).tzinfo)
    text = built.schedule.boards.text(await built.schedule.boards.board(
        "volunteers", scope, quiet), "en")
    assert "Volunteer stars" in text and "No one on this board yet" in text


def test_board_arguments():
    assert parse_board_args([]) == (("volunteers", "party", "buildings", "departments"),
                                    "quarter")
    assert parse_board_args(["year", "party"]) == (("party",), "year")
    assert parse_board_args(["Buildings"]) == (("buildings",), "quarter")
    assert parse_board_args(["party", "party"]) is None
    assert parse_board_args(["everything"]) is None


async def test_cli_report_writes_the_same_files(tmp_path, monkeypatch, capsys):
    from openpyxl import load_workbook

    from storage.store import Store

    db = tmp_path / "g.db"
    store = await Store.open_sqlite(str(db))
    try:
        await november(store)
    finally:
        await store.close()
    monkeypatch.setenv("GRIDHORN_DATABASE_URL", f"sqlite:///{db}")
    out = tmp_path / "out"
    assert await _run_cli(["report", "2026-11", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    names = sorted(p.name for p in out.iterdir())
    assert names == ["gridhorn-report-2026-11.png", "gridhorn-report-2026-11.txt",
                     "gridhorn-report-2026-11.xlsx"]
    assert str(out) in printed
    text = (out / "gridhorn-report-2026-11.txt").read_text(encoding="utf-8")
    assert "一月一公示 · 2026-11 · 全市" in text and "<b>" not in text and "收到 3 · 办结 3" in text
    book = load_workbook(out / "gridhorn-report-2026-11.xlsx")
    assert book["汇总"]["D5"].value == 3
    assert await _run_cli(["report", "2026-13", "--out", str(out)]) == 2
    assert "2026-13" in capsys.readouterr().err


async def _run_cli(argv):
    """`gridhorn` runs its own event loop: run it in a thread from this async test."""
    import asyncio

    return await asyncio.to_thread(main, argv)


@pytest.mark.parametrize("locale", ["zh-Hans", "zh-Hant", "en"])
async def test_every_language_renders_the_files(store, locale):
    await november(store)
    built, report = await community_report(store)
    files = await built.schedule.reports.files(report, locale)
    assert files.chart.startswith(b"\x89PNG") and files.workbook.startswith(b"PK")
