"""The map file (SPEC §2): `gridhorn map import FILE` and `gridhorn map export [FILE]`.

A map file describes communities 社区 → grids 网格 → estates 小区 → buildings 楼栋 and the
departments 部门 outside the tree, in YAML, or as CSV with one building per row. Import checks
the whole file first and reports every problem with its line, the code concerned and the reason;
it changes nothing unless the whole file is right, and then writes it in one transaction.

What a file leaves out is kept: units it does not mention, a unit's chat binding when it has no
`chat`, a grid's patrol when it has no `patrol` key (`patrol: null` clears it), a department's
domains when it has no `domains` key.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from datetime import UTC

import yaml
from pydantic import BaseModel
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from bot.cron import cron_trigger
from storage.models import Binding, Unit, UnitKind
from storage.store import Store

DOMAINS: tuple[str, ...] = ("red", "orange", "gold", "green", "cyan", "blue", "purple")
PATROLS: tuple[str, ...] = ("daily", "weekly", "monthly")
CSV_COLUMNS: tuple[str, ...] = (
    "community_code", "community_name", "grid_code", "grid_name", "estate_code", "estate_name",
    "building_code", "building_name", "chat", "thread")

_CODE = re.compile(r"[A-Za-z0-9_-]{1,32}")
_INT = re.compile(r"[+-]?[0-9]+")
_NULL_TAG = "tag:yaml.org,2002:null"
_INT_TAG = "tag:yaml.org,2002:int"
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# kind -> (key of its children list, the children's kind)
_CHILDREN: dict[str, tuple[str, UnitKind]] = {
    "community": ("grids", "grid"),
    "grid": ("estates", "estate"),
    "estate": ("buildings", "building"),
}
_KEYS: dict[str, tuple[str, ...]] = {
    "community": ("code", "name", "chat", "thread", "grids"),
    "grid": ("code", "name", "chat", "thread", "patrol", "estates"),
    "estate": ("code", "name", "chat", "thread", "buildings"),
    "building": ("code", "name", "chat", "thread"),
    "department": ("code", "name", "chat", "thread", "domains"),
}
_TOP_KEYS = ("communities", "departments")


class MapError(BaseModel):
    """One problem found in a map file."""

    line: int | None
    code: str | None
    reason: str

    def __str__(self) -> str:
        where = f"line {self.line}" if self.line is not None else "file"
        return f"{where}: {self.code}: {self.reason}" if self.code else f"{where}: {self.reason}"


class MapImportResult(BaseModel):
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    bindings: int = 0
    errors: list[MapError] = []

    @property
    def ok(self) -> bool:
        return not self.errors


class UnitSpec(BaseModel):
    """A unit as the file describes it; `None` domains and `patrol_given=False` mean "keep"."""

    code: str
    kind: UnitKind
    name: str
    parent_code: str | None = None
    position: int = 0
    line: int
    domains: tuple[str, ...] | None = None
    patrol: str | None = None
    patrol_given: bool = False


class BindingSpec(BaseModel):
    """A unit's chat as the file gives it (thread 0: the whole chat)."""

    unit_code: str
    chat_id: int
    thread_id: int = 0
    line: int


