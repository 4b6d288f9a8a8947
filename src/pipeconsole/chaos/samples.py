"""Value samples for protocol chaos: odd values by field type and by field-name hint, and
valid-but-malicious text.

- :func:`odd_by_type`     edge values a field's *type* allows (class 2 candidates)
- :func:`odd_by_hint`     values a field's *name* suggests a receiver will choke on (class 2)
- :func:`malicious_text`  naughty strings, terminal escapes, markup, bidi (class 3 candidates)
- :func:`naughty_strings` the curated Big List of Naughty Strings subset shipped as package data

Every function takes a :class:`random.Random` so that a seed reproduces a run. Field-name
hints follow the protocol-chaos paper's generator (``date``/``*_time`` → dates, ``id`` → ids,
``*_uri`` → URIs, ``content_type`` → media types), extended with the talk's examples.
"""

from __future__ import annotations

import functools
import json
import random
import string
import uuid
from importlib import resources
from typing import Any

from google.protobuf.descriptor import FieldDescriptor

__all__ = [
    "BIDI",
    "MARKUP",
    "TERMINAL_ESCAPES",
    "hint_of",
    "malicious_text",
    "naughty_strings",
    "odd_by_hint",
    "odd_by_type",
]

FD = FieldDescriptor

INT32_EDGES = (0, 1, -1, 64, -100, 2**31 - 1, -(2**31))
INT64_EDGES = (*INT32_EDGES, 2**63 - 1, -(2**63))
UINT32_EDGES = (0, 1, 2**31, 2**32 - 1)
UINT64_EDGES = (*UINT32_EDGES, 2**64 - 1)
FLOAT_EDGES = (float("nan"), float("inf"), float("-inf"), -0.0, 1e308, 5e-324, -1.0)

TERMINAL_ESCAPES = (
    "\x1b]0;PWNED\x1b\\",
    "\x1b[2J\x1b[H",
    "\x1b]8;;https://evil.example\x1b\\click\x1b]8;;\x1b\\",
    "\x9b31m",
    "\x1b[?1049l",
    "\x1bP>|x\x1b\\",
    "\x1b]52;c;Y2F0IC9ldGMvcGFzc3dk\x07",
    "\x07",
    "ok\rPWNED",
)
"""Title change, screen clear, OSC 8 link, C1 CSI, alternate screen, DCS, clipboard, bell, CR."""

MARKUP = (
    "[@click=app.quit]x[/]",
    "[@click=app.cancel_all]x[/]",
    "[link='https://evil.example']x[/]",
    "[/]",
    "foo[/bar]",
    "[type=x, v={'a[0]'}]",
    "<script>alert(1)</script>",
)
"""Rich/Textual markup that would run an action or break rendering if parsed, and HTML."""

BIDI = (
    "\u202etxt.exe",
    "abc\u200bdef",
    "\u2066test\u2069",
    "e" + "\u0301" * 10_000,
)
"""Right-to-left override, zero-width space, isolates, 10 000 combining marks."""

_DATE_HINTS = ("_time", "_at", "date", "dob", "deadline", "time")
_URI_HINTS = ("uri", "url")


def hint_of(field: FieldDescriptor) -> str | None:
    """The name hint of a string field: ``time``, ``id``, ``uri``, ``content_type``,
    ``method`` or None."""
    if field.type != FD.TYPE_STRING:
        return None
    name = field.name.lower()
    if name.endswith("content_type") or name == "media_type":
        return "content_type"
    if name == "method" or name.endswith("_method"):
        return "method"
    if any(name == h or name.endswith(h) for h in _URI_HINTS):
        return "uri"
    if any(name == h.lstrip("_") or name.endswith(h) for h in _DATE_HINTS):
        return "time"
    if name == "id" or name.endswith("_id") or name.endswith("id"):
        return "id"
    return None


@functools.cache
def naughty_strings() -> tuple[str, ...]:
    """The curated Big List of Naughty Strings subset (MIT) plus NUL, CR, LF and CRLF,
    which the list itself cannot hold."""
    raw = resources.files("pipeconsole.chaos").joinpath("naughty.json").read_text("utf-8")
    data: Any = json.loads(raw)
    return (*data["strings"], "\x00", "\r", "\n", "\r\n", "a\x00b")


def _alnum(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(n))


