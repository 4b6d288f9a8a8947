"""The safe codec: bytes from the network -> a protobuf message or a typed ``DecodeFailure``.

The map:

* ``decode()`` never raises. It refuses empty and oversized payloads, then lets the protobuf
  backend parse. When that fails, it walks the wire format under the message's schema
  (:mod:`pipeconsole.wire.scan`: nesting depth, framing, wire types, UTF-8, unknown fields)
  to say why: the walk makes every failure class the same on both backends (upb and pure
  Python word and raise their errors differently) and gives the failure a field name. When it
  succeeds, it checks the parsed message for nesting and unknown fields (``UnknownFieldSet``,
  recursively), unless the message is *plain* (no unknown field at all, a schema of bounded
  depth: ``_plain``).
* ``encode()`` serializes and then decodes its own output with the same limits, so the
  producer refuses what a consumer could not read (a 150-deep message serializes fine and
  cannot be parsed: a self-made poison pill).

Why a known field sent with the wrong wire type is an error and not "unset": protobuf keeps it
as an unknown field and leaves the field at its default, so a ``schedule_time`` that arrived
that way would read as "" = "now". ``wrong_type`` is reported even with ``allow_unknown=True``
because no compatible schema change produces it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, TypeVar, cast

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.internal import api_implementation
from google.protobuf.message import Message
from google.protobuf.unknown_fields import UnknownFieldSet

from pipeconsole.wire.scan import scan

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_DEPTH",
    "UPB",
    "DecodeFailure",
    "EncodeError",
    "decode",
    "encode",
]

M = TypeVar("M", bound=Message)

UPB: Final = api_implementation.Type() == "upb"
"""protobuf runs on upb (its C backend): parsing is bounded and fast there, so the console parses
its high-volume state topic with upb directly, and :func:`decode` takes its plain-payload path."""

DEFAULT_MAX_BYTES: Final = 1_048_576
"""1 MiB: larger payloads are refused before parsing (protobuf itself has no size cap)."""

DEFAULT_MAX_DEPTH: Final = 32
"""Nesting levels of messages and groups allowed; both backends stop at 100, we stop earlier."""

MAX_UNKNOWN_FIELDS: Final = 1000
"""More unknown fields than this in one (sub)message is refused even with ``allow_unknown``."""

FAILURE_CODES: Final = frozenset(
    {"empty", "too_large", "too_deep", "malformed", "bad_utf8", "unknown_fields", "wrong_type"}
)


@dataclass(frozen=True, slots=True)
class DecodeFailure:
    """Why a payload is not a usable message. A value, never raised."""

    code: str
    """One of ``FAILURE_CODES``: empty, too_large, too_deep, malformed, bad_utf8,
    unknown_fields, wrong_type."""
    reason: str
    """One human line: what was wrong, and which field when known. Contains no raw input."""

    def __str__(self) -> str:
        return f"{self.code}: {self.reason}"


class EncodeError(ValueError):
    """The message could not be produced, because a receiver could not read it back."""

    def __init__(self, reason: str, code: str = "malformed") -> None:
        super().__init__(reason)
        self.reason = reason
        """One human line."""
        self.code = code
        """A ``DecodeFailure`` code, or ``"unserializable"`` when serialization itself failed."""


def decode(
    msg_type: type[M],
    data: bytes | None,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    allow_unknown: bool = False,
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> M | DecodeFailure:
    """Parse ``data`` as ``msg_type`` within the limits; every failure is a ``DecodeFailure``."""
    try:
        return _decode(msg_type, data, max_bytes, allow_unknown, max_depth)
    except Exception as exc:  # a bug in this module must still not crash a reader loop
        return DecodeFailure("malformed", f"decoder error: {type(exc).__name__}")


def _decode(
    msg_type: type[M], data: object, max_bytes: int, allow_unknown: bool, max_depth: int
) -> M | DecodeFailure:
    if data is None:
        return DecodeFailure("empty", "no payload (a tombstone or a missing value)")
    if isinstance(data, bytearray | memoryview):
        data = bytes(data)
    if not isinstance(data, bytes):
        return DecodeFailure("malformed", f"expected bytes, got {type(data).__name__}")
    if not data:
        return DecodeFailure("empty", "empty payload")
    if len(data) > max_bytes:
        return DecodeFailure(
            "too_large", f"payload is {len(data)} bytes, the limit is {max_bytes} bytes"
        )
    msg = msg_type()
    try:
        msg.ParseFromString(data)
    except Exception as exc:
        # The backends word (and type) their errors differently and upb calls deep groups
        # "corrupt": the schema walk names the class and the field the same way on both.
        desc = cast(Descriptor, msg_type.DESCRIPTOR)
        issue = scan(data, desc, max_depth=max_depth, allow_unknown=allow_unknown)
        if issue is not None:
            return DecodeFailure(issue.code, issue.reason)
        return _classify(exc, msg_type.DESCRIPTOR.name)
    if _plain(msg, max_depth):
        return msg
    msg = msg_type()  # _plain dropped its unknown fields: parse again for the full check
    msg.ParseFromString(data)
    return _inspect(msg, max_depth, allow_unknown)


def _plain(msg: Message, max_depth: int) -> bool:
    """True when ``msg`` needs no :func:`_inspect`: its schema cannot nest deeper than
    ``max_depth``, and it arrived without a single unknown field (at any level), so nothing
    was sent with a wrong wire type either.

    The second test without a walk: protobuf keeps unknown fields and serializes them back
    as they came, each at least two bytes, so the message's size with and without them is
    the same only when it has none. (Comparing with the payload's length would not do: the
    known fields may arrive longer or shorter than protobuf writes them, a five-byte negative
    enum or an unpacked single-element list, and that difference could hide an unknown field.)
    ``msg`` loses its unknown fields either way: when this says False the caller parses again.
    ~2.5 us where the walk takes 9 (a registry event); every payload that is not plain is
    still walked. upb only: the pure-Python backend keeps unknown fields its own way (groups
    among them), so there every payload is walked."""
    if not UPB:
        return False
    depth = _schema_depth(cast(Descriptor, msg.DESCRIPTOR))
    if depth is None or depth > max_depth:
        return False
    size = msg.ByteSize()
    msg.DiscardUnknownFields()
    return msg.ByteSize() == size


_SCHEMA_DEPTH: dict[Descriptor, int | None] = {}


def _schema_depth(desc: Descriptor, seen: frozenset[str] = frozenset()) -> int | None:
    """The deepest level :func:`_walk` can reach in a message of this schema (the root is 0,
    a map entry counts 2, as on the wire), or None for a recursive schema (no bound)."""
    if desc in _SCHEMA_DEPTH:
        return _SCHEMA_DEPTH[desc]
    name = desc.full_name
    if name in seen:
        return None
    deepest: int | None = 0
    for field in desc.fields:
        if field.type not in (FieldDescriptor.TYPE_MESSAGE, FieldDescriptor.TYPE_GROUP):
            continue
        sub = field.message_type
        if sub is None:  # not for a message field; if ever, no bound is claimed
            deepest = None
            break
        extra = 1
        if _is_map(sub):
            value = sub.fields_by_name["value"]
            if value.type != FieldDescriptor.TYPE_MESSAGE or value.message_type is None:
                continue
            sub, extra = value.message_type, 2
        below = _schema_depth(sub, seen | {name})
        if below is None:
            deepest = None
            break
        deepest = max(deepest or 0, extra + below)
    if not seen:  # only a complete answer is kept (a partial one depends on the path)
        _SCHEMA_DEPTH[desc] = deepest
    return deepest


def _classify(exc: Exception, name: str) -> DecodeFailure:
    """A backend error the schema walk did not explain (e.g. a corrupt packed field)."""
    if isinstance(exc, UnicodeDecodeError):  # the pure-Python backend's way to say bad UTF-8
        return DecodeFailure("bad_utf8", f"{name}: a string field is not valid UTF-8")
    if isinstance(exc, RecursionError):
        return DecodeFailure("too_deep", f"{name}: nesting exceeds the decoder's recursion limit")
    text = str(exc).lower()
    if "utf-8" in text or "utf8" in text:
        return DecodeFailure("bad_utf8", f"{name}: a string field is not valid UTF-8")
    if "depth" in text or "nesting" in text:
        return DecodeFailure("too_deep", f"{name}: nesting exceeds the decoder's depth limit")
    return DecodeFailure("malformed", f"{name}: the protobuf decoder refused it")


def _inspect(msg: M, max_depth: int, allow_unknown: bool) -> M | DecodeFailure:
    """Check a parsed message: nesting depth, fields that arrived with the wrong wire type, and
    (unless allowed) unknown fields. The parsed tree is small, so this costs little."""
    found: dict[str, DecodeFailure] = {}
    deep = _walk(msg, msg.DESCRIPTOR.name, 0, max_depth, allow_unknown, found)
    if deep is not None:
        return deep
    for code in ("wrong_type", "unknown_fields"):
        if code in found:
            return found[code]
    return msg


def _walk(
    msg: Message,
    path: str,
    depth: int,
    max_depth: int,
    allow_unknown: bool,
    found: dict[str, DecodeFailure],
) -> DecodeFailure | None:
    """Visit ``msg`` and its sub-messages; return a ``too_deep`` failure at once, note others."""
    if depth > max_depth:
        return DecodeFailure("too_deep", f"{path}: nesting deeper than {max_depth} levels")
    desc = msg.DESCRIPTOR
    unknowns = UnknownFieldSet(msg)
    if len(unknowns) > MAX_UNKNOWN_FIELDS:
        # Even where unknown fields are allowed, this many is an attack, not a newer schema;
        # refusing it keeps this walk (and a reader loop) cheap.
        return DecodeFailure(
            "unknown_fields",
            f"{len(unknowns)} unknown fields in {path} (the limit is {MAX_UNKNOWN_FIELDS})",
        )
    for i in range(len(unknowns)):
        unknown = unknowns[i]
        field = desc.fields_by_number.get(unknown.field_number)
        if field is not None:
            found.setdefault(
                "wrong_type",
                DecodeFailure(
                    "wrong_type",
                    f"{path}.{field.name}: sent with wire type {unknown.wire_type}, which its "
                    "type cannot have (it would read as unset)",
                ),
            )
        elif not allow_unknown:
            found.setdefault(
                "unknown_fields",
                DecodeFailure("unknown_fields", f"unknown field {unknown.field_number} in {path}"),
            )
        if unknown.wire_type == 3 and _group_depth(unknown.data, depth + 1) > max_depth:
            return DecodeFailure(
                "too_deep", f"{path} field {unknown.field_number}: nesting deeper than {max_depth}"
            )
    for field, value in msg.ListFields():
        if field.type not in (FieldDescriptor.TYPE_MESSAGE, FieldDescriptor.TYPE_GROUP):
            continue
        sub = f"{path}.{field.name}"
        children: list[Message]
        extra = 1
        entry = field.message_type
        if entry is not None and _is_map(entry):
            if entry.fields_by_name["value"].type != FieldDescriptor.TYPE_MESSAGE:
                continue
            children, extra = list(value.values()), 2  # the map entry is a level on the wire
        elif field.is_repeated:
            children = list(value)
        else:
            children = [value]
        for child in children:
            deep = _walk(child, sub, depth + extra, max_depth, allow_unknown, found)
            if deep is not None:
                return deep
    return None


def _group_depth(fields: UnknownFieldSet, depth: int) -> int:
    """The deepest level reached by an unknown group that starts at ``depth``."""
    deepest = depth
    for i in range(len(fields)):
        unknown = fields[i]
        if unknown.wire_type == 3:
            deepest = max(deepest, _group_depth(unknown.data, depth + 1))
    return deepest


def _is_map(desc: Descriptor) -> bool:
    return bool(desc.GetOptions().map_entry)


def encode(
    msg: Message,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    allow_unknown: bool = False,
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> bytes:
    """Serialize ``msg`` and prove a receiver can read it; raise ``EncodeError`` otherwise."""
    try:
        data = msg.SerializeToString()
    except Exception as exc:
        raise EncodeError(
            f"cannot serialize {msg.DESCRIPTOR.name}: {type(exc).__name__}", "unserializable"
        ) from None
    result = decode(
        type(msg), data, max_bytes=max_bytes, allow_unknown=allow_unknown, max_depth=max_depth
    )
    if isinstance(result, DecodeFailure):
        raise EncodeError(
            f"a receiver could not read this {msg.DESCRIPTOR.name}: {result.reason}", result.code
        )
    return data
