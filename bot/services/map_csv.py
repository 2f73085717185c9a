"""Reading a CSV map file: one building per row, with its community, grid and estate; or, in
the second shape (told by its header), one member unit per row with its community (SPEC §10);
or, in the third, one partner shop of the time bank per row with its community (SPEC §13).

A parent repeats on every row of its buildings; it is taken from its first row, and a later row
that names it or places it otherwise is an error, so the tree is the same as a YAML file's.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass

from bot.services.map_specs import (
    Collector,
    PartnerSpec,
    UnitSpec,
    check_chat,
    check_code,
    check_member_type,
    check_name,
)

CSV_COLUMNS: tuple[str, ...] = (
    "community_code", "community_name", "grid_code", "grid_name", "estate_code", "estate_name",
    "building_code", "building_name", "chat", "thread")

#: the second shape: member units (SPEC §10), each under a community of the map or the file
MEMBER_COLUMNS: tuple[str, ...] = (
    "community_code", "member_code", "member_name", "member_type", "chat")

#: the third shape: partner shops (SPEC §13), each under a community of the map or the file
PARTNER_COLUMNS: tuple[str, ...] = (
    "community_code", "partner_code", "partner_name", "partner_address", "chat")

_INT = re.compile(r"[+-]?[0-9]+")


@dataclass
class _Seen:
    kind: str
    name: str
    parent_code: str | None
    line: int


def parse_csv(c: Collector, text: str) -> None:
    """Read a CSV map file into `c`; a bad header ends it, a bad row is reported and skipped."""
    c.from_csv = True
    reader = csv.reader(io.StringIO(text, newline=""))
    line = 1
    header: list[str] | None = None
    columns = CSV_COLUMNS
    seen: dict[str, _Seen] = {}
    for row in reader:
        start, line = line, reader.line_num + 1
        if not any(cell.strip() for cell in row):
            continue
        if header is None:
            header = [cell.strip() for cell in row]
            if "member_code" in header:
                columns = MEMBER_COLUMNS
            elif "partner_code" in header:
                columns = PARTNER_COLUMNS
            if not _check_header(c, header, start, columns):
                return
            continue
        if len(row) != len(header):
            c.error(start, None, f"the row has {len(row)} fields, the header {len(header)}")
            continue
        cells = dict(zip(header, (cell.strip() for cell in row), strict=True))
        if columns is MEMBER_COLUMNS:
            _read_member(c, cells, start)
        elif columns is PARTNER_COLUMNS:
            _read_partner(c, cells, start)
        else:
            _read_row(c, cells, start, seen)
    if header is None:
        c.error(1, None, "the file is empty (expected the header " + ",".join(CSV_COLUMNS) + ")")


def _check_header(c: Collector, header: list[str], line: int,
                  columns: tuple[str, ...]) -> bool:
    ok = True
    for column in columns:
        if column not in header:
            c.error(line, None, f"missing column {column}")
            ok = False
    for i, column in enumerate(header):
        if column not in columns:
            c.error(line, None, f"unknown column {column!r} (the header is "
                                f"{','.join(columns)})")
            ok = False
        elif column in header[:i]:
            c.error(line, None, f"column {column} appears twice")
            ok = False
    return ok


def _read_row(c: Collector, row: dict[str, str], line: int, seen: dict[str, _Seen]) -> None:
    parent: str | None = None
    parent_ok = True
    building: str | None = None
    for kind in ("community", "grid", "estate", "building"):
        raw, name = row[f"{kind}_code"], row[f"{kind}_name"]
        code: str | None = None
        if not raw:
            c.error(line, None, f"{kind}_code is empty")
        elif check_code(c, raw, line):
            code = raw
        if name:
            name = check_name(c, name, code or raw or None, line, kind) or ""
        else:
            c.error(line, code or raw or None, f"{kind}_name is empty")
        if code is None or not name:
            parent, parent_ok = None, False
            continue
        first = seen.get(code)
        if kind == "building" or first is None:
            if c.claim_code(code, kind, line):
                seen[code] = _Seen(kind, name, parent, line)
                if parent_ok:
                    c.units.append(UnitSpec(
                        code=code, kind=kind, name=name, parent_code=parent, line=line,
                        position=c.next_position(kind, parent)))
                building = code if kind == "building" else None
        elif first.kind != kind:
            c.claim_code(code, kind, line)
        else:
            if first.name != name:
                c.error(line, code, f"{kind} {code} is named {first.name} at line {first.line}, "
                                    f"here {name}")
            if parent_ok and first.parent_code != parent:
                c.error(line, code, f"{kind} {code} is under {first.parent_code} at line "
                                    f"{first.line}, here under {parent}")
        parent = code
    chat = thread = None
    bad = False
    for key in ("chat", "thread"):
        value = row[key]
        if value and not _INT.fullmatch(value):
            c.error(line, building or row["building_code"] or None,
                    f"{key} must be {'an' if key == 'chat' else 'a positive'} integer, "
                    f"not {value!r}")
            bad = True
    if not bad:
        chat = int(row["chat"]) if row["chat"] else None
        thread = int(row["thread"]) if row["thread"] else None
        check_chat(c, chat, thread, building, line, line)


def _attached(c: Collector, row: dict[str, str], line: int, kind: str
              ) -> tuple[str, str | None, str | None, str]:
    """The fields a member unit's and a partner's rows share: the community they sit under
    (empty when bad), their code (None when bad or taken), the code to name them by in
    errors, and their name (empty when bad)."""
    community = row["community_code"]
    raw = row[f"{kind}_code"]
    code: str | None = None
    if not community:
        c.error(line, raw or None, "community_code is empty")
    elif not check_code(c, community, line):
        community = ""
    if not raw:
        c.error(line, None, f"{kind}_code is empty")
    elif check_code(c, raw, line) and c.claim_code(raw, kind, line):
        code = raw
    shown = code or raw or None
    name = row[f"{kind}_name"]
    if name:
        name = check_name(c, name, shown, line, kind) or ""
    else:
        c.error(line, shown, f"{kind}_name is empty")
    return community, code, shown, name


def _read_member(c: Collector, row: dict[str, str], line: int) -> None:
    """A member unit's row: its community (of the map or this file), code, name, type, chat."""
    community, code, shown, name = _attached(c, row, line, "member")
    member_type = check_member_type(c, row["member_type"] or None, shown, line)
    chat = row["chat"]
    if chat and not _INT.fullmatch(chat):
        c.error(line, shown, f"chat must be an integer, not {chat!r}")
    elif chat:
        check_chat(c, int(chat), None, code, line, line)
    if code is not None and community and name and member_type is not None:
        c.units.append(UnitSpec(code=code, kind="member", name=name, parent_code=community,
                                line=line, member_type=member_type,
                                position=c.next_position("member", community)))


def _read_partner(c: Collector, row: dict[str, str], line: int) -> None:
    """A partner shop's row (SPEC §13): its community (of the map or this file), code, name,
    and optional address and chat (the shop's own chat), as a YAML file's `partners` give
    them. Partners take their order within a community from the rows."""
    community, code, shown, name = _attached(c, row, line, "partner")
    address: str | None = row["partner_address"]
    if address:
        address = check_name(c, address, shown, line, "partner address")
    chat: int | None = None
    chat_ok = True
    if row["chat"]:
        chat = int(row["chat"]) if _INT.fullmatch(row["chat"]) else None
        if not chat:
            c.error(line, shown, "chat must be a non-zero integer (a group's id, "
                                 f"e.g. -1001234567890), not {row['chat']!r}")
            chat_ok = False
    if code is not None and community and name and address is not None and chat_ok:
        position = sum(1 for p in c.partners if p.community == community)
        c.partners.append(PartnerSpec(code=code, community=community, name=name,
                                      address=address, chat_id=chat, position=position,
                                      line=line))
