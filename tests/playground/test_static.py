"""The page is plain files inside the package (SPEC §17): small, nothing from elsewhere,
nothing inline that a strict Content-Security-Policy would block."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from importlib import resources

STATIC = resources.files("playground").joinpath("static")


def files() -> dict[str, bytes]:
    found: dict[str, bytes] = {}

    def walk(folder, prefix: str) -> None:
        for entry in folder.iterdir():
            if entry.is_dir():
                walk(entry, f"{prefix}{entry.name}/")
            else:
                found[prefix + entry.name] = entry.read_bytes()
    walk(STATIC, "")
    return found


def test_the_page_is_under_300_kb_with_its_library_and_licences() -> None:
    page = files()
    assert sum(len(body) for body in page.values()) < 300 * 1024
    assert {"index.html", "app.js", "style.css"} <= set(page)
    vendored = [name for name in page if name.startswith("vendor/") and name.endswith(".js")]
    licences = [name for name in page if name.startswith("vendor/LICENSE")]
    assert len(vendored) == 1 and licences  # one small library, its licence kept beside it


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[str, dict[str, str | None]]] = []
        self.inline_text: list[str] = []
        self._open: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.seen.append((tag, dict(attrs)))
        self._open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if self._open and self._open[-1] == tag:
            self._open.pop()

    def handle_data(self, data: str) -> None:
        if self._open and self._open[-1] in ("script", "style") and data.strip():
            self.inline_text.append(data)


def test_index_has_nothing_inline_and_loads_only_its_own_files() -> None:
    parser = _Tags()
    parser.feed(files()["index.html"].decode("utf-8"))
    assert parser.inline_text == []
    for tag, attrs in parser.seen:
        assert "style" not in attrs, tag
        assert not any(name.startswith("on") for name in attrs), (tag, attrs)
        for name in ("src", "href"):
            value = attrs.get(name)
            if value is not None:
                assert value.startswith("/static/"), (tag, value)


def test_no_script_or_sheet_reaches_beyond_the_page() -> None:
    for name, body in files().items():
        if not name.endswith((".js", ".css", ".html")):
            continue
        text = body.decode("utf-8")
        assert not re.search(r"""(?:import|from)\s*\(?\s*['"]https?:""", text), name
        assert not re.search(r"""url\(\s*['"]?https?:""", text), name
        assert "eval(" not in text.replace("_eval(", ""), name
