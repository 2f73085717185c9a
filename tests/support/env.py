"""The environment of a `gridhorn` process started by a test: its settings come from the test
alone, never from the developer's environment or the repository's `.env`."""

from __future__ import annotations

import os


def child_env(**settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDHORN_")}
    env["GRIDHORN_ENV_FILE"] = ""  # read no .env file
    env.update(settings)
    return env
