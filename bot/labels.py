"""The catalog keys of the words the domain's codes are shown by: roles, skills, the seven
domains, ticket states and urgencies. Written out, never built from the code, so a reader (and
tests/test_i18n.py) sees every key; a test checks each table against its list of codes."""

from __future__ import annotations

ROLE = {
    "superadmin": "role.superadmin", "community_staff": "role.community_staff",
    "grid_leader": "role.grid_leader", "grid_worker": "role.grid_worker",
    "building_head": "role.building_head", "department_liaison": "role.department_liaison",
    "volunteer": "role.volunteer", "resident": "role.resident",
    "party_member": "role.party_member",
    "partner_clerk": "role.partner_clerk",   # SPEC §13 (locales/*/shop.po)
    "unit_contact": "role.unit_contact", "unit_member": "role.unit_member",
}
#: what member units offer (SPEC §10)
RESOURCE_KIND = {
    "venue": "resource.kind.venue", "vehicle": "resource.kind.vehicle",
    "equipment": "resource.kind.equipment", "funds": "resource.kind.funds",
    "expertise": "resource.kind.expertise", "goods": "resource.kind.goods",
}
#: member units' types (SPEC §10)
MEMBER_TYPE = {
    "property": "unit.type.property", "owners": "unit.type.owners", "social": "unit.type.social",
    "resident_unit": "unit.type.resident_unit", "dual_report": "unit.type.dual_report",
    "enforcement": "unit.type.enforcement",
}
SKILL = {
    "medical": "skill.medical", "legal": "skill.legal", "elderly": "skill.elderly",
    "childcare": "skill.childcare", "repairs": "skill.repairs", "it": "skill.it",
    "translation": "skill.translation", "driving": "skill.driving",
    "sanitation": "skill.sanitation", "patrol": "skill.patrol",
}
DOMAIN: dict[str | None, str] = {
    "red": "domain.red", "orange": "domain.orange", "gold": "domain.gold",
    "green": "domain.green", "cyan": "domain.cyan", "blue": "domain.blue",
    "purple": "domain.purple", None: "domain.unsure",
}
STATUS = {
    "new": "status.new", "acknowledged": "status.acknowledged", "escalated": "status.escalated",
    "whistled": "status.whistled", "accepted": "status.accepted", "resolved": "status.resolved",
    "rated": "status.rated", "rejected": "status.rejected", "merged": "status.merged",
}
URGENCY = {"routine": "urgency.routine", "major": "urgency.major", "urgent": "urgency.urgent"}
# where a ticket came from (SPEC §11): the card's line, the reports' counts
SOURCE = {
    "resident": "source.resident", "hotline": "source.hotline", "mailbox": "source.mailbox",
    "walk_in": "source.walk_in", "phone": "source.phone", "patrol": "source.patrol",
    "meeting": "source.meeting",
}
