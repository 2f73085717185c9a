"""Writing the map as a YAML map file (SPEC §2), line by line, so the same map always gives the
same text: units in their stored order, keys in a fixed order, scalars quoted only when needed.
The whistle catalogue (SPEC §11) follows the departments, in its stored order, when it has items.
"""

from __future__ import annotations

import json

import yaml

from bot.services.map_specs import CHILDREN, DOMAINS, duration_text
from storage.models import Checkpoint, Partner, Unit
from storage.store import Store


def _scalar(value: str) -> str:
    """A string as a YAML scalar on one line, quoted only when YAML needs it."""
    out = yaml.safe_dump(value, allow_unicode=True, width=1 << 30, default_flow_style=True)
    out = out[:-5] if out.endswith("\n...\n") else out.rstrip("\n")
    return json.dumps(value, ensure_ascii=False) if "\n" in out else out


async def export_map(store: Store, header_comment: str | None = None) -> str:
    """The map as YAML in the shape of SPEC §2; the same map always gives the same text."""
    units = await store.map.all()  # by position, then code
    bound = {b.unit_code: b for b in await store.map.bindings()}
    partners: dict[str, list[Partner]] = {}
    for partner in await store.shop.partners():  # by community, position, code
        partners.setdefault(partner.community_code, []).append(partner)
    checkpoints: dict[str, list[Checkpoint]] = {}
    for cp in await store.checkpoints.all():  # by grid, then file order
        checkpoints.setdefault(cp.grid_code, []).append(cp)
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
        if unit.kind == "member" and unit.member_type:
            lines.append(f"{inner}type: {unit.member_type}")
        binding = bound.get(unit.code)
        if binding is not None:
            lines.append(f"{inner}chat: {binding.chat_id}")
            if binding.thread_id:
                lines.append(f"{inner}thread: {binding.thread_id}")
        if unit.kind == "estate" and unit.property_code:
            lines.append(f"{inner}property: {_scalar(unit.property_code)}")
        if unit.kind == "grid" and unit.patrol:
            lines.append(f"{inner}patrol: {_scalar(unit.patrol)}")
        if unit.kind == "grid" and unit.code in checkpoints:
            lines.append(f"{inner}checkpoints:")
            for cp in checkpoints[unit.code]:
                lines.extend(_checkpoint_lines(cp, inner + "  "))
        if unit.kind == "department" and unit.domains:
            items = (d if d in DOMAINS else json.dumps(d, ensure_ascii=False)
                     for d in unit.domains)
            lines.append(f"{inner}domains: [{', '.join(items)}]")
        if unit.kind in CHILDREN:
            key, child_kind = CHILDREN[unit.kind]
            kids = [u for u in children.get(unit.code, []) if u.kind == child_kind]
            if kids:
                lines.append(f"{inner}{key}:")
                for kid in kids:
                    emit(kid, inner + "  ")
        if unit.kind == "community" and unit.code in partners:
            lines.append(f"{inner}partners:")
            for partner in partners[unit.code]:
                lines.extend([f"{inner}  - code: {_scalar(partner.code)}",
                              f"{inner}    name: {_scalar(partner.name)}"])
                if partner.address:
                    lines.append(f"{inner}    address: {_scalar(partner.address)}")
                if partner.chat_id is not None:
                    lines.append(f"{inner}    chat: {partner.chat_id}")
        members = [u for u in children.get(unit.code, []) if u.kind == "member"]
        if unit.kind == "community" and members:
            lines.append(f"{inner}members:")
            for member in members:
                emit(member, inner + "  ")

    for key, kind in (("communities", "community"), ("departments", "department")):
        top = [u for u in children.get(None, []) if u.kind == kind]
        if not top:
            lines.append(f"{key}: []")
            continue
        lines.append(f"{key}:")
        for unit in top:
            emit(unit, "  ")
    items = await store.whistles.items()  # by position, then code
    if items:
        lines.append("whistle_items:")
    for item in items:
        lines += [f"  - code: {_scalar(item.code)}", f"    category: {_scalar(item.category)}",
                  f"    name: {_scalar(item.name)}",
                  f"    department: {_scalar(item.department_code)}"]
        if item.points is not None:
            lines.append(f"    points: {item.points}")
        if item.deadline is not None:
            lines.append(f"    deadline: {duration_text(item.deadline)}")
    return "\n".join(lines) + "\n"


def _checkpoint_lines(cp: Checkpoint, indent: str) -> list[str]:
    """A patrol checkpoint under its grid (SPEC §13), every key written."""
    lines = [f"{indent}- code: {_scalar(cp.code)}", f"{indent}  name: {_scalar(cp.name)}",
             f"{indent}  matter: {cp.matter}", f"{indent}  lat: {cp.lat!r}",
             f"{indent}  lon: {cp.lon!r}", f"{indent}  radius_m: {cp.radius_m}",
             f"{indent}  frequency: {_scalar(cp.frequency)}"]
    if cp.building_code:
        lines.append(f"{indent}  building: {_scalar(cp.building_code)}")
    return lines
