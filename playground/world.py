"""The playground's sample world (SPEC §17): a county set up as it would be after a few days.

`build_world` takes a started emulator and an open store, before the bot's `Runtime` starts,
and makes, from `world.yaml`, deterministically (the same ids on a fresh emulator and store):

- the people: emulator accounts with Chinese names, in the session's language, each having
  started the bot (so it may write to them privately), recorded in the store as the bot records
  a sender who wrote to it privately (`people.touch`), with their building (a resident, as a
  join link makes one), their roles and party flag (as an invite records them: the grant and
  its audit row), and a volunteer's skills and availability (as `/volunteer` records them),
  with the hours served before the bot came (`hours`: credited to their hours and, as the
  points a horn's close gives for them, opening their time bank's ledger, SPEC §13);
- the county's group chats, the bot an admin in each with the rights to pin and to manage
  topics, each recorded as `/bind` records it (the chat's type, forum flag and the bot's
  rights) and bound through the map file's `chat:` key (`import_map`, as a county loads its
  map);
- nothing waiting: the updates the emulator queued when the bot was added to the groups (its
  own `my_chat_member` and the "added" service messages) are dropped, as if the bot had been
  added long ago: the bot would otherwise greet each chat and say how to bind it, though the
  map file bound it already;
- the county's scheduled jobs already run for their current periods (SPEC §6), as when the
  bot has been running for a while: a fresh store would otherwise have the bot, at its start,
  post last month's public report (all zeros), last quarter's leaderboards and a reminder that
  this month has no theme into every chat. Each job's period is the one the bot's own
  `Scheduler` computes from the settings' crontabs at `now`; the report's run also counts as
  posted to every chat, so the daily run does not post it later as "on display"; last
  month's evaluation round is open (SPEC §12, from `now`: its reminder 3 days on), asked of
  staff and grid leaders, none rated.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from bot.i18n import CatalogKey
from bot.labels import ROLE
from bot.scheduler import Scheduler
from bot.services.access import Access
from bot.services.audit import AuditAction, AuditLog
from bot.services.horn_closing import POINTS_PER_HOUR
from bot.services.mapfile import import_map
from bot.services.outbox import Outbox
from bot.services.people import PeopleService
from bot.services.schedule import ScheduleService
from bot.settings import Settings, load_settings
from emulator import BotAPIEmulator, EmuChat, EmuUser
from storage.models import PARTY_MEMBER, Chat
from storage.store import Store

WORLD_FILE = Path(__file__).with_name("world.yaml")
LANGS = ("zh-Hans", "zh-Hant", "en")
#: the Telegram `language_code` a person of the world has, by the session's language (the bot
#: reads it as that language: SPEC §3)
LANGUAGE_CODES = {"zh-Hans": "zh-hans", "zh-Hant": "zh-hant", "en": "en"}
#: the people shown side by side when the page opens (SPEC §17)
COLUMNS = ("resident", "head", "worker", "volunteer1")


@dataclass(frozen=True)
class Person:
    key: str            # "resident", "head", "worker", "leader", "staff", "department", …
    name: str
    user: EmuUser
    role_key: CatalogKey  # the catalog key of the role's label (bot.labels.ROLE)
    unit: str           # the name of the unit the role is on ("1栋", "第一网格", "县民政局")


@dataclass
class World:
    lang: str
    people: list[Person] = field(default_factory=list)
    chats: dict[str, EmuChat] = field(default_factory=dict)   # "building:B…", "staff:G…", …
    columns: list[int] = field(default_factory=list)          # user ids, left to right

    def person(self, key: str) -> Person:
        return next(p for p in self.people if p.key == key)


def load_world_file(path: Path = WORLD_FILE) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), f"{path.name}: a mapping at the top"
    return data


def _units(tree: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every unit of the map section by code (the same dicts: a `chat` set here is in it)."""
    found: dict[str, dict[str, Any]] = {}
    for community in tree.get("communities", []):
        found[community["code"]] = community
        for grid in community.get("grids", []):
            found[grid["code"]] = grid
            for estate in grid.get("estates", []):
                found[estate["code"]] = estate
                for building in estate.get("buildings", []):
                    found[building["code"]] = building
        for partner in community.get("partners", []):   # shown as a person's unit
            found[partner["code"]] = partner
        for member in community.get("members", []):  # member units (SPEC §10)
            found[member["code"]] = member
    for department in tree.get("departments", []):
        found[department["code"]] = department
    return found


