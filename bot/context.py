"""The typed context handlers receive: services, the actor and the reply language."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from telegram.ext import Application, CallbackContext, ExtBot

from bot.services.access import Access, Actor

if TYPE_CHECKING:
    from bot.intake import Intake
    from bot.outbox import OutboxSender
    from bot.services.outbox import Outbox
    from bot.services.chats import ChatService
    from bot.backlog import Backlog
    from bot.watcher import DueWatcher
    from bot.services.people import PeopleService
    from bot.services.tickets import TicketService
    from bot.services.horns import HornService
    from bot.services.volunteers import VolunteerService
    from bot.scheduler import Scheduler
    from bot.services.schedule import ScheduleService
    from bot.settings import Settings
    from storage.store import Store


@dataclass
class Services:
    """Everything the handlers may call, built once in `post_init`."""

    settings: "Settings"
    store: "Store"
    access: Access
    people: "PeopleService"
    chats: "ChatService"
    outbox: "Outbox"
    sender: "OutboxSender"
    tickets: "TicketService"
    deadlines: "DueWatcher"
    horns: "HornService"
    horn_watch: "DueWatcher"
    volunteers: "VolunteerService"
    schedule: "ScheduleService"
    scheduler: "Scheduler"
    card_backlog: "Backlog"
    intake: "Intake | None" = None
    bot_username: str = ""

    def deep_link(self, payload: str) -> str:
        return f"https://t.me/{self.bot_username}?start={payload}"


SERVICES_KEY = "gridhorn.services"


class GridhornContext(CallbackContext[ExtBot[None], dict[Any, Any], dict[Any, Any],
                                      dict[Any, Any]]):
    """Set up per update by the guard in `handlers/guard.py`."""

    def __init__(self, application: Application[Any, Any, Any, Any, Any, Any],
                 chat_id: int | None = None, user_id: int | None = None) -> None:
        super().__init__(application, chat_id=chat_id, user_id=user_id)
        self.actor: Actor = Actor(user_id=user_id or 0)
        self.locale: str = "zh-Hans"          # the language to answer this update in
        self.user_locale: str = "zh-Hans"     # the sender's own language (private notices)

    @property
    def services(self) -> Services:
        return self.application.bot_data[SERVICES_KEY]
