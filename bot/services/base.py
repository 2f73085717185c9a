"""What the feature services stand on: the store, the one permission check, people (for
languages), the outbox and the settings."""

from __future__ import annotations

import time
from collections.abc import Callable

from bot.services.access import Access
from bot.services.outbox import Outbox
from bot.services.people import PeopleService
from bot.settings import Settings
from storage.store import Store


class Service:
    def __init__(self, store: Store, access: Access, people: PeopleService, outbox: Outbox,
                 settings: Settings, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.access = access
        self.people = people
        self.outbox = outbox
        self.settings = settings
        self.clock = clock  # seconds since the epoch; tests move it
