"""Voice of the residents: one opinion through every state, and the ways it can go wrong."""

from __future__ import annotations

import asyncio
import logging

import pytest

from bot.i18n import t
from tests.support.harness import consent, grant, seed_map
from tests.support.texts import before, counted, duration, label, shown

pytestmark = pytest.mark.asyncio
DAY = 24 * 3600  # the routine acknowledge deadline the receipt promises


def card_head(ticket_id):
    """How a staff card of the ticket opens ("#1 "): its title up to the category."""
    return before("en", "ticket.card_title", "domain", id=ticket_id)


def state(locale, status_key):
    """The card's state as staff read it ("State: new")."""
    return label(locale, "ticket.card_state", "state", t(locale, status_key))


class World:
    """A building with a resident and its head, a grid with a worker, a department."""

    def __init__(self, harness):
        self.h = harness
        emu = harness.emu
        self.resident = emu.add_user(first_name="李", last_name="四", language_code="zh-hans")
        self.head = emu.add_user(first_name="Head", language_code="en")
        self.worker = emu.add_user(first_name="Worker", language_code="en")
        self.liaison = emu.add_user(first_name="Liaison", language_code="zh-TW")
        self.neighbour = emu.add_user(first_name="Neighbour", language_code="en")

    async def setup(self, forum=False, **settings):
        h = self.h
        await h.start_bot(**settings)
        await seed_map(h.store)
        await grant(h.store, self.head.id, "building_head", "B01010101")
        await grant(h.store, self.worker.id, "grid_worker", "G0101")
        await grant(h.store, self.liaison.id, "department_liaison", "MZJ")
        async with h.store.transaction():
            for user in (self.resident, self.neighbour):
                await h.store.people.ensure(user.id)
                await h.store.people.set_building(user.id, "B01010101")
        await consent(h.store, self.resident.id, self.neighbour.id)
        for user in (self.resident, self.head, self.worker, self.liaison, self.neighbour):
            await h.say(user, "/start")
        self.grid_chat = await h.bound_group("第一网格工作群", "G0101", self.worker,
                                             [self.worker], forum=forum,
                                             can_manage_topics=True)
        async with h.store.transaction():  # the grid staff work in English
            await h.store.map.set_chat_locale(self.grid_chat.id, "en")
        self.dept_chat = await h.bound_group("民政局", "MZJ", self.liaison, [self.liaison])
        self.building_chat = await h.bound_group("1栋楼事群", "B01010101", self.head,
                                                 [self.head, self.neighbour])

    async def submit(self, user=None, text="楼道灯坏了一个星期了", domain="orange",
                     anonymous=False):
        user = user or self.resident
        h = self.h
        card = (await h.say(user, text))[-1]
        if domain:
            h.emu.press(user, card, f"dr:dom:{domain}")
            await h.settle()
        if anonymous:
            h.emu.press(user, card, "dr:anon")
            await h.settle()
        before = len(h.emu.messages(user.id))
        query = h.emu.press(user, card, "dr:submit")
        self.submit_answer = await query.wait_answered(timeout=5)
        await h.settle()
        return h.emu.messages(user.id)[before:]

    def card(self, chat_id, ticket_id=1):
        cards = [m for m in self.h.emu.messages(chat_id)
                 if m.text.startswith(card_head(ticket_id)) and m.buttons]
        assert cards, f"no card of #{ticket_id} in {chat_id}: " + \
            "\n".join(m.text[:60] for m in self.h.emu.messages(chat_id))
        return cards[-1]

    async def answer_prompt(self, user, chat, text):
        prompt = await self.h.last(chat.id)
        assert prompt.force_reply, prompt.text
        return await self.h.say(user, text, chat=chat, reply_to=prompt)



def assert_nowhere(harness, chat_ids, secrets):
    """None of `secrets` in any message, or any button's data, of these chats."""
    for chat_id in chat_ids:
        for message in harness.emu.messages(chat_id):
            assert not any(s in message.text for s in secrets), message.text
            for row in message.buttons:
                for button in row:
                    assert not any(s in (button.callback_data or "") for s in secrets)


