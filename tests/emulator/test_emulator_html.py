"""Unit tests of the emulator's Telegram HTML parser."""

from __future__ import annotations

import pytest

from emulator.html import HtmlParseError, parse_html, strip_formatted, utf16_len


def entities(html: str) -> list[dict[str, object]]:
    return parse_html(html).entities


def test_plain_text_and_basic_tags() -> None:
    parsed = parse_html("<b>bold</b> and <i>it</i> <u>u</u> <s>s</s>")
    assert parsed.text == "bold and it u s"
    assert parsed.entities == [
        {"type": "bold", "offset": 0, "length": 4},
        {"type": "italic", "offset": 9, "length": 2},
        {"type": "underline", "offset": 12, "length": 1},
        {"type": "strikethrough", "offset": 14, "length": 1},
    ]


def test_synonyms_are_case_insensitive() -> None:
    assert [
        e["type"] for e in entities("<STRONG>a</STRONG><em>b</em><ins>c</ins><del>d</del>")
    ] == [
        "bold",
        "italic",
        "underline",
        "strikethrough",
    ]


def test_offsets_are_utf16_code_units() -> None:
    parsed = parse_html("😀 楼<b>栋</b>")
    assert parsed.text == "😀 楼栋"
    assert parsed.entities == [{"type": "bold", "offset": 4, "length": 1}]
    assert utf16_len("😀") == 2


def test_nested_entities_sorted_by_offset_then_length() -> None:
    assert entities("<b>a<i>b</i></b>") == [
        {"type": "bold", "offset": 0, "length": 2},
        {"type": "italic", "offset": 1, "length": 1},
    ]


def test_html_entities_decode() -> None:
    assert parse_html("&lt;&gt;&amp;&quot; &#60;&#x3C; Tom & Jerry").text == '<>&" << Tom & Jerry'


def test_links_spoilers_quotes_and_emoji() -> None:
    assert entities('<a href="https://example.com/?a=1&amp;b=2">x</a>') == [
        {"type": "text_link", "offset": 0, "length": 1, "url": "https://example.com/?a=1&b=2"}
    ]
    assert entities("<a href='tg://user?id=1001'>Li</a>") == [
        {"type": "text_mention", "offset": 0, "length": 2, "user_id": 1001}
    ]
    assert entities('<span class="tg-spoiler">s</span><tg-spoiler>t</tg-spoiler>') == [
        {"type": "spoiler", "offset": 0, "length": 1},
        {"type": "spoiler", "offset": 1, "length": 1},
    ]
    assert entities("<blockquote expandable>q</blockquote><blockquote>r</blockquote>") == [
        {"type": "expandable_blockquote", "offset": 0, "length": 1},
        {"type": "blockquote", "offset": 1, "length": 1},
    ]
    assert entities('<tg-emoji emoji-id="5368324170671202286">👍</tg-emoji>') == [
        {"type": "custom_emoji", "offset": 0, "length": 2, "custom_emoji_id": "5368324170671202286"}
    ]
    assert entities("<a href=javascript>x</a>") == []  # Telegram drops invalid links


def test_pre_and_code() -> None:
    assert entities('<pre><code class="language-python">x = 1</code></pre>') == [
        {"type": "pre", "offset": 0, "length": 5, "language": "python"}
    ]
    assert entities("<pre>p</pre>") == [{"type": "pre", "offset": 0, "length": 1}]
    assert entities('<code class="language-python">c</code>') == [
        {"type": "code", "offset": 0, "length": 1}
    ]


@pytest.mark.parametrize(
    ("html", "reason"),
    [
        ("a <foo> b", 'Unsupported start tag "foo" at byte offset 2'),
        ("楼 <foo>", 'Unsupported start tag "foo" at byte offset 4'),
        ("x < y", 'Unsupported start tag "" at byte offset 2'),
        ("<b>x", 'Can\'t find end tag corresponding to start tag "b"'),
        ("<b>x</i>", 'Unmatched end tag at byte offset 4, expected "</b>", found "</i>"'),
        ("x</b>", "Unexpected end tag at byte offset 1"),
        ("<b", "Unclosed start tag at byte offset 0"),
        ("<b>x</b", "Unclosed end tag at byte offset 4"),
        ("<span>x</span>", 'Tag "span" must have class "tg-spoiler" at byte offset 0'),
        (
            "<b foo>x</b>",
            'Expected equal sign in declaration of an attribute of the tag "b" at byte offset 0',
        ),
        ("a &nbsp; b", 'Unsupported HTML entity "&nbsp;" at byte offset 2'),
        ("<tg-emoji>x</tg-emoji>", "Invalid custom emoji identifier specified"),
    ],
)
def test_invalid_html_is_rejected_with_telegrams_reason(html: str, reason: str) -> None:
    with pytest.raises(HtmlParseError) as caught:
        parse_html(html)
    assert str(caught.value) == reason


def test_unknown_entities_can_be_lenient_like_telegram() -> None:
    assert parse_html("a &nbsp; b", strict_entities=False).text == "a &nbsp; b"


def test_strip_formatted_trims_and_shifts_entities() -> None:
    parsed = parse_html("\n  <b>hi</b> there \n")
    text, ents = strip_formatted(parsed.text, parsed.entities)
    assert text == "hi there"
    assert ents == [{"type": "bold", "offset": 0, "length": 2}]
    text, ents = strip_formatted(" 😀 ", [{"type": "bold", "offset": 3, "length": 1}])
    assert text == "😀" and ents == []
