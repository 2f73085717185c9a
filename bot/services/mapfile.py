"""The map file (SPEC §2): `gridhorn map import FILE` and `gridhorn map export [FILE]`.

A map file describes communities 社区 → grids 网格 → estates 小区 → buildings 楼栋, the member
units 成员单位 and partner shops 合作商家 (`partners`, SPEC §13) of each community (SPEC §10; an
estate may name its `property` firm), and the departments 部门 outside the tree, and (YAML only)
the whistle catalogue 吹哨清单 (`whistle_items`: the matters a community may whistle, each to a
department, with its points and its own time to accept) and the grids' patrol checkpoints, in
YAML, or as CSV with one building per row (or one member unit, or one partner shop, per row: a
file shape of its own each, told by the header). Import checks
the whole file first and reports every problem with its line, the code concerned and the reason;
it changes nothing unless the whole file is right, and then writes it in one transaction.

What a file leaves out is kept: units it does not mention, a unit's chat binding when it has no
`chat`, a grid's patrol when it has no `patrol` key (`patrol: null` clears it), a department's
domains when it has no `domains` key, whistle items it does not list.

This module is the entry: it picks the reader by the file's extension, checks the file against
the map in the store, and writes it. The parts, one module each: the specs, errors and checks of
single fields the readers share (`map_specs`), the YAML reader (`map_yaml`), the CSV reader
(`map_csv`) and the export (`map_export`).
"""

from __future__ import annotations

from collections.abc import Mapping

from bot.services.map_csv import parse_csv
from bot.services.map_export import export_map
from bot.services.map_specs import (
    BindingSpec,
    Collector,
    MapError,
    MapImportResult,
    UnitSpec,
    by_line,
    chat_text,
    with_article,
)
from bot.services.map_yaml import parse_yaml
from storage.models import Binding, Checkpoint, Partner, Unit, WhistleItem
from storage.store import Store

__all__ = ["MapError", "MapImportResult", "export_map", "import_map", "parse_map"]


def _parse(data: bytes, filename: str) -> Collector:
    c = Collector()
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
        parse_yaml(c, text)
    else:
        parse_csv(c, text)
    return c


def parse_map(data: bytes, filename: str) -> tuple[list[UnitSpec], list[BindingSpec],
                                                   list[MapError]]:
    """Read a map file (format from the extension) and check it on its own.

    Returns the units (parents before children, file order), the bindings and every error
    found, by line. When there are errors the specs are a best effort, not to be written.
    """
    c = _parse(data, filename)
    return c.units, c.bindings, by_line(c.errors)


class _Rejected(Exception):
    def __init__(self, errors: list[MapError]) -> None:
        self.errors = errors


def _check_against_store(c: Collector, existing: dict[str, Unit],
                         bound: dict[str, Binding]) -> list[MapError]:
    errors: list[MapError] = []
    for spec in c.units:
        old = existing.get(spec.code)
        if old is None:
            continue
        if old.kind != spec.kind:
            errors.append(MapError(line=spec.line, code=spec.code,
                                   reason=f"{spec.code} is {with_article(old.kind)} in the map, "
                                          f"here {with_article(spec.kind)}"))
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
                                   reason=f"{chat_text(b.chat_id, b.thread_id)} is already "
                                          f"bound to {holding}"))
    errors += _check_members(c, existing)
    kinds = {u.code: u.kind for u in existing.values()}
    kinds.update({spec.code: spec.kind for spec in c.units})
    for item in c.items:
        errors += _not_a(kinds, item.department, "department", item.department_line,
                         item.code)
    errors += _check_checkpoints(c, existing)
    errors += _check_partners(c, existing)
    return errors


def _not_a(kinds: Mapping[str, str], code: str, want: str, line: int | None, owner: str
           ) -> list[MapError]:
    """`owner` names `code` as its `want` (a department, a community): the error, if the
    map and the file know no such unit or know it as another kind."""
    kind = kinds.get(code)
    if kind is None:
        return [MapError(line=line, code=owner, reason=f"unknown {want} {code}")]
    if kind != want:
        return [MapError(line=line, code=owner,
                         reason=f"{code} is {with_article(kind)}, not {with_article(want)}")]
    return []


def _check_partners(c: Collector, existing: dict[str, Unit]) -> list[MapError]:
    """A partner shop (SPEC §13) sits under a community of the file or the map (a CSV row
    names it; in YAML the partner is written under it), and its code is not a unit's."""
    errors: list[MapError] = []
    kinds = {u.code: u.kind for u in existing.values()}
    kinds.update({spec.code: spec.kind for spec in c.units})
    for spec in c.partners:
        errors += _not_a(kinds, spec.community, "community", spec.line, spec.code)
        taken = kinds.get(spec.code)
        if taken is not None:
            errors.append(MapError(line=spec.line, code=spec.code,
                                   reason=f"{spec.code} is {with_article(taken)} in the map, "
                                          f"here a partner"))
    return errors