@dataclass
class _Collector:
    """What parsing found so far; shared by the YAML and CSV readers."""

    units: list[UnitSpec] = field(default_factory=list)
    bindings: list[BindingSpec] = field(default_factory=list)
    errors: list[MapError] = field(default_factory=list)
    codes: dict[str, tuple[int, str]] = field(default_factory=dict)
    chats: dict[tuple[int, int], tuple[str, int]] = field(default_factory=dict)
    positions: dict[tuple[str, str | None], int] = field(default_factory=dict)
    from_csv: bool = False

    def error(self, line: int | None, code: str | None, reason: str) -> None:
        self.errors.append(MapError(line=line, code=code, reason=reason))

    def claim_code(self, code: str, kind: str, line: int) -> bool:
        """Record the first use of `code`; False (and an error) when it is taken."""
        first = self.codes.get(code)
        if first is None:
            self.codes[code] = (line, kind)
            return True
        first_line, first_kind = first
        also = "" if first_kind == kind else f", as {_a(first_kind)}"
        self.error(line, code, f"duplicate code {code} (first at line {first_line}{also})")
        return False

    def next_position(self, kind: str, parent_code: str | None) -> int:
        # Communities and departments both have no parent: they count apart.
        key = (kind if parent_code is None else "child", parent_code)
        position = self.positions.get(key, 0)
        self.positions[key] = position + 1
        return position

    def add_binding(self, code: str, chat: int, thread: int, line: int) -> None:
        other = self.chats.get((chat, thread))
        if other is not None:
            self.error(line, code, f"{_chat_text(chat, thread)} is also given to {other[0]} "
                                   f"(line {other[1]})")
            return
        self.chats[(chat, thread)] = (code, line)
        self.bindings.append(BindingSpec(unit_code=code, chat_id=chat, thread_id=thread,
                                         line=line))


def _a(kind: str) -> str:
    return f"an {kind}" if kind[:1] in "aeiou" else f"a {kind}"


def _chat_text(chat: int, thread: int) -> str:
    return f"chat {chat} thread {thread}" if thread else f"chat {chat}"


def _check_code(c: _Collector, raw: str, line: int) -> bool:
    if _CODE.fullmatch(raw):
        return True
    c.error(line, raw[:40] or None,
            f"bad code {raw!r}: use 1-32 letters, digits, '_' or '-'")
    return False


def _check_name(c: _Collector, name: str, code: str | None, line: int, kind: str) -> str | None:
    name = name.strip()
    if not name:
        c.error(line, code, f"{kind} name is empty")
        return None
    if any(ch < " " or ch == "\x7f" for ch in name):
        c.error(line, code, f"{kind} name must be one line of text")
        return None
    return name


def _check_patrol(c: _Collector, value: str, code: str | None, line: int) -> str | None:
    value = " ".join(value.split())
    if value in PATROLS:
        return value
    try:
        # crontab's weekdays (0 and 7 = Sunday), as the scheduler reads them
        cron_trigger(value, UTC)
    except ValueError as e:
        c.error(line, code, f"bad patrol {value!r}: use daily, weekly, monthly or a 5-field "
                            f"crontab ({e})")
        return None
    return value


def _check_chat(c: _Collector, chat: int | None, thread: int | None, code: str | None,
                line: int, thread_line: int) -> None:
    """Validate a parsed chat/thread pair and record the binding."""
    ok = True
    if chat is not None and chat == 0:
        c.error(line, code, "chat must be a non-zero integer (a group's id is negative)")
        ok = False
    if thread is not None:
        if thread <= 0:
            c.error(thread_line, code, "thread must be a positive integer")
            ok = False
        if chat is None:
            c.error(thread_line, code, "thread is given without chat")
            ok = False
    if ok and chat is not None and code is not None:
        c.add_binding(code, chat, thread or 0, line)


