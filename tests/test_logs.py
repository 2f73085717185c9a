"""The log (SPEC §15): GRIDHORN_LOG_FORMAT=json writes one JSON object per line (time, level,
logger, message, and the update, ticket and horn a line is about; the outbox sender's lines
name the item, its chat and the ticket or horn its ref is about), and a text line ends with the
same ids; GRIDHORN_LOG_LEVEL; bad values are one line naming the variable."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator

import pytest
from telegram.error import BadRequest, Forbidden

from bot import logcontext, logs
from bot.outbox import OutboxSender
from bot.ratelimit import FloodGate
from bot.services.access import Access
from bot.services.horn_codes import copy_ref
from bot.services.horns import HornService
from bot.services.outbox import Outbox
from bot.services.people import PeopleService
from bot.settings import SettingsError, load_settings
from storage.inbox import UpdateMark, current_update
from storage.models import Chat, CopyKind
from storage.store import Store
from tests.support.harness import grant, seed_map
from tests.support.tickets import GRID_CHAT, RESIDENT, ticket_world
from tests.test_outbox import FakeBot


def record(message: str, *args: object, exc: bool = False) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError("boom")
        except ValueError:
            exc_info = sys.exc_info()
    return logging.LogRecord("bot.intake", logging.WARNING, __file__, 1, message, args,
                             exc_info)


def test_a_json_line_names_the_update_ticket_and_horn_it_is_about() -> None:
    formatter = logs.JsonFormatter()
    plain = json.loads(formatter.format(record("hello %s", "there")))
    assert set(plain) == {"time", "level", "logger", "message"}
    assert (plain["level"], plain["logger"], plain["message"]) == \
        ("WARNING", "bot.intake", "hello there")
    assert plain["time"].endswith("+00:00")
    token = current_update.set(UpdateMark(4242))
    try:
        with logcontext.fresh():
            logcontext.tag(ticket_id=7)
            logcontext.tag(horn_id=3)
            line = formatter.format(record("about them", exc=True))
        after = json.loads(formatter.format(record("the update goes on")))
    finally:
        current_update.reset(token)
    assert "\n" not in line  # a traceback is a field, not more lines
    entry = json.loads(line)
    assert (entry["update_id"], entry["ticket_id"], entry["horn_id"]) == (4242, 7, 3)
    assert "ValueError: boom" in entry["exception"]
    assert after["update_id"] == 4242 and "ticket_id" not in after  # its context is over
    logcontext.tag(ticket_id=9)  # outside an update: nothing to tag
    assert "ticket_id" not in json.loads(formatter.format(record("later")))


def test_configure_writes_the_format_at_the_level_and_leaves_a_set_up_logging_alone(
        monkeypatch: pytest.MonkeyPatch) -> None:
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])
    monkeypatch.setattr(root, "level", logging.WARNING)
    stream = io.StringIO()
    settings = load_settings(log_format="json", log_level="error", bot_token="1:SECRET")
    handler = logs.configure(settings, stream)
    assert handler is not None
    try:
        assert root.level == logging.ERROR
        logging.getLogger("bot.test").warning("not written")
        logging.getLogger("bot.test").error("written at %s", "https://x/bot1:SECRET/getMe")
        assert logs.configure(settings, io.StringIO()) is None  # set up already
    finally:
        root.removeHandler(handler)
    lines = stream.getvalue().splitlines()
    assert [json.loads(line)["message"] for line in lines] == \
        ["written at https://x/bot<token>/getMe"]  # the token never reaches the log
    text = logs.formatter(load_settings())
    assert text.format(record("plain")).endswith("WARNING bot.intake: plain")


@pytest.mark.parametrize(("values", "line"), [
    ({"log_format": "xml"}, "GRIDHORN_LOG_FORMAT: Input should be 'text' or 'json'"),
    ({"log_level": "loud"}, "GRIDHORN_LOG_LEVEL: Input should be 'DEBUG', 'INFO', "
                            "'WARNING', 'ERROR' or 'CRITICAL'"),
])
def test_a_bad_log_setting_is_one_line_naming_it(values: dict[str, str], line: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(**values)
    assert str(caught.value) == line
    assert load_settings(log_format=" JSON ", log_level="warning").log_level == "WARNING"
    assert load_settings().log_format == "text" and load_settings().log_level == "INFO"


# ------------------------------------------------------------------ the outbox sender's lines


class Captured(logging.Handler):
    """The sender's lines as the log writes them: JSON and text, side by side."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.json: list[dict[str, object]] = []
        self.text: list[str] = []
        self._json, self._text = logs.JsonFormatter(), logs.formatter(load_settings())

    def emit(self, record: logging.LogRecord) -> None:
        self.json.append(json.loads(self._json.format(record)))
        self.text.append(self._text.format(record))

    def about(self, outbox_id: int) -> list[tuple[dict[str, object], str]]:
        return [(entry, line) for entry, line in zip(self.json, self.text, strict=True)
                if entry.get("outbox_id") == outbox_id]


