"""Reading a YAML map file from its node tree, so every error can name its line.

The file is composed, not loaded: nodes keep their marks (lines) and scalars their text as
written (`code: 0101` stays "0101"). Each top-level section is a list read item by item by its
own reader (`YamlReader.sections`); a new section adds its key, its reader and its allowed keys.
"""

from __future__ import annotations

from collections.abc import Callable

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from bot.services.map_specs import (
    CHILDREN,
    DEFAULT_CHECKPOINT_FREQUENCY,
    DEFAULT_RADIUS_M,
    DOMAINS,
    CheckpointSpec,
    Collector,
    PartnerSpec,
    UnitSpec,
    WhistleItemSpec,
    check_chat,
    check_code,
    check_coordinate,
    check_deadline,
    check_member_type,
    check_name,
    check_patrol,
    check_points,
    check_radius,
    with_article,
)
from storage.models import MATTERS, UnitKind

_NULL_TAG = "tag:yaml.org,2002:null"
_INT_TAG = "tag:yaml.org,2002:int"
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_KEYS: dict[str, tuple[str, ...]] = {
    "community": ("code", "name", "chat", "thread", "grids", "members", "partners"),
    "grid": ("code", "name", "chat", "thread", "patrol", "checkpoints", "estates"),
    "estate": ("code", "name", "chat", "thread", "property", "buildings"),
    "building": ("code", "name", "chat", "thread"),
    "department": ("code", "name", "chat", "thread", "domains"),
    "member": ("code", "name", "type", "chat", "thread"),
}
_CHECKPOINT_KEYS = ("code", "name", "matter", "lat", "lon", "radius_m", "frequency", "building")
_ITEM_KEYS = ("code", "category", "name", "department", "points", "deadline")
_PARTNER_KEYS = ("code", "name", "address", "chat")


def parse_yaml(c: Collector, text: str) -> None:
    """Read a YAML map file into `c`; a syntax error is reported with its line, and ends it."""
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
    YamlReader(c).read(root)