class _YamlReader:
    def __init__(self, c: _Collector) -> None:
        self.c = c
        self.constructor = SafeConstructor()

    @staticmethod
    def line(node: Node) -> int:
        return node.start_mark.line + 1

    def text(self, node: Node) -> str | None:
        """A scalar's text as written (so `code: 0101` stays "0101"); None for null/non-scalars."""
        if isinstance(node, ScalarNode) and node.tag != _NULL_TAG:
            return str(node.value)
        return None

    def integer(self, node: Node) -> int | None:
        if isinstance(node, ScalarNode) and node.tag == _INT_TAG:
            try:
                return int(self.constructor.construct_yaml_int(node))
            except ValueError:
                return None
        return None

    def mapping(self, node: Node, allowed: tuple[str, ...], what: str,
                code_of: str | None = None) -> dict[str, tuple[Node, Node]]:
        """The keys of a mapping node; errors for non-text, duplicate and unknown keys."""
        pairs: dict[str, tuple[Node, Node]] = {}
        assert isinstance(node, MappingNode)
        for key_node, value_node in node.value:
            key = self.text(key_node)
            if key is None:
                self.c.error(self.line(key_node), code_of, f"a key of {_a(what)} must be text")
                continue
            if key in pairs:
                self.c.error(self.line(key_node), code_of,
                             f"duplicate key {key!r} (first at line {self.line(pairs[key][0])})")
                continue
            pairs[key] = (key_node, value_node)
            if key not in allowed:
                self.c.error(self.line(key_node), code_of,
                             f"unknown key {key!r} for {_a(what)} (allowed: {', '.join(allowed)})")
        return pairs

    def items(self, key_node: Node, node: Node, code_of: str | None) -> list[Node]:
        if isinstance(node, ScalarNode) and node.tag == _NULL_TAG:
            return []
        if not isinstance(node, SequenceNode):
            self.c.error(self.line(key_node), code_of, f"{self.text(key_node)} must be a list")
            return []
        return list(node.value)

    def read(self, root: Node | None) -> None:
        if root is None:
            self.c.error(1, None, "the file is empty (expected communities: and departments:)")
            return
        if not isinstance(root, MappingNode):
            self.c.error(self.line(root), None,
                         "the file must be a mapping with communities: and departments:")
            return
        pairs = self.mapping(root, _TOP_KEYS, "map file")
        if "communities" in pairs:
            for item in self.items(*pairs["communities"], None):
                self.unit(item, "community", None)
        if "departments" in pairs:
            for item in self.items(*pairs["departments"], None):
                self.unit(item, "department", None)

    def unit(self, node: Node, kind: UnitKind, parent_code: str | None) -> None:
        c = self.c
        line = self.line(node)
        if not isinstance(node, MappingNode):
            c.error(line, None, f"each {kind} must be a mapping with code and name")
            return
        code_node = next((v for k, v in node.value if self.text(k) == "code"), None)
        raw_code = self.text(code_node) if code_node is not None else None
        pairs = self.mapping(node, _KEYS[kind], kind, raw_code)

        code: str | None = None
        if "code" not in pairs:
            c.error(line, None, f"{kind} without code")
        else:
            key_node, value_node = pairs["code"]
            if raw_code is None:
                c.error(self.line(key_node), None, f"{kind} code is empty or not text")
            elif _check_code(c, raw_code, self.line(value_node)):
                code = raw_code
                if not c.claim_code(code, kind, self.line(key_node)):
                    code = None

        name: str | None = None
        shown = code or raw_code
        if "name" not in pairs:
            c.error(line, shown, f"{kind} without name")
        else:
            key_node, value_node = pairs["name"]
            text = self.text(value_node)
            if isinstance(value_node, ScalarNode) and value_node.tag == _NULL_TAG:
                c.error(self.line(key_node), shown, f"{kind} name is empty")
            elif text is None:
                c.error(self.line(key_node), shown, f"{kind} name must be text")
            else:
                name = _check_name(c, text, shown, self.line(key_node), kind)

        chat = thread = None
        chat_line = thread_line = line
        bad_chat = False
        if "chat" in pairs:
            key_node, value_node = pairs["chat"]
            chat_line = self.line(key_node)
            chat = self.integer(value_node)
            if chat is None:
                c.error(chat_line, shown, "chat must be an integer (a group's id, e.g. "
                                          "-1001234567890)")
                bad_chat = True
        if "thread" in pairs:
            key_node, value_node = pairs["thread"]
            thread_line = self.line(key_node)
            thread = self.integer(value_node)
            if thread is None:
                c.error(thread_line, shown, "thread must be a positive integer")
                bad_chat = True
        if not bad_chat:
            _check_chat(c, chat, thread, code, chat_line, thread_line)

        patrol: str | None = None
        patrol_given = "patrol" in pairs and kind == "grid"
        if patrol_given:
            key_node, value_node = pairs["patrol"]
            if not (isinstance(value_node, ScalarNode) and value_node.tag == _NULL_TAG):
                text = self.text(value_node)
                if text is None:
                    c.error(self.line(key_node), shown,
                            "patrol must be daily, weekly, monthly or a crontab")
                else:
                    patrol = _check_patrol(c, text, shown, self.line(key_node))

        domains: tuple[str, ...] | None = None
        if "domains" in pairs and kind == "department":
            domains = self.domains(*pairs["domains"], shown)

        position = c.next_position(kind, parent_code)
        if code is not None and name is not None:
            c.units.append(UnitSpec(
                code=code, kind=kind, name=name, parent_code=parent_code, position=position,
                line=line, domains=domains, patrol=patrol, patrol_given=patrol_given))

        if kind in _CHILDREN:
            children_key, child_kind = _CHILDREN[kind]
            if children_key in pairs:
                for item in self.items(*pairs[children_key], shown):
                    self.unit(item, child_kind, code)

    def domains(self, key_node: Node, node: Node, code: str | None) -> tuple[str, ...]:
        c = self.c
        line = self.line(key_node)
        if not isinstance(node, SequenceNode):
            c.error(line, code, f"domains must be a list, e.g. [green] (from {', '.join(DOMAINS)})")
            return ()
        found: list[str] = []
        for item in node.value:
            value = self.text(item)
            if value not in DOMAINS:
                c.error(self.line(item), code,
                        f"unknown domain {value!r} (use {', '.join(DOMAINS)})")
            elif value in found:
                c.error(self.line(item), code, f"domain {value} is listed twice")
            else:
                found.append(value)
        return tuple(found)


