"""Protocol chaos for any protobuf message type: the papers' three classes, seeded.

1. **structurally invalid bytes** (:mod:`.mangle`): empty, truncated, bit flips, bad tags and
   wire types, overlong varints, unterminated nested groups, length prefixes beyond the payload,
   a declared 10 MiB string, bad UTF-8;
2. **valid structure, odd values** (:mod:`.samples`): by field type (int edges, undeclared enum
   numbers, empty/huge strings, bytes, maps, repeated) and by field-name hint (times, ids,
   URIs, content types, methods);
3. **valid but malicious values**: naughty strings, terminal escapes, markup, bidi overrides,
   entities at the size cap.

:class:`ProtocolChaos` walks ``DESCRIPTOR.fields`` (recursing into message fields), so it works
for any message; nothing here is written per message type. Every result is checked against
oracles you can pass in: ``readable(bytes)`` (default: the wire codec with
``allow_unknown=True``, the most lenient reader, such as the console), ``decodes(bytes)``
(default: the strict codec, as the device actors read) and ``validate(msg) -> errors``
(default: none). A class-1 result is not readable even leniently (structurally invalid under
any schema version); a class-2 result decodes strictly and fails validation; a class-3 result
decodes and passes it. Candidates that do not fit their class are skipped, never mislabelled.

:class:`EvilSerializer` mixes chaos into a stream of valid messages at given rates (the papers:
1/10 empty, 1/10 bit-flipped, 1/10 overflow-padded).
"""

from __future__ import annotations

import random
import urllib.parse
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from pipeconsole.chaos import mangle, samples

__all__ = [
    "CLASSES",
    "ChaosMessage",
    "Emitted",
    "EvilSerializer",
    "ProtocolChaos",
    "codec_decodes",
]

M = TypeVar("M", bound=Message)
FD = FieldDescriptor

CLASSES = {
    1: "structurally invalid",
    2: "valid structure, invalid values",
    3: "valid but malicious",
}

Decodes = Callable[[bytes], bool]
Validate = Callable[[Any], Sequence[object]]


@dataclass(frozen=True, slots=True)
class ChaosMessage:
    """One generated hostile payload."""

    chaos_class: int
    """1, 2 or 3 (see :data:`CLASSES`)."""
    kind: str
    """What was done: ``bit_flip``, ``int_edge``, ``impossible_date``, ``naughty``, ..."""
    field: str
    """Dotted path of the field changed (``qos.max_attempts``, ``headers``); empty for class 1
    kinds that are not about one field."""
    data: bytes
    """The bytes to publish."""
    message: Message | None = None
    """The message before serialisation (classes 2 and 3)."""


@dataclass(frozen=True, slots=True)
class Emitted:
    """One record of an evil-serializer stream: chaos, or a valid message passed through."""

    data: bytes
    message: Message | None
    """The valid message (``chaos is None``) or the class-2/3 message; None for class 1."""
    chaos: ChaosMessage | None


def codec_decodes(msg_type: type[Message], *, allow_unknown: bool = False) -> Decodes:
    """The wire codec's decode as an oracle: True when ``data`` decodes."""
    from pipeconsole.wire.codec import DecodeFailure, decode

    def decodes(data: bytes) -> bool:
        got = decode(msg_type, data, allow_unknown=allow_unknown)
        return not isinstance(got, DecodeFailure)

    return decodes


@dataclass(frozen=True, slots=True)
class _Slot:
    path: tuple[FieldDescriptor, ...]

    @property
    def name(self) -> str:
        return ".".join(f.name for f in self.path)

    @property
    def leaf(self) -> FieldDescriptor:
        return self.path[-1]


def _msg(field: FieldDescriptor) -> Descriptor:
    """The message type of a message field (only called on those)."""
    mt = field.message_type
    assert mt is not None
    return mt


def _is_map(field: FieldDescriptor) -> bool:
    return field.type == FD.TYPE_MESSAGE and bool(_msg(field).GetOptions().map_entry)


def _is_repeated(field: FieldDescriptor) -> bool:
    return bool(field.is_repeated)


