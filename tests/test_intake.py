"""The durable intake's bookkeeping: which commit marks an update processed (SPEC §4)."""

from __future__ import annotations

import asyncio

import pytest

from bot.intake import Intake
from bot.services.access import Access
from bot.services.people import PeopleService, TelegramUser
from bot.settings import load_settings
from storage import codec
from storage.inbox import UpdateMark, current_update

pytestmark = pytest.mark.asyncio


async def unprocessed(store) -> list[int]:
    return [update_id for update_id, _ in await store.inbox.pending()]


async def test_recording_the_sender_leaves_the_update_for_its_handler(store):
    """The guard records who sent an update before the handler runs. If that write marked
    the update processed, a crash between it and the handler's commit would lose the update
    (after a restart the recording is the first write again for everyone)."""
    await store.inbox.store([{"update_id": 7, "message": {}}])
    people = PeopleService(store, Access(store, frozenset()), load_settings())
    mark = UpdateMark(7)
    token = current_update.set(mark)
    try:
        await people.touch(TelegramUser(1001, "李"), private=True)
        assert not mark.done and await unprocessed(store) == [7]
        async with store.transaction():  # the handler's own work marks it, in its commit
            await store.people.set_locale(1001, "en")
        assert mark.done and await unprocessed(store) == []
    finally:
        current_update.reset(token)


async def test_the_inbox_keeps_the_latest_handled_updates_and_every_unhandled_one(store,
                                                                                 monkeypatch):
    """Every update is stored; without pruning the table would grow for ever."""
    monkeypatch.setattr(type(store.inbox), "KEEP", 5)
    await store.inbox.store([{"update_id": n, "message": {}} for n in range(1, 11)])
    await store.inbox.mark_processed([n for n in range(1, 11) if n != 3])
    await store.inbox.store([{"update_id": 11, "message": {}}])  # next offset 12: keep 7..11
    kept = [r["update_id"] for r in
            await store.db.fetchall("SELECT update_id FROM inbox ORDER BY update_id")]
    assert kept == [3, 7, 8, 9, 10, 11]
    assert await unprocessed(store) == [3, 11]


async def test_a_pressed_message_is_parsed_for_where_it_is_not_what_it_says():
    from telegram import Update

    from bot.intake import lean
    raw = {"update_id": 9, "callback_query": {
        "id": "q1", "from": {"id": 5, "is_bot": False, "first_name": "李"},
        "chat_instance": "c", "data": "dr:submit",
        "message": {"message_id": 40, "date": 1, "message_thread_id": 3,
                    "is_topic_message": True,
                    "chat": {"id": -100, "type": "supergroup", "title": "网格群", "is_forum": True},
                    "from": {"id": 1, "is_bot": True, "first_name": "Gridhorn"},
                    "text": "#1 楼道灯坏了",
                    "entities": [{"type": "bold", "offset": 0, "length": 2}],
                    "reply_markup": {"inline_keyboard": [[{"text": "受理",
                                                           "callback_data": "t:ack:1"}]]}}}}
    update = Update.de_json(lean(raw), None)
    message = update.callback_query.message
    assert (message.message_id, message.chat.id, message.message_thread_id) == (40, -100, 3)
    assert message.is_topic_message and update.callback_query.data == "dr:submit"
    assert message.text is None and message.reply_markup is None and message.from_user is None
    assert raw["callback_query"]["message"]["text"] == "#1 楼道灯坏了"  # the inbox keeps it whole


@pytest.mark.sqlite_only  # group commit
async def test_an_update_whose_commit_failed_stays_unprocessed_for_a_replay(store):
    """Group commit: another transaction's failure at COMMIT undoes this update's work too;
    the update must then stay in the inbox, not be marked processed."""
    import asyncio

    from storage.models import Unit
    await store.inbox.store([{"update_id": 8, "message": {}}])
    mark = UpdateMark(8)

    async def handler() -> None:
        token = current_update.set(mark)
        try:
            async with store.transaction():
                await store.map.upsert(Unit(code="C01", kind="community", name="c"))
        finally:
            current_update.reset(token)

    async def spoiler() -> None:  # a deferred constraint fails only at COMMIT
        async with store.transaction(marks_update=False):
            await store.db.execute("PRAGMA defer_foreign_keys=ON")
            await store.map.upsert(Unit(code="G01", kind="grid", name="g", parent_code="C99"))

    results = await asyncio.gather(handler(), spoiler(), return_exceptions=True)
    assert all(isinstance(r, Exception) for r in results)
    assert mark.lost and not mark.done and await unprocessed(store) == [8]


