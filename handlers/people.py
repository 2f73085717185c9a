"""People administration (SPEC §11): /people [CODE], /revoke ROLE CODE USER_ID, /audit CODE,
and /people's buttons (`pp:`: pages, revoke, confirm, keep; `au:`: audit pages).

Callback data is client input: every press goes back through the service, which checks the
presser's rights and the role's state again.
"""

from __future__ import annotations

import logging

from telegram import InlineKeyboardMarkup, Update
from telegram.ext import Application, CallbackQueryHandler, CommandHandler

from bot.context import GridhornContext
from bot.i18n import Markup, escape, t
from bot.labels import ROLE
from bot.services.audit import AuditAction
from bot.services.errors import Refused
from bot.services.roster import PAGE, AuditPage, Roster
from bot.services.ticket_views import when
from handlers.common import (
    answer_query,
    command_args,
    drop_buttons,
    edit,
    handles_refusals,
    keyboard,
    reply,
    reply_html,
    require_private,
)
from handlers.render import role_name, unit_label

logger = logging.getLogger(__name__)

#: a role's short code in callback data (64 bytes at most)
ROLE_CODES = {"community_staff": "cs", "grid_leader": "gl", "grid_worker": "gw",
              "building_head": "bh", "department_liaison": "dl", "volunteer": "vo",
              "party_member": "pm", "unit_contact": "uc", "unit_member": "um"}
_ROLE_OF_CODE = {code: role for role, code in ROLE_CODES.items()}
#: how each kind of audit row reads (an unknown kind: its code and detail)
AUDIT_KEY: dict[str, str] = {
    AuditAction.GRANT: "audit.grant", AuditAction.REVOKE: "audit.revoke",
    AuditAction.BACKUP: "audit.backup", AuditAction.AWAY: "audit.away",
    AuditAction.BACK: "audit.back", AuditAction.REGISTER: "audit.register"}
_DATA_MAX = 64


def _revoke_data(verb: str, role: str, code: str, user_id: int) -> str | None:
    data = f"pp:{verb}:{ROLE_CODES[role]}:{code}:{user_id}"
    return data if len(data.encode()) <= _DATA_MAX else None


def _roster_view(locale: str, roster: Roster) -> tuple[str, InlineKeyboardMarkup | None]:
    lines = [t(locale, "people.title", unit=unit_label(roster.unit), total=roster.total)]
    buttons: list[tuple[str, str]] = []
    for number, holder in enumerate(roster.holders, roster.page * PAGE + 1):
        person = holder.person
        lines.append(t(locale, "people.line", n=number, name=person.display_name,
                       user=person.user_id, role=role_name(locale, holder.grant.role),
                       unit=unit_label(holder.unit)))
        data = _revoke_data("rv", holder.grant.role, holder.unit.code, person.user_id) \
            if holder.revocable else None
        if data is not None:
            buttons.append((t(locale, "people.revoke_button", n=number,
                              name=person.display_name[:20]), data))
    if not roster.holders:
        lines.append(t(locale, "people.none"))
    rows = [buttons[i:i + 2] for i in range(0, len(buttons), 2)]
    nav = []
    if roster.page > 0:
        nav.append((t(locale, "people.previous"), f"pp:pg:{roster.unit.code}:{roster.page - 1}"))
    if roster.more:
        nav.append((t(locale, "people.more"), f"pp:pg:{roster.unit.code}:{roster.page + 1}"))
    if nav:
        rows.append(nav)
    return "\n".join(lines), keyboard(rows) if rows else None


@handles_refusals
async def people(update: Update, context: GridhornContext) -> None:
    """/people [CODE]: who holds which role on the unit and below, with revoke buttons."""
    require_private(update, "people.private_only")
    args = command_args(update)
    if len(args) > 1:
        raise Refused("people.usage")
    roster = await context.services.roster.roster(context.actor, args[0] if args else None)
    text, markup = _roster_view(context.locale, roster)
    await reply_html(update, context, text, markup=markup)


@handles_refusals
async def revoke(update: Update, context: GridhornContext) -> None:
    """/revoke ROLE CODE USER_ID: take a role away (what you could have granted)."""
    require_private(update, "people.private_only")
    args = command_args(update)
    if len(args) != 3 or not args[2].isdigit():
        raise Refused("revoke.usage")
    await _revoke(update, context, args[0].lower(), args[1], int(args[2]))


async def _revoke(update: Update, context: GridhornContext, role: str, code: str,
                  user_id: int) -> None:
    revoked = await context.services.roster.revoke(context.actor, role, code, user_id)
    locale = context.locale
    name = revoked.person.display_name if revoked.person else str(user_id)
    lines = [t(locale, "revoke.done", role=role_name(locale, role), name=name,
               unit=unit_label(revoked.unit))]
    if revoked.escalated:
        lines.append(t(locale, "revoke.passed",
                       tickets=", ".join(f"#{n}" for n in revoked.escalated)))
    await reply_html(update, context, "\n".join(lines))