def _slots(
    desc: Descriptor, prefix: tuple[FieldDescriptor, ...] = (), depth: int = 0
) -> list[_Slot]:
    """Every field reachable from ``desc``, message fields recursed up to depth 3, never into
    a message type already on the path (recursive messages would not end)."""
    out: list[_Slot] = []
    seen = {f.message_type.full_name for f in prefix if f.message_type is not None}
    for f in desc.fields:
        path = (*prefix, f)
        if f.type == FD.TYPE_MESSAGE and not _is_map(f):
            out.append(_Slot(path))
            if depth < 3 and _msg(f).full_name not in seen | {desc.full_name}:
                out += _slots(_msg(f), path, depth + 1)
        else:
            out.append(_Slot(path))
    return out


def _container(msg: Message, slot: _Slot) -> Message:
    """The message that holds ``slot.leaf``, created along the way."""
    cur = msg
    for f in slot.path[:-1]:
        cur = getattr(cur, f.name).add() if _is_repeated(f) else getattr(cur, f.name)
    return cur


def _apply(msg: Message, slot: _Slot, value: Any) -> None:
    """Set ``slot`` to ``value``. For maps ``value`` is a dict; for repeated a list; for a
    message field a list of (sub-message count) — only used for huge repeats."""
    holder = _container(msg, slot)
    leaf = slot.leaf
    target = getattr(holder, leaf.name)
    if _is_map(leaf):
        target.clear()
        target.update(value)
    elif _is_repeated(leaf):
        del target[:]
        if leaf.type == FD.TYPE_MESSAGE:
            for _ in range(int(value)):
                target.add()
        else:
            target.extend(value)
    else:
        setattr(holder, leaf.name, value)