def _parse_yaml(c: _Collector, text: str) -> None:
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        problem = e.problem or e.context or "invalid YAML"
        c.error(mark.line + 1 if mark else None, None, f"YAML syntax error: {problem}")
        return
    except yaml.reader.ReaderError as e:
        # libyaml reports a byte offset, PyYAML a character offset: find the character itself.
        at = text.find(chr(e.character)) if isinstance(e.character, int) else -1
        c.error(text[:at].count("\n") + 1 if at >= 0 else None, None,
                f"YAML syntax error: character #x{e.character:04x} is not allowed"
                if isinstance(e.character, int) else f"YAML syntax error: {e.reason}")
        return
    except yaml.YAMLError as e:
        c.error(None, None, f"YAML syntax error: {e}")
        return
    _YamlReader(c).read(root)


@dataclass
class _Seen:
    kind: str
    name: str
    parent_code: str | None
    line: int


def _parse_csv(c: _Collector, text: str) -> None:
    c.from_csv = True
    reader = csv.reader(io.StringIO(text, newline=""))
    line = 1
    header: list[str] | None = None
    seen: dict[str, _Seen] = {}
    for row in reader:
        start, line = line, reader.line_num + 1
        if not any(cell.strip() for cell in row):
            continue
        if header is None:
            header = [cell.strip() for cell in row]
            if not _csv_header(c, header, start):
                return
            continue
        if len(row) != len(header):
            c.error(start, None, f"the row has {len(row)} fields, the header {len(header)}")
            continue
        _csv_row(c, dict(zip(header, (cell.strip() for cell in row), strict=True)), start, seen)
    if header is None:
        c.error(1, None, "the file is empty (expected the header " + ",".join(CSV_COLUMNS) + ")")


def _csv_header(c: _Collector, header: list[str], line: int) -> bool:
    ok = True
    for column in CSV_COLUMNS:
        if column not in header:
            c.error(line, None, f"missing column {column}")
            ok = False
    for i, column in enumerate(header):
        if column not in CSV_COLUMNS:
            c.error(line, None, f"unknown column {column!r} (the header is "
                                f"{','.join(CSV_COLUMNS)})")
            ok = False
        elif column in header[:i]:
            c.error(line, None, f"column {column} appears twice")
            ok = False
    return ok