class YamlReader:
    def __init__(self, c: Collector) -> None:
        self.c = c
        self.constructor = SafeConstructor()
        # top-level key -> the reader of one item of its list, in the order they are read
        self.sections: dict[str, Callable[[Node], None]] = {
            "communities": lambda node: self.unit(node, "community", None),
            "departments": lambda node: self.unit(node, "department", None),
            "whistle_items": self.whistle_item,
        }

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
                self.c.error(self.line(key_node), code_of,
                             f"a key of {with_article(what)} must be text")
                continue
            if key in pairs:
                self.c.error(self.line(key_node), code_of,
                             f"duplicate key {key!r} (first at line {self.line(pairs[key][0])})")
                continue
            pairs[key] = (key_node, value_node)
            if key not in allowed:
                self.c.error(self.line(key_node), code_of,
                             f"unknown key {key!r} for {with_article(what)} "
                             f"(allowed: {', '.join(allowed)})")
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
        pairs = self.mapping(root, tuple(self.sections), "map file")
        for key, read_item in self.sections.items():
            if key in pairs:
                for item in self.items(*pairs[key], None):
                    read_item(item)

    def unit(self, node: Node, kind: UnitKind, parent_code: str | None) -> None:
        c = self.c
        line = self.line(node)
        if not isinstance(node, MappingNode):
            c.error(line, None, f"each {kind} must be a mapping with code and name")
            return
        code_node = next((v for k, v in node.value if self.text(k) == "code"), None)
        raw_code = self.text(code_node) if code_node is not None else None
        pairs = self.mapping(node, _KEYS[kind], kind, raw_code)
        code = self.code(pairs, kind, raw_code, line)
        shown = code or raw_code
        name = self.name(pairs, kind, shown, line)
        self.chat(pairs, code, shown, line)

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
                    patrol = check_patrol(c, text, shown, self.line(key_node))

        domains: tuple[str, ...] | None = None
        if "domains" in pairs and kind == "department":
            domains = self.domains(*pairs["domains"], shown)

        member_type: str | None = None
        member_ok = True
        if kind == "member":
            if "type" not in pairs:
                c.error(line, shown, "member without type (use one of property, owners, social, "
                                     "resident_unit, dual_report, enforcement)")
                member_ok = False
            else:
                key_node, value_node = pairs["type"]
                member_type = check_member_type(c, self.text(value_node), shown,
                                                self.line(key_node))
                member_ok = member_type is not None

        property_code: str | None = None
        property_given = "property" in pairs and kind == "estate"
        property_line = line
        if property_given:
            key_node, value_node = pairs["property"]
            property_line = self.line(key_node)
            if not self.is_null(value_node):
                property_code = self.text(value_node)
                if property_code is None or not check_code(c, property_code, property_line):
                    if property_code is None:
                        c.error(property_line, shown, "property must be a member unit's code")
                    member_ok = False

        position = c.next_position(kind, parent_code)
        if code is not None and name is not None and member_ok:
            c.units.append(UnitSpec(
                code=code, kind=kind, name=name, parent_code=parent_code, position=position,
                line=line, domains=domains, patrol=patrol, patrol_given=patrol_given,
                member_type=member_type, property_code=property_code,
                property_given=property_given, property_line=property_line))

        if kind == "grid" and "checkpoints" in pairs:
            for item in self.items(*pairs["checkpoints"], shown):
                self.checkpoint(item, code)

        if kind in CHILDREN:
            children_key, child_kind = CHILDREN[kind]
            if children_key in pairs:
                for item in self.items(*pairs[children_key], shown):
                    self.unit(item, child_kind, code)
        if kind == "community" and "partners" in pairs:
            for position, item in enumerate(self.items(*pairs["partners"], shown)):
                self.partner(item, code, position)
        if kind == "community" and "members" in pairs:
            for item in self.items(*pairs["members"], shown):
                self.unit(item, "member", code)

    def code(self, pairs: dict[str, tuple[Node, Node]], kind: str, raw_code: str | None,
             line: int) -> str | None:
        """The unit's code when it is good and not taken yet; None (and an error) otherwise."""
        c = self.c
        if "code" not in pairs:
            c.error(line, None, f"{kind} without code")
            return None
        key_node, value_node = pairs["code"]
        if raw_code is None:
            c.error(self.line(key_node), None, f"{kind} code is empty or not text")
            return None
        if not check_code(c, raw_code, self.line(value_node)):
            return None
        return raw_code if c.claim_code(raw_code, kind, self.line(key_node)) else None

    def name(self, pairs: dict[str, tuple[Node, Node]], kind: str, shown: str | None,
             line: int) -> str | None:
        c = self.c
        if "name" not in pairs:
            c.error(line, shown, f"{kind} without name")
            return None
        key_node, value_node = pairs["name"]
        text = self.text(value_node)
        if isinstance(value_node, ScalarNode) and value_node.tag == _NULL_TAG:
            c.error(self.line(key_node), shown, f"{kind} name is empty")
            return None
        if text is None:
            c.error(self.line(key_node), shown, f"{kind} name must be text")
            return None
        return check_name(c, text, shown, self.line(key_node), kind)

    def chat(self, pairs: dict[str, tuple[Node, Node]], code: str | None, shown: str | None,
             line: int) -> None:
        """Check the unit's chat and thread keys and record its binding when both are right."""
        c = self.c
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
            check_chat(c, chat, thread, code, chat_line, thread_line)

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

    def whistle_item(self, node: Node) -> None:
        """An item of the whistle catalogue 吹哨清单: code, category, name, department, and
        optional points and deadline (the time to accept, e.g. `24h`)."""
        c = self.c
        line = self.line(node)
        position = len(c.item_codes)
        if not isinstance(node, MappingNode):
            c.error(line, None, "each whistle item must be a mapping with code, category, name "
                                "and department")
            return
        code_node = next((v for k, v in node.value if self.text(k) == "code"), None)
        raw_code = self.text(code_node) if code_node is not None else None
        pairs = self.mapping(node, _ITEM_KEYS, "whistle item", raw_code)
        code: str | None = None
        if "code" not in pairs:
            c.error(line, None, "whistle item without code")
        elif raw_code is None:
            c.error(self.line(pairs["code"][0]), None, "whistle item code is empty or not text")
        elif check_code(c, raw_code, self.line(pairs["code"][1])) and \
                c.claim_item_code(raw_code, self.line(pairs["code"][0])):
            code = raw_code
        shown = code or raw_code
        category = self.item_text(pairs, "category", shown, line)
        name = self.item_text(pairs, "name", shown, line)
        department = None
        department_line = line
        if "department" not in pairs:
            c.error(line, shown, "whistle item without department")
        else:
            key_node, value_node = pairs["department"]
            department_line = self.line(key_node)
            department = self.text(value_node)
            if department is None or not check_code(c, department, department_line):
                if department is None:
                    c.error(department_line, shown, "department must be a department's code")
                department = None
        points: int | None = None
        points_ok = True
        if "points" in pairs and not self.is_null(pairs["points"][1]):
            key_node, value_node = pairs["points"]
            points = check_points(c, self.integer(value_node), shown, self.line(key_node))
            points_ok = points is not None
        deadline: int | None = None
        deadline_ok = True
        if "deadline" in pairs and not self.is_null(pairs["deadline"][1]):
            key_node, value_node = pairs["deadline"]
            deadline = check_deadline(c, self.text(value_node), shown, self.line(key_node))
            deadline_ok = deadline is not None
        if code is not None and category is not None and name is not None and \
                department is not None and points_ok and deadline_ok:
            c.items.append(WhistleItemSpec(
                code=code, category=category, name=name, department=department, points=points,
                deadline=deadline, position=position, line=line,
                department_line=department_line))

    def partner(self, node: Node, community: str | None, position: int) -> None:
        """A partner shop 合作商家 of the community (SPEC §13): code, name, and optional
        address and chat (the shop's own chat)."""
        c = self.c
        line = self.line(node)
        if not isinstance(node, MappingNode):
            c.error(line, community, "each partner must be a mapping with code and name")
            return
        code_node = next((v for k, v in node.value if self.text(k) == "code"), None)
        raw_code = self.text(code_node) if code_node is not None else None
        pairs = self.mapping(node, _PARTNER_KEYS, "partner", raw_code)
        code = self.code(pairs, "partner", raw_code, line)
        shown = code or raw_code
        name = self.name(pairs, "partner", shown, line)
        address = ""
        address_ok = True
        if "address" in pairs and not self.is_null(pairs["address"][1]):
            key_node, value_node = pairs["address"]
            text = self.text(value_node)
            checked = None if text is None else check_name(c, text, shown, self.line(key_node),
                                                           "partner address")
            if text is None:
                c.error(self.line(key_node), shown, "partner address must be text")
            address_ok = checked is not None
            address = checked or ""
        chat: int | None = None
        chat_ok = True
        if "chat" in pairs and not self.is_null(pairs["chat"][1]):
            key_node, value_node = pairs["chat"]
            chat = self.integer(value_node)
            if not chat:
                c.error(self.line(key_node), shown,
                        "chat must be a non-zero integer (a group's id, e.g. -1001234567890)")
                chat_ok = False
        if code is not None and name is not None and community is not None and address_ok \
                and chat_ok:
            c.partners.append(PartnerSpec(code=code, community=community, name=name,
                                          address=address, chat_id=chat, position=position,
                                          line=line))

    @staticmethod
    def is_null(node: Node) -> bool:
        return isinstance(node, ScalarNode) and node.tag == _NULL_TAG

    def item_text(self, pairs: dict[str, tuple[Node, Node]], key: str, shown: str | None,
                  line: int) -> str | None:
        """A whistle item's category or name: one line of text."""
        c = self.c
        if key not in pairs:
            c.error(line, shown, f"whistle item without {key}")
            return None
        key_node, value_node = pairs[key]
        text = None if self.is_null(value_node) else self.text(value_node)
        text = " ".join(text.split()) if text is not None else None
        if not text:
            c.error(self.line(key_node), shown, f"whistle item {key} must be text, not empty")
            return None
        return text

    def checkpoint(self, node: Node, grid_code: str | None) -> None:
        """A patrol checkpoint 专项巡更点 of a grid (SPEC §13): code, name, matter, lat, lon, and
        optional radius_m (default 100), frequency (as a grid's patrol; default weekly) and
        building (the nearest one, for "Report a problem")."""
        c = self.c
        line = self.line(node)
        if not isinstance(node, MappingNode):
            c.error(line, None, "each checkpoint must be a mapping with code, name, matter, "
                                "lat and lon")
            return
        code_node = next((v for k, v in node.value if self.text(k) == "code"), None)
        raw_code = self.text(code_node) if code_node is not None else None
        pairs = self.mapping(node, _CHECKPOINT_KEYS, "checkpoint", raw_code)
        code: str | None = None
        if "code" not in pairs:
            c.error(line, None, "checkpoint without code")
        elif raw_code is None:
            c.error(self.line(pairs["code"][0]), None, "checkpoint code is empty or not text")
        elif check_code(c, raw_code, self.line(pairs["code"][1])) and \
                c.claim_checkpoint_code(raw_code, self.line(pairs["code"][0])):
            code = raw_code
        shown = code or raw_code
        ok = True
        name: str | None = None
        if "name" not in pairs:
            c.error(line, shown, "checkpoint without name")
        else:
            text = None if self.is_null(pairs["name"][1]) else self.text(pairs["name"][1])
            name = check_name(c, text or "", shown, self.line(pairs["name"][0]), "checkpoint")
        matter: str | None = None
        if "matter" not in pairs:
            c.error(line, shown, f"checkpoint without matter (one of {', '.join(MATTERS)})")
        else:
            matter = self.text(pairs["matter"][1])
            if matter not in MATTERS:
                c.error(self.line(pairs["matter"][0]), shown,
                        f"unknown matter {matter!r} (use {', '.join(MATTERS)})")
                matter = None
        coordinates: dict[str, float] = {}
        for key in ("lat", "lon"):
            if key not in pairs:
                c.error(line, shown, f"checkpoint without {key}")
                ok = False
                continue
            value = check_coordinate(c, self.text(pairs[key][1]), key, shown,
                                     self.line(pairs[key][0]))
            if value is None:
                ok = False
            else:
                coordinates[key] = value
        radius = DEFAULT_RADIUS_M
        if "radius_m" in pairs and not self.is_null(pairs["radius_m"][1]):
            checked = check_radius(c, self.integer(pairs["radius_m"][1]), shown,
                                   self.line(pairs["radius_m"][0]))
            ok = ok and checked is not None
            radius = checked or radius
        frequency = DEFAULT_CHECKPOINT_FREQUENCY
        if "frequency" in pairs and not self.is_null(pairs["frequency"][1]):
            text = self.text(pairs["frequency"][1])
            given = check_patrol(c, text, shown, self.line(pairs["frequency"][0]),
                                 "frequency") if text is not None else None
            if text is None:
                c.error(self.line(pairs["frequency"][0]), shown,
                        "frequency must be daily, weekly, monthly or a crontab")
            ok = ok and given is not None
            frequency = given or frequency
        building: str | None = None
        building_line = line
        if "building" in pairs and not self.is_null(pairs["building"][1]):
            building_line = self.line(pairs["building"][0])
            building = self.text(pairs["building"][1])
            if building is None or not check_code(c, building, building_line):
                ok = False
        position = len(c.checkpoint_codes) - 1
        if ok and code is not None and name is not None and matter is not None and \
                grid_code is not None:
            c.checkpoints.append(CheckpointSpec(
                code=code, grid_code=grid_code, name=name, matter=matter,
                lat=coordinates["lat"], lon=coordinates["lon"], radius_m=radius,
                frequency=frequency, building=building, position=max(position, 0), line=line,
                building_line=building_line))
