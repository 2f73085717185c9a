"""How a horn looks: every catalog key the horn's code names exists in every language, and
each enum has its words."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from bot import labels
from bot.i18n import LOCALES, catalog, plurals
from bot.services import horn_views as views
from bot.services.horn_base import Step
from bot.services.horn_flow import ASK_KEYS
from storage.models import Availability, HornLevel, Skill

ROOT = Path(__file__).resolve().parents[1]
HORN_SOURCES = [*sorted((ROOT / "bot" / "services").glob("horn*.py")),
                ROOT / "bot" / "services" / "volunteers.py",
                ROOT / "handlers" / "horn.py", ROOT / "handlers" / "volunteer.py"]
KEY_PREFIXES = ("horn.", "horns.", "volunteer.", "skill.", "avail.", "button.", "map.")


def written_keys(path: Path) -> set[str]:
    """Every string literal in the file that looks like one of the horn's catalog keys."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and \
                node.value.startswith(KEY_PREFIXES) and " " not in node.value:
            found.add(node.value)
    return found


@pytest.mark.parametrize("path", HORN_SOURCES, ids=lambda p: p.name)
def test_every_key_written_in_the_horns_code_is_in_every_catalog(path):
    keys = written_keys(path)
    for locale in LOCALES:
        missing = sorted(k for k in keys if k not in catalog(locale) and k not in plurals(locale))
        assert not missing, (locale, missing)


def test_no_key_is_built_from_pieces():
    for path in HORN_SOURCES:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.JoinedStr):
                head = node.values[0] if node.values else None
                assert not (isinstance(head, ast.Constant) and
                            str(head.value).startswith(KEY_PREFIXES)), (path.name, node.lineno)


def test_each_enum_has_its_words():
    assert set(views.LEVEL_KEYS) == set(HornLevel) == set(views.LEVEL_EMOJI)
    assert set(labels.SKILL) == set(Skill)
    assert set(views.AVAILABILITY_KEYS) == set(Availability)
    assert set(ASK_KEYS) == set(Step) - {Step.PREVIEW}


def test_labels_in_each_language():
    assert views.level_label("en", HornLevel.EMERGENCY) == "🚨 Emergency"
    assert views.skills_label("en", ["medical", "it"]) == "medical, IT"
    assert views.skills_label("en", ["juggling"]) == "juggling"        # an old profile's word
    assert views.availability_label("en", "weekends,evenings") == "Weekends, Evenings"
    assert views.availability_label("en", "Saturday mornings") == "Saturday mornings"
    assert views.level_label("zh-Hans", HornLevel.MAJOR) != views.level_label("en",
                                                                              HornLevel.MAJOR)
