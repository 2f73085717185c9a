"""Every text exists in all three languages, with the same placeholders."""

from pathlib import Path

import pytest

from bot import labels
from bot.i18n import (
    LOCALES,
    catalog,
    duration,
    locale_from_language_code,
    placeholders,
    plurals,
    po_files,
    t,
    tn,
)
from storage.models import DOMAINS, PARTY_MEMBER, ROLES, SKILLS, TicketStatus, Urgency
from tests.support import keyscan

ROOT = Path(__file__).resolve().parents[1]


def test_every_locale_has_every_key_with_the_same_placeholders():
    keys: set[str] = set().union(*(catalog(locale) for locale in LOCALES))
    problems = []
    for locale in LOCALES:
        texts = catalog(locale)
        for key in sorted(keys):
            if key not in texts or not texts[key].strip():
                problems.append(f"{locale}: missing {key}")
                continue
            reference = catalog("en").get(key) or catalog("zh-Hans")[key]
            if placeholders(texts[key]) != placeholders(reference):
                problems.append(f"{locale}: {key} has {placeholders(texts[key])}, "
                                f"en has {placeholders(reference)}")
    assert not problems, "\n".join(problems)




def test_every_key_in_code_is_written_out_and_exists_with_its_placeholders():
    scan = keyscan.scan(ROOT, ("bot", "handlers", "playground"))
    assert scan.helpers.keys() >= {"t", "tn", "plain", "reply", "Refused"}, scan.helpers
    built = [f"{where}: {text}" for where, text in scan.unresolved]
    assert not built, "keys must be string literals or tables of them:\n" + "\n".join(built)
    problems = []
    for key in sorted(scan.keys):
        kinds = {"text" if key in catalog(loc) else "plural" if key in plurals(loc) else None
                 for loc in LOCALES}
        if kinds != {"text"} and kinds != {"plural"}:
            problems.append(f"{key}: {kinds} across the locales")
        elif key in scan.plural_keys and kinds != {"plural"}:
            problems.append(f"{key}: read with tn but not a plural entry")
        elif key not in scan.plural_keys and kinds == {"plural"}:
            problems.append(f"{key}: a plural entry read without a count")
    assert not problems, "\n".join(problems)


def test_no_catalog_key_is_unused():
    scan = keyscan.scan(ROOT, ("bot", "handlers", "playground"))
    defined = set(catalog("en")) | set(plurals("en"))
    unused = sorted(defined - scan.keys)
    assert not unused, unused


def test_plural_entries_have_every_form_of_their_locale_with_the_same_placeholders():
    problems = []
    for locale in LOCALES:
        rules = {po.plural_forms for po in po_files(locale)}
        if len(rules) != 1:
            problems.append(f"{locale}: the .po files disagree on Plural-Forms: {rules}")
        forms = po_files(locale)[0].num_plurals
        for key, texts in plurals(locale).items():
            if len(texts) != forms or not all(x.strip() for x in texts):
                problems.append(f"{locale}: {key} has {len(texts)} forms, not {forms}")
            reference = plurals("en").get(key, texts)[-1]
            if any(placeholders(x) != placeholders(reference) for x in texts):
                problems.append(f"{locale}: {key}: placeholders differ")
        if set(plurals(locale)) & set(catalog(locale)):
            problems.append(f"{locale}: keys both plain and plural")
    assert not problems, "\n".join(problems)
    assert set(plurals("en")) == set(plurals("zh-Hans")) == set(plurals("zh-Hant"))


@pytest.mark.parametrize("locale, count, expected", [
    ("en", 1, "Posted now to 1 building chat."), ("en", 0, "Posted now to 0 building chats."),
    ("en", 2, "Posted now to 2 building chats."), ("zh-Hans", 1, "本月主题已发到 1 个楼栋群。"),
    ("zh-Hant", 5, "本月主題已發到 5 個樓棟群。"), ("fr", 1, "本月主题已发到 1 个楼栋群。"),
])
def test_tn_picks_the_form_by_the_catalogs_rule(locale, count, expected):
    assert tn(locale, "theme.posted_now", count, count=count) == expected


def test_every_code_has_its_label_key():
    assert set(labels.ROLE) == set(ROLES) | {PARTY_MEMBER}
    assert set(labels.SKILL) == set(SKILLS)
    assert set(labels.DOMAIN) == set(DOMAINS) | {None}
    assert set(labels.STATUS) == set(TicketStatus)
    assert set(labels.URGENCY) == set(Urgency)


@pytest.mark.parametrize("code, expected", [
    ("zh-hans", "zh-Hans"), ("zh", "zh-Hans"), ("zh-CN", "zh-Hans"), ("zh-SG", "zh-Hans"),
    ("zh-hant", "zh-Hant"), ("zh-TW", "zh-Hant"), ("zh-HK", "zh-Hant"), ("zh-MO", "zh-Hant"),
    ("en", "en"), ("en-GB", "en"), ("ru", "zh-Hans"), (None, "zh-Hans"), ("", "zh-Hans"),
    ("not a tag", "zh-Hans"), ("zh-Hant-CN", "zh-Hant"), ("zh-Hant-SG", "zh-Hant"),
    ("zh-hant-beta", "zh-Hant"), ("zh_TW", "zh-Hant"), ("zh-xx", "zh-Hans"),
    ("zh-min-nan", "zh-Hans"), ("zh-Hans-HK", "zh-Hant"),
])
def test_language_code_mapping(code, expected):
    assert locale_from_language_code(code) == expected


