"""validate_request: each bad input yields a FieldError in its own field, with a reason."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from conftest import valid_request

from pipeconsole.wire.codec import decode
from pipeconsole.wire.gen.device_request_pb2 import CancelRequest, DeviceRequest
from pipeconsole.wire.timefmt import format_rfc3339
from pipeconsole.wire.validate import (
    FieldError,
    Limits,
    deadline_of,
    schedule_of,
    validate_cancel,
    validate_request,
)

NOW = datetime(2026, 11, 26, 11, 0, 0, tzinfo=UTC)


def errors_for(
    at_issue: bool = False, limits: Limits | None = None, **fields: object
) -> list[FieldError]:
    req = valid_request()
    for name, value in fields.items():
        if name == "headers":
            req.headers.clear()
            req.headers.update(value)  # type: ignore[arg-type]
        elif name == "qos_priority":
            req.qos.priority = value  # type: ignore[assignment]
        else:
            setattr(req, name, value)
    kwargs = {"limits": limits} if limits else {}
    return validate_request(req, now=NOW, at_issue=at_issue, **kwargs)  # type: ignore[arg-type]


def only(errors: list[FieldError], field: str) -> FieldError:
    assert [e.field for e in errors] == [field], errors
    return errors[0]


def test_the_valid_request_is_valid() -> None:
    assert validate_request(valid_request(), now=NOW, at_issue=True) == []


def test_seed_method_is_not_an_http_token() -> None:
    err = only(errors_for(method="Invoking the feeling of chaos"), "method")
    assert err.code == "grammar"
    assert "position 8" in err.message


def test_seed_uri_with_broken_percent_encoding() -> None:
    err = only(errors_for(uri="a/%%30%30"), "uri")
    assert err.code == "grammar"
    assert "'%' at position 2" in err.message


def test_seed_content_type_injection() -> None:
    err = only(
        errors_for(entity_content_type="#cmds={({'/bin/echo', #eps})"), "entity_content_type"
    )
    assert err.code == "grammar"
    assert "position 5" in err.message


@pytest.mark.parametrize("field", ["schedule_time", "deadline"])
@pytest.mark.parametrize("text", ["2014-12-10T05:44:06.635Z[🤪]", "2014-12-10T05:44:06.635Z[GMT]"])
def test_seed_zone_id_timestamps(field: str, text: str) -> None:
    err = only(errors_for(**{field: text}), field)
    assert err.code == "bad_time"
    assert "zone-id" in err.message


@pytest.mark.parametrize(
    ("method", "code"),
    [
        ("", "required"),
        ("get", "not_allowed"),
        ("BREW", "not_allowed"),
        ("GET\r\n", "grammar"),
        ("G" * 33, "too_long"),
        ("PO ST", "grammar"),
    ],
)
def test_method_rules(method: str, code: str) -> None:
    assert only(errors_for(method=method), "method").code == code


def test_method_allow_list_is_configurable() -> None:
    assert errors_for(method="BREW", limits=Limits(allowed_methods=frozenset({"BREW"}))) == []
    assert errors_for(method="M-SEARCH", limits=Limits(allowed_methods=None)) == []


@pytest.mark.parametrize(
    ("uri", "code", "words"),
    [
        ("", "required", "required"),
        ("http://a/%%30%30", "not_allowed", "absolute"),
        ("javascript:alert(1)", "not_allowed", "absolute"),
        ("//evil.example/x", "not_allowed", "another host"),
        ("/a/../../etc/passwd", "not_allowed", "'..'"),
        ("/a/%2e%2E/b", "not_allowed", "'..'"),
        ("/a/%252e%252e/b", "grammar", "double percent-encoding"),
        ("/a%00b", "grammar", "control"),
        ("/a?x=%0d%0aInjected", "grammar", "control"),
        ("/a%2fb", "grammar", "separator"),
        ("/a%5cb", "grammar", "separator"),
        ("/a\\b", "grammar", "position 2"),
        ("/a b", "grammar", "space at position 2"),
        ("/caf\u00e9", "grammar", "position 4"),
        ("/a#frag", "not_allowed", "fragment"),
        ("/a%4", "grammar", "two hex digits"),
        ("/a%zz", "grammar", "two hex digits"),
        ("/" + "a" * 3000, "too_long", "longer"),
    ],
)
def test_uri_rules(uri: str, code: str, words: str) -> None:
    err = only(errors_for(uri=uri), "uri")
    assert err.code == code
    assert words in err.message


@pytest.mark.parametrize(
    "uri", ["/health", "health", "/jobs/a%20b?x=1&y=%2F", "/a/./b", "/~user/@x:1"]
)
def test_good_relative_uris(uri: str) -> None:
    assert errors_for(uri=uri) == []


@pytest.mark.parametrize(
    ("headers", "field", "code"),
    [
        ({"X-Request-Id": "forged"}, "headers[X-Request-Id]", "not_allowed"),
        ({"x-deadline-remaining-ms": "999999"}, "headers[x-deadline-remaining-ms]", "not_allowed"),
        ({"Connection": "close"}, "headers[Connection]", "not_allowed"),
        ({"Transfer-Encoding": "chunked"}, "headers[Transfer-Encoding]", "not_allowed"),
        ({"Bad Name": "x"}, "headers[Bad Name]", "grammar"),
        ({"": "x"}, "headers[]", "required"),
        ({"X-A": "a\r\nInjected: 1"}, "headers[X-A]", "grammar"),
        ({"X-A": "a\x00"}, "headers[X-A]", "grammar"),
        ({"X-A": "caf\u00e9"}, "headers[X-A]", "grammar"),
        ({"X-A": "x" * 5000}, "headers[X-A]", "too_long"),
        ({f"X-{i}": "v" for i in range(40)}, "headers", "too_many"),
        ({f"X-{i}": "v" * 4000 for i in range(5)}, "headers", "too_long"),
    ],
)
def test_header_rules(headers: dict[str, str], field: str, code: str) -> None:
    err = only(errors_for(headers=headers), field)
    assert err.code == code


def test_header_name_in_the_field_is_sanitized() -> None:
    errors = errors_for(headers={"X\x1b[2J": "v"})
    assert errors and "\x1b" not in errors[0].field and "␛" in errors[0].field


@pytest.mark.parametrize(
    "value",
    [
        "text/plain",
        "application/json; charset=utf-8",
        'multipart/form-data; boundary="a b;c"',
        "application/vnd.api+json;v=1",
    ],
)
def test_good_media_types(value: str) -> None:
    assert errors_for(entity_content_type=value) == []


@pytest.mark.parametrize(
    "value",
    [
        "text",
        "text/",
        "text/plain; charset",
        'text/plain; a="open',
        "a/b c",
        "/x",
        "text/plain\r\nX: y",
        "${jndi:ldap://x}",
    ],
)
def test_bad_media_types(value: str) -> None:
    assert only(errors_for(entity_content_type=value), "entity_content_type").code == "grammar"


def test_content_type_required_with_an_entity_and_entity_capped() -> None:
    assert only(errors_for(entity_content_type=""), "entity_content_type").code == "required"
    assert errors_for(entity=b"", entity_content_type="") == []
    err = only(errors_for(entity=b"x" * 101, limits=Limits(max_entity_bytes=100)), "entity")
    assert err.code == "too_long"


def test_schedule_time_rules() -> None:
    assert errors_for(schedule_time="") == []
    assert errors_for(schedule_time=format_rfc3339(NOW + timedelta(hours=1))) == []
    assert errors_for(schedule_time="2014-12-10T05:44:06Z") == []  # past: a misfire, not invalid
    far = format_rfc3339(NOW + timedelta(days=400))
    assert only(errors_for(schedule_time=far), "schedule_time").code == "too_far"
    assert (
        only(errors_for(schedule_time="2014-02-30T00:00:00Z"), "schedule_time").code == "bad_time"
    )
    assert (
        only(errors_for(schedule_time="0000-01-01T00:00:00Z"), "schedule_time").code == "bad_time"
    )


def test_at_issue_a_schedule_time_more_than_a_minute_past_is_refused() -> None:
    # On the wire a late request is legal (the actor fires it or records MISFIRED); from an
    # operator it is a wrong day or a local time written as UTC, and it would fire at once.
    hours = format_rfc3339(NOW - timedelta(hours=3))
    err = only(errors_for(schedule_time=hours, at_issue=True), "schedule_time")
    assert err.code == "past" and "3.0 h ago" in err.message and "leave it empty" in err.message
    assert errors_for(schedule_time=hours, at_issue=False) == []
    years = only(errors_for(schedule_time="2014-12-10T05:44:06Z", at_issue=True), "schedule_time")
    assert "4369 days ago" in years.message
    late = format_rfc3339(NOW - timedelta(seconds=59))
    assert errors_for(schedule_time=late, at_issue=True) == []  # a minute of slack: still "now"


def test_deadline_rules() -> None:
    soon = format_rfc3339(NOW + timedelta(minutes=5))
    past = format_rfc3339(NOW - timedelta(seconds=1))
    assert errors_for(deadline=soon, at_issue=True) == []
    assert only(errors_for(deadline=past, at_issue=True), "deadline").code == "past"
    assert errors_for(deadline=past, at_issue=False) == []  # the actor answers DEADLINE_EXCEEDED
    far = format_rfc3339(NOW + timedelta(hours=25))
    assert only(errors_for(deadline=far), "deadline").code == "too_far"
    sched = format_rfc3339(NOW + timedelta(hours=2))
    before = format_rfc3339(NOW + timedelta(hours=1))
    err = only(errors_for(schedule_time=sched, deadline=before), "deadline")
    assert err.code == "before_schedule"
    after = format_rfc3339(NOW + timedelta(hours=2, minutes=1))
    assert errors_for(schedule_time=sched, deadline=after, at_issue=True) == []


_SOME_ID = "6f1c2a9e-51b4-4c2e-9d3a-0b7e5c1f2a48"
"""A fixed version-4 id: test ids must be the same in every collection (pytest-xdist workers)."""


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("", "required"),
        ("not-a-uuid", "grammar"),
        (_SOME_ID.upper(), "grammar"),
        ("{" + _SOME_ID + "}", "grammar"),
        (_SOME_ID.replace("-", ""), "grammar"),
        ("00000000-0000-0000-0000-000000000000", "not_allowed"),
    ],
)
def test_request_id_is_a_canonical_uuid(value: str, code: str) -> None:
    assert only(errors_for(request_id=value), "request_id").code == code


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("", "required"),
        ("a/b", "grammar"),
        ("../etc", "grammar"),
        ("dev 1", "grammar"),
        ("d" * 65, "too_long"),
        ("dév", "grammar"),
    ],
)
def test_device_id_charset_and_length(value: str, code: str) -> None:
    assert only(errors_for(device_id=value), "device_id").code == code


def test_device_id_edges_are_valid() -> None:
    assert errors_for(device_id="d" * 64) == []
    assert errors_for(device_id="A.b_c-9") == []


def test_replay_of_nonce_issued_by_sanity() -> None:
    req = valid_request()
    assert only(errors_for(replay_of=req.request_id), "replay_of").code == "not_allowed"
    assert only(errors_for(replay_of="x"), "replay_of").code == "grammar"
    assert errors_for(replay_of=str(uuid.uuid4())) == []
    assert only(errors_for(nonce="a b"), "nonce").code == "grammar"
    assert only(errors_for(nonce="n" * 129), "nonce").code == "too_long"
    assert only(errors_for(issued_by="op\u202eer"), "issued_by").code == "grammar"
    assert only(errors_for(issued_at="yesterday"), "issued_at").code == "bad_time"
    assert only(errors_for(token="t\x00"), "token").code == "grammar"


def test_undeclared_enum_numbers_are_refused() -> None:
    assert only(errors_for(misfire_strategy=7), "misfire_strategy").code == "bad_enum"
    assert only(errors_for(misfire_strategy=-1), "misfire_strategy").code == "bad_enum"
    assert only(errors_for(qos_priority=99), "qos.priority").code == "bad_enum"
    assert errors_for(misfire_strategy=1, qos_priority=3) == []


def test_undeclared_enum_survives_decode_and_is_caught_by_validation() -> None:
    req = valid_request()
    req.misfire_strategy = 99  # type: ignore[assignment]
    back = decode(DeviceRequest, req.SerializeToString())
    assert isinstance(back, DeviceRequest)
    assert only(validate_request(back, now=NOW), "misfire_strategy").code == "bad_enum"


def test_unknown_fields_left_on_a_message_are_an_error() -> None:
    req = valid_request()
    req.MergeFromString(bytes([0x50, 5]))  # schedule_time sent as a varint
    assert req.schedule_time == ""  # reads as "now" if nobody looks
    errors = validate_request(req, now=NOW)
    assert [e.code for e in errors] == ["unknown_fields"]


def test_schedule_and_deadline_accessors() -> None:
    assert schedule_of(valid_request()) is None
    assert deadline_of(valid_request()) is None
    req = valid_request()
    req.schedule_time = "2026-11-26T12:00:00+01:00"
    req.deadline = "2026-11-26T11:05:00Z"
    assert schedule_of(req) == NOW
    assert deadline_of(req) == NOW + timedelta(minutes=5)


def test_validate_cancel() -> None:
    good = CancelRequest(request_id=str(uuid.uuid4()), device_id="enc-1", reason="operator")
    assert validate_cancel(good) == []
    bad = CancelRequest(request_id="x", device_id="", issued_at="2014-02-30T00:00:00Z")
    assert {e.field for e in validate_cancel(bad)} == {"request_id", "device_id", "issued_at"}


def test_field_errors_print_as_field_colon_message() -> None:
    err = only(errors_for(method=""), "method")
    assert str(err) == f"method: {err.message}"