class _App:
    """The part of python-telegram-bot's Application the intake uses to handle updates."""

    bot = None

    def __init__(self, handle) -> None:
        self.handle = handle

    async def process_update(self, update) -> None:
        await self.handle(update.update_id)

    def add_error_handler(self, callback) -> None:
        """The intake counts the updates whose handler raised (none do here)."""


async def handled(intake, update_ids: list[int]) -> None:
    """The intake handles these stored updates (as it does after getUpdates), each from its
    own chat: on lanes of their own, concurrently."""
    for update_id in update_ids:
        intake._dispatch(update_id, {"update_id": update_id, "message": {
            "message_id": 1, "date": 0, "chat": {"id": update_id, "type": "private"}}})
    async with asyncio.timeout(10):
        await intake.drain()


async def queued_texts(store) -> list[str]:
    rows = await store.db.fetchall("SELECT payload FROM outbox ORDER BY id")
    return [codec.loads(row["payload"])["text"] for row in rows]


@pytest.mark.sqlite_only  # group commit
async def test_an_update_whose_group_commit_failed_is_handled_again_alone_and_once(store):
    """The COMMIT of the group that held the update's work fails (injected: as a full disk or
    an I/O error would): the update does not wait for a restart; its work is done again in
    the running process, on its own, and is committed once."""
    from tests.test_groupcommit import fail_next_commit

    await store.inbox.store([{"update_id": 8}])
    tried = fail_next_commit(store.db._write)
    calls: list[int] = []

    async def handle(update_id: int) -> None:
        calls.append(update_id)
        async with store.transaction():
            await store.outbox.enqueue(update_id, "sendMessage", {"text": f"r{update_id}"}, 20)

    await handled(Intake(_App(handle), store), [8])
    assert calls == [8, 8] and tried == ["COMMIT", "COMMIT"]
    assert await queued_texts(store) == ["r8"] and await unprocessed(store) == []


@pytest.mark.sqlite_only  # group commit, PRAGMA
async def test_one_updates_fault_at_commit_does_not_cost_the_others_of_its_group(store):
    """Two updates share a group; one's work breaks a deferred constraint, so the group's
    COMMIT fails. Each is handled again alone: the good one is committed, the bad one stays
    unprocessed for the next start."""
    from storage.models import Unit

    async def handle(update_id: int) -> None:
        async with store.transaction():
            if update_id == 9:
                await store.db.execute("PRAGMA defer_foreign_keys=ON")
                await store.map.upsert(
                    Unit(code="G01", kind="grid", name="g", parent_code="C99"))
            else:
                await store.outbox.enqueue(update_id, "sendMessage", {"text": "fine"}, 20)

    await store.inbox.store([{"update_id": 8}, {"update_id": 9}])
    await handled(Intake(_App(handle), store), [8, 9])
    assert await queued_texts(store) == ["fine"] and await unprocessed(store) == [9]


async def test_stop_waits_for_the_updates_being_handled_only_so_long(store, monkeypatch):
    """A handler that never ends must not hold the shutdown; its update, stored and not
    marked, is handled at the next start."""
    monkeypatch.setattr(Intake, "STOP_GRACE_S", 0.05)
    started = asyncio.Event()

    async def handle(update_id: int) -> None:
        started.set()
        await asyncio.Event().wait()

    intake = Intake(_App(handle), store)
    await store.inbox.store([{"update_id": 5}])
    await intake.start(poll=False)  # what is stored and not handled is handled at start
    await started.wait()
    async with asyncio.timeout(5):
        await intake.stop()
    assert await unprocessed(store) == [5]


async def test_a_getupdates_outage_is_logged_when_it_starts_and_when_it_ends(store, caplog):
    import logging

    from telegram.error import NetworkError
    intake = Intake(_App(None), store)
    caplog.set_level(logging.INFO, logger="bot.intake")
    waits = [intake._failed(NetworkError("down")) for _ in range(8)]
    intake._answered()
    intake._answered()
    assert waits == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    assert [r.levelname for r in caplog.records] == ["WARNING", "INFO"]
    assert "after 8 failed tries" in caplog.records[1].getMessage()


