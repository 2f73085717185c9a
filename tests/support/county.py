"""A county as a new user sets it up: a map file imported (one community, grid, estate and
building, a department), optionally binding the grid's staff chat; and the texts of its
ticket cards."""

from __future__ import annotations

from bot.i18n import t
from bot.services.mapfile import import_map
from tests.support.texts import before, label

MAP = """\
communities:
  - code: C01
    name: 欣山社区
    grids:
      - code: G0101
        name: 第一网格
        {grid_chat}
        estates:
          - code: E010101
            name: 阳光小区
            buildings:
              - code: B01010101
                name: 1栋
departments:
  - code: MZJ
    name: 县民政局
    domains: [orange]
"""


def card_head(ticket_id: int, locale: str = "en") -> str:
    """How a card of the ticket opens ("#1 "), in a locale."""
    return before(locale, "ticket.card_title", "domain", id=ticket_id)


def state(locale: str, status_key: str) -> str:
    """The card's state as staff read it ("State: new")."""
    return label(locale, "ticket.card_state", "state", t(locale, status_key))


async def import_county(harness, grid_chat: int | None) -> None:
    """`gridhorn map import` of the county's file (the grid bound to `grid_chat` if given)."""
    text = MAP.format(grid_chat=f"chat: {grid_chat}" if grid_chat else "")
    result = await import_map(harness.store, text.encode(), "county.yaml")
    assert result.ok, result.errors


async def submit(harness, user, text: str, domain: str = "orange") -> None:
    """The user writes an opinion, picks its domain and submits it."""
    card = (await harness.say(user, text))[-1]
    await harness.press(user, card, f"dr:dom:{domain}")
    await harness.press(user, card, "dr:submit")
    await agree_if_asked(harness, user)


async def agree_if_asked(harness, user) -> None:
    """A person's first Submit shows the privacy notice (SPEC §14): they press Agree, which
    submits the draft (later Submits go straight through)."""
    last = harness.emu.messages(user.id)[-1]
    agree = [b.callback_data for row in (last.buttons or []) for b in row
             if (b.callback_data or "").startswith("pv:agree")]
    if agree:
        await harness.press(user, last, agree[0])
