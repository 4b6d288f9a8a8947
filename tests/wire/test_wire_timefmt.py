"""Strict RFC 3339: what the seed sent, what Java prints, and what fromisoformat lets through."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeconsole.wire.timefmt import (
    TimeFormatError,
    format_rfc3339,
    from_unix_ms,
    parse_rfc3339,
    to_unix_ms,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2014-12-10T05:44:06.635Z", datetime(2014, 12, 10, 5, 44, 6, 635000, tzinfo=UTC)),
        ("2014-12-10t05:44:06z", datetime(2014, 12, 10, 5, 44, 6, tzinfo=UTC)),
        ("2014-12-10T06:44:06+01:00", datetime(2014, 12, 10, 5, 44, 6, tzinfo=UTC)),
        (
            "2014-12-10T05:44:06.123456789-00:00",
            datetime(2014, 12, 10, 5, 44, 6, 123456, tzinfo=UTC),
        ),
        ("0001-01-01T00:00:00Z", datetime(1, 1, 1, tzinfo=UTC)),
        ("2024-02-29T23:59:59Z", datetime(2024, 2, 29, 23, 59, 59, tzinfo=UTC)),
    ],
)
def test_valid_times_parse_to_utc(text: str, expected: datetime) -> None:
    parsed = parse_rfc3339(text)
    assert parsed == expected
    assert parsed.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("2014-12-10T05:44:06.635Z[🤪]", "zone-id suffix at position 24"),
        ("2014-12-10T05:44:06.635Z[GMT]", "zone-id suffix at position 24"),
        ("2014-12-10T05:44:06.635+01:00[Europe/Paris]", "zone-id"),
        ("2014-12-10T05:44:06Z\x00garbage", "at position 20"),
        ("2014-02-30T00:00:00Z", "impossible date"),
        ("2023-02-29T00:00:00Z", "impossible date"),
        ("0000-01-01T00:00:00Z", "year 0000"),
        ("10000-01-01T00:00:00Z", "position 0"),
        ("2014-12-10T24:00:00Z", "impossible"),
        ("2014-12-10T05:60:00Z", "impossible"),
        ("2016-12-31T23:59:60Z", "leap second"),
        ("2014-12-10T05:44:06", "UTC offset"),
        ("2014-12-10T05:44:06+0100", "UTC offset"),
        ("2014-12-10T05:44:06+24:00", "out of range"),
        ("2014-12-10 05:44:06Z", "space at position 10"),
        (" 2014-12-10T05:44:06Z", "space at position 0"),
        ("2014-12-10T05:44:06Z ", "space at position 20"),
        ("2014-12-10T05:44:06.Z", "digits after"),
        ("2014-12-10T05:44:06.1234567890Z", "fractional digits"),
        ("2014-12-10", "'T'"),
        ("20141210T054406Z", "YYYY-MM-DD"),
        ("٢٠١٤-12-10T05:44:06Z", "position 0"),
        ("0001-01-01T00:00:00+01:00", "outside years"),
        ("9999-12-31T23:59:59-01:00", "outside years"),
        ("", "empty"),
        ("2014-12-10T05:44:06Z" + "0" * 100, "too long"),
    ],
)
def test_invalid_times_are_refused_with_a_reason(text: str, why: str) -> None:
    with pytest.raises(TimeFormatError) as err:
        parse_rfc3339(text)
    assert why in str(err.value)


def test_nul_garbage_that_fromisoformat_accepts_is_refused() -> None:
    text = "2014-12-10T05:44:06Z\x00garbage"
    with pytest.raises(TimeFormatError) as err:
        parse_rfc3339(text)
    assert "\x00" not in str(err.value)  # the reason shows it visibly, not raw


def test_format_is_utc_milliseconds_z() -> None:
    dt = datetime(2026, 11, 26, 12, 0, 0, 123999, tzinfo=timezone(timedelta(hours=1)))
    assert format_rfc3339(dt) == "2026-11-26T11:00:00.123Z"
    assert format_rfc3339(datetime(1, 1, 1, tzinfo=UTC)) == "0001-01-01T00:00:00.000Z"
    with pytest.raises(ValueError):
        format_rfc3339(datetime(2026, 1, 1))


def test_unix_ms_round_trip_and_range() -> None:
    dt = parse_rfc3339("2026-11-26T11:00:00.123Z")
    assert from_unix_ms(to_unix_ms(dt)) == dt
    assert to_unix_ms(parse_rfc3339("1970-01-01T00:00:01.5Z")) == 1500
    with pytest.raises(TimeFormatError):
        from_unix_ms(2**62)


@settings(max_examples=200, deadline=None, database=None)
@given(
    st.datetimes(
        min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
    )
)
def test_formatted_times_parse_back(dt: datetime) -> None:
    text = format_rfc3339(dt)
    assert parse_rfc3339(text) == dt.replace(microsecond=dt.microsecond // 1000 * 1000)


@settings(max_examples=300, deadline=None, database=None)
@given(st.text(max_size=60))
def test_arbitrary_text_parses_or_raises_time_format_error(text: str) -> None:
    try:
        parsed = parse_rfc3339(text)
    except TimeFormatError as exc:
        assert str(exc)
    else:
        assert parsed.tzinfo is UTC


def _outcome(parse: object, text: str) -> tuple[str, object]:
    try:
        return ("ok", parse(text))  # type: ignore[operator]
    except TimeFormatError as exc:
        return ("refused", str(exc))


_TIMEISH = st.from_regex(
    r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{0,11})?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2}|[+-][0-9]{2}|)[Zz\x00 ]?\Z"
)


@given(st.one_of(_TIMEISH, st.text(alphabet="0123456789-:.+TZtz ", max_size=40)))
@settings(max_examples=600)
def test_the_fast_path_agrees_with_the_piece_by_piece_parse(text: str) -> None:
    # Well-formed text takes one regex (the fast path); everything else is parsed piece by
    # piece. On any text, both must accept the same instant or refuse for the same reason.
    from pipeconsole.wire.timefmt import _parse_pieces

    assert _outcome(parse_rfc3339, text) == _outcome(_parse_pieces, text)
