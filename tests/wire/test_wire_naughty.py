"""Naughty strings in every string field, and arbitrary requests: FieldErrors, never exceptions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from conftest import load_blns, load_blns_bytes, valid_request
from google.protobuf.descriptor import FieldDescriptor
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeconsole.wire.codec import DecodeFailure, decode, encode
from pipeconsole.wire.gen.device_request_pb2 import DeviceRequest, QoS
from pipeconsole.wire.timefmt import format_rfc3339
from pipeconsole.wire.validate import FieldError, validate_request

NOW = datetime(2026, 11, 26, 11, 0, 0, tzinfo=UTC)

STRING_FIELDS = [
    f.name for f in DeviceRequest.DESCRIPTOR.fields if f.type == FieldDescriptor.TYPE_STRING
]
EXTRA = [
    "\x00",
    "\r",
    "\n",
    "\r\n",
    "\u202e",
    "\u200b",
    "a/%%30%30",
    "http://a/%%30%30",
    "#cmds={({'/bin/echo', #eps})",
    "e" + "\u0301" * 10_000,
    "x" * 100_000,
]
NAUGHTY = load_blns() + EXTRA


def test_every_string_field_is_covered() -> None:
    assert {
        "method",
        "uri",
        "entity_content_type",
        "schedule_time",
        "request_id",
        "device_id",
        "deadline",
        "nonce",
        "replay_of",
        "issued_by",
        "issued_at",
        "token",
    } <= set(STRING_FIELDS)
    assert len(NAUGHTY) > 500


@pytest.mark.parametrize("field", STRING_FIELDS)
def test_naughty_strings_in_each_string_field_validate_or_fail_in_that_field(field: str) -> None:
    for value in NAUGHTY:
        req = valid_request()
        setattr(req, field, value)
        errors = validate_request(req, now=NOW, at_issue=True)
        assert all(isinstance(e, FieldError) for e in errors)
        assert {e.field for e in errors} <= {field, "deadline"}, (value, errors)
        for e in errors:
            assert e.code != "internal"
            assert "\x1b" not in e.message and "\x00" not in e.message


@pytest.mark.parametrize("where", ["name", "value"])
def test_naughty_strings_as_header_names_and_values(where: str) -> None:
    for value in NAUGHTY:
        req = valid_request()
        req.headers.clear()
        if where == "name":
            req.headers[value] = "v"
        else:
            req.headers["X-Note"] = value
        errors = validate_request(req, now=NOW, at_issue=True)
        assert all(e.field.startswith("headers") and e.code != "internal" for e in errors)
        assert all("\x1b" not in e.field and "\r" not in e.field for e in errors)


def test_naughty_requests_survive_the_wire() -> None:
    for value in NAUGHTY[::7]:
        req = valid_request()
        req.uri = value
        req.headers["X-Note"] = value
        back = decode(DeviceRequest, encode(req, max_bytes=10_000_000), max_bytes=10_000_000)
        assert back == req  # byte-identical: nothing is decoded twice or normalized


def test_naughty_bytes_in_string_fields_on_the_wire_decode_or_fail_as_bad_utf8() -> None:
    seen_bad = 0
    for raw in load_blns_bytes():
        for number in (1, 2, 21):  # method, uri, device_id
            data = _varint((number << 3) | 2) + _varint(len(raw)) + raw
            result = decode(DeviceRequest, data)
            if isinstance(result, DecodeFailure):
                assert result.code == "bad_utf8", (raw, result)
                seen_bad += 1
            else:
                assert raw.decode("utf-8") in (result.method, result.uri, result.device_id)
    assert seen_bad > 0


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | 0x80 if n else b)
        if not n:
            return bytes(out)


def time_texts() -> st.SearchStrategy[str]:
    near = st.integers(-10_000, 10_000).map(lambda m: format_rfc3339(NOW + timedelta(minutes=m)))
    suffixed = st.builds(lambda t, s: t + s, near, st.sampled_from(["[GMT]", "[🤪]", "\x00x", " "]))
    return st.one_of(st.just(""), near, suffixed, st.text(max_size=40))


def any_text() -> st.SearchStrategy[str]:
    return st.one_of(st.text(max_size=80), st.sampled_from(NAUGHTY[:600]))


int32 = st.integers(-(2**31), 2**31 - 1)


@st.composite
def device_requests(draw: st.DrawFn) -> DeviceRequest:
    req = DeviceRequest(
        method=draw(st.one_of(st.sampled_from(["GET", "POST", "get", ""]), any_text())),
        uri=draw(st.one_of(st.from_regex(r"/[a-z0-9%./?=&-]{0,30}", fullmatch=True), any_text())),
        headers=draw(st.dictionaries(any_text(), any_text(), max_size=5)),
        entity_content_type=draw(st.one_of(st.just("text/plain"), any_text())),
        entity=draw(st.binary(max_size=64)),
        schedule_time=draw(time_texts()),
        misfire_strategy=draw(int32),
        request_id=draw(st.one_of(st.uuids().map(str), any_text())),
        device_id=draw(st.one_of(st.from_regex(r"[a-z0-9._-]{1,70}", fullmatch=True), any_text())),
        deadline=draw(time_texts()),
        nonce=draw(any_text()),
        replay_of=draw(st.one_of(st.just(""), st.uuids().map(str), any_text())),
        issued_by=draw(any_text()),
        issued_at=draw(time_texts()),
        token=draw(any_text()),
    )
    if draw(st.booleans()):
        req.qos.CopyFrom(
            QoS(
                priority=draw(int32),
                max_attempts=draw(st.integers(0, 2**32 - 1)),
                idempotent=draw(st.booleans()),
            )
        )
    return req


@settings(
    max_examples=120,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(device_requests(), st.booleans())
def test_arbitrary_requests_never_raise_and_survive_the_wire(
    req: DeviceRequest, at_issue: bool
) -> None:
    errors = validate_request(req, now=NOW, at_issue=at_issue)
    assert all(isinstance(e, FieldError) and e.code != "internal" for e in errors)
    back = decode(DeviceRequest, encode(req))
    assert not isinstance(back, DecodeFailure)
    assert validate_request(back, now=NOW, at_issue=at_issue) == errors  # same verdict both ends


@settings(max_examples=100, deadline=None, database=None)
@given(
    st.uuids(),
    st.from_regex(r"[A-Za-z0-9._-]{1,64}", fullmatch=True),
    st.sampled_from(["GET", "POST", "PUT", "DELETE"]),
    st.integers(0, 1),
    st.integers(0, 3),
    st.integers(1, 60 * 24 * 300),
)
def test_well_formed_requests_are_valid(
    rid: object, device: str, method: str, misfire: int, priority: int, minutes: int
) -> None:
    req = DeviceRequest(
        method=method,
        uri="/jobs",
        request_id=str(rid),
        device_id=device,
        misfire_strategy=misfire,  # type: ignore[arg-type]
        schedule_time=format_rfc3339(NOW + timedelta(minutes=minutes)),
    )
    req.qos.priority = priority  # type: ignore[assignment]
    assert validate_request(req, now=NOW, at_issue=True) == []