def _csv_row(c: _Collector, row: dict[str, str], line: int, seen: dict[str, _Seen]) -> None:
    parent: str | None = None
    parent_ok = True
    building: str | None = None
    for kind in ("community", "grid", "estate", "building"):
        raw, name = row[f"{kind}_code"], row[f"{kind}_name"]
        code: str | None = None
        if not raw:
            c.error(line, None, f"{kind}_code is empty")
        elif _check_code(c, raw, line):
            code = raw
        if name:
            name = _check_name(c, name, code or raw or None, line, kind) or ""
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
        _check_chat(c, chat, thread, building, line, line)


def _parse(data: bytes, filename: str) -> _Collector:
    c = _Collector()
    lower = filename.lower()
    is_yaml = lower.endswith((".yaml", ".yml"))
    if not is_yaml and not lower.endswith(".csv"):
        c.error(None, None, f"unsupported file type {filename!r}: use .yaml, .yml or .csv")
        return c
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        c.error(line, None, "the file is not UTF-8 text (save it as UTF-8)")
        return c
    if is_yaml:
        _parse_yaml(c, text)
    else:
        _parse_csv(c, text)
    return c


def _sorted(errors: list[MapError]) -> list[MapError]:
    return sorted(errors, key=lambda e: (e.line if e.line is not None else 0))


def parse_map(data: bytes, filename: str) -> tuple[list[UnitSpec], list[BindingSpec],
                                                   list[MapError]]:
    """Read a map file (format from the extension) and check it on its own.

    Returns the units (parents before children, file order), the bindings and every error
    found, by line. When there are errors the specs are a best effort, not to be written.
    """
    c = _parse(data, filename)
    return c.units, c.bindings, _sorted(c.errors)


class _Rejected(Exception):
    def __init__(self, errors: list[MapError]) -> None:
        self.errors = errors


def _check_against_store(c: _Collector, existing: dict[str, Unit],
                         bound: dict[str, Binding]) -> list[MapError]:
    errors: list[MapError] = []
    for spec in c.units:
        old = existing.get(spec.code)
        if old is None:
            continue
        if old.kind != spec.kind:
            errors.append(MapError(line=spec.line, code=spec.code,
                                   reason=f"{spec.code} is {_a(old.kind)} in the map, here "
                                          f"{_a(spec.kind)}"))
        elif c.from_csv and old.parent_code != spec.parent_code:
            errors.append(MapError(line=spec.line, code=spec.code,
                                   reason=f"{spec.kind} {spec.code} is under {old.parent_code} "
                                          f"in the map, here under {spec.parent_code}"))
    # each domain is led by one department (SPEC §2), over the file and the map together
    leader: dict[str, str] = {}
    for unit in existing.values():
        if unit.kind == "department" and unit.code not in {s.code for s in c.units}:
            for domain in unit.domains:
                leader[domain] = unit.code
    for spec in c.units:
        if spec.kind != "department":
            continue
        old = existing.get(spec.code)
        domains = spec.domains if spec.domains is not None else (old.domains if old else ())
        for domain in domains:
            other = leader.setdefault(domain, spec.code)
            if other != spec.code:
                errors.append(MapError(line=spec.line, code=spec.code,
                                       reason=f"domain {domain} is already led by {other}"))
    holder = {(b.chat_id, b.thread_id): b.unit_code for b in bound.values()}
    rebound = {b.unit_code for b in c.bindings}
    for b in c.bindings:
        holding = holder.get((b.chat_id, b.thread_id))
        if holding is not None and holding != b.unit_code and holding not in rebound:
            errors.append(MapError(line=b.line, code=b.unit_code,
                                   reason=f"{_chat_text(b.chat_id, b.thread_id)} is already "
                                          f"bound to {holding}"))
    return errors


