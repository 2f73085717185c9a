"""One factory builds the application for production and tests alike."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from telegram.ext import Application, ApplicationBuilder, ContextTypes
from telegram.request import BaseRequest

from bot.context import SERVICES_KEY, GridhornContext, Services
from bot.http import AiohttpRequest
from bot.httpworker import WorkerRequest
from bot.intake import Intake
from bot.outbox import OutboxSender
from bot.services.outbox import Outbox
from bot.ratelimit import DirectReplyLimiter, FloodGate
from bot.services.access import Access
from bot.services.chats import ChatService
from bot.services.people import PeopleService
from bot.services.tickets import TicketService
from bot.backlog import Backlog
from bot.watcher import DueWatcher
from bot.services.horns import HornService
from bot.services.volunteers import VolunteerService
from bot.scheduler import Scheduler
from bot.services.schedule import ScheduleService
from storage.models import OutboxItem
from bot.settings import Settings
from storage.store import Store

logger = logging.getLogger(__name__)


def build_application(settings: Settings, request: BaseRequest | None = None,
                      get_updates_request: BaseRequest | None = None) -> Application:
    if settings.bot_token is None:
        raise ValueError("GRIDHORN_BOT_TOKEN is required to run the bot")
    gate = FloodGate(settings.rate_overall_per_s, settings.rate_chat_per_s,
                     settings.rate_group_per_min)
    request = request or (WorkerRequest if settings.http_worker else AiohttpRequest)(
        connection_pool_size=128, pool_timeout=30, read_timeout=20, write_timeout=20)
    get_updates_request = get_updates_request or AiohttpRequest(connection_pool_size=2)
    builder = (
        ApplicationBuilder()
        .token(settings.bot_token.get_secret_value())
        .base_url(settings.api_base_url)
        .base_file_url(settings.api_base_file_url)
        .updater(None)
        .rate_limiter(DirectReplyLimiter(gate))
        .context_types(ContextTypes(context=GridhornContext))
        .request(request)
        .get_updates_request(get_updates_request)
    )
    app = builder.build()
    app.bot_data["gridhorn.settings"] = settings
    app.bot_data["gridhorn.gate"] = gate
    app.bot_data["gridhorn.requests"] = (request, get_updates_request)
    from handlers import register_all

    register_all(app)
    return app


async def open_services(app: Application) -> None:
    """Open the store (running migrations), build the services, set the command menus."""
    settings: Settings = app.bot_data["gridhorn.settings"]
    gate: FloodGate = app.bot_data["gridhorn.gate"]
    store = await Store.open_sqlite(settings.sqlite_path)
    access = Access(store, settings.superadmins)
    outbox = Outbox(store, settings)
    people = PeopleService(store, access, settings)
    chats = ChatService(store, access, people, outbox)
    tickets = TicketService(store, access, people, outbox, settings)
    sender = OutboxSender(app.bot, store, gate, settings)
    outbox.connect(sender.wake)
    sender.chat_lost_hooks.append(chats.chat_lost)
    sender.migrate_hooks.append(chats.migrated)
    _connect_ticket_hooks(sender, tickets)
    deadlines = DueWatcher("deadlines", tickets.run_due, tickets.next_due)
    tickets.changed = deadlines.wake
    card_backlog = Backlog("cards", tickets.post_pending_cards)
    tickets.cards_waiting = card_backlog.wake
    horns = HornService(store, access, people, outbox, settings)
    _connect_horn_hooks(sender, horns)
    horn_watch = DueWatcher("horns", horns.run_due, horns.next_due, recover=horns.recover)
    horns.changed = horn_watch.wake
    schedule = ScheduleService(store, access, people, outbox, settings)
    scheduler = Scheduler(store, schedule, settings)
    services = Services(settings=settings, store=store, access=access, people=people,
                        chats=chats, outbox=outbox, sender=sender, tickets=tickets,
                        deadlines=deadlines, horns=horns, horn_watch=horn_watch,
                        volunteers=VolunteerService(store), schedule=schedule, scheduler=scheduler,
                        card_backlog=card_backlog, bot_username=app.bot.username or "")
    app.bot_data[SERVICES_KEY] = services
    from handlers.menus import set_command_menus

    await set_command_menus(app.bot, settings.default_locale)


def _ref(item: OutboxItem) -> list[str]:
    """An item's `ref` ("tcard:12:head"): its prefix chose the hook; the rest names what."""
    return (item.ref or "").split(":")


def _connect_ticket_hooks(sender: OutboxSender, tickets: TicketService) -> None:
    """What the outbox learns when a ticket's message goes out (its id, its topic)."""
    for prefix, hook in tickets.sent_hooks().items():
        sender.on_sent(prefix, hook)


def _connect_horn_hooks(sender: OutboxSender, horns: HornService) -> None:
    """The horn service names its own hooks, by the prefix of its refs."""
    for prefix, hook in horns.sent_hooks().items():
        sender.on_sent(prefix, hook)


async def close_services(app: Application) -> None:
    services: Services | None = app.bot_data.get(SERVICES_KEY)
    if services is not None:
        await services.store.close()
        del app.bot_data[SERVICES_KEY]


class Runtime:
    """A running Gridhorn: the application, its outbox sender and its durable intake."""

    def __init__(self, settings: Settings, request: BaseRequest | None = None,
                 poll_timeout: int = 25, get_updates_request: BaseRequest | None = None
                 ) -> None:
        self.app = build_application(settings, request, get_updates_request)
        self.poll_timeout = poll_timeout
        self._stopped = asyncio.Event()

    @property
    def services(self) -> Services:
        return self.app.bot_data[SERVICES_KEY]

    async def start(self) -> None:
        """Start everything; a start that fails part-way undoes what it did (sessions, store)."""
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> None:
        # python-telegram-bot calls post_init only from run_polling; we run our own loop.
        await self.app.initialize()
        await open_services(self.app)
        await self.app.start()
        services = self.services
        await services.sender.start()
        await services.scheduler.start()  # after an outage, what was due runs once now
        await services.deadlines.start(services.scheduler.aps)
        await services.horn_watch.start(services.scheduler.aps)
        services.intake = Intake(self.app, services.store, poll_timeout=self.poll_timeout)
        services.sender.foreground_busy = services.intake.busy
        services.card_backlog.foreground_busy = services.intake.busy
        await services.card_backlog.start()
        await services.intake.start()
        logger.info("Gridhorn is running as @%s", services.bot_username)

    async def stop(self) -> None:
        services: Services | None = self.app.bot_data.get(SERVICES_KEY)
        if services is not None:
            if services.intake is not None:
                await services.intake.stop()
            await services.card_backlog.stop()
            await services.deadlines.stop()
            await services.horn_watch.stop()
            await services.scheduler.stop()
            await services.sender.stop()
        if self.app.running:
            await self.app.stop()
        await self.app.shutdown()
        # an application whose start failed (Telegram unreachable) is not shut down by
        # python-telegram-bot, but its HTTP sessions are open: close them (idempotent)
        for request in self.app.bot_data["gridhorn.requests"]:
            await request.shutdown()
        await close_services(self.app)

    async def run_until_stopped(self, started: Callable[[], None] | None = None) -> None:
        await self.start()
        if started is not None:
            started()
        try:
            await self._stopped.wait()
        finally:
            await self.stop()

    def request_stop(self, *_: Any) -> None:
        self._stopped.set()
