"""The safe codec: hostile bytes become a DecodeFailure naming what was wrong, never an exception.

These tests run on both protobuf backends (see test_wire_backend.py) with the same results.
"""

from __future__ import annotations

import os
import tracemalloc
from typing import Any
from unittest.mock import patch

import pytest
from conftest import nested_node, valid_request
from google.protobuf.internal import api_implementation
from google.protobuf.message import Message
from google.protobuf.struct_pb2 import Struct
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeconsole.model import pipeline
from pipeconsole.model.fixtures import added, state
from pipeconsole.wire import codec
from pipeconsole.wire.codec import (
    DEFAULT_MAX_DEPTH,
    DecodeFailure,
    EncodeError,
    decode,
    encode,
)
from pipeconsole.wire.gen.device_request_pb2 import CancelRequest, DeviceRequest
from pipeconsole.wire.gen.device_response_pb2 import DeviceResponse
from pipeconsole.wire.gen.device_state_pb2 import StateEvent
from pipeconsole.wire.gen.registry_pb2 import RegistryEvent

SEED_BOMB = bytes([8, 1, 18, 3, 65, 66, 67]) + bytes([99]) * 20_000


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | 0x80 if n else b)
        if not n:
            return bytes(out)


def nested_bytes(depth: int, field: int = 1) -> bytes:
    data = b""
    for _ in range(depth):
        data = bytes([(field << 3) | 2]) + varint(len(data)) + data
    return data


def sgroups(n: int, field: int = 5) -> bytes:
    return bytes([(field << 3) | 3]) * n + bytes([(field << 3) | 4]) * n


def failure(result: object) -> DecodeFailure:
    assert isinstance(result, DecodeFailure), f"expected a DecodeFailure, got {result!r}"
    return result


def test_protobuf_implementation_matches_environment() -> None:
    wanted = os.environ.get("PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION")
    if wanted == "python":
        assert api_implementation.Type() == "python"
    else:
        assert api_implementation.Type() == "upb"


def test_valid_request_round_trips() -> None:
    req = valid_request()
    data = encode(req)
    back = decode(DeviceRequest, data)
    assert back == req


def test_seed_bomb_of_unterminated_groups_is_too_deep_without_memory_blowup() -> None:
    tracemalloc.start()
    try:
        result = failure(decode(DeviceRequest, SEED_BOMB))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.code == "too_deep"
    assert "field 12" in result.reason
    assert peak < 5_000_000


def test_length_prefix_declaring_10_mib_is_malformed() -> None:
    data = bytes([18]) + varint(10 * 1024 * 1024) + b"abc"
    result = failure(decode(DeviceRequest, data))
    assert result.code == "malformed"
    assert "uri" in result.reason and "10485760" in result.reason


@pytest.mark.parametrize("data", [None, b""])
def test_empty_payload_is_refused(data: bytes | None) -> None:
    assert failure(decode(DeviceRequest, data)).code == "empty"


def test_payload_over_the_size_limit_is_refused_before_parsing() -> None:
    req = valid_request()
    req.entity = b"x" * 2000
    result = failure(decode(DeviceRequest, req.SerializeToString(), max_bytes=1000))
    assert result.code == "too_large"
    assert "1000" in result.reason


def test_non_bytes_input_is_a_failure_not_an_exception() -> None:
    assert failure(decode(DeviceRequest, "text")).code == "malformed"  # type: ignore[arg-type]


@pytest.mark.parametrize("depth", [1, 10, DEFAULT_MAX_DEPTH])
def test_nesting_within_the_limit_decodes(node_type: type, depth: int) -> None:
    data = nested_node(node_type, depth).SerializeToString()
    assert not isinstance(decode(node_type, data), DecodeFailure)


@pytest.mark.parametrize("depth", [DEFAULT_MAX_DEPTH + 1, 99, 100, 101, 1_000, 100_000])
def test_nesting_beyond_the_limit_is_too_deep(node_type: type, depth: int) -> None:
    result = failure(decode(node_type, nested_bytes(depth), max_bytes=10_000_000))
    assert result.code == "too_deep"


@pytest.mark.parametrize("count", [DEFAULT_MAX_DEPTH + 1, 100, 101, 5_000])
def test_series_of_start_groups_is_too_deep(count: int) -> None:
    assert failure(decode(DeviceRequest, sgroups(count))).code == "too_deep"


def test_a_few_nested_unknown_groups_are_unknown_fields() -> None:
    assert failure(decode(DeviceRequest, sgroups(3, field=15))).code == "unknown_fields"
    ok = decode(DeviceRequest, sgroups(3, field=15), allow_unknown=True)
    assert not isinstance(ok, DecodeFailure)


def test_groups_on_a_known_field_are_a_wrong_type() -> None:
    result = failure(decode(DeviceRequest, sgroups(3, field=5)))
    assert result.code == "wrong_type"
    assert "entity" in result.reason