@pytest.mark.parametrize("code, expected", [
    ("zh-min-nan", "zh-Hans"), ("zh-xx", "zh-Hans"), ("fr", "en"), (None, "en"),
    ("en-US", "en"), ("zh-TW", "zh-Hant"),
])
def test_language_code_mapping_with_english_as_the_default(code, expected):
    assert locale_from_language_code(code, "en") == expected


def test_values_are_escaped_but_markup_is_kept():
    text = t("en", "bind.done", unit="<b>1栋</b> & co")
    assert "&lt;b&gt;1栋&lt;/b&gt; &amp; co" in text


# SPEC §9: the words people (and scripts) recognise buttons by, in English and in Chinese
BUTTON_WORDS = [
    ("btn.submit", "Submit", "提交"), ("btn.cancel", "Cancel", "取消"),
    ("btn.anonymous", "Anonymous", "匿名"), ("domain.unsure", "Not sure", None),
    ("btn.acknowledge", "Acknowledge", "受理"), ("btn.escalate", "Escalate", "上报网格"),
    ("btn.whistle", "Whistle", "吹哨"), ("btn.accept", "Accept", "报到"),
    ("btn.decline", "Decline", "退回"), ("btn.resolve", "Resolve", "办结"),
    ("btn.reject", "Reject", "驳回"), ("btn.merge", "Merge", "合并"),
    ("btn.reply", "Reply", "回复"),
    ("btn.offer", "Offer", "派单"), ("btn.post_building", "Post to building", "楼栋议事"),
    ("btn.me_too", "Me too", "我也是"), ("btn.take", "Take it", "接单"),
    ("horn.btn_check_in", "Check in", None), ("horn.btn_cant_come", "Can't come", None),
    ("horn.btn_publish", "Publish", "发布"), ("horn.btn_close", "Close", "结束"),
    ("horn.btn_close_confirm", "Close", "结束"), ("horn.btn_confirm", "Confirm", "确认"),
]


@pytest.mark.parametrize("key, english, chinese", BUTTON_WORDS)
def test_button_labels_carry_the_words_of_spec_9(key, english, chinese):
    assert english in catalog("en")[key]
    if chinese is not None:
        assert chinese in catalog("zh-Hans")[key]


@pytest.mark.parametrize("seconds, english, chinese", [
    (86400, "1 day", "1 天"), (7 * 86400, "7 days", "7 天"), (3600, "1 hour", "1 小时"),
    (5400, "1.5 hours", "1.5 小时"), (60, "1 minute", "1 分钟"), (4, "4 seconds", "4 秒"),
])
def test_promised_times_read_right_in_the_singular_too(seconds, english, chinese):
    assert duration("en", seconds) == english
    assert duration("zh-Hans", seconds) == chinese


@pytest.mark.parametrize("seconds, english, traditional", [
    (90, "1.5 minutes", "1.5 分鐘"), (2 * 86400, "2 days", "2 天"), (86400 + 3600, "25 hours",
     "25 小時"), (59.7, "59 seconds", "59 秒"), (1, "1 second", "1 秒"), (0, "0 seconds", "0 秒"),
])
def test_durations_with_fractions_and_in_traditional_chinese(seconds, english, traditional):
    assert duration("en", seconds) == english
    assert duration("zh-Hant", seconds) == traditional


CARRIED_KEYS = '''
from dataclasses import dataclass, field
from bot.i18n import CatalogKey, t
from pkg import views

CLOSED = "k.closed"

@dataclass(frozen=True)
class Row:
    to: str
    told: CatalogKey | None = None
    refused: CatalogKey = CLOSED
    refusals: dict[str, CatalogKey] = field(default_factory=lambda: {"a": "k.already"})

TABLE = {"go": Row("x", told="k.told"), "stop": Row("y", "k.stopped", refused="k.no")}
BAD = Row("z", told=f"k.{TABLE}")

def refusal(row: Row, state: str) -> CatalogKey | None:
    return None if state == "ok" else row.refusals.get(state, row.refused)

def say(locale: str, row: Row, level: str, state: str) -> list[str]:
    key = refusal(row, state)
    return [t(locale, row.told if row.told else "k.quiet"), t(locale, views.LEVEL[level]),
            t(locale, key if key else "k.fine"), t(locale, views.OTHER[level])]
'''


def test_the_scan_follows_keys_carried_in_data_and_reports_what_it_cannot_see(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "views.py").write_text('LEVEL = {"a": "k.level_a"}\n'
                                               'OTHER = {"a": f"k.{LEVEL}"}\n')
    (tmp_path / "pkg" / "rows.py").write_text(CARRIED_KEYS)
    scan = keyscan.scan(tmp_path, ("pkg",))
    assert scan.keys == {"k.closed", "k.already", "k.told", "k.stopped", "k.no", "k.quiet",
                         "k.level_a", "k.fine"}
    assert sorted(text for _, text in scan.unresolved) == ["f'k.{TABLE}'", "views.OTHER[level]"]