@pytest.mark.parametrize("http_worker", [False, True], ids=["in-process", "http-worker"])
async def test_one_opinion_through_every_state(harness, http_worker):
    harness.http_worker = http_worker  # production's default: the calls made by a child
    w = World(harness)
    await w.setup()
    emu = harness.emu

    # the draft: shown back with the seven domains, Not sure, Anonymous, Submit, Cancel
    card = (await harness.say(w.resident, "楼道灯坏了 <b>急</b> & 请修"))[-1]
    labels = [b.text for row in card.buttons for b in row]
    assert "楼道灯坏了 <b>急</b> & 请修" in card.text
    for key in ("domain.red", "domain.orange", "domain.gold", "domain.green", "domain.cyan",
                "domain.blue", "domain.purple", "domain.unsure", "btn.anonymous", "btn.submit",
                "btn.cancel"):
        word = t("zh-Hans", key)
        assert any(word in text for text in labels), word
    assert await harness.store.tickets.get(1) is None  # a draft carries no number

    emu.press(w.resident, card, "dr:dom:orange")
    await harness.settle()
    emu.press(w.resident, card, "dr:submit")
    await harness.settle()
    receipt = shown("zh-Hans", "ticket.receipt", id=1, hours=duration("zh-Hans", DAY))
    assert [text for text in harness.texts(w.resident.id) if "#1" in text][-1] == receipt

    # routing: the head's private card and the grid staff chat card
    head_card = w.card(w.head.id)
    assert t("zh-Hans", "domain.orange") in head_card.text or \
        t("en", "domain.orange") in head_card.text
    assert shown("en", "ticket.card_reporter", reporter="李 四") in head_card.text
    assert "楼道灯坏了 <b>急</b> & 请修" in head_card.text
    grid_card = w.card(w.grid_chat.id)
    assert state("en", "status.new") in grid_card.text
    labels = " ".join(b.text for row in grid_card.buttons for b in row)
    for key in ("btn.acknowledge", "btn.whistle", "btn.resolve", "btn.reject", "btn.merge",
                "btn.reply", "btn.offer", "btn.post_building"):  # SPEC §9
        assert t("en", key) in labels, key

    # acknowledge (building head)
    assert (await harness.press(w.head, head_card, "t:ack:1")).text == \
        shown("en", "done.ack", id=1)
    assert shown("zh-Hans", "notice.acknowledged", id=1) in harness.texts(w.resident.id)[-1]
    assert state("en", "status.acknowledged") in w.card(w.head.id).text
    assert state("en", "status.acknowledged") in w.card(w.grid_chat.id).text

    # escalate to grid (building head)
    await harness.press(w.head, w.card(w.head.id), "t:esc:1")
    assert shown("zh-Hans", "notice.escalated", id=1) in harness.texts(w.resident.id)[-1]
    escalated = shown("en", "staff.escalated", id=1)
    assert any(escalated in text for text in harness.texts(w.grid_chat.id))

    # whistle to the civil affairs bureau (grid worker): the lead department comes first
    await harness.press(w.worker, w.card(w.grid_chat.id), "t:wh:1")
    picker = await harness.last(w.grid_chat.id)
    assert picker.buttons[0][0].callback_data == "t:wh:1:MZJ"
    await harness.press(w.worker, picker, "t:wh:1:MZJ")
    assert shown("zh-Hans", "notice.whistled", id=1, department="县民政局") in \
        harness.texts(w.resident.id)[-1]
    dept_card = w.card(w.dept_chat.id)
    assert [b.text for b in dept_card.buttons[0]] == [t("zh-Hans", "btn.accept"),
                                                      t("zh-Hans", "btn.decline")]
    assert "李" not in dept_card.text  # departments never see the reporter

    # the department declines with a reason: back to the grid, quoted in the staff thread
    await harness.press(w.liaison, dept_card, "t:dec:1")
    await w.answer_prompt(w.liaison, w.dept_chat, "不属于民政局职责")
    declined = before("en", "staff.declined", "reason", department="县民政局", id=1)
    declined = [text for text in harness.texts(w.grid_chat.id) if declined in text][-1]
    assert shown("en", "staff.declined", department="县民政局", id=1,
                 reason="不属于民政局职责") in declined
    assert harness.texts(w.resident.id)[-1] == \
        shown("zh-Hans", "notice.declined", id=1, department="县民政局")
    grid_card = w.card(w.grid_chat.id)
    assert any(b.callback_data == "t:wh:1" for row in grid_card.buttons for b in row)

    # whistle again, accepted this time
    await harness.press(w.worker, grid_card, "t:wh:1")
    await harness.press(w.worker, await harness.last(w.grid_chat.id), "t:wh:1:MZJ")
    answer = await harness.press(w.liaison, w.card(w.dept_chat.id), "t:acc:1")
    assert shown("zh-Hant", "done.acc", id=1) in answer.text
    assert shown("zh-Hans", "notice.accepted", id=1) in harness.texts(w.resident.id)[-1]

    # a second Accept is refused and changes nothing
    stale = harness.emu.inject_callback(w.liaison, dept_card, "t:acc:1")
    assert shown("zh-Hant", "ticket.bad_state", id=1, state=t("zh-Hant", "status.accepted")) \
        in (await stale.wait_answered(timeout=5)).text

    # resolved with a note (the department), the reporter sees the note and rates
    await harness.press(w.liaison, w.card(w.dept_chat.id), "t:res:1")
    await w.answer_prompt(w.liaison, w.dept_chat, "已更换灯泡 <3")
    resolved = harness.emu.messages(w.resident.id)[-1]
    assert shown("zh-Hans", "notice.resolved", id=1, note="已更换灯泡 <3") in resolved.text
    assert [b.text for b in resolved.buttons[0]] == ["⭐ 1", "⭐ 2", "⭐ 3", "⭐ 4", "⭐ 5"]
    await harness.press(w.resident, resolved, "⭐ 4")
    ticket = await harness.store.tickets.get(1)
    assert ticket.status == "rated" and ticket.rating == 4
    assert shown("zh-Hans", "notice.rated", id=1) in harness.texts(w.resident.id)[-1]

    # the timeline holds every step, with who
    kinds = [e.kind for e in await harness.store.tickets.events(1)]
    assert kinds == ["created", "acknowledged", "escalated", "whistled", "declined", "whistled",
                     "accepted", "resolved", "rated"]
    view = (await harness.say(w.worker, "/ticket 1"))[-1].text
    assert shown("en", "ticket.timeline") in view and shown("en", "event.declined") in view

    request = harness.runtime.app.bot.request
    assert (getattr(request, "worker_calls", 0) > 50) == http_worker  # made by the child or not


