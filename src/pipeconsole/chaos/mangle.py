"""Structural damage to protobuf wire bytes (protocol chaos class 1).

Each function takes the serialisation of a valid message (and an RNG) and returns bytes that a
strict decoder must refuse. The caller (:mod:`.protocol`) checks every result against the real
decoder and retries or falls back when damage happened to land on something still decodable
(a bit flip inside a string can leave a valid message: the papers' CRC-collision point).

- :func:`fields`   a small scanner of top-level fields, to cut and damage at field boundaries
- one function per kind: :data:`KINDS` maps kind name → function
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["KINDS", "FieldSpan", "fields", "varint"]

STACK_BOMB = b"\x63" * 20_000
"""0x63 = field 12, wire type 3 (START_GROUP), 20 000 times: unterminated nested groups."""

TEN_MIB = 10_485_759
"""The paper's OOM prefix declares a string just under 10 MiB."""


def varint(n: int) -> bytes:
    """Protobuf base-128 varint of a non-negative ``n``."""
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


@dataclass(frozen=True, slots=True)
class FieldSpan:
    start: int
    """Offset of the tag."""
    body: int
    """Offset of the value (after the tag, and after the length for wire type 2)."""
    end: int
    number: int
    wire_type: int


def _read_varint(b: bytes, i: int) -> tuple[int, int]:
    shift = n = 0
    while True:
        if i >= len(b) or shift > 63:
            raise ValueError("bad varint")
        c = b[i]
        n |= (c & 0x7F) << shift
        i += 1
        if not c & 0x80:
            return n, i
        shift += 7


def fields(b: bytes) -> list[FieldSpan]:
    """Top-level fields of a *valid* serialisation (wire types 0, 1, 2, 5)."""
    out: list[FieldSpan] = []
    i = 0
    while i < len(b):
        start = i
        tag, i = _read_varint(b, i)
        number, wt = tag >> 3, tag & 7
        body = i
        if wt == 0:
            _, i = _read_varint(b, i)
        elif wt == 1:
            i += 8
        elif wt == 5:
            i += 4
        elif wt == 2:
            length, body = _read_varint(b, i)
            i = body + length
        else:
            raise ValueError(f"unexpected wire type {wt}")
        out.append(FieldSpan(start, body, i, number, wt))
    return out


Mangler = Callable[[bytes, random.Random], bytes]


def empty(b: bytes, rng: random.Random) -> bytes:
    return b""


def truncated(b: bytes, rng: random.Random) -> bytes:
    """Cut inside a field's value (never at a boundary, which would still decode)."""
    spans = [s for s in fields(b) if s.end - s.body >= 1 and s.wire_type in (1, 2, 5)]
    if not spans:
        return b[: max(0, len(b) - 1)] + b"\x80"  # dangling varint continuation
    s = rng.choice(spans)
    return b[: rng.randint(s.body, s.end - 1)] if s.end > s.body else b[: s.body - 1]


def bit_flip(b: bytes, rng: random.Random) -> bytes:
    """The papers' damage: each byte, with probability 1/30, loses bit 3; plus one random flip."""
    out = bytearray(x & 0xF7 if rng.random() < 1 / 30 else x for x in b)
    if out:
        i = rng.randrange(len(out))
        out[i] ^= 1 << rng.randrange(8)
    return bytes(out)


def bad_tag(b: bytes, rng: random.Random) -> bytes:
    """A field with number 0, which no message may have, at a random field boundary."""
    cut = rng.choice([0, *(s.end for s in fields(b))])
    wt = rng.choice((0, 2))
    junk = bytes([wt]) + (b"\x01" if wt == 0 else b"\x01x")
    return b[:cut] + junk + b[cut:]


def bad_wire_type(b: bytes, rng: random.Random) -> bytes:
    """Wire type 6 or 7 (undefined) on a real field number."""
    spans = fields(b)
    number = rng.choice(spans).number if spans else 1
    cut = rng.choice([0, *(s.end for s in spans)])
    return b[:cut] + varint(number << 3 | rng.choice((6, 7))) + b"\x00" + b[cut:]


def overlong_varint(b: bytes, rng: random.Random) -> bytes:
    """An 11-byte varint (10 is the most a 64-bit value may take)."""
    number = rng.choice([s.number for s in fields(b)] or [1])
    return b + varint(number << 3 | 0) + b"\xff" * 10 + b"\x01"


def unterminated_groups(b: bytes, rng: random.Random) -> bytes:
    """A valid prefix (the first field, like the paper's ``[8,1,18,3]``), then 20 000 × 0x63."""
    spans = fields(b)
    prefix = b[: spans[0].end] if spans else b""
    return prefix + STACK_BOMB


def overflow_padded(b: bytes, rng: random.Random) -> bytes:
    """The evil serializer's third case: the whole valid message, then 20 000 × 0x63."""
    return b + STACK_BOMB


def length_beyond_payload(b: bytes, rng: random.Random) -> bytes:
    """A length-delimited field whose prefix claims far more bytes than follow (~2 GiB)."""
    spans = [s for s in fields(b) if s.wire_type == 2]
    number = rng.choice(spans).number if spans else 15
    return b + varint(number << 3 | 2) + varint(2**31 - 1) + b"x" * rng.randint(0, 64)


def declared_10mib_string(b: bytes, rng: random.Random) -> bytes:
    """The paper's OOM prefix: a string declared 10 485 759 bytes long; a few bytes follow."""
    spans = [s for s in fields(b) if s.wire_type == 2]
    number = spans[0].number if spans else 2
    return b + varint(number << 3 | 2) + varint(TEN_MIB) + b"A" * 1024


def bad_utf8(b: bytes, rng: random.Random) -> bytes:
    """A string field carrying invalid UTF-8 (``\\xff``, overlong NUL, surrogate, truncated)."""
    spans = [s for s in fields(b) if s.wire_type == 2]
    number = rng.choice(spans).number if spans else 1
    payload = rng.choice((b"\xff", b"\xc0\x80", b"\xed\xa0\x80", b"\xe2\x82", b"ok\xfe\xff"))
    return b + varint(number << 3 | 2) + varint(len(payload)) + payload


def random_bytes(b: bytes, rng: random.Random) -> bytes:
    return rng.randbytes(rng.randint(1, 256))


KINDS: dict[str, Mangler] = {
    "empty": empty,
    "truncated": truncated,
    "bit_flip": bit_flip,
    "bad_tag": bad_tag,
    "bad_wire_type": bad_wire_type,
    "overlong_varint": overlong_varint,
    "unterminated_groups": unterminated_groups,
    "overflow_padded": overflow_padded,
    "length_beyond_payload": length_beyond_payload,
    "declared_10mib_string": declared_10mib_string,
    "bad_utf8": bad_utf8,
    "random_bytes": random_bytes,
}
"""Kind name → damage function. ``bad_utf8`` applies to string fields only: a bytes field
would carry it as data (the generator's decode check drops such cases and retries)."""
