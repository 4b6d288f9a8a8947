"""A schema-guided walk over protobuf wire format, run before the backend parses anything.

It reads tags and lengths only (strings and bytes are skipped, not copied, except for a UTF-8
check), so its cost grows with the number of fields, not with the payload size. It finds:

* ``malformed``: truncated varints and lengths, varints over 10 bytes, field number 0, wire
  types 6 and 7, end-group without start-group, unterminated groups;
* ``too_deep``: more than ``max_depth`` nested messages or groups (known sub-messages and
  groups, including unknown groups, which the backends parse recursively);
* ``bad_utf8``: a ``string`` field that is not UTF-8 (upb raises ``DecodeError``, the
  pure-Python backend ``UnicodeDecodeError``: here it is one class on both);
* ``wrong_type``: a known field with a wire type its type cannot have (the backend would keep
  it as an unknown field and leave the field unset);
* ``unknown_fields``: a field number the schema does not declare (only when not allowed).

Structural problems stop the walk at once; the others are remembered (the first of each) and
the most serious is returned, so a payload that is both mistyped and corrupt reports corrupt.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from google.protobuf.descriptor import Descriptor, FieldDescriptor

__all__ = ["ScanIssue", "scan"]

_BACKEND_DEPTH_LIMIT: Final = 100
"""Both protobuf backends refuse deeper nesting; a larger ``max_depth`` is clamped to it."""

_SEVERITY: Final = {"bad_utf8": 0, "wrong_type": 1, "unknown_fields": 2}
"""Order among the issues that do not stop the walk (lower is more serious)."""

_WIRE_NAMES: Final = {
    0: "varint",
    1: "64-bit",
    2: "length-delimited",
    3: "start-group",
    4: "end-group",
    5: "32-bit",
}

_T = FieldDescriptor
_NATIVE_WIRE_TYPE: Final = {
    _T.TYPE_DOUBLE: 1,
    _T.TYPE_FLOAT: 5,
    _T.TYPE_INT64: 0,
    _T.TYPE_UINT64: 0,
    _T.TYPE_INT32: 0,
    _T.TYPE_FIXED64: 1,
    _T.TYPE_FIXED32: 5,
    _T.TYPE_BOOL: 0,
    _T.TYPE_STRING: 2,
    _T.TYPE_GROUP: 3,
    _T.TYPE_MESSAGE: 2,
    _T.TYPE_BYTES: 2,
    _T.TYPE_UINT32: 0,
    _T.TYPE_ENUM: 0,
    _T.TYPE_SFIXED32: 5,
    _T.TYPE_SFIXED64: 1,
    _T.TYPE_SINT32: 0,
    _T.TYPE_SINT64: 0,
}
"""The wire type each field type is written with (packed repeated scalars also use 2)."""


@dataclass(frozen=True, slots=True)
class ScanIssue:
    """The first problem of its class found in a payload."""

    code: str
    """A ``DecodeFailure`` code."""
    reason: str
    """One human line naming the field or the byte offset."""


class _Stop(Exception):
    """Raised inside the walk for a structural problem; carries the issue out."""

    def __init__(self, issue: ScanIssue) -> None:
        super().__init__(issue.reason)
        self.issue = issue


def scan(data: bytes, desc: Descriptor, *, max_depth: int, allow_unknown: bool) -> ScanIssue | None:
    """Walk ``data`` as a ``desc`` message; ``None`` when nothing is wrong."""
    walker = _Walker(data, min(max(max_depth, 0), _BACKEND_DEPTH_LIMIT), allow_unknown)
    walker.names.append(desc.name)
    try:
        walker.message(0, len(data), desc, 0)
    except _Stop as stop:
        return stop.issue
    return walker.worst()


_Entry = tuple[FieldDescriptor, int, bool, "Descriptor | None", bool]
"""field, native wire type, may come packed, sub-message descriptor, is a string."""

_TABLES: dict[str, dict[int, _Entry]] = {}
"""Per message type (by full name): field number -> what the walk needs to know about it."""


def _table(desc: Descriptor) -> dict[int, _Entry]:
    table = _TABLES.get(desc.full_name)
    if table is None:
        table = {}
        for f in desc.fields:
            native = _NATIVE_WIRE_TYPE.get(f.type, -1)
            packable = f.is_repeated and native in (0, 1, 5)
            sub = f.message_type if f.type in (_T.TYPE_MESSAGE, _T.TYPE_GROUP) else None
            table[f.number] = (f, native, packable, sub, f.type == _T.TYPE_STRING)
        _TABLES[desc.full_name] = table
    return table


class _Walker:
    """One walk over one payload; remembers the first soft issue of each class.

    Field paths are built only when an issue is reported: ``names`` is the stack of the
    enclosing fields, so the walk itself does no string work.
    """

    __slots__ = ("allow_unknown", "data", "max_depth", "names", "soft")

    def __init__(self, data: bytes, max_depth: int, allow_unknown: bool) -> None:
        self.data = data
        self.max_depth = max_depth
        self.allow_unknown = allow_unknown
        self.soft: dict[str, ScanIssue] = {}
        self.names: list[str] = []

    def worst(self) -> ScanIssue | None:
        if not self.soft:
            return None
        return min(self.soft.values(), key=lambda i: _SEVERITY[i.code])

    def where(self, last: str) -> str:
        parts: list[str] = []
        for part in (*self.names, last):
            if part and (not parts or parts[-1] != part):
                parts.append(part)
        return ".".join(parts)

    def stop(self, code: str, reason: str) -> _Stop:
        return _Stop(ScanIssue(code, reason))

    def varint(self, pos: int, end: int) -> tuple[int, int]:
        data = self.data
        value = shift = 0
        for i in range(pos, min(pos + 10, end)):
            byte = data[i]
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                return value, i + 1
            shift += 7
        if end - pos >= 10:
            raise self.stop("malformed", f"varint longer than 10 bytes at offset {pos}")
        raise self.stop("malformed", f"truncated varint at offset {pos}")

    def message(self, pos: int, end: int, desc: Descriptor | None, depth: int) -> None:
        """Walk the fields in ``[pos, end)`` of a message (``desc=None``: unknown content)."""
        table = _table(desc) if desc is not None else None
        while pos < end:
            pos = self.field(pos, end, table, depth, None)
            if pos < 0:
                raise self.stop("malformed", f"end-group outside a group in {self.where('')}")

    def field(
        self, pos: int, end: int, table: dict[int, _Entry] | None, depth: int, group: int | None
    ) -> int:
        """Walk one field at ``pos``; return the offset after it, or ``-1 - offset`` after the
        end-group that closes ``group``."""
        data = self.data
        start = pos
        tag = data[pos]
        if tag < 0x80:
            pos += 1
        else:
            tag, pos = self.varint(pos, end)
        number, wire = tag >> 3, tag & 7
        if number == 0 or number > 0x1FFFFFFF or wire > 5:
            raise self.stop("malformed", f"invalid tag {tag} at offset {start}")
        if wire == 4:
            if group == number:
                return -1 - pos
            raise self.stop("malformed", f"end-group for field {number} without a start at {start}")
        entry = table.get(number) if table is not None else None
        if entry is None:
            if table is not None and not self.allow_unknown and "unknown_fields" not in self.soft:
                self.note("unknown_fields", f"unknown field {number} in {self.where('')}")
        elif wire != entry[1] and not (wire == 2 and entry[2]):
            if "wrong_type" not in self.soft:
                self.note(
                    "wrong_type",
                    f"{self.where(entry[0].name)}: sent as {_WIRE_NAMES[wire]}, which a "
                    f"{_type_name(entry[0])} field cannot be (it would read as unset)",
                )
            entry = None  # walk it as the unknown field the backend makes of it
        if wire == 0:
            if pos < end and data[pos] < 0x80:
                return pos + 1
            return self.varint(pos, end)[1]
        if wire == 1 or wire == 5:
            pos += 8 if wire == 1 else 4
            if pos > end:
                raise self.stop("malformed", f"truncated fixed-width value at offset {start}")
            return pos
        name = entry[0].name if entry is not None else f"field {number}"
        if wire == 3:
            return self.group(pos, end, number, entry, depth + 1, name)
        length, pos = self.varint(pos, end)
        if length > end - pos:
            raise self.stop(
                "malformed",
                f"{self.where(name)}: length prefix declares {length} bytes but {end - pos} remain",
            )
        stop = pos + length
        if entry is not None:
            if entry[3] is not None:
                self.enter(depth + 1, name)
                self.message(pos, stop, entry[3], depth + 1)
                self.names.pop()
            elif entry[4]:
                try:
                    data[pos:stop].decode("utf-8")
                except UnicodeDecodeError as exc:
                    self.note("bad_utf8", f"{self.where(name)}: not valid UTF-8 (byte {exc.start})")
        return stop

    def group(
        self, pos: int, end: int, number: int, entry: _Entry | None, depth: int, name: str
    ) -> int:
        self.enter(depth, name)
        table = _table(entry[3]) if entry is not None and entry[3] is not None else None
        while pos < end:
            pos = self.field(pos, end, table, depth, number)
            if pos < 0:
                self.names.pop()
                return -1 - pos
        raise self.stop("malformed", f"{self.where('')}: group is not terminated")

    def enter(self, depth: int, name: str) -> None:
        if depth > self.max_depth:
            raise self.stop(
                "too_deep", f"{self.where(name)}: nesting deeper than {self.max_depth} levels"
            )
        self.names.append(name)  # where() shows a run of the same name once

    def note(self, code: str, reason: str) -> None:
        self.soft.setdefault(code, ScanIssue(code, reason))


def _type_name(field: FieldDescriptor) -> str:
    for name, value in vars(FieldDescriptor).items():
        if name.startswith("TYPE_") and value == field.type:
            return name[5:].lower()
    return "known"
