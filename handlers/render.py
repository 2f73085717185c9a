"""Texts built from several catalog entries (help, profile); values are escaped by `t`."""

from __future__ import annotations

from bot.i18n import Markup, escape, join_list, t
from bot.labels import ROLE, SKILL
from bot.services.access import PARTNER_CLERK, UNIT_ROLES, Action, Actor, invitable_roles
from bot.services.horn_views import availability_label
from bot.services.people import Profile
from storage.models import Unit

# The ticket card's buttons, in card order, with the permission each needs (SPEC §1).
CARD_BUTTONS: list[tuple[Action, str]] = [
    (Action.HANDLE_TICKET, "btn.acknowledge"), (Action.HANDLE_TICKET, "btn.urgency"),
    (Action.ESCALATE, "btn.escalate"), (Action.WHISTLE, "btn.whistle"),
    (Action.ANSWER_WHISTLE, "btn.accept"), (Action.ANSWER_WHISTLE, "btn.decline"),
    (Action.RESOLVE, "btn.resolve"), (Action.HANDLE_TICKET, "btn.reject"),
    (Action.HANDLE_TICKET, "btn.merge"), (Action.HANDLE_TICKET, "btn.reply"),
    (Action.WHISTLE, "btn.offer"), (Action.HANDLE_TICKET, "btn.post_building"),
]


def unit_label(unit: Unit) -> Markup:
    return Markup(f"{escape(unit.name)} ({escape(unit.code)})")


def role_name(locale: str, role: str) -> str:
    return t(locale, ROLE[role])


def help_text(locale: str, actor: Actor, actions: set[Action]) -> str:
    """What this person can do, by role (SPEC §3): only the buttons, roles and horn levels
    their roles allow."""
    lines = [t(locale, key) for key in ("help.title", "help.everyone", "help.opinions",
                                        "help.theme")]
    if Action.VIEW_TICKETS in actions:
        buttons = [t(locale, key) for action, key in CARD_BUTTONS if action in actions]
        lines.append(t(locale, "help.tickets", buttons=join_list(locale, buttons)))
    if Action.HANDLE_TICKET in actions:  # staff intake (SPEC §11)
        lines.append(t(locale, "help.intake"))
    if Action.UNBIND in actions:
        lines.append(t(locale, "help.bind"))
    elif Action.BIND in actions:  # liaisons link their department's chat, nothing more
        lines.append(t(locale, "help.bind_department"))
    if Action.INVITE in actions:
        lines.append(t(locale, "help.invite", roles=", ".join(invitable_roles(actor))))
    if actor.is_staff:
        lines.append(t(locale, "help.people"))
        lines.append(t(locale, "help.backup"))
        if actor.superadmin or any(g.role == "community_staff" for g in actor.grants):
            lines.append(t(locale, "help.audit"))
    if Action.HORN_ANY in actions:
        lines.append(t(locale, "help.horn"))
    elif Action.HORN_SERVICE in actions:
        lines.append(t(locale, "help.horn_service"))
    lines.append(t(locale, "help.volunteer"))
    lines.append(t(locale, "help.shop"))  # the time bank's shop (SPEC §13)
    if any(g.role == PARTNER_CLERK for g in actor.grants):
        lines.append(t(locale, "help.shop_clerk"))
    if Action.MEETING in actions:  # meetings (SPEC §12)
        lines.append(t(locale, "help.meeting"))
    if Action.MANAGE_UNIT in actions:  # member units (SPEC §10)
        lines.append(t(locale, "help.unit"))
        lines.append(t(locale, "help.resources"))
    if any(g.role in UNIT_ROLES for g in actor.grants):  # 双报到
        lines.append(t(locale, "help.report_in"))
    lines.append(t(locale, "help.posts_new" if Action.POSTS in actions else "help.posts"))
    if Action.TALENT in actions:  # 点将台
        lines.append(t(locale, "help.talent"))
    for action, key in ((Action.THEME, "help.theme_set"), (Action.REPORT, "help.report"),
                        (Action.PATROL, "help.patrol"),
                        (Action.EVALUATE, "help.evaluations"), (Action.ASSESS, "help.assess")):
        if action in actions:
            lines.append(t(locale, key))
    if Action.PATROL in actions:  # patrol checkpoints (SPEC §13)
        lines.append(t(locale, "help.checkpoints"))
    lines.append(t(locale, "help.privacy"))  # SPEC §14: everyone's own data
    return "\n\n".join(lines)


def profile_text(locale: str, profile: Profile, superadmin: bool) -> str:
    none = t(locale, "me.none")
    roles = [role_name(locale, "superadmin")] if superadmin else []
    roles += [f"{role_name(locale, role)} · {unit_label(unit)}" for role, unit in profile.roles]
    skills = ", ".join(t(locale, SKILL[s]) for s in profile.skills)
    text = t(locale, "me.profile",
             building=unit_label(profile.building) if profile.building else none,
             roles=Markup("\n".join(f"• {r}" for r in roles)) if roles else none,
             party=t(locale, "me.yes" if profile.party_member else "me.no"),
             skills=skills or none,
             availability=availability_label(locale, profile.availability)
             if profile.availability else none,
             hours=f"{profile.hours:g}", points=profile.points)
    if profile.posts:  # posts to claim (SPEC §10)
        text += "\n" + t(locale, "me.posts", posts=", ".join(
            title + (t(locale, "post.mine_waiting") if waiting else "")
            for title, waiting in profile.posts))
    if profile.work_unit is None:
        return text
    # member units (SPEC §10): the work unit beside the home community (双报到)
    lines = [text, t(locale, "me.work_unit", unit=unit_label(profile.work_unit)),
             t(locale, "me.home_community", community=unit_label(profile.home_community)
               if profile.home_community else none)]
    if profile.reported is not None:
        offered = ", ".join(t(locale, SKILL[s]) for s in profile.reported.skills)
        lines.append(t(locale, "me.reported", date=profile.reported.reported_at[:10],
                       skills=offered or none))
    return "\n".join(lines)