@pytest.mark.parametrize("depth", [DEFAULT_MAX_DEPTH + 1, 150])
def test_encode_refuses_what_a_receiver_could_not_parse(node_type: type, depth: int) -> None:
    deep = nested_node(node_type, depth)
    assert deep.SerializeToString()  # protobuf itself serializes it happily
    with pytest.raises(EncodeError) as err:
        encode(deep)
    assert err.value.code == "too_deep"


def test_encode_refuses_oversized_messages() -> None:
    req = valid_request()
    req.entity = b"x" * 5000
    with pytest.raises(EncodeError) as err:
        encode(req, max_bytes=4096)
    assert err.value.code == "too_large"


def test_encode_refuses_a_message_carrying_unknown_fields() -> None:
    req = valid_request()
    req.MergeFromString(bytes([0xF8, 0xFF, 0xFF, 0xFF, 0x0F, 1]))  # field 536870911
    with pytest.raises(EncodeError) as err:
        encode(req)
    assert err.value.code == "unknown_fields"
    assert encode(req, allow_unknown=True)


@pytest.mark.parametrize(
    "utf8",
    [b"\xff", b"\xc0\x80", b"\xed\xa0\x80", b"\xe2\x82", b"ok\xfe"],
    ids=["ff", "overlong", "surrogate", "truncated", "tail"],
)
def test_invalid_utf8_is_bad_utf8_on_both_implementations(utf8: bytes) -> None:
    data = bytes([(21 << 3) | 2, 0x01]) + varint(len(utf8)) + utf8  # device_id = 21
    result = failure(decode(DeviceRequest, data))
    assert result.code == "bad_utf8"
    assert "device_id" in result.reason


def test_invalid_utf8_in_a_map_value_names_the_map() -> None:
    entry = bytes([0x0A, 1]) + b"k" + bytes([0x12, 1]) + b"\xff"
    data = bytes([0x1A]) + varint(len(entry)) + entry
    result = failure(decode(DeviceRequest, data))
    assert result.code == "bad_utf8"
    assert "headers" in result.reason


def test_schedule_time_sent_with_the_wrong_wire_type_never_reads_as_now() -> None:
    good = valid_request().SerializeToString()
    data = good + bytes([(10 << 3) | 0, 5])  # schedule_time as a varint
    result = failure(decode(DeviceRequest, data))
    assert result.code == "wrong_type"
    assert "schedule_time" in result.reason
    # even where unknown fields are tolerated, a mistyped known field is not
    assert failure(decode(DeviceRequest, data, allow_unknown=True)).code == "wrong_type"


def test_wrong_wire_type_inside_a_nested_message_is_found() -> None:
    qos = bytes([(1 << 3) | 2, 1]) + b"x"  # priority (an enum) as a string
    data = valid_request().SerializeToString() + bytes([0xBA, 0x01]) + varint(len(qos)) + qos
    result = failure(decode(DeviceRequest, data))
    assert result.code == "wrong_type"
    assert "qos.priority" in result.reason


def test_unknown_field_is_refused_unless_allowed() -> None:
    data = valid_request().SerializeToString() + bytes([0xF8, 0xFF, 0xFF, 0xFF, 0x0F, 1])
    assert failure(decode(DeviceRequest, data)).code == "unknown_fields"
    assert failure(decode(CancelRequest, bytes([0x50, 1]))).code == "unknown_fields"
    assert isinstance(decode(DeviceRequest, data, allow_unknown=True), DeviceRequest)


def test_unknown_fields_in_nested_messages_are_found() -> None:
    inner = bytes([0x0A, 1]) + b"d" + bytes([0xF8, 0x07, 1])  # DeviceState + field 127
    changed = bytes([0x0A]) + varint(len(inner)) + inner
    data = bytes([0x0A]) + varint(len(changed)) + changed  # StateEvent.changed.state
    result = failure(decode(StateEvent, data))
    assert result.code == "unknown_fields"
    assert "changed.state" in result.reason


def test_an_avalanche_of_unknown_fields_is_refused_even_when_allowed() -> None:
    data = bytes([0xF8, 0x07, 1]) * 5000
    assert failure(decode(DeviceRequest, data, allow_unknown=True)).code == "unknown_fields"


@pytest.mark.parametrize(
    "data",
    [
        bytes([0x80] * 11 + [1]),  # 11-byte varint tag
        bytes([0x02, 0x01]),  # field number 0
        bytes([0x0E]),  # wire type 6
        bytes([0x0F]),  # wire type 7
        bytes([0x0C]),  # end-group without a start
        bytes([0x12]),  # length missing
        bytes([0x12, 0xFF, 0xFF, 0xFF, 0xFF, 0x07]),  # 2 GiB declared
        bytes([(7 << 3) | 1, 1, 2]),  # truncated 64-bit
        bytes([0x0B, 0x08, 0x01]),  # unterminated group
    ],
    ids=[
        "long-varint",
        "field-0",
        "wire-6",
        "wire-7",
        "stray-end-group",
        "no-length",
        "2gib",
        "short-fixed64",
        "open-group",
    ],
)
def test_corrupt_framing_is_malformed(data: bytes) -> None:
    assert failure(decode(DeviceRequest, data)).code == "malformed"


