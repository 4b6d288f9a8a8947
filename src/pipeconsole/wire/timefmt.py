"""Strict RFC 3339 timestamps: the only way a time string from the wire becomes a ``datetime``.

``datetime.fromisoformat`` is not a validator (CPython 3.11 accepts ``...Z\\x00garbage``, and
it takes ISO 8601 forms RFC 3339 does not), so the text is checked against the RFC 3339
grammar first, piece by piece, and every refusal says what was expected at which position::

    date-time = full-date "T" full-time        ; "T" and "Z" in either case
    full-date = 4DIGIT "-" 2DIGIT "-" 2DIGIT
    full-time = 2DIGIT ":" 2DIGIT ":" 2DIGIT [ "." 1*9DIGIT ] time-offset
    time-offset = "Z" / ("+" / "-") 2DIGIT ":" 2DIGIT

Refused on top of the grammar: year 0000, impossible dates (2014-02-30), hour 24, leap second
60 (``datetime`` cannot hold it), offsets beyond ±23:59, more than 9 fractional digits, and any
time that falls outside 0001..9999 once converted to UTC. Zone-id suffixes such as
``[Europe/Paris]`` (Java's ``ZonedDateTime.toString``) are not RFC 3339 and are refused.
Fractions below a microsecond are truncated. Results are aware datetimes in UTC.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Final

from pipeconsole.text import sanitize

__all__ = [
    "MAX_TIME_TEXT",
    "TimeFormatError",
    "format_rfc3339",
    "from_unix_ms",
    "parse_rfc3339",
    "to_unix_ms",
]

MAX_TIME_TEXT: Final = 40
"""Longest accepted text (the longest valid form, nanoseconds and an offset, is 35)."""

EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)

_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})", re.ASCII)
_TIME = re.compile(r"([0-9]{2}):([0-9]{2}):([0-9]{2})", re.ASCII)
_FRACTION = re.compile(r"\.([0-9]*)", re.ASCII)
_OFFSET = re.compile(r"[Zz]|([+-])([0-9]{2}):([0-9]{2})", re.ASCII)
_WHOLE = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(?:\.([0-9]{1,9}))?(?:[Zz]|([+-])([0-9]{2}):([0-9]{2}))",
    re.ASCII,
)
"""The whole grammar in one pattern: the fast path for well-formed text (most of it). Text it
does not match goes through the piece-by-piece parse, which says what is wrong where."""


class TimeFormatError(ValueError):
    """A time string that is not strict RFC 3339; the message says why and where."""


def _excerpt(text: str, pos: int) -> str:
    return repr(sanitize(text[pos : pos + 12], max_len=16))


def parse_rfc3339(text: str) -> datetime:
    """Parse strict RFC 3339 text into an aware UTC datetime, or raise ``TimeFormatError``."""
    if not isinstance(text, str):
        raise TimeFormatError(f"expected text, got {type(text).__name__}")
    whole = _WHOLE.fullmatch(text)
    if whole is not None:
        y, mo, d, h, mi, sec, frac, sign, oh, om = whole.groups()
        return _assemble(
            text,
            whole.end(6),
            (int(y), int(mo), int(d), int(h), int(mi), int(sec)),
            int(frac[:6].ljust(6, "0")) if frac else 0,
            sign,
            oh,
            om,
        )
    return _parse_pieces(text)


def _parse_pieces(text: str) -> datetime:
    """The piece-by-piece parse: every refusal says what was expected where."""
    if not text:
        raise TimeFormatError("empty time")
    zone = text.find("[")
    if zone != -1:
        raise TimeFormatError(
            f"zone-id suffix at position {zone}: {_excerpt(text, zone)} is not RFC 3339 "
            "(give the UTC offset only, e.g. Z or +01:00)"
        )
    if len(text) > MAX_TIME_TEXT:
        raise TimeFormatError(f"{len(text)} characters is too long for an RFC 3339 time")
    for pos, ch in enumerate(text):
        if not " " < ch < "\x7f":
            what = "a space" if ch == " " else f"character {sanitize(ch)!r}"
            raise TimeFormatError(f"{what} at position {pos} is not allowed in a time")
    date = _DATE.match(text)
    if date is None:
        raise TimeFormatError(f"expected a date YYYY-MM-DD at position 0, got {_excerpt(text, 0)}")
    pos = date.end()
    if pos >= len(text) or text[pos] not in "Tt":
        raise TimeFormatError(f"expected 'T' and a time of day at position {pos}")
    pos += 1
    clock = _TIME.match(text, pos)
    if clock is None:
        raise TimeFormatError(f"expected HH:MM:SS at position {pos}, got {_excerpt(text, pos)}")
    pos = clock.end()
    micros = 0
    fraction = _FRACTION.match(text, pos)
    if fraction is not None:
        digits = fraction.group(1)
        if not digits:
            raise TimeFormatError(f"expected digits after '.' at position {pos + 1}")
        if len(digits) > 9:
            raise TimeFormatError(f"{len(digits)} fractional digits; at most 9 are allowed")
        micros = int(digits[:6].ljust(6, "0"))
        pos = fraction.end()
    offset = _OFFSET.match(text, pos)
    if offset is None:
        raise TimeFormatError(
            f"expected a UTC offset (Z or ±HH:MM) at position {pos}, got {_excerpt(text, pos)}"
        )
    if offset.end() != len(text):
        rest = offset.end()
        raise TimeFormatError(
            f"unexpected text after the UTC offset at position {rest}: {_excerpt(text, rest)}"
        )
    fields = tuple(int(g) for g in (*date.groups(), *clock.groups()))
    return _assemble(text, clock.end(), fields, micros, *offset.groups())


def _assemble(
    text: str,
    clock_end: int,
    fields: tuple[int, ...],
    micros: int,
    sign: str | None,
    off_h: str | None,
    off_m: str | None,
) -> datetime:
    """The datetime of grammatical text: the range checks both paths share."""
    year, month, day, hour, minute, second = fields
    if year == 0:
        raise TimeFormatError("year 0000 does not exist (the first year is 0001)")
    if second == 60:
        raise TimeFormatError("leap second :60 is not supported")
    delta = None
    if sign:
        assert off_h is not None and off_m is not None
        hours, minutes = int(off_h), int(off_m)
        if hours > 23 or minutes > 59:
            raise TimeFormatError(
                f"UTC offset {sign}{off_h}:{off_m} is out of range (±23:59 at most)"
            )
        delta = timedelta(hours=hours, minutes=minutes)
    try:
        local = datetime(year, month, day, hour, minute, second, micros, tzinfo=UTC)
    except ValueError as exc:
        raise TimeFormatError(f"impossible date or time {text[:clock_end]!r}: {exc}") from None
    if delta is None:
        return local
    try:
        return local + delta if sign == "-" else local - delta
    except OverflowError:
        raise TimeFormatError("the time is outside years 0001..9999 in UTC") from None


def format_rfc3339(dt: datetime) -> str:
    """``dt`` (aware) as ``2026-11-26T11:00:00.123Z``: UTC, milliseconds, ``Z``."""
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError("format_rfc3339 needs an aware datetime")
    utc = dt.astimezone(UTC)
    return (
        f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}T{utc.hour:02d}:{utc.minute:02d}:"
        f"{utc.second:02d}.{utc.microsecond // 1000:03d}Z"
    )


def to_unix_ms(dt: datetime) -> int:
    """Milliseconds since the Unix epoch (floor), for an aware datetime."""
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError("to_unix_ms needs an aware datetime")
    return (dt - EPOCH) // timedelta(milliseconds=1)


def from_unix_ms(ms: int) -> datetime:
    """An aware UTC datetime from Unix milliseconds; ``TimeFormatError`` outside 0001..9999."""
    try:
        return EPOCH + timedelta(milliseconds=ms)
    except (OverflowError, ValueError):
        raise TimeFormatError(f"{ms} ms is outside years 0001..9999") from None
