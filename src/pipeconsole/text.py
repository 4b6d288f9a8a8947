"""``sanitize()``: the one place untrusted text is made safe to show.

Everything that came from the network (device names, health details, Kafka keys and payload
previews, DLQ reasons, error messages that quote input) passes through here before a screen,
a log line or a terminal sees it. ``pipeconsole.ui.safe.safe_text`` wraps the result in a
Textual ``Content`` (plain text, never markup).

What it does, and why:

* bytes are decoded as UTF-8 with ``backslashreplace`` (invalid bytes show as ``\\xff``);
* C0 controls and DEL become Unicode control pictures (ESC -> ``␛``, NUL -> ``␀``, DEL -> ``␡``;
  ``\\n`` is kept only with ``multiline=True``, ``\\t`` likewise): Rich and Textual strip only
  BEL/BS/VT/FF/CR and pass ESC sequences to the terminal raw (title changes, screen clears,
  OSC 52 clipboard writes, OSC 8 links);
* C1 controls (``\\x9b`` is an 8-bit CSI), bidi overrides and isolates (Trojan Source),
  zero-width and other format characters (Unicode category Cf), line/paragraph separators and
  lone surrogates become ``<U+202E>``;
* long runs of combining marks (Zalgo) are cut to ``MAX_MARKS`` with a ``<+N marks>`` note;
* the result is at most ``max_len`` characters; a cut ends in ``…`` and never splits an escape.

Markup has no meaning here: ``[bold]`` is just text. Keeping it that way is the caller's job
(use ``safe_text`` or ``Content``, never an f-string into a markup-parsing widget).
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["MAX_MARKS", "first_unsafe", "is_unsafe_char", "sanitize", "visible"]

MAX_MARKS: Final = 8
"""Combining marks kept in a row; more is Zalgo text that smears over neighbouring lines."""

_FORMAT_CHARS: Final = (
    "\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f"
    "\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb"
    "\U000110bd\U000110cd\U00013430-\U00013438\U0001bca0-\U0001bca3"
    "\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f"
)
"""Unicode categories Cf, Zl and Zp (Unicode 14, CPython 3.11): invisible characters that
reorder, hide or join text. A test checks this list against ``unicodedata``."""

_UNSAFE: Final = re.compile(f"[\x00-\x1f\x7f-\x9f\ud800-\udfff{_FORMAT_CHARS}]")
"""One character that must not reach a terminal as itself."""

_MARK_RUN: Final = re.compile(
    f"[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]{{{MAX_MARKS + 1},}}"
)
"""A run of combining diacritics (the blocks Zalgo generators draw from) longer than allowed."""

_INPUT_FACTOR: Final = 16
"""Input read per output character before giving up: bounds the work on a 1 MB string."""


def is_unsafe_char(ch: str) -> bool:
    """True when ``ch`` (one character) would be shown as an escape by ``sanitize``."""
    return _UNSAFE.fullmatch(ch) is not None


def first_unsafe(text: str) -> int:
    """Position of the first character ``sanitize`` would escape, or -1."""
    match = _UNSAFE.search(text)
    return match.start() if match is not None else -1


def visible(ch: str) -> str:
    """The visible stand-in for one unsafe character."""
    cp = ord(ch)
    if cp < 0x20:
        return chr(0x2400 + cp)  # control pictures: ␀ … ␟
    if cp == 0x7F:
        return "\u2421"  # ␡
    return f"<U+{cp:04X}>"


def sanitize(value: str | bytes, *, max_len: int = 512, multiline: bool = False) -> str:
    """``value`` as text that is safe to show: no controls, no invisible tricks, capped."""
    if isinstance(value, bytes | bytearray | memoryview):
        text = bytes(value[: max(max_len, 1) * _INPUT_FACTOR]).decode("utf-8", "backslashreplace")
    elif isinstance(value, str):
        text = value
    else:  # not in the signature, but a display path must never raise
        text = repr(value)
    limit = max(max_len, 1)
    clipped = len(text) > limit * _INPUT_FACTOR
    if clipped:
        text = text[: limit * _INPUT_FACTOR]
    if _MARK_RUN.search(text):
        text = _MARK_RUN.sub(_cap_marks, text)
    pieces: list[str] = []
    size = 0
    pos = 0
    truncated = clipped
    for match in _UNSAFE.finditer(text):
        ch = match.group()
        keep = multiline and ch in "\n\t"
        plain = text[pos : match.start()]
        token = ch if keep else visible(ch)
        if size + len(plain) + len(token) > limit:
            pieces.append(plain[: limit - size])
            size += len(pieces[-1])
            truncated = True
            break
        pieces.append(plain)
        pieces.append(token)
        size += len(plain) + len(token)
        pos = match.end()
    else:
        rest = text[pos:]
        if size + len(rest) > limit:
            rest = rest[: limit - size]
            truncated = True
        pieces.append(rest)
        size += len(rest)
    out = "".join(pieces)
    if truncated:
        # room for the ellipsis; drop a whole trailing escape rather than split it
        out = out[: limit - 1]
        tail = out.rfind("<U+")
        if tail != -1 and ">" not in out[tail:]:
            out = out[:tail]
        out += "…"
    return out


def _cap_marks(match: re.Match[str]) -> str:
    run = match.group()
    return f"{run[:MAX_MARKS]}<+{len(run) - MAX_MARKS} marks>"
