"""Personal data (SPEC §14) through the emulator: the notice before a first Submit (Cancel
keeps the draft unsent, Agree submits it), /privacy, /mydata's two files, /forget refused for
staff and done for a resident, after which the store, the outbox and the log of the whole run
hold only what §14 allows; `gridhorn people erase`."""

from __future__ import annotations

import asyncio
import json
import logging
import re

import pytest

from bot.cli import main
from bot.i18n import t
from tests.support.county import card_head
from tests.support.harness import grant, seed_map
from tests.support.texts import shown

pytestmark = pytest.mark.asyncio
PHRASE = "南门那棵老槐树的枝子快压到电线了"
PHONE = "13987654321"


async def everything(store) -> list[tuple[str, str, str]]:
    """Every value of every column of every table of the store, as text."""
    tables = [r[0] for r in await store.db.fetchall(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
    found = []
    for table in tables:
        for row in await store.db.fetchall(f"SELECT * FROM {table}"):
            found += [(table, c, str(row[c])) for c in row.keys() if row[c] is not None]
    return found


class World:
    def __init__(self, harness):
        self.h = harness
        emu = harness.emu
        self.resident = emu.add_user(first_name="司马", last_name="光明", username="sima_gm",
                                     language_code="zh-hans")
        self.head = emu.add_user(first_name="Head", language_code="en")
        self.worker = emu.add_user(first_name="Worker", language_code="en")

    async def setup(self):
        h = self.h
        await h.start_bot()
        await seed_map(h.store)
        await grant(h.store, self.head.id, "building_head", "B01010101")
        await grant(h.store, self.worker.id, "grid_worker", "G0101")
        async with h.store.transaction():
            await h.store.people.ensure(self.resident.id)
            await h.store.people.set_building(self.resident.id, "B01010101")
        for user in (self.resident, self.head, self.worker):
            await h.say(user, "/start")
        self.grid_chat = await h.bound_group("第一网格工作群", "G0101", self.worker,
                                             [self.worker])
        async with h.store.transaction():
            await h.store.map.set_chat_locale(self.grid_chat.id, "en")

    async def draft_and_submit(self, text):
        h, user = self.h, self.resident
        card = (await h.say(user, text))[-1]
        await h.press(user, card, "dr:dom:orange")
        await h.press(user, card, "dr:submit")
        return card


async def test_the_notice_comes_before_a_first_submit_cancel_keeps_it_agree_submits(harness):
    w = World(harness)
    await w.setup()
    h, resident = harness, w.resident
    await w.draft_and_submit(PHRASE)
    notice = (await h.last(resident.id))
    assert notice.text == shown("zh-Hans", "privacy.notice")
    labels = [b.text for row in notice.buttons for b in row]
    assert labels == [t("zh-Hans", "privacy.agree"), t("zh-Hans", "privacy.cancel")]
    # nothing beyond the draft: no ticket, nothing to the staff
    assert await h.store.tickets.get(1) is None
    assert not [m for m in h.emu.messages(w.head.id) if card_head(1) in m.text]
    await h.press(resident, notice, t("zh-Hans", "privacy.cancel"))
    assert (await h.last(resident.id)).text == shown("zh-Hans", "privacy.cancelled")
    assert await h.store.tickets.get(1) is None
    assert (await h.store.drafts.get(resident.id)).data["text"] == PHRASE
    # the next Submit: the notice again; Agree submits the draft at once
    card = next(m for m in h.emu.messages(resident.id) if m.buttons and PHRASE in m.text)
    await h.press(resident, card, "dr:submit")
    notice = await h.last(resident.id)
    assert notice.text == shown("zh-Hans", "privacy.notice")
    await h.press(resident, notice, t("zh-Hans", "privacy.agree"))
    ticket = await h.store.tickets.get(1)
    assert ticket is not None and ticket.text == PHRASE
    texts = h.texts(resident.id)
    assert shown("zh-Hans", "privacy.agreed_submitted", id=1) in texts
    assert any(text.startswith("📮") and "#1" in text for text in texts)
    # agreed once: the second opinion goes straight through
    await w.draft_and_submit("电梯又坏了")
    assert (await h.store.tickets.get(2)) is not None
    # (both notices shown so far became their answers; no third one came)
    assert shown("zh-Hans", "privacy.notice") not in h.texts(resident.id)
    # /privacy: the notice, without Agree now
    answers = await h.say(resident, "/privacy")
    assert [m.text for m in answers] == [shown("zh-Hans", "privacy.notice"),
                                         shown("zh-Hans", "privacy.already_agreed")]
    assert not answers[0].buttons


async def test_privacy_agree_submits_nothing(harness):
    w = World(harness)
    await w.setup()
    h, resident = harness, w.resident
    await h.say(resident, "还在想怎么写")  # a draft, left alone
    notice = (await h.say(resident, "/privacy"))[-1]
    assert notice.text == shown("zh-Hans", "privacy.notice") and notice.buttons
    await h.press(resident, notice, t("zh-Hans", "privacy.agree"))
    assert (await h.last(resident.id)).text == shown("zh-Hans", "privacy.agreed")
    assert await h.store.tickets.get(1) is None
    assert await h.store.drafts.get(resident.id) is not None
    assert (await h.store.people.get(resident.id)).consented_at is not None


async def test_mydata_then_forget_leaves_only_what_spec_14_allows_in_store_outbox_and_log(
        harness, caplog):
    caplog.set_level(logging.INFO)  # the bot's default level: every record of the run,
    for name in ("bot", "handlers", "storage"):  # and the bot's own debug records too
        caplog.set_level(logging.DEBUG, logger=name)
    w = World(harness)
    await w.setup()
    h, resident = harness, w.resident
    await w.draft_and_submit(f"{PHRASE}\n联系电话 {PHONE}")
    await h.press(resident, await h.last(resident.id), t("zh-Hans", "privacy.agree"))
    # staff quote the resident in a note (a rejection with a reason)
    head_card = next(m for m in h.emu.messages(w.head.id) if m.buttons)
    await h.press(w.head, head_card, "t:rej:1")
    prompt = await h.last(w.head.id)
    await h.say(w.head, f"居民反映“{PHRASE}”，已转园林处理", reply_to=prompt)
    assert (await h.store.tickets.get(1)).status == "rejected"

    # /mydata: two files, the JSON and the text, with the ticket and its timeline
    await h.say(resident, "/mydata")
    files = [m for m in h.emu.messages(resident.id) if m.document is not None]
    assert [f.media["file_name"].rsplit(".", 1)[1] for f in files] == ["json", "txt"]
    data = json.loads(files[0].document)["sections"]
    assert data["profile"]["username"] == "sima_gm"
    assert PHRASE in data["tickets"][0]["text"]
    assert [e["kind"] for e in data["tickets"][0]["timeline"]] == ["created", "rejected"]
    assert PHRASE in files[1].document.decode()

    # staff are refused until their roles are revoked
    answer = (await h.say(w.head, "/forget"))[-1]
    assert answer.text == shown("en", "forget.staff_first")
    # the resident confirms, and is erased
    question = (await h.say(resident, "/forget"))[-1]
    assert question.text == shown("zh-Hans", "forget.confirm")
    await h.press(resident, question, t("zh-Hans", "forget.yes"))
    assert (await h.last(resident.id)).text == shown("zh-Hans", "forget.done")

    values = await everything(h.store)
    ident = re.compile(rf"(?<![\d.]){resident.id}(?!\d)")  # the id, not inside another number
    assert [(tb, c, v[:60]) for tb, c, v in values if ident.search(v)] == []
    for needle in ("司马", "光明", "sima_gm", PHONE):
        assert [(tb, c, v[:60]) for tb, c, v in values if needle in v] == [], needle
    # the phrase stays only where the head quoted it in a note
    assert [(tb, c) for tb, c, v in values if PHRASE in v] == [("ticket_events", "note")]
    ticket = await h.store.tickets.get(1)
    assert ticket.text == "" and (await h.store.people.get(ticket.reporter_id)).erased
    # every copy of the card now names the reporter as erased
    edited = next(m for m in h.emu.messages(w.head.id) if m.message_id == head_card.message_id)
    assert t("en", "privacy.erased") in edited.text and PHRASE not in edited.text
    # the log of the whole run: no message text, no phone number, nothing of the person
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert logged
    for needle in (PHRASE, PHONE, "司马", "sima_gm", "还在想", "电梯"):
        assert needle not in logged, needle


async def test_people_erase_from_the_command_line(harness, monkeypatch, capsys):
    w = World(harness)
    await w.setup()
    h, resident = harness, w.resident
    await w.draft_and_submit(PHRASE)
    await h.press(resident, await h.last(resident.id), t("zh-Hans", "privacy.agree"))
    monkeypatch.setenv("GRIDHORN_DATABASE_URL", h.settings().database_url)
    def gridhorn(*args: str) -> int:  # the command, run beside the bot (its own loop)
        return main(list(args))

    assert await asyncio.to_thread(gridhorn, "people", "erase", str(w.head.id)) == 1
    assert capsys.readouterr().err == f"gridhorn: {shown('zh-Hans', 'forget.staff_first')}\n"
    assert await asyncio.to_thread(gridhorn, "people", "erase", str(resident.id)) == 0
    assert f"person {resident.id} erased" in capsys.readouterr().out
    assert await h.store.people.get(resident.id) is None
    assert (await h.store.tickets.get(1)).text == ""
    assert await asyncio.to_thread(gridhorn, "people", "erase", str(resident.id)) == 1


async def test_mydata_lists_a_ticket_a_horn_and_a_redemption_and_forget_keeps_the_counts(
        harness):
    """Issue 20: /mydata of a person with a ticket, a horn check-in and a spent redeem code
    lists each; after /forget, the store holds nothing of them but what §14 allows (the
    code still counts for its partner, the hours on the erased row), and /me's points are
    the ledger's balance."""
    from tests.e2e.test_shop import World as ShopWorld

    w = ShopWorld(harness)
    await w.setup()
    h, volunteer = harness, w.volunteer
    async with h.store.transaction():
        await h.store.people.set_building(volunteer.id, "B01010101")
    horn = await w.earn()                      # a horn check-in: 2 h, 20 points
    me = (await h.say(volunteer, "/me"))[-1].text
    assert "Volunteer hours: 2\nPoints: 20" in me
    _, code = await w.redeem(15)               # a redemption, spent at the supermarket
    card = (await h.say(w.clerk, code))[-1]
    await h.press(w.clerk, card, f"rd:ok:{(await h.store.shop.by_code(code)).id}")
    me = (await h.say(volunteer, "/me"))[-1].text
    assert "Volunteer hours: 2\nPoints: 5" in me  # the balance, not the 20 earned
    card = (await h.say(volunteer, PHRASE))[-1]  # a ticket
    await h.press(volunteer, card, "dr:dom:orange")
    await h.press(volunteer, card, "dr:submit")
    await h.press(volunteer, await h.last(volunteer.id), t("en", "privacy.agree"))
    assert (await h.store.tickets.get(1)).text == PHRASE

    await h.say(volunteer, "/mydata")
    files = [m for m in h.emu.messages(volunteer.id) if m.document is not None]
    data = json.loads(files[0].document)["sections"]
    assert PHRASE in data["tickets"][0]["text"]
    assert [(c["horn_id"], c["title"]) for c in data["checkins"]] == [(horn, "Tea for elders")]
    assert [(r["code"], r["points"], r["status"], r["partner"])
            for r in data["redemptions"]] == [(code, 15, "spent", "爱心超市")]
    assert data["ledger"]["balance"] == 5
    text = files[1].document.decode()
    for title, needle in (("mydata.tickets", PHRASE), ("mydata.checkins", "Tea for elders"),
                          ("mydata.redemptions", code)):
        section = text.split(f"== {t('en', title)} ==\n", 1)[1].split("\n== ", 1)[0]
        assert needle in section, title

    question = (await h.say(volunteer, "/forget"))[-1]
    await h.press(volunteer, question, t("en", "forget.yes"))
    assert (await h.last(volunteer.id)).text == shown("en", "forget.done")
    values = await everything(h.store)
    ident = re.compile(rf"(?<![\d.]){volunteer.id}(?!\d)")
    assert [(tb, c, v[:60]) for tb, c, v in values if ident.search(v)] == []
    assert [(tb, c, v[:60]) for tb, c, v in values if "Vera" in v] == []
    assert [(tb, c, v[:60]) for tb, c, v in values if PHRASE in v] == []
    erased = (await h.store.shop.by_code(code)).user_id
    person = await h.store.people.get(erased)
    assert person.erased and (person.hours, person.points) == (2, 20)
    assert await h.store.shop.balance(erased) == 5
    spent = await h.store.shop.spent_per_partner(0, 4e9, None)
    assert [(s.partner_code, s.points) for s in spent] == [("P01", 15)]