async def test_reply_relays_both_ways_and_staff_talk_stays_among_staff(harness):
    w = World(harness)
    await w.setup()
    await w.submit()
    before = len(harness.emu.messages(w.resident.id))
    # staff talk in reply to the card stays among staff
    await harness.say(w.worker, "谁去看看？", chat=w.grid_chat, reply_to=w.card(w.grid_chat.id))
    assert len(harness.emu.messages(w.resident.id)) == before
    # "Reply" relays to the reporter
    await harness.press(w.worker, w.card(w.grid_chat.id), "t:rep:1")
    await w.answer_prompt(w.worker, w.grid_chat, "请问是几楼的灯？")
    relayed = harness.emu.messages(w.resident.id)[-1]
    assert shown("zh-Hans", "notice.reply", id=1, text="请问是几楼的灯？") in relayed.text
    # the reporter's reply comes back into the ticket's thread
    await harness.say(w.resident, "三楼", reply_to=relayed)
    answer = shown("en", "staff.reporter_answer", id=1, text="三楼")
    assert any(answer in text for text in harness.texts(w.grid_chat.id))
    assert shown("zh-Hans", "notice.answer_passed", id=1) in harness.texts(w.resident.id)[-1]


async def test_anonymous_reporter_is_never_shown(harness):
    w = World(harness)
    admin = harness.emu.add_user(first_name="Admin", language_code="en")
    await w.setup(superadmins=str(admin.id))
    await harness.say(admin, "/start")
    await w.submit(anonymous=True)
    assert_nowhere(harness, (w.head.id, w.grid_chat.id), ("李", str(w.resident.id)))
    assert shown("en", "ticket.card_reporter", reporter=t("en", "ticket.anonymous_reporter")) \
        in w.card(w.head.id).text
    assert "李" not in (await harness.say(w.worker, "/ticket 1"))[-1].text
    # superadmins alone may see who it was
    assert shown("en", "ticket.anonymous_revealed", name="李 四") in (
        await harness.say(admin, "/ticket 1"))[-1].text


async def test_anonymous_reporter_stays_hidden_in_topics_posts_whistles_replies_and_logs(
        harness, caplog):
    caplog.set_level(logging.INFO)  # what `gridhorn run` logs
    w = World(harness)
    await w.setup(forum=True)
    await w.submit(anonymous=True, text="楼道灯坏了")
    ticket = await harness.store.tickets.get(1)
    topic = harness.emu.chat(w.grid_chat.id).topics[ticket.staff_thread_id]
    card = w.card(w.grid_chat.id)
    await harness.press(w.worker, card, "t:post:1")
    await harness.press(w.worker, card, "t:off:1")
    await harness.press(w.worker, card, "t:wh:1")
    await harness.press(w.worker, await harness.last(w.grid_chat.id), "t:wh:1:MZJ")
    await harness.press(w.worker, w.card(w.grid_chat.id), "t:rep:1")
    await w.answer_prompt(w.worker, w.grid_chat, "几楼？")
    await harness.say(w.resident, "三楼", reply_to=harness.emu.messages(w.resident.id)[-1])
    secrets = ("李", "四", str(w.resident.id))
    assert not any(s in topic.name for s in secrets)
    assert_nowhere(harness, (w.grid_chat.id, w.dept_chat.id, w.building_chat.id, w.head.id),
                   secrets)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert caplog.records and not any(s in logged for s in ("李", "四")), logged[-2000:]


async def test_illegal_transitions_change_nothing(harness):
    w = World(harness)
    await w.setup()
    await w.submit()
    head_card = w.card(w.head.id)
    # a neighbour (no role) presses staff buttons: refused
    forged_on = (await harness.say(w.neighbour, "/lang"))[-1]  # a message in their own chat
    other = harness.emu.inject_callback(w.neighbour, forged_on, "t:ack:1")
    assert shown("en", "ticket.not_allowed", id=1) in (await other.wait_answered(timeout=5)).text
    # reject, then every later step is refused
    await harness.press(w.head, head_card, "t:rej:1")
    prompt = await harness.last(w.head.id)
    assert prompt.force_reply
    await harness.say(w.head, "不属于物业范围", reply_to=prompt)
    assert (await harness.store.tickets.get(1)).status == "rejected"
    assert shown("zh-Hans", "notice.rejected", id=1, reason="不属于物业范围") in \
        harness.texts(w.resident.id)[-1]
    events = len(await harness.store.tickets.events(1))
    refusals = (shown("en", "ticket.closed", id=1),
                shown("en", "ticket.bad_state", id=1, state=t("en", "status.rejected")))
    for data in ("t:ack:1", "t:esc:1", "t:res:1"):
        query = harness.emu.inject_callback(w.head, head_card, data)
        answer = await query.wait_answered(timeout=5)
        assert any(refusal in answer.text for refusal in refusals), answer.text
    query = harness.emu.inject_callback(w.worker, harness.emu.messages(w.grid_chat.id)[-1],
                                        "t:wh:1:MZJ")
    await query.wait_answered(timeout=5)
    await harness.settle()
    assert len(await harness.store.tickets.events(1)) == events
    assert (await harness.store.tickets.get(1)).status == "rejected"


