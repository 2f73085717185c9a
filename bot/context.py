"""The typed context handlers receive: services, the actor and the reply language."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from telegram.ext import Application, CallbackContext, ExtBot

from bot.services.access import Access, Actor
from bot.services.backups import BackupService
from bot.services.chats import ChatService
from bot.services.checkpoints import CheckpointService
from bot.services.horns import HornService
from bot.services.meetings import MeetingService
from bot.services.people import PeopleService
from bot.services.posts import PostService
from bot.services.privacy import PrivacyService
from bot.services.resources import ResourceService
from bot.services.roster import RosterService
from bot.services.schedule import ScheduleService
from bot.services.shop import ShopService
from bot.services.tickets import TicketService
from bot.services.units import UnitService
from bot.services.volunteers import VolunteerService
from bot.settings import Settings


@dataclass(frozen=True)
class Services:
    """What handlers may call: the services, the settings and the local clock. The store,
    the outbox and the machinery that sends and schedules stay with the runtime
    (`bot.app.Runtime`): a handler asks a service, and the service writes."""

    settings: Settings
    access: Access
    people: PeopleService
    chats: ChatService
    tickets: TicketService
    horns: HornService
    volunteers: VolunteerService
    schedule: ScheduleService
    roster: RosterService
    backups: BackupService
    #: the time bank's shop 爱心银行 (SPEC §13)
    shop: ShopService
    meetings: MeetingService
    #: patrol checkpoints 专项巡更点 (SPEC §13)
    checkpoints: CheckpointService
    privacy: PrivacyService  # SPEC §14: consent, /mydata, /forget
    #: member units (SPEC §10) and their posts to claim
    units: UnitService
    posts: PostService
    resources: ResourceService
    #: the local time (the scheduler's clock: tests move it)
    now: Callable[[], datetime]
    #: the bot's @username, known once the application has asked Telegram (`getMe`)
    username: Callable[[], str]

    @property
    def bot_username(self) -> str:
        return self.username()

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
        services: Services = self.application.bot_data[SERVICES_KEY]
        return services
