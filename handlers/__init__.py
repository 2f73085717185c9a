"""Telegram glue, one module per feature. The order of registration is fixed here.

Groups (python-telegram-bot runs at most one handler per group, lowest group first):
  -100  guard: records the sender, builds the actor and picks the reply language
   -10  guided flows: private text of a person in a horn or volunteer flow (handlers/flows.py)
     0  the features' commands, buttons and messages, then (registered last, so they match
        only what no feature took) the fallbacks: unknown commands and stale buttons
"""

from __future__ import annotations

from telegram.ext import Application

from handlers import chats, fallback, guard, onboarding, opinions
from handlers import schedule
from handlers import flows, horn, volunteer

GUARD_GROUP = -100
FLOW_GROUP = -10
FEATURE_GROUP = 0


def register_all(app: Application) -> None:
    guard.register(app, GUARD_GROUP)
    flows.register(app, FLOW_GROUP)
    onboarding.register(app, FEATURE_GROUP)
    chats.register(app, FEATURE_GROUP)
    opinions.register(app, FEATURE_GROUP)
    schedule.register(app, FEATURE_GROUP)
    horn.register(app, FEATURE_GROUP)
    volunteer.register(app, FEATURE_GROUP)
    fallback.register(app, FEATURE_GROUP)  # must stay last
    app.add_error_handler(fallback.on_error)