def _check_checkpoints(c: Collector, existing: dict[str, Unit]) -> list[MapError]:
    """A checkpoint's building is a building of its grid, in the file or in the map."""
    errors: list[MapError] = []
    parents = {u.code: u.parent_code for u in existing.values()}
    parents.update({spec.code: spec.parent_code for spec in c.units})
    kinds = {u.code: u.kind for u in existing.values()}
    kinds.update({spec.code: spec.kind for spec in c.units})
    for cp in c.checkpoints:
        if cp.building is None:
            continue
        kind = kinds.get(cp.building)
        if kind != "building":
            what = "unknown" if kind is None else f"{with_article(kind)}, not"
            errors.append(MapError(line=cp.building_line, code=cp.code,
                                   reason=f"{cp.building} is {what} a building"
                                   if kind else f"unknown building {cp.building}"))
            continue
        up: str | None = cp.building
        while up is not None and kinds.get(up) != "grid":
            up = parents.get(up)
        if up != cp.grid_code:
            errors.append(MapError(line=cp.building_line, code=cp.code,
                                   reason=f"building {cp.building} is not in grid "
                                          f"{cp.grid_code}"))
    return errors


def _check_members(c: Collector, existing: dict[str, Unit]) -> list[MapError]:
    """Member units (SPEC §10) sit under a community of the file or the map; an estate's
    `property` is a `property` member unit of the estate's own community."""
    errors: list[MapError] = []
    units: dict[str, tuple[str, str | None, str | None]] = {
        u.code: (u.kind, u.parent_code, u.member_type) for u in existing.values()}
    units.update({s.code: (s.kind, s.parent_code, s.member_type) for s in c.units})
    for spec in c.units:
        if spec.kind == "member":
            parent = units.get(spec.parent_code or "")
            if parent is None:
                errors.append(MapError(line=spec.line, code=spec.code,
                                       reason=f"unknown community {spec.parent_code}"))
            elif parent[0] != "community":
                errors.append(MapError(line=spec.line, code=spec.code,
                                       reason=f"{spec.parent_code} is "
                                              f"{with_article(parent[0])}, not a community"))
        if spec.kind != "estate" or not spec.property_code:
            continue
        target = units.get(spec.property_code)
        grid = units.get(spec.parent_code or "")
        community = grid[1] if grid is not None else None
        if target is None:
            reason = f"unknown member unit {spec.property_code}"
        elif target[0] != "member" or target[2] != "property":
            kind = "a member unit of type " + str(target[2]) if target[0] == "member" \
                else with_article(target[0])
            reason = f"property {spec.property_code} is {kind}, not a property firm"
        elif target[1] != community:
            reason = (f"property {spec.property_code} is a member unit of {target[1]}, "
                      f"not of this estate's community {community}")
        else:
            continue
        errors.append(MapError(line=spec.property_line, code=spec.code, reason=reason))
    return errors


async def import_map(store: Store, data: bytes, filename: str) -> MapImportResult:
    """Create or update the map from a file: everything, or nothing when any error is found."""
    c = _parse(data, filename)
    if c.errors and not c.units and not c.partners:
        return MapImportResult(errors=by_line(c.errors))
    result = MapImportResult()
    try:
        async with store.transaction():
            existing = {u.code: u for u in await store.map.all()}
            bound = {b.unit_code: b for b in await store.map.bindings()}
            errors = c.errors + _check_against_store(c, existing, bound)
            if errors:
                raise _Rejected(by_line(errors))
            new_bindings = {b.unit_code: b for b in c.bindings}
            for spec in c.units:
                old = existing.get(spec.code)
                unit = Unit(
                    code=spec.code, kind=spec.kind, name=spec.name, parent_code=spec.parent_code,
                    domains=spec.domains if spec.domains is not None
                    else (old.domains if old else ()),
                    patrol=spec.patrol if spec.patrol_given else (old.patrol if old else None),
                    position=spec.position, member_type=spec.member_type,
                    property_code=spec.property_code if spec.property_given
                    else (old.property_code if old else None))
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
            await _import_items(store, c, result)
            await _import_partners(store, c, result)
            await _import_checkpoints(store, c, result)
    except _Rejected as rejected:
        return MapImportResult(errors=rejected.errors)
    return result


async def _import_items(store: Store, c: Collector, result: MapImportResult) -> None:
    """Inside the import's transaction: the whistle catalogue's items, created or updated."""
    for spec in c.items:
        old = await store.whistles.item(spec.code)
        item = WhistleItem(code=spec.code, category=spec.category, name=spec.name,
                           department_code=spec.department, points=spec.points,
                           deadline=spec.deadline, position=spec.position)
        if result.tally(old, item):
            await store.whistles.upsert(item)


async def _import_partners(store: Store, c: Collector, result: MapImportResult) -> None:
    """Inside the import's transaction: the communities' partner shops (SPEC §13)."""
    for spec in c.partners:
        old = await store.shop.partner(spec.code)
        partner = Partner(code=spec.code, community_code=spec.community, name=spec.name,
                          address=spec.address, chat_id=spec.chat_id, position=spec.position)
        if result.tally(old, partner):
            await store.shop.upsert_partner(partner)


async def _import_checkpoints(store: Store, c: Collector, result: MapImportResult) -> None:
    """Inside the import's transaction: the grids' patrol checkpoints, created or updated
    (an update keeps when the checkpoint was created, and a retired one stays retired: the
    file does not say it, and an export leaves it out)."""
    for spec in c.checkpoints:
        old = await store.checkpoints.get(spec.code)
        cp = Checkpoint(code=spec.code, grid_code=spec.grid_code, name=spec.name,
                        matter=spec.matter, lat=spec.lat, lon=spec.lon, radius_m=spec.radius_m,
                        frequency=spec.frequency, building_code=spec.building,
                        position=spec.position,
                        created_at=old.created_at if old is not None else 0.0,
                        retired_at=old.retired_at if old is not None else None,
                        retired_by=old.retired_by if old is not None else None)
        if result.tally(old, cp):
            await store.checkpoints.upsert(cp)
