"""AB岗 (SPEC §11) end to end: a building head away with a backup — the backup gets the new
ticket's card (marked "for …") and the 75 % reminder, acts on it, the timeline names who
acted, and /back summarises."""

from __future__ import annotations

import pytest

from bot.i18n import t
from tests.support.county import card_head, submit
from tests.support.harness import grant, seed_map
from tests.support.texts import before, shown

pytestmark = pytest.mark.asyncio
DEADLINES = "12s,1h,1h"  # the reminder at 9 s, the acknowledgement due at 12 s


async def test_a_head_away_with_a_backup(harness):
    h, emu = harness, harness.emu
    await h.start_bot(deadlines_routine=DEADLINES)
    resident = emu.add_user(first_name="李", last_name="四", language_code="zh-hans")
    head = emu.add_user(first_name="Zhang", last_name="San", language_code="en")
    worker = emu.add_user(first_name="Wang", last_name="Wu", language_code="en")
    stranger = emu.add_user(first_name="Nobody", language_code="en")
    await seed_map(h.store)
    await grant(h.store, head.id, "building_head", "B01010101")
    await grant(h.store, worker.id, "grid_worker", "G0101")
    async with h.store.transaction():
        await h.store.people.ensure(resident.id)
        await h.store.people.set_building(resident.id, "B01010101")
    for user in (resident, head, worker, stranger):
        await h.say(user, "/start")

    # refusals name the problem; then the worker (staff above) is named, and the head leaves
    answer = (await h.say(head, f"/backup {stranger.id}"))[-1]
    assert answer.text == shown("en", "backup.unsuitable", name="Nobody")
    answer = (await h.say(head, "/away 2020-01-01"))[-1]
    assert answer.text == shown("en", "away.past", date="2020-01-01")
    answer = (await h.say(head, f"/backup {worker.id}"))[-1]
    assert answer.text == shown("en", "backup.done", name="Wang Wu")
    answer = (await h.say(head, "/away"))[-1]
    assert answer.text == shown("en", "away.done_backup", name="Wang Wu", until="/back")

    # the resident's opinion: its card goes to the backup, marked for the head
    await submit(h, resident, "楼道灯坏了")
    mark = shown("en", "backup.for", name="Zhang San")
    cards = [m for m in emu.messages(worker.id) if m.buttons]
    assert len(cards) == 1 and cards[0].text.startswith(mark + "\n" + card_head(1))
    assert not [m for m in emu.messages(head.id) if card_head(1) in m.text]

    # the 75 % reminder follows the backup
    reminder = before("en", "remind.deadline", "due", id=1)
    await emu.wait_until(
        lambda: any(reminder in text for text in h.texts(worker.id)), timeout=15)
    assert any(text.startswith(mark) and reminder in text for text in h.texts(worker.id))
    assert not any(reminder in text for text in h.texts(head.id))

    # the backup acknowledges from the card; the timeline names who acted
    await h.press(worker, cards[0], "t:ack:1")
    assert (await h.store.tickets.get(1)).status == "acknowledged"
    shown_ticket = "\n".join(m.text for m in await h.say(head, "/ticket 1"))
    acknowledged = shown("en", "event.acknowledged")
    assert any(acknowledged in line and "Wang Wu" in line
               for line in shown_ticket.splitlines()), shown_ticket
    edited = next(m for m in emu.messages(worker.id) if m.message_id == cards[0].message_id)
    assert edited.text.startswith(mark)  # every edit keeps the mark

    # back: the head is told what was done meanwhile; the next card is theirs again
    summary = "\n".join(m.text for m in await h.say(head, "/back"))
    assert summary.startswith(shown("en", "back.summary"))
    assert "#1" in summary and acknowledged in summary and "Wang Wu" in summary
    answer = (await h.say(head, "/back"))[-1]
    assert answer.text == shown("en", "back.not_away")
    actions = [e.action for e in (await h.store.audit.latest(["B01010101"], 10))[0]]
    assert actions == ["back", "away", "backup"]
    await submit(h, resident, "电梯坏了")
    assert any(m.text.startswith(card_head(2)) for m in emu.messages(head.id) if m.buttons)
    assert t("en", "backup.for", name="Zhang San") not in "".join(h.texts(head.id))