def _valid_text(v: str) -> bool:
    """Protobuf refuses to serialise lone surrogates; skip such candidates."""
    try:
        v.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class ProtocolChaos(Generic[M]):
    """Hostile messages of type ``msg_type`` in the three classes, reproducible from ``seed``.

    ``base(rng)`` builds a *valid* message that damage starts from (default: the empty
    message); a good base makes class-2 failures come from the one field changed.
    """

    def __init__(
        self,
        msg_type: type[M],
        *,
        seed: int = 0,
        base: Callable[[random.Random], M] | None = None,
        decodes: Decodes | None = None,
        readable: Decodes | None = None,
        validate: Validate | None = None,
        huge: int = 100_000,
        size_cap: int = 900_000,
        huge_count: int = 10_000,
    ) -> None:
        self.msg_type = msg_type
        self.rng = random.Random(seed)
        self._base = base or (lambda _rng: msg_type())
        self._decodes = decodes or _strict_decoder(msg_type)
        self._readable = readable or decodes or _strict_decoder(msg_type, allow_unknown=True)
        self._validate = validate
        self._huge = huge
        self._size_cap = size_cap
        self._huge_count = huge_count
        self._slots = _slots(msg_type.DESCRIPTOR)  # type: ignore[arg-type]
        self._class2: list[tuple[_Slot, str, Any]] | None = None
        self._class3: list[tuple[_Slot, str, Any]] | None = None
        self._cursor = {1: 0, 2: 0, 3: 0}

    # -- the valid stream ------------------------------------------------------------------

    def valid(self) -> M:
        """A fresh valid message from the base factory."""
        return self._base(self.rng)

    def decodes(self, data: bytes) -> bool:
        return self._decodes(data)

    def is_valid(self, msg: Message) -> bool:
        return self._validate is None or not self._validate(msg)

    # -- class 1 ---------------------------------------------------------------------------

    def structural(self, kind: str) -> ChaosMessage:
        """One class-1 payload of ``kind`` (a key of :data:`mangle.KINDS`) that does not decode."""
        fn = mangle.KINDS[kind]
        for _ in range(64):
            data = fn(self.valid().SerializeToString(), self.rng)
            if not self._readable(data):
                return ChaosMessage(1, kind, "", data)
        # Damage kept landing on bytes that still decode (possible for bit flips on tiny
        # messages): make it structural for certain with an undefined wire type.
        data = mangle.bad_wire_type(fn(self.valid().SerializeToString(), self.rng), self.rng)
        return ChaosMessage(1, kind, "", data)

    # -- classes 2 and 3 -------------------------------------------------------------------

    def _candidates2(self) -> list[tuple[_Slot, str, Any]]:
        if self._class2 is None:
            rng = self.rng
            out: list[tuple[_Slot, str, Any]] = []
            for slot in self._slots:
                f = slot.leaf
                if _is_map(f):
                    out += self._map_odd(slot)
                elif _is_repeated(f):
                    sample = samples.odd_by_type(f, rng, huge=16)
                    if f.type == FD.TYPE_MESSAGE:
                        out.append((slot, "huge_repeated", self._huge_count))
                    elif sample:
                        out.append((slot, "huge_repeated", [sample[0][1]] * self._huge_count))
                elif f.type == FD.TYPE_MESSAGE:
                    continue  # its fields are slots of their own
                else:
                    out += [(slot, k, v) for k, v in samples.odd_by_type(f, rng, huge=self._huge)]
                    hint = samples.hint_of(f)
                    if hint:
                        out += [(slot, k, v) for k, v in samples.odd_by_hint(hint, rng)]
            rng.shuffle(out)
            self._class2 = out
        return self._class2

    def _map_odd(self, slot: _Slot) -> list[tuple[_Slot, str, Any]]:
        entry = _msg(slot.leaf)
        kf, vf = entry.fields_by_name["key"], entry.fields_by_name["value"]
        if kf.type != FD.TYPE_STRING or vf.type != FD.TYPE_STRING:
            return []
        n = self._huge_count
        return [
            (slot, "huge_map", {f"X-Chaos-{i}": "v" for i in range(n)}),
            (slot, "empty_key", {"": "v"}),
            (slot, "crlf_value", {"X-Chaos": "v\r\nX-Injected: 1"}),
            (slot, "crlf_key", {"X-Chaos\r\nX-Injected": "1"}),
            (slot, "huge_value", {"X-Chaos": "v" * self._huge}),
            (slot, "non_token_key", {"X Chaos(1)": "v"}),
        ]

    def _candidates3(self) -> list[tuple[_Slot, str, Any]]:
        if self._class3 is None:
            rng = self.rng
            texts = [(k, v) for k, v in samples.malicious_text(rng) if _valid_text(v)]
            out: list[tuple[_Slot, str, Any]] = []
            for slot in self._slots:
                f = slot.leaf
                if _is_map(f):
                    entry = _msg(f)
                    if entry.fields_by_name["value"].type == FD.TYPE_STRING:
                        out += [(slot, k, {"X-Chaos": v}) for k, v in texts]
                elif _is_repeated(f) or f.type == FD.TYPE_MESSAGE:
                    continue
                elif f.type == FD.TYPE_STRING:
                    hint = samples.hint_of(f)
                    if hint in ("time", "method", "content_type"):
                        continue  # grammar-bound: no malicious text is valid there
                    out += [(slot, k, ("embed_uri", v) if hint == "uri" else v) for k, v in texts]
                elif f.type == FD.TYPE_BYTES:
                    out += [(slot, k, v.encode("utf-8")) for k, v in texts]
                    out.append((slot, "entity_at_cap", ("at_cap", None)))
            rng.shuffle(out)
            self._class3 = out
        return self._class3

    def _build(self, slot: _Slot, value: Any) -> Message | None:
        msg = self.valid()
        if isinstance(value, tuple) and value and value[0] == "embed_uri":
            value = _embed_in_path(str(getattr(_container(msg, slot), slot.leaf.name)), value[1])
        elif isinstance(value, tuple) and value and value[0] == "at_cap":
            _apply(msg, slot, b"")
            room = self._size_cap - msg.ByteSize() - 16
            value = self.rng.randbytes(max(0, room))
        try:
            _apply(msg, slot, value)
            msg.SerializeToString()
        except (ValueError, TypeError, OverflowError):
            return None
        return msg

    def _next_of(self, chaos_class: int) -> ChaosMessage | None:
        cands = self._candidates2() if chaos_class == 2 else self._candidates3()
        for _ in range(len(cands)):
            i = self._cursor[chaos_class] % len(cands)
            self._cursor[chaos_class] += 1
            slot, kind, value = cands[i]
            msg = self._build(slot, value)
            if msg is None:
                continue
            data = msg.SerializeToString()
            if not self._decodes(data):
                continue
            valid = self.is_valid(msg)
            if (chaos_class == 2 and valid and self._validate is not None) or (
                chaos_class == 3 and not valid
            ):
                continue
            return ChaosMessage(chaos_class, kind, slot.name, data, msg)
        return None

    def generate(self, chaos_class: int, n: int) -> list[ChaosMessage]:
        """``n`` messages of ``chaos_class`` (fewer for class 2/3 when no candidate fits)."""
        if chaos_class == 1:
            kinds = list(mangle.KINDS)
            out = []
            for _ in range(n):
                kind = kinds[self._cursor[1] % len(kinds)]
                self._cursor[1] += 1
                out.append(self.structural(kind))
            return out
        out = []
        for _ in range(n):
            m = self._next_of(chaos_class)
            if m is None:
                break
            out.append(m)
        return out

    def all_of(self, chaos_class: int) -> Iterator[ChaosMessage]:
        """Every candidate of class 2 or 3 once (class 1: every kind once)."""
        if chaos_class == 1:
            for kind in mangle.KINDS:
                yield self.structural(kind)
            return
        total = len(self._candidates2() if chaos_class == 2 else self._candidates3())
        start = self._cursor[chaos_class]
        while self._cursor[chaos_class] - start < total:
            m = self._next_of(chaos_class)
            if m is None:
                return
            yield m

    def one(self, kind: str) -> ChaosMessage:
        """One message of a kind name: a class-1 kind, ``class2`` or ``class3``."""
        if kind in mangle.KINDS:
            return self.structural(kind)
        cls = {"class2": 2, "class3": 3}.get(kind)
        if cls is None:
            raise KeyError(f"unknown chaos kind {kind!r}")
        got = self._next_of(cls)
        if got is None:
            raise LookupError(f"no {CLASSES[cls]} candidate fits {self.msg_type.__name__}")
        return got