async def test_rate_limit_keeps_the_draft(harness):
    w = World(harness)
    await w.setup(opinions_per_hour=2)
    for n in range(2):
        await w.submit(text=f"问题 {n}")
    await w.submit(text="第三个问题")
    assert counted("zh-Hans", "draft.rate_limited", limit=2) in w.submit_answer.text
    assert (await harness.store.tickets.get(3)) is None
    draft = await harness.store.drafts.get(w.resident.id)
    assert draft is not None and draft.data["text"] == "第三个问题"


async def test_unregistered_resident_is_asked_to_join_and_keeps_the_draft(harness):
    w = World(harness)
    await w.setup()
    stranger = harness.emu.add_user(first_name="New", language_code="en")
    card = (await harness.say(stranger, "The bins are full"))[-1]
    harness.emu.press(stranger, card, "dr:submit")
    await harness.settle()
    assert shown("en", "draft.join_first") in harness.emu.messages(stranger.id)[-1].text
    link = (await harness.say(w.head, "/joinlink", chat=w.building_chat))[-1].text.split()[-1]
    answers = await harness.say(stranger, f"/start {link.split('start=')[1]}")
    assert shown("en", "start.joined", building="1栋 (B01010101)") in answers[0].text
    draft = answers[-1]
    assert "The bins are full" in draft.text and draft.buttons
    harness.emu.press(stranger, draft, "dr:submit")
    await harness.settle()
    # a first Submit: the privacy notice (SPEC §14), and Agree submits the draft
    notice = harness.emu.messages(stranger.id)[-1]
    assert notice.text == shown("en", "privacy.notice")
    await harness.press(stranger, notice, t("en", "privacy.agree"))
    assert shown("en", "ticket.receipt", id=1, hours=duration("en", DAY)) in \
        harness.emu.messages(stranger.id)[-1].text


async def test_me_too_counts_once_per_resident(harness):
    w = World(harness)
    await w.setup()
    await w.submit()
    await harness.press(w.head, w.card(w.head.id), "t:post:1")
    post = await harness.last(w.building_chat.id)
    assert "李" not in post.text
    assert counted("zh-Hans", "ticket.me_too_count", count=0) in post.text
    assert (await harness.press(w.neighbour, post, "t:me:1")).text == shown("en", "done.me_too")
    assert (await harness.press(w.neighbour, post, "t:me:1")).text == \
        shown("en", "done.me_too_again")
    assert counted("zh-Hans", "ticket.me_too_count", count=1) in \
        (await harness.last(w.building_chat.id)).text
    assert counted("en", "ticket.me_too_count", count=1) in w.card(w.grid_chat.id).text
    assert (await harness.store.tickets.get(1)).me_too == 1


async def test_concurrent_take_it_has_one_winner(harness):
    w = World(harness)
    await w.setup()
    volunteers = [harness.emu.add_user(first_name=f"V{i}", language_code="en") for i in range(8)]
    for v in volunteers:
        await grant(harness.store, v.id, "volunteer", "G0101")
        await harness.say(v, "/start")
    await w.submit()
    await harness.press(w.worker, w.card(w.grid_chat.id), "t:off:1")
    offers = {v.id: harness.emu.messages(v.id)[-1] for v in volunteers}
    # the building chat's post carries the button too: a resident who is neither is refused
    post = [m for m in harness.emu.messages(w.building_chat.id)
            if "t:take:1" in str(m.reply_markup)][-1]
    refused = await harness.press(w.neighbour, post, "t:take:1")
    assert refused.text == shown("en", "ticket.take_not_allowed")
    queries = [harness.emu.press(v, offers[v.id], "t:take:1") for v in volunteers]
    answers = await asyncio.gather(*(q.wait_answered(timeout=5) for q in queries))
    winners = [a for a in answers if a.text == shown("en", "done.take", id=1)]
    assert len(winners) == 1
    assert sum(a.text == shown("en", "ticket.already_taken", id=1) for a in answers) == \
        len(volunteers) - 1
    await harness.settle()
    ticket = await harness.store.tickets.get(1)
    assert ticket.assignee_id in {v.id for v in volunteers}
    taken = shown("zh-Hans", "notice.taken", id=1)
    reporter_told = [text for text in harness.texts(w.resident.id) if taken in text]
    assert len(reporter_told) == 1
    assert before("en", "ticket.card_taker", "taker") in w.card(w.grid_chat.id).text


