"""Validation of decoded requests: ``validate_request(req) -> list[FieldError]``.

"Decoded" is not "valid". The same function runs on the operator side (``at_issue=True``,
before producing) and in the device actors (after ``decode``), so a request is judged the same
way at both ends. It never raises; each problem is a ``FieldError(field, code, message)``
whose message quotes the input only through ``pipeconsole.text.sanitize``.

The rules per field, and why (see docs/wire.md for the table):

* ``method``: an HTTP token (RFC 9110 §5.6.2), in ``Limits.allowed_methods``;
* ``uri``: a relative reference only (the device address comes from the registry, never from the
  request): no scheme, no authority, no fragment, ASCII, RFC 3986 characters, every ``%``
  followed by two hex digits, nothing that decodes to a control character, an encoded ``/`` or
  ``\\``, another ``%XX`` (double encoding: ``a/%%30%30`` is the 2015 Chrome crash) or a
  ``..`` segment;
* ``headers``: token names, visible-ASCII values without CR/LF/NUL, count and size caps, and
  none of the headers the actor sets itself (hop-by-hop, ``Host``, ``Content-Length``,
  ``Content-Type``, ``X-Request-Id``, ``X-Deadline-Remaining-Ms``);
* ``entity_content_type``: an RFC 9110 media type, required when the entity is not empty;
* ``entity``: size cap;
* ``schedule_time``: empty = now, else strict RFC 3339, not too far ahead, and (at issue) not
  more than a minute in the past;
* ``deadline``: same grammar, after the schedule time, not too far after it, and (at issue)
  not in the past;
* ``request_id`` / ``replay_of``: canonical lowercase UUIDs; ``device_id``: ``[A-Za-z0-9._-]``,
  1..64; ``nonce`` / ``token`` / ``issued_by`` / ``issued_at``: sanity caps;
* ``misfire_strategy`` and ``qos.priority``: declared enum numbers (proto3 enums are open, so an
  undeclared number decodes fine and must be refused here);
* unknown fields left on the message (decoded with ``allow_unknown=True``) are an error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final, Protocol
from urllib.parse import unquote_to_bytes

from google.protobuf.message import Message
from google.protobuf.unknown_fields import UnknownFieldSet

from pipeconsole.text import first_unsafe, is_unsafe_char, sanitize
from pipeconsole.wire.gen.device_request_pb2 import CancelRequest, DeviceRequest, QoS
from pipeconsole.wire.timefmt import TimeFormatError, parse_rfc3339

__all__ = [
    "DEFAULT_LIMITS",
    "RESERVED_HEADERS",
    "FieldError",
    "Limits",
    "deadline_of",
    "schedule_of",
    "validate_cancel",
    "validate_request",
]

RESERVED_HEADERS: Final = frozenset(
    {
        # hop-by-hop (RFC 9110 §7.6.1) and framing: the actor's HTTP client owns them
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
        # set from the request's own fields
        "content-type",
        "x-request-id",
        "x-deadline-remaining-ms",
    }
)
"""Header names (lower case) a request may not set: the actor sets them."""


@dataclass(frozen=True, slots=True)
class FieldError:
    """One problem with one field of a request."""

    field: str
    """``method``, ``uri``, ``headers[X-Foo]`` (name sanitized), ``qos.priority``, ..."""
    code: str
    """``required``, ``grammar``, ``too_long``, ``too_many``, ``not_allowed``, ``bad_time``,
    ``past``, ``too_far``, ``before_schedule``, ``bad_enum``, ``unknown_fields``."""
    message: str
    """One human line; input is quoted only after ``sanitize``."""

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


@dataclass(frozen=True, slots=True)
class Limits:
    """What a valid request may look like. One instance is shared by console and actors."""

    allowed_methods: frozenset[str] | None = frozenset(
        {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
    )
    """Methods a request may use; ``None`` allows any HTTP token."""
    max_method_len: int = 32
    max_uri_len: int = 2048
    max_headers: int = 32
    """Header count."""
    max_header_name_len: int = 128
    max_header_value_len: int = 4096
    max_headers_bytes: int = 16_384
    """Names plus values, all headers together."""
    reserved_headers: frozenset[str] = RESERVED_HEADERS
    max_content_type_len: int = 256
    max_entity_bytes: int = 1_048_576
    max_schedule_ahead: timedelta = timedelta(days=366)
    """A schedule time later than now plus this is refused (a typo, not a plan)."""
    max_schedule_behind: timedelta = timedelta(seconds=60)
    """At issue, a schedule time earlier than now minus this is refused: it would fire at once
    (best-effort) or be MISFIRED (forget), and it is a mistake (a wrong day, a local time
    written as UTC) far more often than a plan. On the wire a late request is legal."""
    max_deadline_ahead: timedelta = timedelta(hours=24)
    """A deadline later than the schedule time (or now) plus this is refused."""
    max_device_id_len: int = 64
    max_nonce_len: int = 128
    max_issued_by_len: int = 256
    max_token_len: int = 1024
    max_reason_len: int = 1024


DEFAULT_LIMITS: Final = Limits()

_TCHAR: Final = frozenset(
    "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
)
"""RFC 9110 §5.6.2 tchar."""

_UUID: Final = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.ASCII)
_UUID_ANY_CASE: Final = re.compile(r"[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}", re.ASCII)
_DEVICE_ID: Final = re.compile(r"[A-Za-z0-9._-]+", re.ASCII)
_NONCE: Final = re.compile(r"[A-Za-z0-9._~+/=-]+", re.ASCII)
_SCHEME: Final = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:", re.ASCII)
_HEX: Final = frozenset("0123456789abcdefABCDEF")
_PCHAR: Final = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"  # unreserved
    "!$&'()*+,;="  # sub-delims
    ":@/%"  # pchar extras, the path separator and pct-encoded's '%'
)
"""Characters allowed in the path; the query also allows ``?``."""
_QCHAR: Final = _PCHAR | {"?"}
_URI_FAST: Final = re.compile(
    r"[A-Za-z0-9\-._~!$&'()*+,;=:@/%]*(?:\?[A-Za-z0-9\-._~!$&'()*+,;=:@/%?]*)?"
)
"""The allowed characters at a glance; the per-character loop runs only to explain a failure."""
_MISFIRE_VALUES: Final = frozenset(DeviceRequest.MisfireStrategy.values())
_PRIORITY_VALUES: Final = frozenset(QoS.Priority.values())


def _show(value: str | bytes, limit: int = 40) -> str:
    """Input quoted for a message: sanitized, short, in quotes."""
    return repr(sanitize(value, max_len=limit))


class _Errors:
    """Collects the errors of one validation."""

    __slots__ = ("items",)

    def __init__(self) -> None:
        self.items: list[FieldError] = []

    def add(self, name: str, code: str, message: str) -> None:
        self.items.append(FieldError(name, code, message))


def validate_request(
    req: DeviceRequest,
    *,
    now: datetime | None = None,
    limits: Limits = DEFAULT_LIMITS,
    at_issue: bool = False,
) -> list[FieldError]:
    """All problems of ``req``; an empty list means valid. Never raises."""
    try:
        return _validate_request(req, now or datetime.now(UTC), limits, at_issue)
    except Exception as exc:  # a bug here must not take a reader loop down
        return [FieldError("(request)", "internal", f"validator error: {type(exc).__name__}")]


def _validate_request(
    req: DeviceRequest, now: datetime, limits: Limits, at_issue: bool
) -> list[FieldError]:
    errors = _Errors()
    _check_unknown(req, errors)
    _check_method(req.method, limits, errors)
    _check_uri(req.uri, limits, errors)
    _check_headers(dict(req.headers), limits, errors)
    _check_content_type(req.entity_content_type, len(req.entity), limits, errors)
    if len(req.entity) > limits.max_entity_bytes:
        errors.add(
            "entity",
            "too_long",
            f"entity is {len(req.entity)} bytes, the limit is {limits.max_entity_bytes}",
        )
    schedule = _check_time("schedule_time", req.schedule_time, errors)
    if schedule is not None and schedule > now + limits.max_schedule_ahead:
        errors.add(
            "schedule_time",
            "too_far",
            f"schedule time is more than {_days(limits.max_schedule_ahead)} ahead",
        )
    elif at_issue and schedule is not None and schedule < now - limits.max_schedule_behind:
        errors.add(
            "schedule_time",
            "past",
            f"schedule time is {_ago(now - schedule)} ago: it would fire at once (best-effort) "
            "or be MISFIRED (forget); leave it empty to send now",
        )
    deadline = _check_time("deadline", req.deadline, errors)
    if deadline is not None:
        start = schedule or now
        if schedule is not None and deadline <= schedule:
            errors.add("deadline", "before_schedule", "deadline is not after the schedule time")
        elif at_issue and deadline <= now:
            errors.add("deadline", "past", "deadline has already passed")
        elif deadline > start + limits.max_deadline_ahead:
            errors.add(
                "deadline",
                "too_far",
                f"deadline is more than {_days(limits.max_deadline_ahead)} after "
                + ("the schedule time" if schedule is not None else "now"),
            )
    _check_uuid("request_id", req.request_id, errors, required=True)
    _check_uuid("replay_of", req.replay_of, errors, required=False)
    if req.replay_of and req.replay_of == req.request_id:
        errors.add("replay_of", "not_allowed", "a replay needs a new request_id")
    _check_device_id(req.device_id, limits, errors)
    _check_charset("nonce", req.nonce, _NONCE, limits.max_nonce_len, errors)
    _check_charset("token", req.token, _NONCE, limits.max_token_len, errors)
    _check_printable("issued_by", req.issued_by, limits.max_issued_by_len, errors)
    if req.issued_at:
        _check_time("issued_at", req.issued_at, errors)
    _check_enum("misfire_strategy", req.misfire_strategy, _MISFIRE_VALUES, errors)
    if req.HasField("qos"):
        _check_enum("qos.priority", req.qos.priority, _PRIORITY_VALUES, errors)
    return errors.items


def validate_cancel(req: CancelRequest) -> list[FieldError]:
    """All problems of a ``CancelRequest``; never raises."""
    try:
        errors = _Errors()
        _check_unknown(req, errors)
        _check_uuid("request_id", req.request_id, errors, required=True)
        _check_device_id(req.device_id, DEFAULT_LIMITS, errors)
        _check_printable("issued_by", req.issued_by, DEFAULT_LIMITS.max_issued_by_len, errors)
        if req.issued_at:
            _check_time("issued_at", req.issued_at, errors)
        _check_charset("nonce", req.nonce, _NONCE, DEFAULT_LIMITS.max_nonce_len, errors)
        _check_charset("token", req.token, _NONCE, DEFAULT_LIMITS.max_token_len, errors)
        if len(req.reason) > DEFAULT_LIMITS.max_reason_len:
            errors.add("reason", "too_long", f"longer than {DEFAULT_LIMITS.max_reason_len}")
        return errors.items
    except Exception as exc:
        return [FieldError("(request)", "internal", f"validator error: {type(exc).__name__}")]


class _HasTimes(Protocol):
    @property
    def schedule_time(self) -> str: ...
    @property
    def deadline(self) -> str: ...


def schedule_of(req: _HasTimes) -> datetime | None:
    """The parsed schedule time, ``None`` = now. Only for a valid request (else it raises)."""
    return parse_rfc3339(req.schedule_time) if req.schedule_time else None


def deadline_of(req: _HasTimes) -> datetime | None:
    """The parsed deadline, ``None`` = the QoS class default. Only for a valid request."""
    return parse_rfc3339(req.deadline) if req.deadline else None


# --- the rules ------------------------------------------------------------------------------


def _ago(span: timedelta) -> str:
    s = span.total_seconds()
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.0f} min"
    if s < 172_800:
        return f"{s / 3600:.1f} h"
    return f"{s / 86400:.0f} days"


def _days(span: timedelta) -> str:
    hours = span.total_seconds() / 3600
    return f"{span.days} days" if hours >= 48 else f"{hours:g} hours"


def _check_unknown(msg: Message, errors: _Errors) -> None:
    if len(UnknownFieldSet(msg)) or (
        isinstance(msg, DeviceRequest) and msg.HasField("qos") and len(UnknownFieldSet(msg.qos))
    ):
        errors.add("(request)", "unknown_fields", "the request carries unknown or mistyped fields")


def _first_non_token(text: str) -> int:
    for pos, ch in enumerate(text):
        if ch not in _TCHAR:
            return pos
    return -1


def _describe(ch: str) -> str:
    if ch == " ":
        return "a space"
    return f"character {sanitize(ch)!r}" if not is_unsafe_char(ch) else f"control {sanitize(ch)}"


def _check_method(method: str, limits: Limits, errors: _Errors) -> None:
    if not method:
        errors.add("method", "required", "method is required (e.g. GET or POST)")
        return
    if len(method) > limits.max_method_len:
        errors.add("method", "too_long", f"longer than {limits.max_method_len} characters")
        return
    bad = _first_non_token(method)
    if bad != -1:
        errors.add(
            "method",
            "grammar",
            f"{_describe(method[bad])} at position {bad} is not allowed in an HTTP method "
            f"(a token: letters, digits and !#$%&'*+-.^_`|~) in {_show(method)}",
        )
        return
    allowed = limits.allowed_methods
    if allowed is not None and method not in allowed:
        errors.add(
            "method",
            "not_allowed",
            f"method {_show(method)} is not allowed (allowed: {', '.join(sorted(allowed))})"
            + ("; methods are case-sensitive" if method.upper() in allowed else ""),
        )


def _check_uri(uri: str, limits: Limits, errors: _Errors) -> None:
    def bad(code: str, message: str) -> None:
        errors.add("uri", code, message)

    if not uri:
        bad("required", "uri is required (a path relative to the device, e.g. /jobs)")
        return
    if len(uri) > limits.max_uri_len:
        bad("too_long", f"longer than {limits.max_uri_len} characters")
        return
    if _SCHEME.match(uri):
        bad("not_allowed", f"absolute URI {_show(uri)}: only a path relative to the device")
        return
    if uri.startswith("//"):
        bad("not_allowed", "a network-path reference (//host) names another host")
        return
    path, _, query = uri.partition("?")
    plain = _URI_FAST.fullmatch(uri) is not None
    for pos, ch in enumerate(uri if not plain else ""):
        if ch == "#":
            bad("not_allowed", f"fragment at position {pos}: fragments are never sent")
            return
        if ch not in (_PCHAR if pos < len(path) else _QCHAR):
            bad(
                "grammar",
                f"{_describe(ch)} at position {pos} is not allowed in a URI (percent-encode it)",
            )
            return
    # Allowed characters only and nothing percent-encoded (most URIs): nothing can decode to a
    # control character, a separator or another escape, so only '..' segments are looked for.
    decode = not plain or "%" in uri
    for pos, ch in enumerate(uri if "%" in uri else ""):
        pair = uri[pos + 1 : pos + 3]
        if ch == "%" and (len(pair) < 2 or pair[0] not in _HEX or pair[1] not in _HEX):
            bad(
                "grammar",
                f"'%' at position {pos} is not followed by two hex digits "
                f"(got {_show(uri[pos : pos + 3])}) in {_show(uri)}",
            )
            return
    for number, segment in enumerate(path.split("/") if decode or ".." in path else ()):
        raw = unquote_to_bytes(segment) if decode else segment.encode()
        if decode and b"%" in raw and re.search(rb"%[0-9A-Fa-f]{2}", raw):
            bad(
                "grammar",
                f"double percent-encoding in segment {_show(segment)} (it decodes to another %XX)",
            )
            return
        if decode and any(b < 0x20 or b == 0x7F for b in raw):
            bad("grammar", f"segment {_show(segment)} decodes to a control character")
            return
        if (b"/" in raw or b"\\" in raw) and "%" in segment:
            bad("grammar", f"segment {_show(segment)} encodes a path separator")
            return
        if raw == b"..":
            bad("not_allowed", f"'..' segment {number} could escape the device's root")
            return
    if query and decode:
        raw_query = unquote_to_bytes(query)
        if any(b < 0x20 or b == 0x7F for b in raw_query):
            bad("grammar", "the query decodes to a control character")


def _check_headers(headers: dict[str, str], limits: Limits, errors: _Errors) -> None:
    if len(headers) > limits.max_headers:
        errors.add(
            "headers", "too_many", f"{len(headers)} headers, the limit is {limits.max_headers}"
        )
        return
    total = 0
    for name in sorted(headers):
        value = headers[name]
        total += len(name) + len(value)
        label = f"headers[{sanitize(name, max_len=40)}]"
        if not name:
            errors.add(label, "required", "empty header name")
            continue
        if len(name) > limits.max_header_name_len:
            errors.add(label, "too_long", f"name longer than {limits.max_header_name_len}")
            continue
        bad = _first_non_token(name)
        if bad != -1:
            errors.add(
                label,
                "grammar",
                f"{_describe(name[bad])} at position {bad} is not "
                "allowed in a header name (a token)",
            )
            continue
        if name.lower() in limits.reserved_headers:
            errors.add(label, "not_allowed", "the device actor sets this header itself")
            continue
        if len(value) > limits.max_header_value_len:
            errors.add(label, "too_long", f"value longer than {limits.max_header_value_len}")
            continue
        for pos, ch in enumerate(value):
            if ch in "\r\n\x00":
                errors.add(
                    label,
                    "grammar",
                    f"CR, LF or NUL at position {pos} of the value (header injection)",
                )
                break
            if not (" " <= ch < "\x7f" or ch == "\t"):
                what = "control" if is_unsafe_char(ch) else "non-ASCII"
                errors.add(
                    label,
                    "grammar",
                    f"{what} character {sanitize(ch)!r} at position "
                    f"{pos} of the value (visible ASCII only)",
                )
                break
    if total > limits.max_headers_bytes:
        errors.add(
            "headers",
            "too_long",
            f"{total} bytes of headers, the limit is {limits.max_headers_bytes}",
        )


_MEDIA_TYPE: Final = re.compile(
    r"(?P<type>[!#$%&'*+.^_`|~0-9A-Za-z-]+)/(?P<subtype>[!#$%&'*+.^_`|~0-9A-Za-z-]+)"
    r"(?P<params>(?:[ \t]*;[ \t]*(?:[!#$%&'*+.^_`|~0-9A-Za-z-]+="
    r"(?:[!#$%&'*+.^_`|~0-9A-Za-z-]+|\"(?:[\t !#-\[\]-~]|\\[\t !-~])*\"))?)*)",
    re.ASCII,
)
"""RFC 9110 §8.3.1: type "/" subtype *( OWS ";" OWS [ token "=" ( token / quoted-string ) ] ),
without obs-text (a content type is ASCII here)."""


def _check_content_type(value: str, entity_len: int, limits: Limits, errors: _Errors) -> None:
    name = "entity_content_type"
    if not value:
        if entity_len:
            errors.add(name, "required", "a content type is required when the entity is not empty")
        return
    if len(value) > limits.max_content_type_len:
        errors.add(name, "too_long", f"longer than {limits.max_content_type_len} characters")
        return
    match = _MEDIA_TYPE.match(value)
    if match is not None and match.end() == len(value):
        return
    slash = _first_non_token(value)
    if slash <= 0 or value[slash] != "/":
        pos = slash if slash != -1 else len(value)
        got = _describe(value[pos]) if slash != -1 else "the end"
        where = f"expected a type token and '/' but found {got} at position {pos}"
    else:
        pos = match.end() if match is not None else slash + 1
        got = _describe(value[pos]) if pos < len(value) else "the end of the text"
        where = f"{got} at position {pos} is not allowed here"
    errors.add(
        name,
        "grammar",
        f"not a media type (type/subtype *(; name=value)): {where} in {_show(value)}",
    )


def _check_time(name: str, text: str, errors: _Errors) -> datetime | None:
    if not text:
        return None
    try:
        return parse_rfc3339(text)
    except TimeFormatError as exc:
        errors.add(name, "bad_time", f"not an RFC 3339 time: {exc}")
        return None


def _check_uuid(name: str, value: str, errors: _Errors, *, required: bool) -> None:
    if not value:
        if required:
            errors.add(name, "required", f"{name} is required (a UUID)")
        return
    if _UUID.fullmatch(value):
        if value == "00000000-0000-0000-0000-000000000000":
            errors.add(name, "not_allowed", "the nil UUID is not an id")
        return
    if _UUID_ANY_CASE.fullmatch(value):
        errors.add(name, "grammar", f"UUID {_show(value)} must be lower case")
        return
    errors.add(
        name,
        "grammar",
        f"{_show(value)} is not a UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx, lower-case hex)",
    )


def _check_device_id(value: str, limits: Limits, errors: _Errors) -> None:
    if not value:
        errors.add("device_id", "required", "device_id is required")
        return
    if len(value) > limits.max_device_id_len:
        errors.add("device_id", "too_long", f"longer than {limits.max_device_id_len} characters")
        return
    if not _DEVICE_ID.fullmatch(value):
        bad = next(i for i, ch in enumerate(value) if not _DEVICE_ID.fullmatch(ch))
        errors.add(
            "device_id",
            "grammar",
            f"{_describe(value[bad])} at position {bad}: "
            "device ids use letters, digits, '.', '_' and '-'",
        )


def _check_charset(
    name: str, value: str, pattern: re.Pattern[str], limit: int, errors: _Errors
) -> None:
    if not value:
        return
    if len(value) > limit:
        errors.add(name, "too_long", f"longer than {limit} characters")
    elif not pattern.fullmatch(value):
        errors.add(name, "grammar", f"{name} uses letters, digits and ._~+/=- only")


def _check_printable(name: str, value: str, limit: int, errors: _Errors) -> None:
    if len(value) > limit:
        errors.add(name, "too_long", f"longer than {limit} characters")
        return
    pos = first_unsafe(value)
    if pos != -1:
        errors.add(
            name,
            "grammar",
            f"control or invisible character {sanitize(value[pos])} at position {pos}",
        )


def _check_enum(name: str, number: int, declared: frozenset[int], errors: _Errors) -> None:
    if number not in declared:
        errors.add(
            name,
            "bad_enum",
            f"{number} is not a declared value "
            f"(declared: {', '.join(str(v) for v in sorted(declared))})",
        )
