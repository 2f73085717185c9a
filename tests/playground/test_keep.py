"""`gridhorn demo --db FILE`: the world is kept between runs — the tickets in the store still
point at their cards, ids go on — and a file that is not a saved world runs nothing."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest

from playground import keep
from playground.session import Playground
from playground.transcript import Action

pytestmark = pytest.mark.asyncio


async def test_a_kept_world_goes_on_where_it_stopped(tmp_path: Path) -> None:
    db = tmp_path / "world.db"
    demo = Playground(lang="en", db=db, flood=None)
    await demo.start()
    try:
        draft = (await demo.act(Action("send", "resident", "private:resident",
                                       text="The lift is stuck"))).bot[-1]
        await demo.act(Action("press", "resident", "private:resident", message=draft["id"],
                              data="dr:dom:purple"))
        submitted = await demo.act(Action("press", "resident", "private:resident",
                                          message=draft["id"], data="dr:submit"))
        minute = demo.clock.minute
    finally:
        await demo.stop()
    card = next(b for b in submitted.bot if b["chat"] == "private:head")

    demo = Playground(lang="en", db=db, flood=None)
    await demo.start()
    try:
        assert demo.clock.minute == minute
        head = demo.world.person("head").user
        kept_card = demo.emu.chats[head.id].messages[card["id"]]
        assert kept_card.text == card["text"]
        # a new update is handled (its id goes on after the ones the store has seen)
        answer = await demo.act(Action("send", "resident", "private:resident",
                                       text="/ticket 1"))
        assert answer.bot and "#1" in answer.bot[0]["text"]
        # the ticket's card is edited where it is, not somewhere else
        acknowledge = kept_card.buttons[0][0].callback_data
        pressed = await demo.act(Action("press", "head", "private:head", message=card["id"],
                                        data=acknowledge))
        edited = [b for b in pressed.bot if b["chat"] == "private:head"]
        assert [(b["id"], b["edited"]) for b in edited] == [(card["id"], True)]
    finally:
        await demo.stop()


async def test_a_store_without_its_world_or_with_a_foreign_file_is_refused(
        tmp_path: Path) -> None:
    db = tmp_path / "world.db"
    db.write_bytes(b"")
    with pytest.raises(keep.KeptWorldError, match="missing"):
        keep.load(db)

    class Evil:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (os.system, ("echo pwned",))

    keep.world_file(db).write_bytes(pickle.dumps({"format": 1, "emulator": Evil()}))
    with pytest.raises(keep.KeptWorldError, match="not a saved playground world"):
        keep.load(db)
    keep.world_file(db).write_bytes(b"garbage")
    with pytest.raises(keep.KeptWorldError):
        keep.load(db)