@pytest.fixture
def captured() -> Iterator[Captured]:
    handler = Captured()
    sender_log = logging.getLogger("bot.outbox")
    level = sender_log.level
    sender_log.addHandler(handler)
    sender_log.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        sender_log.removeHandler(handler)
        sender_log.setLevel(level)


def sender_for(store: Store, outbox: Outbox, bot: FakeBot) -> OutboxSender:
    settings = load_settings(quiet_hours="")
    return OutboxSender(bot, store, FloodGate(1000, 1000, 100000), settings,  # type: ignore[arg-type]
                        hooks=outbox.hooks, written=outbox.written)


async def test_the_senders_lines_name_the_ticket_its_item_is_about(
        store: Store, captured: Captured) -> None:
    """A ticket's card to a group that removed the bot: the sender's warning names the item,
    the chat and the ticket, in JSON and in text; a card that went out elsewhere names its
    own item and the same ticket, never the other's; the receipt to a reporter who blocked
    the bot names the ticket too."""
    world = await ticket_world(store)
    ticket = await world.submit()
    await world.tickets.post_pending_cards()
    cards = {i.chat_id: i for i in await world.pending() if i.ref and i.ref.startswith("tcard:")}
    assert GRID_CHAT in cards and len(cards) > 1
    refused = cards[GRID_CHAT]
    to_reporter = {i.id for i in await world.pending(RESIDENT)}  # receipt, draft card's edit
    assert len(to_reporter) == 2
    bot = FakeBot()
    bot.fail[GRID_CHAT] = [Forbidden("Forbidden: bot was kicked from the group chat")]
    bot.fail[RESIDENT] = [Forbidden("Forbidden: bot was blocked by the user")]
    sender = sender_for(store, world.tickets.outbox, bot)
    await sender.start()
    try:
        await sender.drain(5)
    finally:
        await sender.stop()
    [(entry, line)] = [(e, t) for e, t in captured.about(refused.id) if e["level"] == "WARNING"]
    assert "kicked" in str(entry["message"])
    assert (entry["ticket_id"], entry["outbox_id"], entry["chat_id"]) == \
        (ticket.id, refused.id, GRID_CHAT)
    assert "horn_id" not in entry and "update_id" not in entry
    assert line.endswith(f"[ticket_id={ticket.id} outbox_id={refused.id} chat_id={GRID_CHAT}]")
    other = next(i for chat, i in cards.items() if chat != GRID_CHAT)
    [(sent, _)] = captured.about(other.id)
    assert str(sent["message"]).endswith("sent")
    assert (sent["ticket_id"], sent["chat_id"]) == (ticket.id, other.chat_id)
    [blocked] = [e for e in captured.json if e.get("chat_id") == RESIDENT]
    assert "blocked" in str(blocked["message"]) and blocked["outbox_id"] in to_reporter
    assert blocked["ticket_id"] == ticket.id  # not a card: about the ticket all the same
    lines_without_item = [e for e in captured.json if "outbox_id" not in e]
    assert all("ticket_id" not in e for e in lines_without_item)


async def test_the_senders_lines_name_the_horn_of_a_copy(store: Store, captured: Captured
                                                         ) -> None:
    """A horn's copy that Telegram refuses (400): the error line names the horn, the item
    and the chat."""
    await seed_map(store)
    await grant(store, 2, "grid_worker", "G0101")
    async with store.transaction():
        await store.map.upsert_chat(Chat(chat_id=-400, type="supergroup", title="B01010101"))
        await store.map.bind("B01010101", -400, 0, None)
    settings = load_settings(quiet_hours="", timezone="Asia/Shanghai")
    access = Access(store, settings.superadmins)
    outbox = Outbox(store, settings)
    horns = HornService(store, access, PeopleService(store, access, settings), outbox,
                        settings)
    actor = await access.actor(2)
    await horns.short_form(actor, "service B01010101 2 Carry boxes")
    published = await horns.publish(actor)
    [copy] = [i for i in await store.outbox.pending() if i.chat_id == -400]
    assert copy.ref == copy_ref(published.horn.id, CopyKind.GROUP)
    bot = FakeBot()
    bot.fail[-400] = [BadRequest("Can't parse entities: unsupported start tag")]
    sender = sender_for(store, outbox, bot)
    await sender.start()
    try:
        await sender.drain(5)
    finally:
        await sender.stop()
    [(entry, line)] = [(e, t) for e, t in captured.about(copy.id) if e["level"] == "ERROR"]
    assert (entry["horn_id"], entry["outbox_id"], entry["chat_id"]) == \
        (published.horn.id, copy.id, -400)
    assert "ticket_id" not in entry
    assert line.endswith(f"[horn_id={published.horn.id} outbox_id={copy.id} chat_id=-400]")
    assert await store.outbox.get(copy.id) is not None
    assert (await store.outbox.get(copy.id)).status == "failed"  # type: ignore[union-attr]