async def test_low_rating_reopens_at_grid_level(harness):
    w = World(harness)
    await w.setup()
    await w.submit()
    await harness.press(w.worker, w.card(w.grid_chat.id), "t:res:1")
    await w.answer_prompt(w.worker, w.grid_chat, "已处理")
    resolved = harness.emu.messages(w.resident.id)[-1]
    await harness.press(w.resident, resolved, "⭐ 2")
    ticket = await harness.store.tickets.get(1)
    assert ticket.status == "escalated" and ticket.level == "grid" and ticket.rating == 2
    reopened = shown("en", "staff.reopened", id=1, stars=2)
    assert any(reopened in text for text in harness.texts(w.grid_chat.id))
    # a comment may follow, by replying
    await harness.say(w.resident, "灯还是不亮", reply_to=harness.emu.messages(w.resident.id)[-1])
    assert (await harness.store.tickets.get(1)).rating_comment == "灯还是不亮"


async def test_forum_staff_chat_gets_a_topic_per_ticket(harness):
    w = World(harness)
    await w.setup(forum=True)
    await w.submit(domain="green", text="垃圾桶满了")
    ticket = await harness.store.tickets.get(1)
    assert ticket.staff_thread_id
    topic_card = w.card(w.grid_chat.id)
    assert topic_card.thread_id == ticket.staff_thread_id
    topic = harness.emu.chat(w.grid_chat.id).topics[ticket.staff_thread_id]
    assert topic.name == "#1 🟢 垃圾桶满了" and topic.created_by_bot
    # later steps are told inside the ticket's topic
    await harness.press(w.worker, topic_card, "t:rep:1")
    await w.answer_prompt(w.worker, w.grid_chat, "几号楼？")
    await harness.say(w.resident, "3号楼", reply_to=harness.emu.messages(w.resident.id)[-1])
    answer = [m for m in harness.emu.messages(w.grid_chat.id) if "3号楼" in m.text][-1]
    assert answer.thread_id == ticket.staff_thread_id
    # a photo in reply comes back into the topic too (copied by its file id)
    await harness.press(w.worker, topic_card, "t:rep:1")
    await w.answer_prompt(w.worker, w.grid_chat, "请拍张照片")
    photo = harness.emu.send_photo(w.resident, caption="这里",
                                   reply_to=harness.emu.messages(w.resident.id)[-1])
    await harness.settle()
    copies = [m for m in harness.emu.messages(w.grid_chat.id) if m.kind == "photo"]
    assert copies and copies[-1].file_id == photo.file_id and copies[-1].text == "#1"
    assert copies[-1].thread_id == ticket.staff_thread_id
    answer = shown("en", "staff.reporter_answer", id=1, text="这里")
    assert any(answer in text for text in harness.texts(w.grid_chat.id))


async def test_cards_flagged_before_a_restart_are_posted_after_it_once(harness):
    """Submit flags the staff cards and leaves them to the backlog: a stop in between
    (the backlog never woken here) must not lose them, nor may they come twice."""
    w = World(harness)
    await w.setup()
    harness.runtime.services.tickets.cards_waiting = lambda: None
    receipt = await w.submit()
    assert shown("zh-Hans", "ticket.receipt", id=1, hours=duration("zh-Hans", DAY)) in \
        [m.text for m in receipt]
    assert not [m for m in harness.emu.messages(w.head.id) if m.text.startswith(card_head(1))]
    assert await harness.store.tickets.cards_pending(10) == [1]
    await harness.stop_bot()
    await harness.start_bot()
    await harness.settle()
    for chat_id in (w.head.id, w.grid_chat.id):
        cards = [m for m in harness.emu.messages(chat_id) if m.text.startswith(card_head(1))]
        assert len(cards) == 1 and cards[0].buttons, harness.texts(chat_id)
    assert await harness.store.tickets.cards_pending(10) == []
    await harness.stop_bot()
    await harness.start_bot()
    await harness.settle()
    assert len([m for m in harness.emu.messages(w.head.id)
                if m.text.startswith(card_head(1))]) == 1


async def test_a_ticket_whose_cards_fail_holds_back_no_other_and_a_closed_one_gets_none(
        harness, monkeypatch):
    w = World(harness)
    await w.setup()
    services = harness.runtime.services
    services.tickets.cards_waiting = lambda: None  # the backlog runs when this test says
    await w.submit(text="一号楼道灯坏了")
    await w.submit(user=w.neighbour, text="二号电梯坏了")
    await w.submit(text="三号水管漏水")
    worker = await services.access.actor(w.worker.id)
    await services.tickets.reject(worker, 3, "重复")
    real = services.tickets._post_new_cards

    async def broken_for_one(ticket, known=None):
        if ticket.id == 1:
            raise RuntimeError("a bug in one card")
        await real(ticket, known)

    monkeypatch.setattr(services.tickets, "_post_new_cards", broken_for_one)
    assert await services.tickets.post_pending_cards() is False
    await harness.settle()
    heads = [m.text for m in harness.emu.messages(w.head.id) if m.buttons]
    assert any(text.startswith(card_head(2)) for text in heads)
    assert not any(text.startswith((card_head(1), card_head(3))) for text in heads)
    assert await harness.store.tickets.cards_pending(10) == [1]  # left for the next start


