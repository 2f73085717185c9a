"""Resources 提供资源 (SPEC §10): a member unit's contact lists what the unit offers
(`/resources add KIND QUANTITY NAME…`, then the domain it serves by a button); community
staff browse those of their communities' units (`/resources [KIND|DOMAIN]`) and request one
for a ticket (`#12`) or a horn (`h3`); the unit's contacts get Accept / Decline (a decline
says why). The staff member is told, the
ticket's timeline records each step, and an accepted request counts on the unit's record.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.i18n import t
from bot.services.access import Action, Actor
from bot.services.base import Service
from bot.services.errors import Refused
from bot.services.outbox import Priority
from bot.services.ticket_states import TimelineEvent
from bot.services.ticket_views import Buttons, button
from storage.models import DOMAINS, RESOURCE_KINDS, Resource, ResourceRequest, Unit

RESOURCE_PREFIX = "rs"
RESOURCE_PATTERN = rf"^{RESOURCE_PREFIX}:"
DECLINE_FLOW = "resource_decline"   # the contact typing why they decline
REQUEST_FLOW = "resource_request"   # staff typing the ticket or horn a resource is for
MAX_QUANTITY = 100_000


def resource_data(action: str, item_id: int) -> str:
    """`rs:q:<resource>` request; `rs:a|d:<request>` accept, decline."""
    return f"{RESOURCE_PREFIX}:{action}:{item_id}"


def domain_data(resource_id: int, domain: str) -> str:
    """`rs:m:<resource>:<domain>`: the contact says which domain a resource serves."""
    return f"{RESOURCE_PREFIX}:m:{resource_id}:{domain}"


def read_resource_press(data: str) -> tuple[str, int, str]:
    """The press, its resource or request, and a domain (`rs:m:` only, else empty)."""
    parts = data.split(":")
    if len(parts) == 4 and parts[1] == "m" and parts[3] in DOMAINS:
        parts, domain = parts[:3], parts[3]
    else:
        domain = ""
    if len(parts) != 3 or parts[0] != RESOURCE_PREFIX or \
            parts[1] not in ("q", "a", "d", "m") or not parts[2].isdecimal() or \
            (parts[1] == "m") != bool(domain):
        raise Refused("button.stale")
    return parts[1], int(parts[2]), domain


def _bad_kind() -> Refused:
    return Refused("resource.bad_kind", kinds=", ".join(RESOURCE_KINDS),
                   domains=", ".join(DOMAINS))


@dataclass(frozen=True)
class Listed:
    resource: Resource
    unit: Unit
    may_request: bool


class ResourceService(Service):
    async def _contact_unit(self, actor: Actor) -> Unit:
        for grant in actor.grants:
            if grant.role == "unit_contact":
                unit = await self.store.map.get(grant.unit_code)
                if unit is not None and unit.kind == "member":
                    return unit
        raise Refused("resource.not_contact")

    async def add(self, actor: Actor, kind: str, quantity: str, name: str) -> Resource:
        unit = await self._contact_unit(actor)
        if kind not in RESOURCE_KINDS:
            raise _bad_kind()
        if not quantity.isdecimal() or not 1 <= int(quantity) <= MAX_QUANTITY:
            raise Refused("resource.bad_quantity", text=quantity[:20])
        name = " ".join(name.split())
        if not name or len(name) > 100:
            raise Refused("resource.bad_name")
        async with self.store.transaction():
            resource_id = await self.store.units.add_resource(
                unit.code, kind, name, int(quantity), actor.user_id, self.clock())
            resource = await self.store.units.resource(resource_id)
        assert resource is not None
        return resource

    async def set_domain(self, actor: Actor, resource_id: int, domain: str) -> Resource:
        """The domain a resource serves (SPEC §10), said by a contact of its unit; 点将
        lists the unit under it."""
        resource = await self.store.units.resource(resource_id)
        if resource is None:
            raise Refused("resource.unknown", id=resource_id)
        if domain not in DOMAINS:
            raise Refused("button.stale")
        if not any(g.role == "unit_contact" and g.unit_code == resource.unit_code
                   for g in actor.grants):
            raise Refused("resource.not_contact")
        async with self.store.transaction():
            await self.store.units.set_resource_domain(resource.id, domain)
        return resource.model_copy(update={"domain": domain})

    async def browse(self, actor: Actor, kind: str | None) -> list[Listed]:
        """A contact sees their unit's; staff those of their communities' member units;
        `kind` a kind or a domain."""
        if kind is not None and kind not in RESOURCE_KINDS and kind not in DOMAINS:
            raise _bad_kind()
        units: dict[str, Unit] = {}
        if actor.superadmin:
            units = {u.code: u for u in await self.store.map.members()}
        else:
            for top in await self.access.scope_units(actor, Action.MANAGE_UNIT):
                if top.kind == "member":
                    units[top.code] = top
                else:
                    units.update({u.code: u for u in await self.store.map.members([top.code])})
        if not units:
            raise Refused("resource.not_allowed")
        found = []
        for resource in await self.store.units.resources(list(units)):
            if kind is None or kind in (resource.kind, resource.domain):
                found.append(Listed(resource, units[resource.unit_code], await self.access.can(
                    actor, Action.MANAGE_UNIT, units[resource.unit_code].parent_code or "")))
        return found

    async def ask_target(self, actor: Actor, resource_id: int) -> Resource:
        """"Request": remember the resource; the staff member types the ticket or horn."""
        resource = await self._requestable(actor, resource_id)
        async with self.store.transaction():
            await self.store.flows.set(actor.user_id, REQUEST_FLOW, "target",
                                       {"resource": resource.id})
        return resource

    async def _requestable(self, actor: Actor, resource_id: int) -> Resource:
        resource = await self.store.units.resource(resource_id)
        if resource is None:
            raise Refused("resource.unknown", id=resource_id)
        unit = await self.store.map.get(resource.unit_code)
        community = unit.parent_code if unit is not None else None
        # community staff in scope (a contact manages their own unit: not a requester)
        if community is None or not await self.access.can(actor, Action.MANAGE_UNIT, community):
            raise Refused("resource.outside_scope", id=resource_id)
        return resource

    async def request(self, actor: Actor, resource_id: int, target: str) -> ResourceRequest:
        """Request a resource for `#12` (a ticket) or `h3` (a horn); its contacts are asked."""
        resource = await self._requestable(actor, resource_id)
        text = target.strip().lower().lstrip("#")
        ticket_id = horn_id = None
        if text.startswith("h") and text[1:].isdecimal():
            horn_id = int(text[1:])
            if await self.store.horns.get(horn_id) is None:
                raise Refused("horn.unknown", id=horn_id)
        elif text.isdecimal():
            ticket_id = int(text)
            if await self.store.tickets.get(ticket_id) is None:
                raise Refused("resource.bad_target", text=target[:20])
        else:
            raise Refused("resource.bad_target", text=target[:20])
        async with self.store.transaction():
            request_id = await self.store.units.request_resource(
                resource.id, ticket_id, horn_id, actor.user_id, self.clock())
            request = await self.store.units.resource_request(request_id)
            assert request is not None
            flow = await self.store.flows.get(actor.user_id)
            if flow is not None and flow.name == REQUEST_FLOW:
                await self.store.flows.clear(actor.user_id)
            what = f"{resource.name} ×{resource.quantity}"
            if ticket_id is not None:
                await self.store.tickets.add_event(ticket_id, actor.user_id,
                                                   TimelineEvent.RESOURCE, f"{what} ?")
            for contact in await self.store.people.with_role(
                    "unit_contact", [resource.unit_code], None, reachable_only=True):
                locale = self.people.locale_of(contact)
                await self.outbox.send(
                    contact.user_id, t(locale, "resource.asked", id=request.id, what=what,
                                       target=target_label(request)),
                    priority=Priority.PERSONAL, buttons=answer_buttons(locale, request.id))
        return request

    async def _answerable(self, actor: Actor, request_id: int
                          ) -> tuple[ResourceRequest, Resource]:
        request = await self.store.units.resource_request(request_id)
        resource = await self.store.units.resource(request.resource_id) if request else None
        if request is None or resource is None:
            raise Refused("button.stale")
        if not any(g.role == "unit_contact" and g.unit_code == resource.unit_code
                   for g in actor.grants):
            raise Refused("resource.not_contact")
        if request.state != "asked":
            raise Refused("resource.answered", id=request_id)
        return request, resource

    async def accept(self, actor: Actor, request_id: int) -> ResourceRequest:
        return await self._answer(actor, request_id, "accepted", None)

    async def ask_reason(self, actor: Actor, request_id: int) -> None:
        """"Decline": the contact is asked why (their next private text)."""
        await self._answerable(actor, request_id)
        async with self.store.transaction():
            await self.store.flows.set(actor.user_id, DECLINE_FLOW, "reason",
                                       {"request": request_id})

    async def decline(self, actor: Actor, reason: str) -> ResourceRequest:
        flow = await self.store.flows.get(actor.user_id)
        if flow is None or flow.name != DECLINE_FLOW:
            raise Refused("button.stale")
        reason = " ".join(reason.split())
        if not reason:
            raise Refused("resource.need_reason")
        return await self._answer(actor, int(flow.data["request"]), "declined", reason[:500])

    async def _answer(self, actor: Actor, request_id: int, state: str, reason: str | None
                      ) -> ResourceRequest:
        async with self.store.transaction():
            request, resource = await self._answerable(actor, request_id)
            if not await self.store.units.answer_request(request_id, state, reason,
                                                          self.clock()):
                raise Refused("resource.answered", id=request_id)
            flow = await self.store.flows.get(actor.user_id)
            if flow is not None and flow.name == DECLINE_FLOW:
                await self.store.flows.clear(actor.user_id)
            what = f"{resource.name} ×{resource.quantity}"
            if request.ticket_id is not None:
                await self.store.tickets.add_event(
                    request.ticket_id, actor.user_id, TimelineEvent.RESOURCE,
                    f"{what} ✓" if state == "accepted" else f"{what} ✗ {reason}")
            locale = await self.people.locale_for(request.requested_by)
            await self.outbox.send(
                request.requested_by,
                t(locale, "resource.was_accepted", id=request_id, what=what,
                  target=target_label(request)) if state == "accepted" else
                t(locale, "resource.was_declined", id=request_id, what=what,
                  target=target_label(request), reason=reason or ""),
                priority=Priority.PERSONAL)
            answered = await self.store.units.resource_request(request_id)
        assert answered is not None
        return answered


def target_label(request: ResourceRequest) -> str:
    return f"#{request.ticket_id}" if request.ticket_id is not None else f"h{request.horn_id}"


def answer_buttons(locale: str, request_id: int) -> Buttons:
    return [[button(t(locale, "resource.btn_accept"), resource_data("a", request_id)),
             button(t(locale, "resource.btn_decline"), resource_data("d", request_id))]]