@settings(
    max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(st.binary(max_size=512))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    result = decode(DeviceRequest, data)
    assert isinstance(result, DeviceRequest | DecodeFailure)
    if isinstance(result, DecodeFailure):
        assert result.code in {
            "empty",
            "too_large",
            "too_deep",
            "malformed",
            "bad_utf8",
            "unknown_fields",
            "wrong_type",
        }


@settings(max_examples=200, deadline=None, database=None)
@given(st.data())
def test_mutated_valid_requests_never_raise(data: st.DataObject) -> None:
    good = bytearray(valid_request().SerializeToString())
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, len(good) - 1))
        good[pos] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(good)))
    result = decode(DeviceRequest, bytes(good[:cut]))
    assert isinstance(result, DeviceRequest | DecodeFailure)


def _full_check(msg_type: type[Any], data: bytes, allow_unknown: bool) -> object:
    """What ``decode`` answers with the schema walk on every payload (no plain fast path)."""
    with patch.object(codec, "_plain", lambda *_: False):
        return decode(msg_type, data, allow_unknown=allow_unknown)


def _same(a: object, b: object) -> bool:
    if isinstance(a, DecodeFailure) or isinstance(b, DecodeFailure):
        return a == b
    assert isinstance(a, Message) and isinstance(b, Message)
    return type(a) is type(b) and a.SerializeToString(deterministic=True) == b.SerializeToString(
        deterministic=True
    )


_PLAIN_TYPES = [RegistryEvent, DeviceRequest, StateEvent, DeviceResponse]


@settings(max_examples=400, deadline=None, database=None)
@given(
    st.sampled_from(_PLAIN_TYPES),
    st.text(max_size=20),
    st.binary(max_size=24),
    st.booleans(),
    st.booleans(),
)
def test_the_plain_fast_path_answers_as_the_full_check(
    msg_type: type[Any], text: str, tail: bytes, mutate: bool, allow_unknown: bool
) -> None:
    """A payload is judged plain (no unknown field anywhere, a schema of bounded depth) without
    the walk: the answer is the walk's, for valid messages with anything appended (unknown
    fields, duplicates, wrong wire types, garbage) or bytes flipped."""
    valid = {
        RegistryEvent: lambda: added(pipeline(4)[1], f"http://h/{text}", name=text),
        DeviceRequest: valid_request,
        StateEvent: lambda: state(text or "d", 5, upstream=["u"], checks=[("c", "FAILING", text)]),
        DeviceResponse: lambda: DeviceResponse(request_id=text, device_id="d"),
    }[msg_type]()
    data = valid.SerializeToString() + tail
    if mutate and data:
        data = bytes([data[0] ^ 0x08]) + data[1:]
    got = decode(msg_type, data, allow_unknown=allow_unknown)
    assert _same(got, _full_check(msg_type, data, allow_unknown))


@pytest.mark.skipif(not codec.UPB, reason="the plain fast path is upb's")
def test_a_plain_payload_skips_the_walk_and_one_with_extras_does_not() -> None:
    data = valid_request().SerializeToString()
    assert codec._plain(DeviceRequest.FromString(data), DEFAULT_MAX_DEPTH)
    # A default value written out (misfire_strategy = 0): longer than protobuf writes it, but
    # nothing unknown: plain, and the same answer as the walk's.
    longer = data + varint((11 << 3) | 0) + b"\x00"
    assert codec._plain(DeviceRequest.FromString(longer), DEFAULT_MAX_DEPTH)
    assert _same(decode(DeviceRequest, longer), _full_check(DeviceRequest, longer, False))
    # An unknown field: dropped by the check, so decode parses again and the walk sees it.
    extra = data + varint((99 << 3) | 0) + b"\x01"
    assert not codec._plain(DeviceRequest.FromString(extra), DEFAULT_MAX_DEPTH)
    assert failure(decode(DeviceRequest, extra)).code == "unknown_fields"
    assert isinstance(decode(DeviceRequest, extra, allow_unknown=True), DeviceRequest)
    # A recursive schema has no depth bound: always walked.
    assert codec._schema_depth(Struct.DESCRIPTOR) is None
    assert not codec._plain(Struct(), DEFAULT_MAX_DEPTH)


def test_a_short_encoding_cannot_hide_a_wrong_typed_schedule_time() -> None:
    """A known field written shorter than protobuf writes it (a negative enum in 5 bytes, 10
    when re-serialized) must not cover for a schedule_time sent as a varint of the same size:
    that one would read as "" = now."""
    req = valid_request()
    req.ClearField("schedule_time")
    short_enum = varint((11 << 3) | 0) + b"\xff\xff\xff\xff\x0f"  # misfire_strategy = -1
    wrong = varint((10 << 3) | 0) + b"\x81\x80\x80\x01"  # schedule_time as a 5-byte varint
    data = req.SerializeToString() + short_enum + wrong
    known = DeviceRequest.FromString(data)
    known.DiscardUnknownFields()
    assert known.ByteSize() == len(data)  # the payload's length alone would not tell
    assert failure(decode(DeviceRequest, data, allow_unknown=True)).code == "wrong_type"
