"""Telegram glue, one module per feature. The order of registration is fixed here.

Groups (python-telegram-bot runs at most one handler per group, lowest group first):
  -100  guard: records the sender, builds the actor and picks the reply language
   -20  a private reply to an evaluation list: a note on a rating (handlers/evaluation.py)
   -10  guided flows: private text of a person in a horn, volunteer, intake or meeting flow
        (handlers/flows.py)
    -5  a partner clerk's redemption code sent alone in a private chat (handlers/shop.py)
     0  the features' commands, buttons and messages, then (registered last, so they match
        only what no feature took) the fallbacks: unknown commands and stale buttons
"""

from __future__ import annotations

from telegram.ext import Application

from bot.services import checkpoints as checkpoint_service
from bot.services import (
    horn_base,
    horn_units,
    meeting_flow,
    resources,
    ticket_assign,
    ticket_intake,
    volunteers,
)
from bot.services.meetings import WRAP_FLOW as MEETING_WRAP_FLOW
from handlers import (
    assign,
    backups,
    chats,
    checkpoints,
    evaluation,
    fallback,
    flows,
    guard,
    horn,
    intake,
    meetings,
    onboarding,
    opinions,
    people,
    privacy,
    schedule,
    shop,
    units,
    volunteer,
    votes,
)
from handlers.flows import FlowText

GUARD_GROUP = -100
EVALUATION_NOTE_GROUP = -20    # a private reply to an evaluation list (SPEC §12)
FLOW_GROUP = -10
SHOP_CODE_GROUP = -5
FEATURE_GROUP = 0
#: the guided flows whose private text goes to the feature, by the stored flow's name
FLOW_TEXTS: dict[str, FlowText] = {
    horn_base.FLOW: horn.flow_text,
    horn_base.HOURS_FLOW: horn.flow_text,
    volunteers.FLOW: volunteer.flow_text,
    ticket_intake.FLOW: intake.flow_text,
    meeting_flow.FLOW: meetings.flow_text,
    MEETING_WRAP_FLOW: meetings.flow_text,
    checkpoint_service.FLOW: checkpoints.flow_text,
    resources.REQUEST_FLOW: units.resource_flow_text,    # member units' resources (§10)
    horn_units.PLEDGE_FLOW: units.pledge_flow_text,      # a unit's typed pledge (§10)
    resources.DECLINE_FLOW: units.resource_flow_text,
    # 点将 (§10): the assignee's progress, result note and hours
    ticket_assign.UPDATE_FLOW: assign.flow_text,
    ticket_assign.NOTE_FLOW: assign.flow_text,
    ticket_assign.HOURS_FLOW: assign.flow_text,
}


def register_all(app: Application) -> None:
    guard.register(app, GUARD_GROUP)
    evaluation.register_notes(app, EVALUATION_NOTE_GROUP)
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
    shop.register(app, FEATURE_GROUP, code_group=SHOP_CODE_GROUP)
    meetings.register(app, FEATURE_GROUP)
    checkpoints.register(app, FEATURE_GROUP)
    privacy.register(app, FEATURE_GROUP)
    evaluation.register(app, FEATURE_GROUP)
    units.register(app, FEATURE_GROUP)  # member units (SPEC §10)
    votes.register(app, FEATURE_GROUP)  # the residents' quarterly vote (SPEC §10)
    fallback.register(app, FEATURE_GROUP)  # must stay last
    app.add_error_handler(fallback.on_error)
