"""Telegram glue, one module per feature. The order of registration is fixed here.

Groups (python-telegram-bot runs at most one handler per group, lowest group first):
  -100  guard: records the sender, builds the actor and picks the reply language
   -10  guided flows: private text of a person in a horn, volunteer or intake flow
        (handlers/flows.py)
     0  the features' commands, buttons and messages, then (registered last, so they match
        only what no feature took) the fallbacks: unknown commands and stale buttons
"""

from __future__ import annotations

from telegram.ext import Application

from bot.services import horn_base, horn_units, resources, ticket_intake, volunteers
from handlers import (
    backups,
    chats,
    fallback,
    flows,
    guard,
    horn,
    intake,
    onboarding,
    opinions,
    people,
    schedule,
    units,
    volunteer,
)
from handlers.flows import FlowText

GUARD_GROUP = -100
FLOW_GROUP = -10
FEATURE_GROUP = 0
#: the guided flows whose private text goes to the feature, by the stored flow's name
FLOW_TEXTS: dict[str, FlowText] = {
    horn_base.FLOW: horn.flow_text,
    horn_base.HOURS_FLOW: horn.flow_text,
    volunteers.FLOW: volunteer.flow_text,
    ticket_intake.FLOW: intake.flow_text,
    resources.REQUEST_FLOW: units.resource_flow_text,    # member units' resources (§10)
    horn_units.PLEDGE_FLOW: units.pledge_flow_text,      # a unit's typed pledge (§10)
    resources.DECLINE_FLOW: units.resource_flow_text,
}


def register_all(app: Application) -> None:
    guard.register(app, GUARD_GROUP)
    flows.register(app, FLOW_GROUP, FLOW_TEXTS)
    onboarding.register(app, FEATURE_GROUP)
    chats.register(app, FEATURE_GROUP)
    opinions.register(app, FEATURE_GROUP)
    schedule.register(app, FEATURE_GROUP)
    horn.register(app, FEATURE_GROUP)
    volunteer.register(app, FEATURE_GROUP)
    people.register(app, FEATURE_GROUP)
    intake.register(app, FEATURE_GROUP)
    backups.register(app, FEATURE_GROUP)
    units.register(app, FEATURE_GROUP)  # member units (SPEC §10)
    fallback.register(app, FEATURE_GROUP)  # must stay last
    app.add_error_handler(fallback.on_error)