def odd_by_type(field: FieldDescriptor, rng: random.Random, *, huge: int) -> list[tuple[str, Any]]:
    """(kind, value) pairs that a field of this *type* can hold but rarely should.

    ``huge`` is the length of the longest string and bytes values.
    """
    t = field.type
    if t in (FD.TYPE_INT32, FD.TYPE_SINT32, FD.TYPE_SFIXED32):
        return [("int_edge", v) for v in INT32_EDGES]
    if t in (FD.TYPE_INT64, FD.TYPE_SINT64, FD.TYPE_SFIXED64):
        return [("int_edge", v) for v in INT64_EDGES]
    if t in (FD.TYPE_UINT32, FD.TYPE_FIXED32):
        return [("int_edge", v) for v in UINT32_EDGES]
    if t in (FD.TYPE_UINT64, FD.TYPE_FIXED64):
        return [("int_edge", v) for v in UINT64_EDGES]
    if t in (FD.TYPE_FLOAT, FD.TYPE_DOUBLE):
        return [("float_edge", v) for v in FLOAT_EDGES]
    if t == FD.TYPE_BOOL:
        return [("bool", True), ("bool", False)]
    if t == FD.TYPE_ENUM:
        enum_type = field.enum_type
        assert enum_type is not None
        declared = {v.number for v in enum_type.values}
        top = max(declared)
        return [("undeclared_enum", n) for n in (top + 1, 99, -1, 2**31 - 1) if n not in declared]
    if t == FD.TYPE_STRING:
        return [
            ("empty_string", ""),
            ("huge_string", _alnum(rng, 64) * (huge // 64)),
            ("nul_string", "a\x00b"),
            ("crlf_string", "a\r\nX-Injected: 1"),
        ]
    if t == FD.TYPE_BYTES:
        return [("empty_bytes", b""), ("huge_bytes", rng.randbytes(huge))]
    return []


def _distant_date(rng: random.Random) -> str:
    """The paper's "distant" date: plausible shape, often impossible values."""
    year = rng.randint(-9000, 9000)
    return (
        f"{year:04d}-{rng.randint(0, 12):02d}-{rng.randint(0, 31):02d}T"
        f"{rng.randint(0, 24):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}Z"
    )


def odd_by_hint(hint: str, rng: random.Random) -> list[tuple[str, str]]:
    """(kind, value) pairs for a string field whose name suggests ``hint``."""
    if hint == "time":
        return [
            ("impossible_date", "2014-02-30T00:00:00Z"),
            ("impossible_date", "0000-01-01T00:00:00Z"),
            ("impossible_date", "10000-01-01T00:00:00Z"),
            ("impossible_date", "2026-13-01T00:00:00Z"),
            ("impossible_date", "2026-01-01T24:00:00Z"),
            ("impossible_date", _distant_date(rng)),
            ("zone_id_suffix", "2014-12-10T05:44:06.635Z[🤪]"),
            ("zone_id_suffix", "2026-11-26T11:00:00+01:00[Europe/Paris]"),
            ("trailing_garbage", "2026-11-26T11:00:00Z\x00garbage"),
            ("spaces", " 2026-11-26T11:00:00Z "),
            ("garbage_time", _alnum(rng, 12)),
            ("garbage_time", "tomorrow"),
        ]
    if hint == "id":
        good = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        return [
            ("non_uuid", _alnum(rng, 8)),
            ("non_uuid", good[:-1] + "g"),
            ("non_uuid", "{" + good + "}"),
            ("non_uuid", good.replace("-", "")[:31]),
            ("non_uuid", "../../etc/passwd"),
            ("non_uuid", "x" * 10_000),
            ("non_uuid", "a\x1b[2Jb"),
        ]
    if hint == "uri":
        return [
            ("absolute_uri", "https://evil.example/streams/x/start"),
            ("absolute_uri", "//evil.example/x"),
            ("absolute_uri", "wss://evil.example/x"),
            ("traversal", "/streams/../../etc/passwd"),
            ("traversal", "/../restart"),
            ("double_percent", "a/%%30%30"),
            ("double_percent", "http://a/%%30%30"),
            ("crlf_uri", "/restart\r\nHost: evil"),
            ("garbage_uri", " "),
            ("garbage_uri", "/streams/\x00/start"),
        ]
    if hint == "content_type":
        return [
            ("injection", "#cmds={({'/bin/echo', #eps})"),
            ("injection", "%{(#_='multipart/form-data').(#cmd='id')}"),
            ("injection", "application/json\r\nX-Injected: 1"),
            ("bad_media_type", "json"),
            ("bad_media_type", "/"),
            ("bad_media_type", "text/plain; charset=\x00"),
        ]
    if hint == "method":
        return [
            ("non_token", "GET / HTTP/1.1"),
            ("non_token", "PO ST"),
            ("non_token", "POST\r\n"),
            ("non_token", "GÉT"),
            ("non_token", "(POST)"),
            ("non_token", "DELETE\x00"),
            ("non_token", "A" * 1000),
        ]
    return []


def malicious_text(rng: random.Random) -> list[tuple[str, str]]:
    """(kind, value) pairs of valid-but-malicious text, in a seeded order."""
    out = [("naughty", s) for s in naughty_strings()]
    out += [("terminal_escape", s) for s in TERMINAL_ESCAPES]
    out += [("markup", s) for s in MARKUP]
    out += [("bidi", s) for s in BIDI]
    rng.shuffle(out)
    return out