@handles_refusals
async def people_button(update: Update, context: GridhornContext) -> None:
    """/people's buttons: `pp:pg:<code>:<page>`, `pp:rv|ok:<role>:<code>:<user>`, `pp:no`."""
    query = update.callback_query
    assert query is not None
    parts = (query.data or "").split(":")
    roster = context.services.roster
    locale = context.user_locale
    if parts[1:2] == ["no"]:
        await answer_query(update)
        await drop_buttons(query.message)
        return
    if len(parts) == 4 and parts[1] == "pg" and parts[3].isdigit():
        page = await roster.roster(context.actor, parts[2], int(parts[3]))
        await answer_query(update)
        text, markup = _roster_view(locale, page)
        await edit(query.message, text, markup)
        return
    if len(parts) != 5 or parts[1] not in ("rv", "ok") or parts[2] not in _ROLE_OF_CODE \
            or not parts[4].isdigit():
        raise Refused("button.stale")
    role, code, user_id = _ROLE_OF_CODE[parts[2]], parts[3], int(parts[4])
    if parts[1] == "rv":
        unit, person = await roster.check_revoke(context.actor, role, code, user_id)
        await answer_query(update)
        confirm = _revoke_data("ok", role, unit.code, user_id)
        assert confirm is not None  # as long as the press that asked
        await reply(update, context, "people.confirm", role=role_name(locale, role),
                    name=person.display_name if person else str(user_id), user=user_id,
                    unit=unit_label(unit), markup=keyboard([[
                        (t(locale, "people.confirm_yes"), confirm),
                        (t(locale, "people.confirm_no"), "pp:no")]]))
        return
    await _revoke(update, context, role, code, user_id)
    await answer_query(update)
    await drop_buttons(query.message)


def _detail(locale: str, detail: str | None) -> str:
    """An audit row's detail: a role by its name, anything else as it was written."""
    if detail is not None and detail in ROLE:
        return role_name(locale, detail)
    return detail or ""


def _audit_text(context: GridhornContext,
                page: AuditPage) -> tuple[str, InlineKeyboardMarkup | None]:
    locale = context.locale
    tz = context.services.settings.tz
    lines = [t(locale, "audit.title", unit=unit_label(page.unit), total=page.total)]
    for entry in page.entries:
        unit = page.units.get(entry.unit_code)
        values = {
            "who": page.names.get(entry.actor_id, str(entry.actor_id))
            if entry.actor_id is not None else t(locale, "audit.nobody"),
            "whom": f"{page.names.get(entry.subject_id, '')} ({entry.subject_id})"
            if entry.subject_id is not None else "—",
            "unit": unit_label(unit) if unit else Markup(escape(entry.unit_code)),
            "detail": _detail(locale, entry.detail),
        }
        what = t(locale, AUDIT_KEY[entry.action], **values) if entry.action in AUDIT_KEY \
            else t(locale, "audit.other", action=entry.action, **values)
        lines.append(t(locale, "audit.line", at=when(entry.at, tz), what=Markup(what)))
    if not page.entries:
        lines.append(t(locale, "audit.none"))
    nav = []
    if page.page > 0:
        nav.append((t(locale, "people.previous"), f"au:pg:{page.unit.code}:{page.page - 1}"))
    if page.more:
        nav.append((t(locale, "people.more"), f"au:pg:{page.unit.code}:{page.page + 1}"))
    return "\n".join(lines), keyboard([nav]) if nav else None


@handles_refusals
async def audit(update: Update, context: GridhornContext) -> None:
    """/audit CODE: the latest role changes on a unit and below, newest first."""
    require_private(update, "people.private_only")
    args = command_args(update)
    if len(args) != 1:
        raise Refused("audit.usage")
    page = await context.services.roster.audit(context.actor, args[0])
    text, markup = _audit_text(context, page)
    await reply_html(update, context, text, markup=markup)


@handles_refusals
async def audit_button(update: Update, context: GridhornContext) -> None:
    """/audit's pages: `au:pg:<code>:<page>`."""
    query = update.callback_query
    assert query is not None
    parts = (query.data or "").split(":")
    if len(parts) != 4 or parts[1] != "pg" or not parts[3].isdigit():
        raise Refused("button.stale")
    page = await context.services.roster.audit(context.actor, parts[2], int(parts[3]))
    await answer_query(update)
    text, markup = _audit_text(context, page)
    await edit(query.message, text, markup)


def register(app: Application, group: int) -> None:
    app.add_handler(CommandHandler("people", people), group=group)
    app.add_handler(CommandHandler("revoke", revoke), group=group)
    app.add_handler(CommandHandler("audit", audit), group=group)
    app.add_handler(CallbackQueryHandler(people_button, pattern=r"^pp:"), group=group)
    app.add_handler(CallbackQueryHandler(audit_button, pattern=r"^au:"), group=group)