def _embed_in_path(uri: str, text: str) -> str:
    """Put ``text`` percent-encoded into a path segment: ``/streams/<text>/start``."""
    quoted = urllib.parse.quote(text, safe="")
    parts = uri.split("/")
    if len(parts) >= 3:
        parts[-2] = quoted
        return "/".join(parts)
    return uri.rstrip("/") + "/" + quoted


def _strict_decoder(msg_type: type[Message], *, allow_unknown: bool = False) -> Decodes:
    try:
        return codec_decodes(msg_type, allow_unknown=allow_unknown)
    except ImportError:  # the codec is not there yet (parallel build): a strict local parse
        from google.protobuf.unknown_fields import UnknownFieldSet

        def decodes(data: bytes) -> bool:
            if not data or len(data) > 1_048_576:
                return False
            try:
                msg = msg_type.FromString(data)
            except Exception:
                return False
            return allow_unknown or len(UnknownFieldSet(msg)) == 0

        return decodes


PAPER_RATES: Mapping[str, float] = {"empty": 0.1, "bit_flip": 0.1, "overflow_padded": 0.1}
"""The evil serializer's rates in the protocol-chaos paper's demo."""


class EvilSerializer(Generic[M]):
    """Mix chaos into a stream of valid messages.

    ``rates`` maps a kind (a class-1 kind of :data:`mangle.KINDS`, ``class2`` or ``class3``)
    to the fraction of records that get it. The paper drew its three cases one after another
    (so its rates were really 0.1, 0.09, 0.081); here one uniform draw picks among them, so the
    rates are exactly what the experiment says.
    """

    def __init__(self, gen: ProtocolChaos[M], rates: Mapping[str, float] = PAPER_RATES) -> None:
        total = sum(rates.values())
        if total > 1.0 + 1e-9 or any(r < 0 for r in rates.values()):
            raise ValueError("chaos rates must be >= 0 and sum to at most 1")
        for kind in rates:
            if kind not in mangle.KINDS and kind not in ("class2", "class3"):
                raise ValueError(f"unknown chaos kind {kind!r}")
        self.gen = gen
        self.rates = dict(rates)

    def next(self) -> Emitted:
        u = self.gen.rng.random()
        acc = 0.0
        for kind, rate in self.rates.items():
            acc += rate
            if u < acc:
                try:
                    c = self.gen.one(kind)
                except LookupError:
                    break
                return Emitted(c.data, c.message, c)
        msg = self.gen.valid()
        return Emitted(msg.SerializeToString(), msg, None)

    def stream(self, n: int) -> Iterator[Emitted]:
        for _ in range(n):
            yield self.next()
