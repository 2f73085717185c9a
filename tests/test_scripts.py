"""scripts/setup.sh installs only when needed: a restart of the bot needs no network, and the
bot's .venv gets no test tools. Run on a copy of the scripts with a stand-in .venv whose
`python` records what it is asked to do (pip, pytest) instead of doing it."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FAKE = """#!/usr/bin/env bash
echo "$(basename "$0") $*" >> "$FAKE_LOG"
if [ "$1 $2 $3" = "-m pip install" ] && [ -e "$FAKE_FAIL" ]; then exit 1; fi
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "scripts", tmp_path / "scripts")
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "gridhorn"\n', encoding="utf-8")
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    for name in ("python", "gridhorn"):
        (bin_dir / name).write_text(FAKE, encoding="utf-8")
        (bin_dir / name).chmod(stat.S_IRWXU)
    return tmp_path


def run(project: Path, script: str, *args: str) -> list[str]:
    """Run a script; the calls it made to the .venv's python and gridhorn, in order."""
    log = project / "calls.log"
    log.write_text("", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDHORN_")}
    env.update(PYTHON=sys.executable, FAKE_LOG=str(log), FAKE_FAIL=str(project / "fail"))
    result = subprocess.run(["bash", f"scripts/{script}", *args], cwd=project, env=env,
                            capture_output=True, text=True, timeout=60)
    calls = log.read_text(encoding="utf-8").splitlines()
    if result.returncode != 0:
        return calls + [f"exit {result.returncode}"]
    return calls


def installs(calls: list[str]) -> list[str]:
    return [c.split(" -e ", 1)[1] for c in calls if " pip install " in c]


def test_the_bot_gets_the_base_package_once_and_restarts_offline(project):
    calls = run(project, "run-bot.sh")
    assert installs(calls) == ["."] and calls[-1] == "gridhorn run"
    assert run(project, "run-bot.sh") == ["gridhorn run"]


def test_the_playground_gets_the_base_package_and_passes_its_options(project):
    calls = run(project, "demo.sh", "--lang", "en", "--no-browser")
    assert installs(calls) == ["."] and calls[-1] == "gridhorn demo --lang en --no-browser"
    assert run(project, "demo.sh") == ["gridhorn demo"]


def test_the_tests_get_their_extras_once_and_the_bot_does_not_reinstall_after(project):
    assert installs(run(project, "test.sh")) == [".[test,bench]"]
    assert installs(run(project, "test.sh")) == []
    assert installs(run(project, "run-bot.sh")) == []  # the base package is in already


def test_a_changed_pyproject_installs_again(project):
    run(project, "run-bot.sh")
    with (project / "pyproject.toml").open("a", encoding="utf-8") as f:
        f.write('dependencies = ["aiohttp>=3.9"]\n')
    assert installs(run(project, "run-bot.sh")) == ["."]
    assert installs(run(project, "test.sh")) == [".[test,bench]"]
    assert installs(run(project, "run-bot.sh")) == []


def test_a_failed_install_is_tried_again_next_time(project):
    (project / "fail").touch()
    assert run(project, "run-bot.sh")[-1] == "exit 1"
    (project / "fail").unlink()
    assert installs(run(project, "run-bot.sh")) == ["."]
