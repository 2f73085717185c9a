"""The report's chart (PNG, matplotlib Agg) and workbook (XLSX, openpyxl).

Chinese labels need a CJK font, which a fresh machine lacks (matplotlib then draws empty boxes
and only warns). The font comes from a PyPI package (`mplfonts`: Noto Sans CJK SC, whose OTF
also holds the traditional glyphs) and is loaded by its path, never looked up by name.

matplotlib and openpyxl are imported inside the functions that draw, on purpose: they take
about a second and tens of megabytes to load, which the bot spends only when a report is
drawn (once a month, or on `/report`), not at every start.
"""

from __future__ import annotations

import importlib.util
import io
import threading
from datetime import datetime, tzinfo
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.i18n import DEFAULT_LOCALE, catalog
from bot.labels import DOMAIN, SOURCE, STATUS, URGENCY
from bot.services.checkpoints import MATTER_KEYS
from bot.services.report_data import GridStats, Report

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType

FONT_FILE = "NotoSansCJKsc-Regular.otf"
_LOCK = threading.Lock()  # matplotlib's settings are global: one drawing at a time
COLORS = ("#c0392b", "#27ae60", "#e67e22", "#2980b9")


def plain(locale: str, key: str, **values: object) -> str:
    """A catalog text with values put in as they are (no HTML here: images and sheets)."""
    text = catalog(locale).get(key) or catalog(DEFAULT_LOCALE).get(key, key)
    return text.format(**values) if values else text


def font_path() -> Path:
    """The CJK font file shipped by the `mplfonts` package (found without importing it)."""
    spec = importlib.util.find_spec("mplfonts")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the mplfonts package (a CJK font for charts) is not installed")
    path = Path(list(spec.submodule_search_locations)[0]) / "fonts" / FONT_FILE
    if not path.is_file():
        raise RuntimeError(f"mplfonts has no {FONT_FILE}")
    return path


@lru_cache(maxsize=1)
def cjk_family() -> str:
    """Register the CJK font with matplotlib (by path) and return its family name."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import font_manager

    path = font_path()
    font_manager.fontManager.addfont(str(path))
    return font_manager.FontProperties(fname=str(path)).get_name()


def chart_settings() -> dict[RcKeyType, Any]:
    return {"font.family": "sans-serif",
            "font.sans-serif": [cjk_family(), "DejaVu Sans"],
            "axes.unicode_minus": False}


def render_both(report: Report, locale: str, tz: tzinfo) -> tuple[bytes, bytes]:
    return render_chart(report, locale), render_workbook(report, locale, tz)


def render_chart(report: Report, locale: str) -> bytes:
    """Grouped bars per grid: received, resolved, overdue, patrols."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    with _LOCK, matplotlib.rc_context(chart_settings()):
        figure = chart_figure(report, locale)
        FigureCanvasAgg(figure)
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
    return buffer.getvalue()


