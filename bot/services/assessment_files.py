"""The annual assessment's workbook (SPEC §12): one sheet per level, drawn with openpyxl.

Each sheet: a title row, the weights row, an empty row, the header (row 4), then one row per
grid, person, member unit or department. Rates and scores are numbers (a rate 0–1 formatted
as a percentage); a measure without data is an empty cell.
"""

from __future__ import annotations

import io
from typing import Any

from bot.services.assessment_data import Assessment, Row
from bot.services.report_files import plain

HEADER_ROW = 4
MONTH_COLUMNS = tuple(f"{m:02d}" for m in range(1, 13))


def sheet_title(locale: str, level: str) -> str:
    titles = {
        "grids": plain(locale, "assess.sheet_grids"),
        "grid_leaders": plain(locale, "assess.sheet_grid_leaders"),
        "grid_workers": plain(locale, "assess.sheet_grid_workers"),
        "building_heads": plain(locale, "assess.sheet_building_heads"),
        "member_units": plain(locale, "assess.sheet_member_units"),
        "departments": plain(locale, "assess.sheet_departments"),
    }
    return titles[level][:31]


def header(locale: str) -> list[str]:
    first = [plain(locale, key) for key in (
        "assess.col_code", "assess.col_name", "assess.col_unit", "assess.col_tickets",
        "assess.col_on_time", "assess.col_late", "assess.col_on_time_rate",
        "assess.col_rating", "assess.col_ratings", "assess.col_patrols_done",
        "assess.col_patrols_due", "assess.col_horns", "assess.col_meetings")]
    months = [plain(locale, "assess.col_month", month=m) for m in MONTH_COLUMNS]
    last = [plain(locale, key) for key in (
        "assess.col_evaluation", "assess.col_composite", "assess.col_previous",
        "assess.col_flag")]
    return first + months + last


def _row(locale: str, row: Row) -> list[Any]:
    return [row.key, row.name, row.unit, row.tickets, row.on_time, row.late,
            row.on_time_rate, None if row.rating is None else round(row.rating, 2),
            row.ratings, row.patrols_done, row.patrols_due, row.horns, row.meetings,
            *row.months,
            None if row.evaluation is None else round(row.evaluation, 2),
            row.composite, row.previous,
            plain(locale, "assess.flag_text") if row.flagged else ""]


def render_workbook(assessment: Assessment, locale: str) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    book = Workbook()
    weights = ", ".join(f"{name}={weight}" for name, weight in assessment.weights)
    columns = header(locale)
    rate_column = columns.index(plain(locale, "assess.col_on_time_rate")) + 1
    for index, level in enumerate(("grids", "grid_leaders", "grid_workers", "building_heads",
                                   "member_units", "departments")):
        sheet = book.worksheets[0] if index == 0 else book.create_sheet()
        sheet.title = sheet_title(locale, level)
        sheet.append([plain(locale, "assess.sheet_title", year=assessment.year,
                            scope=assessment.scope.label(locale),
                            level=sheet_title(locale, level))])
        sheet.append([plain(locale, "assess.weights_row", weights=weights,
                            band=f"{assessment.band:g}")])
        sheet.append([])
        sheet.append(columns)
        for cell in sheet[HEADER_ROW] + sheet[1]:
            cell.font = Font(bold=True)
        for row in assessment.sheets[level]:
            sheet.append(_row(locale, row))
            sheet.cell(sheet.max_row, rate_column).number_format = "0.0%"
        sheet.freeze_panes = sheet.cell(HEADER_ROW + 1, 3)
        for number in range(1, len(columns) + 1):
            sheet.column_dimensions[get_column_letter(number)].width = 14 if number > 3 else 18
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


__all__ = ["HEADER_ROW", "header", "render_workbook", "sheet_title"]
