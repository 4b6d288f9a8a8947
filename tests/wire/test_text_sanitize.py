"""sanitize(): nothing from the network reaches a terminal as a control, escape or bidi trick."""

from __future__ import annotations

import re
import unicodedata

import pytest
from conftest import load_blns, load_blns_bytes
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeconsole.text import MAX_MARKS, is_unsafe_char, sanitize

BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff"


def dangerous(ch: str) -> bool:
    cp = ord(ch)
    return (
        cp < 0x20 or 0x7F <= cp <= 0x9F or ch in BIDI or ch in ZERO_WIDTH or 0xD800 <= cp <= 0xDFFF
    )


def assert_clean(out: str, multiline: bool = False) -> None:
    allowed = "\n\t" if multiline else ""
    bad = [ch for ch in out if dangerous(ch) and ch not in allowed]
    assert not bad, (out, bad)


@pytest.mark.parametrize(
    ("payload", "shown"),
    [
        ("\x1b]0;PWNED\x07", "␛]0;PWNED␇"),
        ("\x1b[2J", "␛[2J"),
        ("\x9b31m", "<U+009B>31m"),
        ("\x1b]52;c;Y2F0IC9ldGMvcGFzc3dk\x07", "␛]52;c;Y2F0IC9ldGMvcGFzc3dk␇"),
        ("\x1b]8;;https://evil\x1b\\click\x1b]8;;\x1b\\", "␛]8;;https://evil␛\\click␛]8;;␛\\"),
        ("\x1bP>|x\x1b\\", "␛P>|x␛\\"),
        ("abc\u202eevil", "abc<U+202E>evil"),
        ("a\u200bb", "a<U+200B>b"),
        ("ok\rspoofed", "ok␍spoofed"),
        ("nul\x00", "nul␀"),
        ("del\x7f", "del␡"),
        ("line\nbreak", "line␊break"),
        ("tab\there", "tab␉here"),
        ("[@click=app.quit]x[/]", "[@click=app.quit]x[/]"),
        ("[/]", "[/]"),
        ("[bold red]x[/]", "[bold red]x[/]"),
    ],
)
def test_payloads_are_made_visible(payload: str, shown: str) -> None:
    out = sanitize(payload)
    assert out == shown
    assert_clean(out)


def test_bytes_are_decoded_and_invalid_bytes_shown() -> None:
    assert sanitize(b"dev\xff\x1b[31m") == "dev\\xff␛[31m"


def test_every_bidi_and_zero_width_character_is_shown_as_a_code_point() -> None:
    for ch in BIDI + ZERO_WIDTH:
        assert sanitize(f"a{ch}b") == f"a<U+{ord(ch):04X}>b"


def test_lone_surrogates_cannot_reach_the_terminal() -> None:
    out = sanitize("x\ud800y")
    assert out == "x<U+D800>y"
    out.encode("utf-8")  # would raise if a surrogate survived


def test_multiline_keeps_newlines_and_tabs_but_not_cr() -> None:
    assert sanitize("a\nb\tc\r\n", multiline=True) == "a\nb\tc␍\n"


def test_length_is_capped_with_an_ellipsis_and_escapes_are_not_split() -> None:
    assert sanitize("x" * 1000, max_len=10) == "x" * 9 + "…"
    assert len(sanitize("x" * 1_000_000)) == 512
    out = sanitize("abcdef\u202e" * 10, max_len=12)
    assert out.endswith("…") and len(out) <= 12
    assert "<U+" not in out or out.count("<") == out.count(">")


def test_zalgo_runs_are_capped() -> None:
    out = sanitize("e" + "\u0301" * 10_000)
    assert out.startswith("e" + "\u0301" * MAX_MARKS)
    assert re.search(r"<\+\d+ marks>", out)
    assert len(out) <= 512


def test_format_character_table_matches_unicodedata() -> None:
    missing = [
        f"U+{cp:04X}"
        for cp in range(0x110000)
        if unicodedata.category(chr(cp)) in ("Cf", "Zl", "Zp", "Cc") and not is_unsafe_char(chr(cp))
    ]
    assert missing == []


def test_naughty_strings_come_out_clean() -> None:
    for text in load_blns():
        assert_clean(sanitize(text))
        assert_clean(sanitize(text, multiline=True), multiline=True)
    for raw in load_blns_bytes():
        assert_clean(sanitize(raw))


@settings(max_examples=400, deadline=None, database=None)
@given(
    st.text(alphabet=st.characters(codec=None), max_size=200), st.integers(1, 100), st.booleans()
)
def test_arbitrary_text_never_yields_a_control_escape_or_bidi_char(
    text: str, max_len: int, multiline: bool
) -> None:
    out = sanitize(text, max_len=max_len, multiline=multiline)
    assert len(out) <= max_len
    assert_clean(out, multiline)


@settings(max_examples=200, deadline=None, database=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_yield_a_control_escape_or_bidi_char(data: bytes) -> None:
    assert_clean(sanitize(data))
