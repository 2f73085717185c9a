"""Texts built from several catalog entries (help, profile); values are escaped by `t`."""

from __future__ import annotations

from bot.i18n import Markup, escape, t
from bot.services.access import Action, Actor
from bot.services.horn_views import availability_label
from bot.services.people import Profile
from storage.models import Unit

# /help sections: each shown when the person may do its action somewhere.
HELP_SECTIONS: list[tuple[Action | None, str]] = [
    (None, "help.everyone"),
    (None, "help.opinions"),
    (None, "help.theme"),
    (Action.VIEW_TICKETS, "help.tickets"),
    (Action.BIND, "help.bind"),
    (Action.INVITE, "help.invite"),
    (Action.HORN_SERVICE, "help.horn"),
    (None, "help.volunteer"),
    (Action.THEME, "help.theme_set"),
    (Action.REPORT, "help.report"),
    (Action.PATROL, "help.patrol"),
]


def unit_label(unit: Unit) -> Markup:
    return Markup(f"{escape(unit.name)} ({escape(unit.code)})")


def role_name(locale: str, role: str) -> str:
    return t(locale, f"role.{role}")


def help_text(locale: str, actor: Actor, actions: set[Action]) -> str:
    lines = [t(locale, "help.title")]
    for action, key in HELP_SECTIONS:
        if action is None or action in actions:
            lines.append(t(locale, key))
    return "\n\n".join(lines)


def profile_text(locale: str, profile: Profile, superadmin: bool) -> str:
    none = t(locale, "me.none")
    roles = [role_name(locale, "superadmin")] if superadmin else []
    roles += [f"{role_name(locale, role)} · {unit_label(unit)}" for role, unit in profile.roles]
    skills = ", ".join(t(locale, f"skill.{s}") for s in profile.skills)
    return t(locale, "me.profile",
             building=unit_label(profile.building) if profile.building else none,
             roles=Markup("\n".join(f"• {r}" for r in roles)) if roles else none,
             party=t(locale, "me.yes" if profile.party_member else "me.no"),
             skills=skills or none,
             availability=availability_label(locale, profile.availability)
             if profile.availability else none,
             hours=f"{profile.hours:g}", points=profile.points)
