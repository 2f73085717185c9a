"""playground/render.py: Telegram text + entities to safe, whitelisted, well-formed HTML."""

from __future__ import annotations

import random
import re
from html.parser import HTMLParser
from typing import Any

import pytest

from emulator.html import parse_html, utf16_len
from playground.render import render_html, render_plain_snippet

_LINK_ATTRS = {"href", "rel", "target"}
_SPAN_CLASSES = {
    "tg-spoiler", "tg-mention", "tg-hashtag", "tg-cashtag", "tg-bot-command", "tg-email",
    "tg-phone",
}  # fmt: skip


class _Checker(HTMLParser):
    """Fails on any tag or attribute outside the whitelist and on ill-formed nesting."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.data: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        assert len(found) == len(attrs), f"duplicate attribute in <{tag}>"
        self.tags.append((tag, found))
        if tag == "br":
            assert not found
            self.data.append("\n")
            return
        if tag in ("b", "i", "u", "s", "pre"):
            assert not found, f"<{tag}> with attributes {found}"
        elif tag == "code":
            assert set(found) <= {"class"}
            if "class" in found:
                assert re.fullmatch(r"language-[A-Za-z0-9_+-]+", found["class"] or "")
                assert self.stack and self.stack[-1] == "pre"
        elif tag == "span":
            assert set(found) == {"class"} and found["class"] in _SPAN_CLASSES, found
        elif tag == "blockquote":
            assert found in ({}, {"class": "tg-expandable"}), found
        elif tag == "a":
            assert set(found) == _LINK_ATTRS, found
            assert found["rel"] == "noopener noreferrer" and found["target"] == "_blank"
            assert re.match(r"(https?://|tg:)", found["href"] or "", re.IGNORECASE), found
            assert "a" not in self.stack, "a link inside a link"
        else:
            raise AssertionError(f"tag <{tag}> is not whitelisted")
        self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        raise AssertionError(f"self-closing <{tag}/>")

    def handle_endtag(self, tag: str) -> None:
        assert tag != "br"
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes {self.stack}"
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.data.append(data)

    def unknown_decl(self, data: str) -> None:
        raise AssertionError(f"declaration {data!r}")

    def handle_comment(self, data: str) -> None:
        raise AssertionError(f"comment {data!r}")

    def handle_pi(self, data: str) -> None:
        raise AssertionError(f"processing instruction {data!r}")


def check(output: str) -> _Checker:
    checker = _Checker()
    checker.feed(output)
    checker.close()
    assert not checker.stack, f"unclosed {checker.stack}"
    return checker


def text_of(output: str) -> str:
    return "".join(check(output).data)


def entity(kind: str, offset: int, length: int, **extra: Any) -> dict[str, Any]:
    return {"type": kind, "offset": offset, "length": length, **extra}


# ---- every entity type -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "extra", "expected"),
    [
        ("bold", {}, "<b>word</b>"),
        ("italic", {}, "<i>word</i>"),
        ("underline", {}, "<u>word</u>"),
        ("strikethrough", {}, "<s>word</s>"),
        ("spoiler", {}, '<span class="tg-spoiler">word</span>'),
        ("code", {}, "<code>word</code>"),
        ("pre", {}, "<pre><code>word</code></pre>"),
        ("pre", {"language": "python"}, '<pre><code class="language-python">word</code></pre>'),
        ("pre", {"language": "c++"}, '<pre><code class="language-c++">word</code></pre>'),
        ("mention", {}, '<span class="tg-mention">word</span>'),
        ("hashtag", {}, '<span class="tg-hashtag">word</span>'),
        ("cashtag", {}, '<span class="tg-cashtag">word</span>'),
        ("bot_command", {}, '<span class="tg-bot-command">word</span>'),
        ("email", {}, '<span class="tg-email">word</span>'),
        ("phone_number", {}, '<span class="tg-phone">word</span>'),
        ("text_mention", {"user": {"id": 7, "is_bot": False, "first_name": "W"}},
         '<span class="tg-mention">word</span>'),
        ("blockquote", {}, "<blockquote>word</blockquote>"),
        ("expandable_blockquote", {}, '<blockquote class="tg-expandable">word</blockquote>'),
        ("custom_emoji", {"custom_emoji_id": "5368324170671202286"}, "word"),
        ("text_link", {"url": "https://example.org/?a=1&b=\"2\""},
         '<a href="https://example.org/?a=1&amp;b=&quot;2&quot;" rel="noopener noreferrer" '
         'target="_blank">word</a>'),
        ("text_link", {"url": "tg://user?id=7"},
         '<a href="tg://user?id=7" rel="noopener noreferrer" target="_blank">word</a>'),
        ("unknown_future_type", {}, "word"),
    ],
)  # fmt: skip
def test_each_entity_type(kind: str, extra: dict[str, Any], expected: str) -> None:
    output = render_html("a word.", [entity(kind, 2, 4, **extra)])
    assert output == f"a {expected}."
    assert text_of(output) == "a word."


@pytest.mark.parametrize(
    ("text", "href"),
    [
        ("https://example.org/x?y=<1>", "https://example.org/x?y=&lt;1&gt;"),
        ("HTTP://Example.org", "HTTP://Example.org"),
        ("example.org/path", "http://example.org/path"),
        ("example.org:8080/p", "http://example.org:8080/p"),
    ],
)
def test_url_entity_links_to_its_own_text(text: str, href: str) -> None:
    output = render_html(f"see {text}", [entity("url", 4, utf16_len(text))])
    escaped = text.replace("<", "&lt;").replace(">", "&gt;")
    assert output == (
        f'see <a href="{href}" rel="noopener noreferrer" target="_blank">{escaped}</a>'
    )
    check(output)


@pytest.mark.parametrize("text", ["javascript:alert(1)", "ftp://example.org", "mailto:a@b.c"])
def test_url_entity_with_another_scheme_is_plain_text(text: str) -> None:
    assert render_html(text, [entity("url", 0, len(text))]) == text


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "JavaScript:alert(document.cookie)",
        " javascript:alert(1)",
        "\x01javascript:alert(1)",
        "java\tscript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "vbscript:msgbox",
        "ftp://example.org",
        "//example.org",
        "example.org",
        "https://exa mple.org",
        "",
        None,
        42,
    ],
)
def test_text_link_refuses_other_schemes(url: Any) -> None:
    output = render_html("click me", [entity("text_link", 0, 5, url=url)])
    assert output == "click me"
    assert "href" not in output


def test_round_trip_of_every_html_entity_type() -> None:
    bot_html = (
        "<b>bold</b> <strong>strong</strong> <i>it</i> <em>em</em> <u>under</u> "
        "<ins>ins</ins> <s>s</s> <strike>strike</strike> <del>del</del> "
        '<tg-spoiler>sp</tg-spoiler> <span class="tg-spoiler">sp2</span> <code>x = 1</code>\n'
        '<pre>plain\npre</pre> <pre><code class="language-python">print(1)</code></pre> '
        '<a href="https://example.org/a?b=1&amp;c=2">link</a> '
        '<a href="tg://user?id=42">Wang</a> '
        '<tg-emoji emoji-id="5368324170671202286">👍</tg-emoji> '
        "<blockquote>quote</blockquote><blockquote expandable>long quote</blockquote>"
        "<b>bold <i>bold italic <u>all three</u></i></b> &lt;escaped&gt; &amp; 😀"
    )
    parsed = parse_html(bot_html)
    kinds = {e["type"] for e in parsed.entities}
    assert kinds == {
        "bold", "italic", "underline", "strikethrough", "spoiler", "code", "pre", "text_link",
        "text_mention", "custom_emoji", "blockquote", "expandable_blockquote",
    }  # fmt: skip
    output = render_html(parsed.text, parsed.entities)
    for fragment in [
        "<b>bold</b>",
        "<b>strong</b>",
        "<i>it</i>",
        "<i>em</i>",
        "<u>under</u>",
        "<u>ins</u>",
        "<s>s</s>",
        "<s>strike</s>",
        "<s>del</s>",
        '<span class="tg-spoiler">sp</span>',
        '<span class="tg-spoiler">sp2</span>',
        "<code>x = 1</code><br>",
        "<pre><code>plain<br>pre</code></pre>",
        '<pre><code class="language-python">print(1)</code></pre>',
        '<a href="https://example.org/a?b=1&amp;c=2" rel="noopener noreferrer" '
        'target="_blank">link</a>',
        '<span class="tg-mention">Wang</span>',
        " 👍 ",
        "<blockquote>quote</blockquote>",
        '<blockquote class="tg-expandable">long quote</blockquote>',
        "<b>bold <i>bold italic <u>all three</u></i></b>",
        "&lt;escaped&gt; &amp; 😀",
    ]:
        assert fragment in output
    assert text_of(output) == parsed.text


# ---- UTF-16 offsets ----------------------------------------------------------------------------


def test_utf16_offsets_after_emoji() -> None:
    text = "😀👍🏽 ok 𝄞 fine"  # 😀, 👍, 🏽 and 𝄞 are astral: two UTF-16 units each
    offset = utf16_len("😀👍🏽 ")
    assert offset == 7
    output = render_html(text, [entity("bold", offset, 2), entity("italic", offset + 3, 2)])
    assert output == "😀👍🏽 <b>ok</b> <i>𝄞</i> fine"


def test_entity_over_astral_characters_and_cjk() -> None:
    text = "网格😀集结号"
    output = render_html(text, [entity("underline", 2, 3)])
    assert output == "网格<u>😀集</u>结号"


def test_offset_inside_a_surrogate_pair_takes_the_whole_character() -> None:
    text = "a😀b"
    assert render_html(text, [entity("bold", 2, 2)]) == "a<b>😀b</b>"
    assert render_html(text, [entity("bold", 0, 2)]) == "<b>a😀</b>b"


def test_round_trip_with_emoji_before_entities() -> None:
    parsed = parse_html("😀 <b>粗体 😀 <i>斜体</i></b> 🏳️‍🌈 <u>u</u>")
    assert render_html(parsed.text, parsed.entities) == (
        "😀 <b>粗体 😀 <i>斜体</i></b> 🏳️‍🌈 <u>u</u>"
    )


# ---- nesting and overlapping -------------------------------------------------------------------


def test_nested_entities() -> None:
    text = "outer inner outer"
    entities = [entity("bold", 0, 17), entity("italic", 6, 5), entity("underline", 6, 5)]
    assert render_html(text, entities) == "<b>outer <i><u>inner</u></i> outer</b>"


def test_same_range_keeps_blocks_outside() -> None:
    text = "quoted"
    output = render_html(text, [entity("bold", 0, 6), entity("blockquote", 0, 6)])
    assert output == "<blockquote><b>quoted</b></blockquote>"


def test_overlapping_entities_are_split_and_stay_well_formed() -> None:
    text = "abcdefgh"
    output = render_html(text, [entity("bold", 0, 5), entity("italic", 3, 5)])
    assert output == "<b>abc<i>de</i></b><i>fgh</i>"
    check(output)


def test_overlap_closes_and_reopens_what_goes_on() -> None:
    text = "0123456789"
    entities = [entity("bold", 0, 6), entity("italic", 2, 8), entity("underline", 4, 2)]
    output = render_html(text, entities)
    assert output == "<b>01<i>23<u>45</u></i></b><i>6789</i>"
    check(output)
    entities = [entity("bold", 0, 4), entity("italic", 2, 6), entity("code", 3, 6)]
    output = render_html(text, entities)
    assert text_of(output) == text
    assert output == "<b>01<i>2<code>3</code></i></b><i><code>4567</code></i><code>8</code>9"


def test_links_never_nest() -> None:
    text = "https://a.example inner"
    entities = [
        entity("url", 0, 17),
        entity("text_link", 8, 15, url="https://b.example"),
    ]
    output = render_html(text, entities)
    assert output.count("<a ") == 1
    check(output)


# ---- injection ---------------------------------------------------------------------------------


@pytest.mark.parametrize("entities", [None, []])
def test_user_markup_is_plain_text(entities: list[dict[str, Any]] | None) -> None:
    text = "<img src=x onerror=alert(1)> <script>alert('x')</script> \"q\" & done"
    output = render_html(text, entities)
    assert "<img" not in output and "<script" not in output
    assert output == (
        "&lt;img src=x onerror=alert(1)&gt; &lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; "
        "&quot;q&quot; &amp; done"
    )
    assert check(output).tags == []
    assert text_of(output) == text


def test_user_markup_inside_entities_stays_text() -> None:
    text = "<img src=x onerror=alert(1)>"
    entities = [entity("bold", 0, len(text)), entity("pre", 1, 3, language='x" onclick="y')]
    output = render_html(text, entities)
    assert "<img" not in output and "onclick" not in output
    assert output == "<b>&lt;<pre><code>img</code></pre> src=x onerror=alert(1)&gt;</b>"


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("python", '<code class="language-python">'),
        ("objective-c", '<code class="language-objective-c">'),
        ("C_sharp+1", '<code class="language-C_sharp+1">'),
        ('py" onmouseover="alert(1)', "<code>"),
        ("py thon", "<code>"),
        ("<script>", "<code>"),
        ("", "<code>"),
        ("x" * 65, "<code>"),
        (None, "<code>"),
        (5, "<code>"),
    ],
)
def test_language_class_is_sanitised(language: Any, expected: str) -> None:
    output = render_html("x = 1", [entity("pre", 0, 5, language=language)])
    assert output == f"<pre>{expected}x = 1</code></pre>"
    check(output)


# ---- bad input ---------------------------------------------------------------------------------


def test_no_entities() -> None:
    assert render_html("", None) == ""
    assert render_html("", []) == ""
    assert render_html("a\nb\r\nc", None) == "a<br>b<br>c"
    assert render_html("plain", []) == "plain"


@pytest.mark.parametrize(
    "bad",
    [
        entity("bold", 10, 5),  # past the end
        entity("bold", -5, 3),  # ends before the start
        entity("bold", 2, 0),
        entity("bold", 2, -1),
        {"type": "bold", "offset": "1", "length": 2},
        {"type": "bold", "offset": 1.0, "length": 2},
        {"type": "bold", "offset": True, "length": 2},
        {"type": "bold", "length": 2},
        {"offset": 0, "length": 2},
        {"type": None, "offset": 0, "length": 2},
        "bold",
        None,
    ],
)
def test_bad_entities_are_ignored(bad: Any) -> None:
    assert render_html("abcde", [bad]) == "abcde"


def test_out_of_range_entities_are_clipped() -> None:
    assert render_html("abcde", [entity("bold", 3, 100)]) == "abc<b>de</b>"
    assert render_html("abcde", [entity("bold", -2, 4)]) == "<b>ab</b>cde"
    assert render_html("a😀", [entity("italic", 1, 100)]) == "a<i>😀</i>"


def test_lone_surrogates_and_nul_become_replacement_characters() -> None:
    output = render_html("a\ud800b\x00c", [entity("bold", 0, 5)])
    assert output == "<b>a\ufffdb\ufffdc</b>"
    output.encode("utf-8")


# ---- property: random combinations -------------------------------------------------------------

_ALPHABET = list("ab <>&\"'\n") + ["😀", "网", "🏽", "𝄞", "é"]
_KINDS = [
    "bold", "italic", "underline", "strikethrough", "spoiler", "code", "pre", "text_link",
    "url", "mention", "hashtag", "cashtag", "bot_command", "email", "phone_number",
    "text_mention", "blockquote", "expandable_blockquote", "custom_emoji", "nonsense",
]  # fmt: skip
_URLS = ["https://x.example/?a=<b>&c='d'", "javascript:alert(1)", "tg://resolve?domain=x", "x"]
_LANGUAGES = ["python", "a b", '"><script>', None]


def test_random_combinations_are_safe_and_well_formed() -> None:
    rng = random.Random(20260302)
    for _ in range(500):
        text = "".join(rng.choice(_ALPHABET) for _ in range(rng.randrange(0, 30)))
        size = utf16_len(text)
        entities = []
        for _ in range(rng.randrange(0, 7)):
            extra: dict[str, Any] = {
                "url": rng.choice(_URLS),
                "language": rng.choice(_LANGUAGES),
            }
            entities.append(
                entity(
                    rng.choice(_KINDS),
                    rng.randrange(-2, size + 3),
                    rng.randrange(-1, size + 3),
                    **extra,
                )
            )
        output = render_html(text, entities)
        assert "<script" not in output and "<img" not in output
        assert text_of(output) == text.replace("\r\n", "\n")


# ---- plain snippets ----------------------------------------------------------------------------


def test_plain_snippet() -> None:
    assert render_plain_snippet("short") == "short"
    assert render_plain_snippet("  two\nlines\t here  ") == "two lines here"
    assert render_plain_snippet("x" * 80) == "x" * 80
    long = render_plain_snippet("x" * 81)
    assert long == "x" * 79 + "…" and len(long) == 80
    assert render_plain_snippet("abcd efgh", limit=6) == "abcd…"
    assert render_plain_snippet("<b>not markup</b>", limit=100) == "<b>not markup</b>"
    assert render_plain_snippet("anything", limit=0) == ""
    assert render_plain_snippet("") == ""