async def test_deadline_reminds_at_75_percent_then_escalates_across_a_restart(harness):
    w = World(harness)
    await w.setup(deadlines_routine="4s,1h,1h")
    await w.submit()
    reminder = before("en", "remind.deadline", "due", id=1)
    overdue = shown("zh-Hans", "notice.overdue", id=1)
    moved_up = shown("en", "staff.overdue", id=1, level=t("en", "level.grid"))
    await harness.emu.wait_until(
        lambda: any(reminder in text for text in harness.texts(w.head.id)), timeout=10)
    await harness.stop_bot()   # restart while the deadline is open
    await harness.start_bot(deadlines_routine="4s,1h,1h")
    await harness.emu.wait_until(
        lambda: any(overdue in text for text in harness.texts(w.resident.id)), timeout=10)
    await harness.settle()
    ticket = await harness.store.tickets.get(1)
    assert ticket.level == "grid" and ticket.status == "escalated"
    assert sum(reminder in text for text in harness.texts(w.head.id)) == 1
    assert any(moved_up in text for text in harness.texts(w.grid_chat.id))
    assert any(moved_up in text for text in harness.texts(w.head.id))


async def test_a_missed_deadline_moves_up_a_level_with_the_deadline_that_level_owes(harness):
    w = World(harness)
    await w.setup(deadlines_routine="2s,1h,6s")
    staff = harness.emu.add_user(first_name="Community", language_code="en")
    await grant(harness.store, staff.id, "community_staff", "C01")
    await harness.say(staff, "/start")
    community_chat = await harness.bound_group("社区工作群", "C01", staff, [staff])
    async with harness.store.transaction():
        await harness.store.map.set_chat_locale(community_chat.id, "en")
    await w.submit()
    # nobody acknowledged within 2 s: the grid owes the resolve deadline from the submission
    moved_up = shown("en", "staff.overdue", id=1, level=t("en", "level.grid"))
    await harness.emu.wait_until(
        lambda: any(moved_up in text for text in harness.texts(w.grid_chat.id)), timeout=10)
    ticket = await harness.store.tickets.get(1)
    assert ticket.level == "grid" and ticket.due_kind == "resolve"
    assert ticket.due_at - ticket.created_at == pytest.approx(6)
    # the grid missed it too: the community is told, right before its first card of #1
    await harness.emu.wait_until(
        lambda: any(m.text.startswith(card_head(1))
                    for m in harness.emu.messages(community_chat.id)),
        timeout=15)
    await harness.settle()
    ticket = await harness.store.tickets.get(1)
    assert ticket.level == "community" and ticket.due_kind == "resolve"
    community = harness.texts(community_chat.id)
    moved_up = shown("en", "staff.overdue", id=1, level=t("en", "level.community"))
    notice = next(i for i, text in enumerate(community) if moved_up in text)
    card = next(i for i, text in enumerate(community) if text.startswith(card_head(1)))
    assert notice < card
    overdue = shown("zh-Hans", "notice.overdue", id=1)
    assert sum(overdue in text for text in harness.texts(w.resident.id)) == 2


async def test_a_draft_outlives_a_guided_flow_and_cancel_leaves_one_thing_at_a_time(harness):
    w = World(harness)
    await w.setup()
    card = (await harness.say(w.resident, "路灯坏了"))[-1]
    await harness.say(w.resident, "/volunteer")  # a guided flow starts meanwhile
    assert (await harness.store.drafts.get(w.resident.id)).data["text"] == "路灯坏了"
    assert (await harness.say(w.resident, "/cancel"))[-1].text == shown("zh-Hans", "cancel.done")
    assert await harness.store.flows.get(w.resident.id) is None  # the flow went, not the draft
    harness.emu.press(w.resident, card, "dr:submit")  # the draft is still there to submit
    await harness.settle()
    assert (await harness.store.tickets.get(1)).text == "路灯坏了"
    # with nothing else in progress, /cancel discards a draft: in private, not in a group
    await harness.say(w.neighbour, "水管漏水")
    answer = (await harness.say(w.neighbour, "/cancel", chat=w.building_chat))[-1]
    assert answer.text == shown("en", "cancel.nothing")
    assert (await harness.store.drafts.get(w.neighbour.id)).data["text"] == "水管漏水"
    await harness.say(w.neighbour, "/cancel")
    assert await harness.store.drafts.get(w.neighbour.id) is None


async def test_cancel_leaves_a_step_waiting_for_words(harness):
    w = World(harness)
    await w.setup()
    await w.submit()
    await harness.press(w.worker, w.card(w.grid_chat.id), "t:rej:1")
    prompt = await harness.last(w.grid_chat.id)
    assert prompt.force_reply
    assert shown("en", "cancel.done") in \
        (await harness.say(w.worker, "/cancel", chat=w.grid_chat))[-1].text
    await harness.say(w.worker, "重复了", chat=w.grid_chat, reply_to=prompt)
    assert (await harness.store.tickets.get(1)).status == "new"  # not rejected


