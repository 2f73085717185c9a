"""`gridhorn demo --replay FILE --headless`: a saved tour is a regression test run from the
command line — exit 0 when nothing differs, 1 naming the first differing step, 2 for a file
that is not a transcript (naming it and the line) or for --headless without --replay."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from playground.session import Playground
from playground.tour import TourPlayer
from playground.transcript import dumps

ROOT = Path(__file__).resolve().parents[2]


async def _record_tour() -> str:
    demo = Playground(lang="en", flood=None)
    await demo.start()
    try:
        await TourPlayer(demo, pause=0).play_through()
        return dumps(demo.lang, demo.steps)
    finally:
        await demo.stop()


@pytest.fixture(scope="module")
def tour_transcript() -> str:
    """The tour, played once for this module, as a transcript."""
    return asyncio.run(_record_tour())


def demo(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GRIDHORN_ENV_FILE": ""}
    return subprocess.run([sys.executable, "-m", "bot.cli", "demo", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_a_saved_tour_replays_with_no_difference(tour_transcript: str, tmp_path: Path) -> None:
    saved = tmp_path / "tour.jsonl"
    saved.write_text(tour_transcript, encoding="utf-8")
    done = demo("--replay", str(saved), "--headless")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no difference" in done.stdout


def test_a_changed_reply_fails_naming_its_step(tour_transcript: str, tmp_path: Path) -> None:
    lines = tour_transcript.splitlines()
    rows = [json.loads(line) for line in lines[1:]]
    target = next(r for r in rows if r["action"].get("data") == "t:acc:1")
    target["bot"][-1]["text"] += " (changed)"
    saved = tmp_path / "changed.jsonl"
    saved.write_text("\n".join([lines[0], *(json.dumps(r, ensure_ascii=False) for r in rows)])
                     + "\n", encoding="utf-8")
    done = demo("--replay", str(saved), "--headless")
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"step {target['step']} differs" in done.stdout
    assert "(changed)" in done.stdout


def test_a_malformed_file_is_refused_naming_the_file_and_line(
        tour_transcript: str, tmp_path: Path) -> None:
    lines = tour_transcript.splitlines()
    saved = tmp_path / "broken.jsonl"
    saved.write_text("\n".join([*lines[:3], "{not json", *lines[3:]]) + "\n", encoding="utf-8")
    done = demo("--replay", str(saved), "--headless")
    assert done.returncode == 2, done.stdout + done.stderr
    said = done.stderr.strip().splitlines()
    assert len(said) == 1 and str(saved) in said[0] and "line 4" in said[0], done.stderr
    assert done.stdout == ""


def test_headless_needs_a_transcript() -> None:
    done = demo("--headless")
    assert done.returncode == 2
    assert "--replay" in done.stderr
