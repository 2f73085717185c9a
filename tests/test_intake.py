"""The durable intake's bookkeeping: which commit marks an update processed (SPEC §4)."""

from __future__ import annotations

import pytest

from bot.services.access import Access
from bot.services.people import PeopleService, TelegramUser
from bot.settings import load_settings
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
                    "text": "#1 楼道灯坏了", "entities": [{"type": "bold", "offset": 0, "length": 2}],
                    "reply_markup": {"inline_keyboard": [[{"text": "受理",
                                                           "callback_data": "t:ack:1"}]]}}}}
    update = Update.de_json(lean(raw), None)
    message = update.callback_query.message
    assert (message.message_id, message.chat.id, message.message_thread_id) == (40, -100, 3)
    assert message.is_topic_message and update.callback_query.data == "dr:submit"
    assert message.text is None and message.reply_markup is None and message.from_user is None
    assert raw["callback_query"]["message"]["text"] == "#1 楼道灯坏了"  # the inbox keeps it whole


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