async def test_after_a_whistle_a_head_may_not_resolve_and_the_department_only_once_accepted(
        harness):
    w = World(harness)
    await w.setup()
    # the head also works in another grid: that grants nothing over this building's ticket
    await grant(harness.store, w.head.id, "grid_worker", "G0102")
    # the grid worker is also the department's liaison: as grid staff they may resolve
    await grant(harness.store, w.worker.id, "department_liaison", "MZJ")
    await w.submit()
    await harness.press(w.worker, w.card(w.grid_chat.id), "t:wh:1")
    await harness.press(w.worker, await harness.last(w.grid_chat.id), "t:wh:1:MZJ")
    assert not any(b.callback_data == "t:res:1" for row in w.card(w.head.id).buttons
                   for b in row)  # the head's card no longer offers it; a crafted press:
    pressed = harness.emu.inject_callback(w.head, w.card(w.head.id), "t:res:1")
    answer = await pressed.wait_answered(timeout=5)
    assert answer.text == shown("en", "ticket.head_after_whistle", id=1)
    early = harness.emu.inject_callback(w.liaison, w.card(w.dept_chat.id), "t:res:1")
    assert (await early.wait_answered(timeout=5)).text == \
        shown("zh-Hant", "ticket.bad_state", id=1, state=t("zh-Hant", "status.whistled"))
    assert (await harness.store.tickets.get(1)).status == "whistled"
    # the grid may resolve at any time
    await harness.press(w.worker, w.card(w.grid_chat.id), "t:res:1")
    await w.answer_prompt(w.worker, w.grid_chat, "网格已处理")
    assert (await harness.store.tickets.get(1)).status == "resolved"


async def test_opinion_in_a_group_is_answered_with_where_to_send_it(harness):
    w = World(harness)
    await w.setup()
    answer = (await harness.say(w.neighbour, "/opinion 路灯坏了", chat=w.building_chat))[-1]
    assert answer.text == shown("en", "draft.private_only", bot="gridhorn_bot")
    assert await harness.store.drafts.get(w.neighbour.id) is None


async def test_long_and_html_text_is_kept_whole(harness):
    w = World(harness)
    await w.setup()
    text = ("<b>&amp; 楼道" * 600)[:4096]
    draft = await harness.say(w.resident, text)
    assert len(draft) == 2 and draft[-1].buttons  # header + text pass 4,096: split, not cut
    assert text in "".join(m.text for m in draft)
    harness.emu.press(w.resident, draft[-1], "dr:submit")
    await harness.settle()
    assert (await harness.store.tickets.get(1)).text == text
    staff = [m.text for m in harness.emu.messages(w.grid_chat.id)]
    assert text in "".join(staff)
    assert shown("en", "ticket.text_above") in w.card(w.grid_chat.id).text


async def test_long_notes_and_texts_are_split_never_cut_or_lost(harness):
    w = World(harness)
    await w.setup()
    text = "楼道" * 2045  # 4,090 characters: with any header it passes 4,096
    await w.submit(text=text)
    await w.submit(user=w.neighbour, text="二号问题")
    # Post to building and Offer show the text whole, in two messages
    await harness.press(w.worker, w.card(w.grid_chat.id), "t:post:1")
    await harness.press(w.worker, w.card(w.grid_chat.id), "t:off:1")
    building = "".join(m.text for m in harness.emu.messages(w.building_chat.id))
    assert building.count(text) == 2  # the deliberation post and the service request
    posts = [m for m in harness.emu.messages(w.building_chat.id) if m.buttons]
    assert [b.callback_data for m in posts for row in m.buttons for b in row] == \
        ["t:me:1", "t:take:1"]
    above = shown("zh-Hans", "ticket.text_above")
    assert all(above in m.text for m in posts)  # the building chat reads 简体
    # a 4,096-character result note reaches the reporter whole, the stars on its last part
    note = "已处理" * 1365 + "完"
    await harness.press(w.worker, w.card(w.grid_chat.id), "t:res:1")
    await w.answer_prompt(w.worker, w.grid_chat, note)
    told = [m for m in harness.emu.messages(w.resident.id) if "#1" in m.text or "已处理" in m.text]
    assert note in "".join(m.text for m in told[-2:])
    assert told[-1].buttons and not told[-2].buttons
    # the staff card is still edited (the note is pointed to, not repeated)
    resolved_cards = [m for m in harness.emu.messages(w.grid_chat.id)
                      if m.text.startswith(card_head(1))
                      and state("en", "status.resolved") in m.text]
    assert resolved_cards and shown("en", "ticket.card_result_elsewhere", id=1) in \
        resolved_cards[-1].text
    assert note in "".join(harness.texts(w.grid_chat.id))  # the thread has it whole
    # a long rejection reason reaches the reporter whole
    reason = "不予受理" * 1024
    await harness.press(w.worker, w.card(w.grid_chat.id, 2), "t:rej:2")
    await w.answer_prompt(w.worker, w.grid_chat, reason)
    assert reason in "".join(harness.texts(w.neighbour.id)[-2:])


