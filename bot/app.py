"""The composition root: `build_runtime` builds every part of a running Gridhorn in one place,
for production, the tests and the benchmarks alike; `Runtime` starts and stops them.

The parts are built in the order they depend on each other, each given its collaborators in
its constructor. Where two need each other (a watcher runs a service's due work; the service
wakes the watcher), a `Wakeup` is built first and handed to both. Services register their own
outbox hooks with the writer (`Outbox`); the sender reads that registry.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from telegram.ext import Application, ApplicationBuilder, ContextTypes
from telegram.request import BaseRequest

from bot.backlog import Backlog
from bot.chatprobe import TelegramChatProbe
from bot.context import SERVICES_KEY, GridhornContext, Services
from bot.health import HealthServer
from bot.hooks import Wakeup
from bot.http import AiohttpRequest, MeteredRequest
from bot.httpworker import WorkerRequest
from bot.intake import Intake
from bot.leader import Leadership, replica_id
from bot.metrics import Metrics
from bot.outbox import OutboxSender
from bot.ratelimit import DirectReplyLimiter, FloodGate, SharedDirectSends
from bot.scheduler import Scheduler
from bot.services.access import Access
from bot.services.chats import ChatService
from bot.services.horns import HornService
from bot.services.meetings import MeetingService
from bot.services.outbox import Outbox
from bot.services.people import PeopleService
from bot.services.privacy import PrivacyService
from bot.services.resources import ResourceService
from bot.services.roster import RosterService
from bot.services.schedule import ScheduleService
from bot.services.shop import ShopService, codes_from
from bot.services.tickets import TicketService
from bot.services.units import UnitService
from bot.services.volunteers import VolunteerService
from bot.settings import Settings
from bot.watcher import DueWatcher
from bot.webhook import WebhookServer
from handlers import register_all
from handlers.menus import set_command_menus
from storage.store import Store

logger = logging.getLogger(__name__)
App = Application[Any, Any, Any, Any, Any, Any]


def build_application(settings: Settings, token: str, gate: FloodGate, request: BaseRequest,
                      get_updates_request: BaseRequest,
                      shared: SharedDirectSends | None = None) -> App:
    """python-telegram-bot's application: our handlers, our context, our HTTP stack; no
    updater (the intake polls) and direct replies paced by the flood gate (and, with
    several replicas, written for the leader's gate: `shared`)."""
    app = (
        ApplicationBuilder()
        .token(token)
        .base_url(settings.api_base_url)
        .base_file_url(settings.api_base_file_url)
        .updater(None)
        .rate_limiter(DirectReplyLimiter(gate, shared=shared))
        .context_types(ContextTypes(context=GridhornContext))
        .request(request)
        .get_updates_request(get_updates_request)
        .build()
    )
    register_all(app)
    return app


async def build_runtime(settings: Settings, *, store: Store | None = None,
                        request: BaseRequest | None = None,
                        get_updates_request: BaseRequest | None = None,
                        poll_timeout: int = 25,
                        new_token: Callable[[], str] | None = None,
                        webhook: bool = False, trace_origins: bool = False) -> Runtime:
    """Every part of the bot, wired. `store`: one already open (`gridhorn run` opens it
    first, to name a bad GRIDHORN_DATABASE_URL in one line); the runtime closes it, and so
    does a build that fails. `new_token`: the secrets of invite links (default: random).
    `webhook`: Telegram posts the updates to our server (`bot.webhook`) instead of getUpdates.
    `trace_origins`: each outbox call names the update its item was queued for (the
    playground's inspector)."""
    if settings.bot_token is None:
        raise ValueError("GRIDHORN_BOT_TOKEN is required to run the bot")
    if webhook:
        settings.check_webhook()
    async with AsyncExitStack() as undo:
        store = store or await Store.open(settings.database_url)
        undo.push_async_callback(store.close)
        gate = FloodGate(settings.rate_overall_per_s, settings.rate_chat_per_s,
                         settings.rate_group_per_min)
        metrics = Metrics()  # this runtime's own counters (/metrics, SPEC §15)
        request = MeteredRequest(
            request or (WorkerRequest if settings.http_worker else AiohttpRequest)(
                connection_pool_size=128, pool_timeout=30, read_timeout=20, write_timeout=20),
            metrics.call)
        get_updates_request = MeteredRequest(
            get_updates_request or AiohttpRequest(connection_pool_size=2), metrics.call)
        # PostgreSQL: one of several replicas; the leader alone sends and schedules
        replicas_url: str | None = getattr(store.db, "url", None) \
            if store.db.dialect == "postgresql" else None
        replica = replica_id()
        shared = SharedDirectSends(store.leadership, gate, replica) if replicas_url else None
        app = build_application(settings, settings.bot_token.get_secret_value(), gate,
                                request, get_updates_request, shared)
        intake = Intake(app, store, poll_timeout=poll_timeout, metrics=metrics)
        notified, polled = Wakeup(), Wakeup()  # the leader's outbox notifications, its poll
        leadership = Leadership(replicas_url, replica=replica, notified=notified, poll=polled)
        webhook_server = _webhook_server(settings, intake, app, leadership) if webhook \
            else None

        access = Access(store, settings.superadmins)
        outbox = Outbox(store, settings, trace_origins=trace_origins)
        people = PeopleService(store, access, settings, new_token=new_token)
        chats = ChatService(store, access, people, outbox, probe=TelegramChatProbe(app.bot))
        deadlines_due, cards_waiting, horns_due = Wakeup(), Wakeup(), Wakeup()
        codes_due = Wakeup()   # the time bank's shop: a redemption code will expire
        shop = ShopService(store, access, people, outbox, settings, changed=codes_due,
                           new_code=codes_from(new_token) if new_token else None)
        tickets = TicketService(store, access, people, outbox, settings,
                                changed=deadlines_due, cards_waiting=cards_waiting,
                                learn_chat=chats.known)
        horns = HornService(store, access, people, outbox, settings, changed=horns_due)
        checkpoints_due = Wakeup()  # patrol checkpoints: the next end of a period (SPEC §13)
        schedule = ScheduleService(store, access, people, outbox, settings,
                                   checkpoints_changed=checkpoints_due)
        checkpoints = schedule.checkpoints
        meetings_due = Wakeup()
        meetings = MeetingService(store, access, people, outbox, settings, tickets,
                                  changed=meetings_due)

        def local_now() -> datetime:
            return datetime.now(settings.tz)

        def username() -> str:
            return app.bot.username or ""

        services = Services(settings=settings, access=access, people=people, chats=chats,
                            tickets=tickets, horns=horns,
                            volunteers=VolunteerService(store, people.audit),
                            schedule=schedule,
                            roster=RosterService(store, access, people, outbox, tickets),
                            backups=schedule.backups, meetings=meetings,
                            shop=shop, checkpoints=checkpoints,
                            privacy=PrivacyService(store, access, people, outbox, settings,
                                                   tickets),
                            units=UnitService(store, access), posts=schedule.posts,
                            resources=ResourceService(store, access, people, outbox, settings),
                            now=local_now, username=username)
        app.bot_data[SERVICES_KEY] = services
        runtime = Runtime(
            settings=settings, store=store, app=app, requests=(request, get_updates_request),
            services=services, outbox=outbox, intake=intake,
            sender=OutboxSender(app.bot, store, gate, settings, hooks=outbox.hooks,
                                written=outbox.written, foreground_busy=intake.busy,
                                notified=notified, polled=polled, metrics=metrics),
            scheduler=Scheduler(store, schedule, settings, now=local_now, metrics=metrics),
            deadlines=DueWatcher("deadlines", tickets.run_due, tickets.next_due,
                                 wakeup=deadlines_due),
            horn_watch=DueWatcher("horns", horns.run_due, horns.next_due,
                                  recover=horns.recover, wakeup=horns_due),
            shop_watch=DueWatcher("codes", shop.run_due, shop.next_due, wakeup=codes_due),
            checkpoint_watch=DueWatcher("checkpoints", checkpoints.run_due,
                                        checkpoints.next_due, wakeup=checkpoints_due),
            card_backlog=Backlog("cards", tickets.post_pending_cards, wakeup=cards_waiting,
                                 foreground_busy=intake.busy),
            meeting_watch=DueWatcher("meetings", meetings.run_due, meetings.next_due,
                                     wakeup=meetings_due),
            webhook=webhook_server, leadership=leadership, shared_sends=shared,
            health=HealthServer(store, host=settings.metrics_host, port=settings.metrics_port,
                                role=lambda: str(leadership.role),
                                epoch=lambda: leadership.epoch,
                                polling_failed_for=intake.polling_failed_for,
                                metrics=metrics)
            if settings.metrics_port else None,
            metrics=metrics)
        undo.pop_all()  # built: the store is the runtime's now
    return runtime


def _webhook_server(settings: Settings, intake: Intake, app: App,
                    leadership: Leadership) -> WebhookServer:
    assert settings.webhook_url is not None and settings.webhook_secret is not None
    host, port = settings.listen_address
    # every replica receives; the leader alone sets the webhook (at start, or on winning)
    return WebhookServer(intake, app.bot, url=settings.webhook_url,
                         secret=settings.webhook_secret.get_secret_value(),
                         path=settings.webhook_path, host=host, port=port,
                         leader=leadership.is_leader)


#: seconds a new leader waits before sending after a takeover (Telegram's overall window)
TAKEOVER_QUIET_S = 1.1


@dataclass
class Runtime:
    """A running Gridhorn: the parts `build_runtime` wired, started in order and stopped in
    the reverse order through one exit stack, so a part that fails to stop does not keep the
    others running (its error is raised once all are stopped), and a start that fails
    part-way stops what it had started. The runtime owns the store: `stop` closes it."""

    settings: Settings
    store: Store
    app: App
    requests: tuple[BaseRequest, BaseRequest]   # the calls' and getUpdates'
    services: Services
    outbox: Outbox
    intake: Intake
    sender: OutboxSender
    scheduler: Scheduler
    deadlines: DueWatcher
    horn_watch: DueWatcher
    shop_watch: DueWatcher      # expired redemption codes return their points (SPEC §13)
    checkpoint_watch: DueWatcher
    card_backlog: Backlog
    #: meetings' reminders, sign-in buttons and requests for minutes (SPEC §12)
    meeting_watch: DueWatcher
    #: webhook mode: Telegram posts the updates here (the intake then does not poll)
    webhook: WebhookServer | None = None
    #: who leads (SQLite: this process, always); the sender, the scheduler, the watchers
    #: and the backlog run while this replica leads
    leadership: Leadership = field(default_factory=lambda: Leadership(None))
    #: PostgreSQL: every replica's direct replies, counted by the leader's gate
    shared_sends: SharedDirectSends | None = None
    health: HealthServer | None = None  # /healthz, when GRIDHORN_METRICS_PORT is set
    #: the runtime's counters, served as /metrics beside /healthz (SPEC §15)
    metrics: Metrics = field(default_factory=Metrics)
    _stack: AsyncExitStack = field(default_factory=AsyncExitStack, init=False, repr=False)
    _stopped: asyncio.Event = field(default_factory=asyncio.Event, init=False, repr=False)

    def __post_init__(self) -> None:
        self._stack.push_async_callback(self.store.close)

    async def start(self) -> None:
        try:
            await self._start(self._stack)
        except BaseException:
            await self.stop()
            raise

    async def _start(self, stack: AsyncExitStack) -> None:
        # a start that fails in `initialize` (Telegram unreachable) leaves the HTTP sessions
        # open and python-telegram-bot does not shut them down: closed here (idempotent)
        for request in self.requests:
            stack.push_async_callback(request.shutdown)
        # python-telegram-bot calls post_init only from run_polling; we run our own loop
        await self.app.initialize()
        stack.push_async_callback(self.app.shutdown)
        await set_command_menus(self.app.bot, self.settings.default_locale)
        await self.app.start()
        stack.push_async_callback(self.app.stop)
        if self.health is not None:  # before the lead: a follower answers it too
            await self.health.start()
            stack.push_async_callback(self.health.stop)
        if self.shared_sends is not None:
            await self.shared_sends.start()
            stack.push_async_callback(self.shared_sends.stop)
        await self.leadership.start(self._lead)
        stack.push_async_callback(self.leadership.stop)
        await self.intake.start(poll=self.webhook is None)
        stack.push_async_callback(self.intake.stop)
        if self.webhook is not None:  # stopped first: no update is taken while stopping
            await self.webhook.start()
            stack.push_async_callback(self.webhook.stop)
        logger.info("Gridhorn is running as @%s", self.services.bot_username)

    async def _lead(self, epoch: int | None, stack: AsyncExitStack) -> None:
        """This replica leads (`epoch`; None: the one process): the leader's parts start,
        their stops pushed onto `stack` (closed when the lead is lost, or at stop)."""
        if self.shared_sends is not None:
            # the former leader's last minute counts against the limits: its sends first
            former = await self.store.outbox.sent_since(time.time() - SharedDirectSends.KEEP_S)
            await self.shared_sends.start_counting(former)
            stack.push_async_callback(self.shared_sends.stop_counting)
            if epoch is not None and epoch > 1:
                # calls a fenced predecessor still had on the wire are in no store: they
                # land within Telegram's one-second window, which we let pass first
                await asyncio.sleep(TAKEOVER_QUIET_S)
        await self.sender.start(epoch, on_fenced=self.leadership.fence)
        stack.push_async_callback(self._stop_sender)
        await self.scheduler.start()  # after an outage, what was due runs once now
        stack.push_async_callback(self.scheduler.stop)
        for watcher in (self.deadlines, self.horn_watch, self.shop_watch, self.meeting_watch,
                        self.checkpoint_watch):
            await watcher.start(self.scheduler.aps)
            stack.push_async_callback(watcher.stop)
        await self.card_backlog.start()
        stack.push_async_callback(self.card_backlog.stop)
        if epoch is not None and self.webhook is not None and self.webhook.listening:
            try:  # won later: Telegram posts to us all the same, the leader says where
                await self.webhook.set_webhook()
            except Exception:
                logger.exception("setting the webhook as the new leader failed")

    async def _stop_sender(self) -> None:
        if self.leadership.abrupt:  # the lead is lost: what is on its way is cut short
            await self.sender.stop(cancel=True)
        else:
            await self.sender.stop()

    @property
    def role(self) -> str:
        """"leader", "follower" or "single" (SQLite), for /healthz (SPEC §15)."""
        return str(self.leadership.role)

    @property
    def epoch(self) -> int | None:
        """The epoch of the lead this replica holds or last held (SQLite: 1)."""
        return self.leadership.epoch

    async def stop(self) -> None:
        """Stop every part started, the last started first, and close the store."""
        await self._stack.aclose()

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