def chart_figure(report: Report, locale: str) -> Any:
    """The chart as a matplotlib Figure (call under `chart_settings()`)."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    rows = list(report.grids)
    width = min(20.0, max(8.0, 1.2 * len(rows) + 3))
    figure = Figure(figsize=(width, 5.2), dpi=110, layout="constrained")
    axes = figure.add_subplot()
    title_key = "chart.title_so_far" if report.so_far else "chart.title"
    axes.set_title(plain(locale, title_key, scope=report.scope.label(locale),
                         month=report.month), fontsize=15)
    series = [(plain(locale, "chart.received"), [r.received for r in rows]),
              (plain(locale, "chart.resolved"), [r.resolved for r in rows]),
              (plain(locale, "chart.overdue"), [r.overdue for r in rows]),
              (plain(locale, "chart.patrols"), [r.patrols for r in rows])]
    if not rows:
        axes.text(0.5, 0.5, plain(locale, "chart.no_grids"), ha="center", va="center",
                  fontsize=14, transform=axes.transAxes)
        axes.set_axis_off()
        return figure
    bar = 0.8 / len(series)
    positions = range(len(rows))
    for index, ((label, values), color) in enumerate(zip(series, COLORS, strict=True)):
        bars = axes.bar([p - 0.4 + bar * (index + 0.5) for p in positions], values, bar,
                        label=label, color=color)
        axes.bar_label(bars, padding=2, fontsize=9)
    axes.set_xticks(list(positions), [_grid_label(locale, r) for r in rows],
                    rotation=30 if len(rows) > 6 else 0,
                    ha="right" if len(rows) > 6 else "center")
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    top = max([max(values) for _, values in series] + [0])
    axes.set_ylim(0, max(1, top) * 1.18)
    axes.set_ylabel(plain(locale, "chart.count"))
    axes.legend(loc="upper right", ncols=4, frameon=False)
    axes.spines[["top", "right"]].set_visible(False)
    return figure


def _grid_label(locale: str, row: GridStats) -> str:
    rating = "—" if row.rating is None else f"{row.rating:.1f}★"
    return f"{row.name}\n{plain(locale, 'chart.rating_short', rating=rating)}"


def render_workbook(report: Report, locale: str, tz: tzinfo) -> bytes:
    """One sheet per table: the grids, the tickets of the month, the patrols."""
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    book = Workbook()
    summary = book.worksheets[0]  # a new workbook's one sheet (`active` may be a chartsheet)
    summary.title = plain(locale, "xlsx.sheet_summary")
    summary.append([plain(locale, "xlsx.title", scope=report.scope.label(locale),
                          month=report.month)])
    summary.append([plain(locale, "xlsx.period"), _local(report.start.timestamp(), tz),
                    _local(report.end.timestamp(), tz)])
    summary.append([])
    header = [plain(locale, key) for key in (
        "xlsx.grid_code", "xlsx.grid", "xlsx.community", "xlsx.received", "xlsx.resolved",
        "xlsx.overdue", "xlsx.median_hours", "xlsx.rating", "xlsx.ratings", "xlsx.horns",
        "xlsx.volunteer_hours", "xlsx.patrols")]
    summary.append(header)
    for row in report.grids:
        summary.append(_summary_row(row))
    summary.append(_summary_row(report.total, plain(locale, "xlsx.total")))
    for cell in summary[4] + summary[1]:
        cell.font = Font(bold=True)
    if report.by_source:  # SPEC §11: the month's tickets by where they came from
        summary.append([])
        summary.append([plain(locale, "xlsx.by_source"), plain(locale, "xlsx.received")])
        summary[summary.max_row][0].font = Font(bold=True)
        for source, count in report.by_source:
            summary.append([plain(locale, SOURCE[source]), count])

    tickets = book.create_sheet(plain(locale, "xlsx.sheet_tickets"))
    tickets.append([plain(locale, key) for key in (
        "xlsx.ticket", "xlsx.grid", "xlsx.building", "xlsx.domain", "xlsx.urgency",
        "xlsx.status", "xlsx.received_at", "xlsx.resolved_at", "xlsx.hours_to_resolve",
        "xlsx.overdue", "xlsx.ratings_given", "xlsx.ticket_title", "xlsx.source",
        "xlsx.source_ref", "xlsx.caller_name", "xlsx.caller_phone")])
    start, end = report.start.timestamp(), report.end.timestamp()
    for x in report.tickets:
        resolved_here = x.first_resolved_at is not None and start <= x.first_resolved_at < end
        tickets.append([
            x.id, _name(report, x.grid_code), _name(report, x.building_code),
            plain(locale, DOMAIN[x.domain]), plain(locale, URGENCY[x.urgency]),
            plain(locale, STATUS[x.status]), _local(x.created_at, tz),
            _local(x.first_resolved_at, tz),
            round((x.first_resolved_at - x.created_at) / 3600, 2)
            if resolved_here and x.first_resolved_at is not None else None,
            plain(locale, "xlsx.yes") if x.overdue_in_period else "",
            ", ".join(str(r) for r in x.ratings_in_period),
            title_of_text(x.text), plain(locale, SOURCE[x.source]), x.source_ref or "",
            x.caller_name or "", x.caller_phone or ""])
    for cell in tickets[1]:
        cell.font = Font(bold=True)

    patrols = book.create_sheet(plain(locale, "xlsx.sheet_patrols"))
    patrols.append([plain(locale, key) for key in (
        "xlsx.patrol_at", "xlsx.grid", "xlsx.patrol_by", "xlsx.location", "xlsx.note")])
    for patrol in report.patrols:
        person = report.people.get(patrol.user_id)
        patrols.append([_local(patrol.at, tz), _name(report, patrol.grid_code),
                        person.display_name if person else str(patrol.user_id),
                        patrol.location or "", patrol.note or ""])
    for cell in patrols[1]:
        cell.font = Font(bold=True)
    if report.checkpoints:
        _checkpoints_sheet(book, report, locale)

    spent = book.create_sheet(plain(locale, "xlsx.sheet_redemptions"))  # SPEC §13
    spent.append([plain(locale, key) for key in (
        "xlsx.partner_code", "xlsx.partner", "xlsx.community", "xlsx.redemptions",
        "xlsx.points_spent")])
    for partner in report.redemptions:
        spent.append([partner.partner_code, partner.partner_name,
                      _name(report, partner.community_code), partner.redemptions,
                      partner.points])
    for cell in spent[1]:
        cell.font = Font(bold=True)

    for sheet in book.worksheets:
        for index, column in enumerate(sheet.iter_cols(min_row=1, max_row=sheet.max_row), 1):
            longest = max((len(str(c.value)) for c in column if c.value is not None), default=4)
            sheet.column_dimensions[get_column_letter(index)].width = min(48, max(8, longest + 4))
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _checkpoints_sheet(book: Any, report: Report, locale: str) -> None:
    """Patrol checkpoints' coverage (SPEC §13): per grid, then each of its matters."""
    from openpyxl.styles import Font
    sheet = book.create_sheet(plain(locale, "xlsx.sheet_checkpoints"))
    sheet.append([plain(locale, key) for key in (
        "xlsx.grid", "xlsx.cp_matter", "xlsx.cp_count", "xlsx.cp_visited", "xlsx.cp_missed")])
    for total, parts in report.checkpoints:
        for row in (total, *parts):
            matter = plain(locale, MATTER_KEYS[row.matter]) if row.matter in MATTER_KEYS \
                else plain(locale, "xlsx.cp_all_matters")
            sheet.append([_name(report, row.grid.code), matter, row.total_checkpoints,
                          row.visited, row.missed])
    for cell in sheet[1]:
        cell.font = Font(bold=True)


def _summary_row(row: GridStats, label: str | None = None) -> list[Any]:
    return [row.code if label is None else None, row.name if label is None else label,
            row.community or None, row.received, row.resolved, row.overdue,
            None if row.median_hours is None else round(row.median_hours, 2),
            None if row.rating is None else round(row.rating, 2), row.ratings, row.horns,
            row.volunteer_hours, row.patrols]


def _name(report: Report, code: str) -> str:
    unit = report.units.get(code)
    return f"{unit.name} ({code})" if unit else code


def _local(moment: float | None, tz: tzinfo) -> datetime | None:
    """A naive local time (spreadsheets keep no time zone)."""
    if moment is None:
        return None
    return datetime.fromtimestamp(moment, tz).replace(tzinfo=None, microsecond=0)


def title_of_text(text: str) -> str:
    first = " ".join(text.split())
    return first if len(first) <= 60 else first[:59] + "…"