async def import_map(store: Store, data: bytes, filename: str) -> MapImportResult:
    """Create or update the map from a file: everything, or nothing when any error is found."""
    c = _parse(data, filename)
    if c.errors and not c.units:
        return MapImportResult(errors=_sorted(c.errors))
    result = MapImportResult()
    try:
        async with store.transaction():
            existing = {u.code: u for u in await store.map.all()}
            bound = {b.unit_code: b for b in await store.map.bindings()}
            errors = c.errors + _check_against_store(c, existing, bound)
            if errors:
                raise _Rejected(_sorted(errors))
            new_bindings = {b.unit_code: b for b in c.bindings}
            for spec in c.units:
                old = existing.get(spec.code)
                unit = Unit(
                    code=spec.code, kind=spec.kind, name=spec.name, parent_code=spec.parent_code,
                    domains=spec.domains if spec.domains is not None
                    else (old.domains if old else ()),
                    patrol=spec.patrol if spec.patrol_given else (old.patrol if old else None),
                    position=spec.position)
                changed = old is None or unit.model_dump() != old.model_dump()
                if changed:
                    await store.map.upsert(unit)
                wanted = new_bindings.get(spec.code)
                current = bound.get(spec.code)
                if wanted is not None and (current is None or (current.chat_id, current.thread_id)
                                           != (wanted.chat_id, wanted.thread_id)):
                    await store.map.bind(spec.code, wanted.chat_id, wanted.thread_id, by=None)
                    result.bindings += 1
                    changed = True
                if old is None:
                    result.created += 1
                elif changed:
                    result.updated += 1
                else:
                    result.unchanged += 1
    except _Rejected as rejected:
        return MapImportResult(errors=rejected.errors)
    return result


def _scalar(value: str) -> str:
    """A string as a YAML scalar on one line, quoted only when YAML needs it."""
    out = yaml.safe_dump(value, allow_unicode=True, width=1 << 30, default_flow_style=True)
    out = out[:-5] if out.endswith("\n...\n") else out.rstrip("\n")
    return json.dumps(value, ensure_ascii=False) if "\n" in out else out


async def export_map(store: Store, header_comment: str | None = None) -> str:
    """The map as YAML in the shape of SPEC §2; the same map always gives the same text."""
    units = await store.map.all()  # by position, then code
    bound = {b.unit_code: b for b in await store.map.bindings()}
    children: dict[str | None, list[Unit]] = {}
    for unit in units:
        children.setdefault(unit.parent_code, []).append(unit)

    lines: list[str] = []
    if header_comment is not None:
        lines += [f"# {part}".rstrip() for part in (header_comment.splitlines() or [""])]

    def emit(unit: Unit, indent: str) -> None:
        lines.append(f"{indent}- code: {_scalar(unit.code)}")
        inner = indent + "  "
        lines.append(f"{inner}name: {_scalar(unit.name)}")
        binding = bound.get(unit.code)
        if binding is not None:
            lines.append(f"{inner}chat: {binding.chat_id}")
            if binding.thread_id:
                lines.append(f"{inner}thread: {binding.thread_id}")
        if unit.kind == "grid" and unit.patrol:
            lines.append(f"{inner}patrol: {_scalar(unit.patrol)}")
        if unit.kind == "department" and unit.domains:
            items = (d if d in DOMAINS else json.dumps(d, ensure_ascii=False)
                     for d in unit.domains)
            lines.append(f"{inner}domains: [{', '.join(items)}]")
        if unit.kind in _CHILDREN:
            key, child_kind = _CHILDREN[unit.kind]
            kids = [u for u in children.get(unit.code, []) if u.kind == child_kind]
            if kids:
                lines.append(f"{inner}{key}:")
                for kid in kids:
                    emit(kid, inner + "  ")

    for key, kind in (("communities", "community"), ("departments", "department")):
        top = [u for u in children.get(None, []) if u.kind == kind]
        if not top:
            lines.append(f"{key}: []")
            continue
        lines.append(f"{key}:")
        for unit in top:
            emit(unit, "  ")
    return "\n".join(lines) + "\n"
