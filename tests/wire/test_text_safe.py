"""safe_text(): untrusted text becomes Content that no markup parser ever sees."""

from __future__ import annotations

import pytest
from conftest import load_blns
from textual.content import Content

from pipeconsole.ui.safe import safe_text

MARKUP = [
    "[@click=app.quit]x[/]",
    "[/]",
    "[bold red]x[/]",
    "foo[/bar]",
    "[link='https://evil']x[/]",
    "[type=x, v={'a[0]'}]",
    "[@click=app.cancel_all]x[/]",
]


@pytest.mark.parametrize("text", MARKUP)
def test_markup_is_literal_text_without_spans(text: str) -> None:
    content = safe_text(text)
    assert isinstance(content, Content)
    assert content.plain == text
    assert list(content.spans) == []


def test_a_style_is_ours_and_covers_the_literal_text() -> None:
    content = safe_text("[bold red]x[/]", style="italic")
    assert content.plain == "[bold red]x[/]"
    assert [(s.start, s.end, str(s.style)) for s in content.spans] == [(0, 14, "italic")]


@pytest.mark.parametrize(
    "payload",
    ["\x1b]0;PWNED\x07", "\x1b[2J", "\x9b31m", "\x1b]52;c;Y2F0IC9ldGMvcGFzc3dk\x07", "a\u202eb"],
)
def test_escapes_never_reach_content(payload: str) -> None:
    plain = safe_text(payload).plain
    assert "\x1b" not in plain and "\x9b" not in plain and "\x07" not in plain
    assert "\u202e" not in plain


def test_bytes_and_length_cap() -> None:
    assert safe_text(b"dev-\xff").plain == "dev-\\xff"
    assert len(safe_text("x" * 10_000, max_len=20).plain) == 20


def test_naughty_strings_render_without_markup_errors() -> None:
    for text in load_blns():
        content = safe_text(text)
        assert list(content.spans) == []
        rendered = "".join(seg.text for seg in content.render_segments())
        assert rendered == content.plain
        assert "\x1b" not in rendered