async def build_world(emu: BotAPIEmulator, store: Store, lang: str, *,
                      settings: Settings | None = None, now: datetime | None = None,
                      path: Path = WORLD_FILE) -> World:
    """Seed the sample county into a started emulator and an open store (before the bot
    starts); returns who and what it made. `lang`: the people's language (zh-Hans, zh-Hant,
    en), which the session also makes the bot's default. `settings` and `now`: the bot's
    (its crontabs and time zone, its clock) for the scheduled jobs' periods (default: the
    settings `gridhorn run` reads, and the time now)."""
    if lang not in LANGUAGE_CODES:
        raise ValueError(f"unknown language {lang!r}: one of {', '.join(LANGS)}")
    data = load_world_file(path)
    tree: dict[str, Any] = data["map"]
    units = _units(tree)
    world = World(lang=lang)

    users: dict[str, EmuUser] = {}
    for spec in data["people"]:
        user = emu.add_user(spec["name"], username=spec.get("username"),
                            language_code=LANGUAGE_CODES[lang])
        user.started = True          # they have written to the bot: it may write to them
        emu.private_chat(user)
        users[spec["key"]] = user
        world.people.append(Person(key=spec["key"], name=user.full_name, user=user,
                                   role_key=ROLE[spec["role"]],
                                   unit=units[spec["unit"]]["name"]))

    for spec in data["chats"]:
        chat = emu.add_group(spec["title"], supergroup=True, forum=bool(spec.get("forum")),
                             members=[users[key] for key in spec["members"]],
                             owner=users[spec["by"]])
        await emu.add_bot_to_group(chat, by=users[spec["by"]], admin=True, can_pin=True,
                                   can_manage_topics=True)
        units[spec["unit"]]["chat"] = chat.id
        world.chats[spec["key"]] = chat
    # the bot was added long ago: nothing of it waits for the bot (no greeting, no "bind me")
    emu.drop_pending_updates()

    text = yaml.safe_dump(tree, allow_unicode=True, sort_keys=False)
    result = await import_map(store, text.encode(), path.name)
    if not result.ok:
        raise ValueError(f"{path.name}: " + "; ".join(str(e) for e in result.errors))

    audit = AuditLog(store)
    at = (now or datetime.now(UTC)).timestamp()
    async with store.transaction(marks_update=False):
        for chat in world.chats.values():   # as /bind records a chat (ChatService.seen)
            await store.map.upsert_chat(Chat(
                chat_id=chat.id, type=chat.type, title=chat.title, is_forum=chat.is_forum,
                active=True, bot_is_admin=chat.bot_is_admin, can_pin=chat.bot_can_pin,
                can_manage_topics=chat.bot_can_manage_topics))
        for spec in data["people"]:
            user = users[spec["key"]]
            await store.people.touch(user.id, user.first_name, user.last_name, user.username,
                                     user.language_code, private=True)
            if spec.get("building"):
                await store.people.set_building(user.id, spec["building"])
                # a resident of a while: agreed to the privacy notice (SPEC §14) already
                await store.privacy.consent(user.id, at)
            grants = [(g["role"], g["unit"]) for g in spec.get("roles", [])]
            if spec.get("party_member"):
                grants.append((PARTY_MEMBER, spec["party_member"]))
            for role, unit in grants:   # as an invite redeemed records it (set up: no inviter)
                if await store.people.grant(user.id, role, unit, None):
                    await audit.record(None, AuditAction.GRANT, unit, user.id, role)
            if spec.get("partner"):     # a partner shop's clerk (SPEC §13)
                await store.shop.add_clerk(user.id, spec["partner"], None, 0.0)
            volunteer = spec.get("volunteer")
            if volunteer is not None:   # as /volunteer records it: on their building
                home = spec["building"]
                if await store.people.grant(user.id, "volunteer", home, user.id):
                    await audit.record(user.id, AuditAction.REGISTER, home, user.id,
                                       "volunteer")
                await store.people.set_volunteer_profile(
                    user.id, volunteer.get("skills", []), volunteer.get("availability"))
                hours = float(volunteer.get("hours", 0))
                if hours > 0:  # served before the bot: hours and their points, as opened
                    points = round(hours * POINTS_PER_HOUR)  # as a horn's close credits them
                    await store.people.add_hours(user.id, hours, points)
                    await store.shop.opening(user.id, points, at)

    await _schedules_done(store, settings or load_settings(), now,
                          [chat.id for chat in world.chats.values()])
    world.columns = [users[key].id for key in COLUMNS]
    return world


async def _schedules_done(store: Store, settings: Settings, now: datetime | None,
                          chat_ids: list[int]) -> None:
    """Record every scheduled job as run for its current period (0 posts), as the bot's
    `Scheduler.run_due` would find them after running; the report as posted to each chat."""
    access = Access(store, settings.superadmins)
    people = PeopleService(store, access, settings)
    schedule = ScheduleService(store, access, people, Outbox(store, settings), settings)
    scheduler = Scheduler(store, schedule, settings)
    moment = (now or scheduler.now()).astimezone(settings.tz)
    async with store.transaction(marks_update=False):
        for job in scheduler.jobs:
            fire = scheduler.last_fire(job, moment)
            if fire is None:
                continue
            period = job.period(fire)
            await store.schedules.record_run(job.name, period, 0)
            if job.name == "report":
                for chat_id in chat_ids:
                    await store.schedules.claim_post(job.name, period, chat_id)
            if job.name == "evaluation":  # SPEC §12: last month's round open, as yet unrated
                await schedule.evaluations.open_month(period, moment, send=False)