async def test_a_card_edited_later_never_loses_its_text(harness):
    w = World(harness)
    await w.setup()
    on_card = "灯" * 3000     # shown on the card itself
    above = "水" * 3500       # sent before the card, which points to it
    await w.submit(text=on_card)
    await w.submit(user=w.neighbour, text=above)
    for ticket_id in (1, 2):
        await harness.press(w.worker, w.card(w.grid_chat.id, ticket_id), f"t:res:{ticket_id}")
        await w.answer_prompt(w.worker, w.grid_chat, "处理结果：" + "已修" * 700)  # a long note
    grid = harness.emu.messages(w.grid_chat.id)
    state_line = before("en", "ticket.card_state", "state")
    card1 = next(m for m in grid if m.text.startswith(card_head(1)) and state_line in m.text)
    card2 = next(m for m in grid if m.text.startswith(card_head(2)) and state_line in m.text)
    assert state("en", "status.resolved") in card1.text and on_card in card1.text
    assert state("en", "status.resolved") in card2.text
    assert shown("en", "ticket.text_above") in card2.text
    assert above in "".join(m.text for m in grid if m.message_id < card2.message_id)
    # /ticket N shows the whole text and note, split when long
    replies = await harness.say(w.worker, "/ticket 2")
    assert above in "".join(m.text for m in replies)
    assert "已修" * 700 in "".join(m.text for m in replies)


async def test_lists_merge_urgency_and_photos(harness):
    w = World(harness)
    await w.setup()
    await w.submit(text="一号问题")
    await w.submit(user=w.neighbour, text="二号问题")
    first = harness.emu.send_photo(w.resident, caption="三号：墙皮脱落")
    await harness.settle()
    second = harness.emu.send_photo(w.resident, caption="另一面墙")  # a second photo, same draft
    await harness.settle()
    card = harness.emu.messages(w.resident.id)[-1]
    assert "三号：墙皮脱落" in card.text and "另一面墙" in card.text
    assert shown("zh-Hans", "ticket.has_photo") in card.text
    harness.emu.press(w.resident, card, "dr:submit")
    await harness.settle()
    ticket = await harness.store.tickets.get(3)
    assert ticket.photos == (first.file_id, second.file_id)
    photos = [(m.file_id, m.text) for m in harness.emu.messages(w.grid_chat.id)
              if m.kind == "photo"]
    assert photos == [(first.file_id, "#3 (1/2)"), (second.file_id, "#3 (2/2)")]

    # urgency: urgent shortens the deadline and the card says so
    await harness.press(w.worker, w.card(w.grid_chat.id, 2), "t:urg:2")
    picker = await harness.last(w.grid_chat.id)
    answer = await harness.press(w.worker, picker, "t:urg:2:urgent")
    urgent = t("en", "urgency.urgent")
    assert answer.text == shown("en", "done.urg", id=2, urgency=urgent)
    assert label("en", "ticket.card_state", "urgency", urgent) in w.card(w.grid_chat.id, 2).text
    urgent = await harness.store.tickets.get(2)
    assert urgent.due_at - urgent.due_from == 3600

    # /tickets: soonest deadline first (the urgent one), /my: one's own
    listing = await harness.say(w.worker, "/tickets")
    assert shown("en", "tickets.page", first=1, last=3, total=3) in listing[0].text
    assert [m.text.startswith(card_head(n))  # each its card, the urgent one first
            for m, n in zip(listing[1:], (2, 1, 3), strict=True)] == [True, True, True]
    mine = (await harness.say(w.resident, "/my"))[-1].text
    assert "#1" in mine and "#3" in mine and "#2" not in mine
    refused = (await harness.say(w.resident, "/tickets"))[-1].text
    assert shown("zh-Hans", "tickets.not_staff") in refused
    assert shown("zh-Hans", "ticket.unknown", id=2) in \
        (await harness.say(w.resident, "/ticket 2"))[-1].text
    assert shown("zh-Hans", "ticket.usage") in \
        (await harness.say(w.resident, "/ticket abc"))[-1].text

    # merge #3 into #1: the reporter is pointed at #1; a bad target is refused
    await harness.press(w.worker, w.card(w.grid_chat.id, 3), "t:mrg:3")
    await w.answer_prompt(w.worker, w.grid_chat, "#99")
    assert (await harness.store.tickets.get(3)).status == "new"
    assert shown("en", "ticket.bad_merge_target", text="#99") in harness.texts(w.grid_chat.id)[-1]
    await harness.press(w.worker, w.card(w.grid_chat.id, 3), "t:mrg:3")
    await w.answer_prompt(w.worker, w.grid_chat, "#1")
    assert (await harness.store.tickets.get(3)).merged_into == 1
    assert shown("zh-Hans", "notice.merged", id=3, target=1) in harness.texts(w.resident.id)[-1]
