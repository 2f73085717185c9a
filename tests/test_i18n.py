"""Every text exists in all three languages, with the same placeholders."""

import pytest

from bot.i18n import LOCALES, catalog, locale_from_language_code, placeholders, t


def test_every_locale_has_every_key_with_the_same_placeholders():
    keys = set().union(*(catalog(locale) for locale in LOCALES))
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


def test_every_key_used_in_code_exists():
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    used = set()
    pattern = re.compile(r"""(?:\bt\(\s*[\w.]+\s*,\s*|reply\(\s*update\s*,\s*context\s*,\s*|Refused\(\s*)"([a-z_]+\.[a-z_.]+)\"""")
    for folder in ("bot", "handlers"):
        for path in (root / folder).rglob("*.py"):
            used |= set(pattern.findall(path.read_text(encoding="utf-8")))
    missing = sorted(k for k in used if k not in catalog("en"))
    assert used, "the scan found no keys: the pattern is broken"
    assert not missing, missing


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
    ("btn.reject", "Reject", "驳回"), ("btn.merge", "Merge", "合并"), ("btn.reply", "Reply", "回复"),
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
    from bot.services.tickets import _hours_text
    assert _hours_text("en", seconds) == english
    assert _hours_text("zh-Hans", seconds) == chinese
