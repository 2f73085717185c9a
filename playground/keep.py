"""`gridhorn demo --db FILE`: the world kept between runs.

The bot's store is FILE itself. The emulated Telegram — accounts, chats with their messages and
topics, the id counters — and the sample world's names for them are saved beside it, in
FILE.world, after every step and at the stop: the next run takes them back, so the tickets in
the store still point at their cards, and update and message ids go on where they stopped
(the bot's intake would take a reused update id for one it has handled).

The file is read with an unpickler that builds only the emulator's and the world's plain data
classes, so a file that is not a saved world cannot run anything.
"""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path
from typing import Any

from emulator import BotAPIEmulator
from playground.world import World

FORMAT = 1
_ALLOWED = {
    ("emulator.models", name)
    for name in ("EmuUser", "EmuChat", "EmuMessage", "EmuTopic", "EmuFile", "Button")
} | {("playground.world", "World"), ("playground.world", "Person"),
     ("builtins", "set"), ("builtins", "frozenset")}


class KeptWorldError(ValueError):
    """FILE.world is missing, damaged or of another version (said in one line)."""


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"{module}.{name} is not part of a saved world")
        return super().find_class(module, name)


def world_file(db: Path) -> Path:
    return db.with_name(db.name + ".world")


def save(db: Path, emu: BotAPIEmulator, world: World, minute: int) -> None:
    """Write FILE.world whole or not at all (a crash keeps the previous one); `minute`: the
    demo clock's, so that the next run goes on from there."""
    target = world_file(db)
    partial = target.with_name(target.name + ".partial")
    kept = {"format": FORMAT, "emulator": emu.world_state(), "world": world, "minute": minute}
    partial.write_bytes(pickle.dumps(kept, protocol=5))
    os.replace(partial, target)


def load(db: Path) -> tuple[dict[str, Any], World, int]:
    target = world_file(db)
    try:
        data = _Unpickler(io.BytesIO(target.read_bytes())).load()
    except FileNotFoundError:
        raise KeptWorldError(f"{db} is a store, but {target.name} (the playground's chats "
                             "beside it) is missing: give a new file to --db") from None
    except (pickle.UnpicklingError, EOFError, AttributeError, ValueError) as exc:
        raise KeptWorldError(f"{target} is not a saved playground world: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise KeptWorldError(f"{target} is not a saved playground world of this version")
    return data["emulator"], data["world"], int(data["minute"])


def forget(db: Path) -> None:
    for path in (db, Path(f"{db}-wal"), Path(f"{db}-shm"), world_file(db)):
        path.unlink(missing_ok=True)