async def test_storing_says_which_updates_to_handle_new_or_not_handled_yet(store):
    """A redelivery (Telegram did not see our answer) must be handled only if it was not
    handled before; an update repeated within one batch is stored once."""
    first = {"update_id": 3, "message": {"chat": {"id": 9}}}
    assert await store.inbox.store([first, first, {"update_id": 4}]) == {3, 4}
    assert await store.inbox.store([first]) == {3}  # stored, not handled yet: still to do
    await store.inbox.mark_processed([3])
    assert await store.inbox.store([first, {"update_id": 5}]) == {5}
    rows = await store.db.fetchall("SELECT update_id, lane FROM inbox ORDER BY update_id")
    assert [tuple(r) for r in rows] == [(3, 9), (4, 0), (5, 0)]  # each with its lane


async def test_updates_posted_by_webhook_keep_no_offset(store):
    """By webhook there is no getUpdates offset: storing an update leaves the offset row
    alone (every replica's deliveries writing it waited for each other's commits)."""
    await store.inbox.store([{"update_id": 40, "message": {}}], polled=False)
    assert await store.inbox.next_offset() is None
    await store.inbox.store([{"update_id": 41, "message": {}}])
    assert await store.inbox.next_offset() == 42
    await store.inbox.store([{"update_id": 50, "message": {}}], polled=False)
    assert await store.inbox.next_offset() == 42
    assert await unprocessed(store) == [40, 41, 50]


async def test_a_tap_waiting_for_a_slot_goes_before_the_messages_waiting():
    """Telegram gives a tap 15 s: with every slot taken, the next free one goes to the tap
    that came last, not to the messages that came before it."""
    from storage.groupcommit import Slots

    slots = Slots(1)
    order: list[str] = []
    release = asyncio.Event()

    async def handle(name: str, tap: bool) -> None:
        async with slots.taken(tap):
            order.append(name)
            if name == "first":
                await release.wait()

    first = asyncio.create_task(handle("first", False))
    await asyncio.sleep(0)
    waiting = [asyncio.create_task(handle(f"message{n}", False)) for n in range(3)]
    await asyncio.sleep(0)
    waiting.append(asyncio.create_task(handle("tap", True)))
    await asyncio.sleep(0)
    release.set()
    await asyncio.gather(first, *waiting)
    assert order == ["first", "tap", "message0", "message1", "message2"]


async def test_a_cancelled_waiter_gives_its_slot_on():
    from storage.groupcommit import Slots

    slots = Slots(1)
    async with slots.taken(False):
        waiter = asyncio.create_task(slots.acquire(True))
        await asyncio.sleep(0)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
    async with asyncio.timeout(1):
        async with slots.taken(False):
            pass  # the slot is free again: neither lost nor given twice


def tap(update_id: int, user_id: int) -> dict:
    return {"update_id": update_id, "callback_query": {
        "id": f"q{update_id}", "from": {"id": user_id, "is_bot": False, "first_name": "A"},
        "chat_instance": "1", "data": "x"}}


async def test_a_tap_no_handler_began_on_in_time_is_answered_empty(store):
    """Telegram shows an error for a tap not answered within 15 s: a tap still waiting for a
    handler after `TAP_GUARD_S` gets an empty answer; one whose handler answered gets none."""
    release = asyncio.Event()
    handled: list[int] = []

    async def handle(update_id: int) -> None:
        handled.append(update_id)
        mark = current_update.get()
        assert mark is not None
        mark.answered = True  # as rawapi.answer_callback notes it, at once
        await release.wait()

    intake = Intake(_App(handle), store, max_concurrent=1)
    intake.TAP_GUARD_S = 0.05
    answered: list[str] = []
    late = asyncio.Event()

    async def answer_tap(query_id: str) -> None:
        answered.append(query_id)
        late.set()

    intake.answer_tap = answer_tap  # type: ignore[method-assign]
    await intake.start(poll=False)
    await intake.accept([tap(1, 501), tap(2, 502)])  # one slot: the second waits
    async with asyncio.timeout(5):
        await late.wait()
    assert answered == ["q2"] and handled == [1]
    release.set()
    async with asyncio.timeout(5):
        await intake.drain()
    assert handled == [1, 2] and answered == ["q2"]  # its work is still done, once
    await intake.stop()
