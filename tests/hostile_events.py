"""Hypothesis strategies for every kind of event the console folds, generated from the message
descriptors with any value of each field's wire type (a helper for
tests/model/test_model_hostile_events.py and tests/ui/test_ui_untrusted.py; tests/ is on the
path as the root conftest's folder).

The strategy walks each descriptor: doubles take NaN, infinities and 1e308; integers their
whole range (times in 1970 and in 292,471,208 AD, negative counts); enums undeclared numbers;
strings anything (control characters, bidi overrides); repeated fields up to a few items;
one field of each oneof. A few ids are shared across events so that requests, responses,
states and registry entries meet on the same devices and request ids.
"""

from __future__ import annotations

from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from hypothesis import strategies as st

from pipeconsole.model.fixtures import FIXED_NOW_MS
from pipeconsole.model.requests import DlqRecord
from pipeconsole.wire.gen import (
    audit_pb2,
    chaos_pb2,
    device_request_pb2,
    device_response_pb2,
    device_state_pb2,
    registry_pb2,
)

_IDS = ["enc-1", "tx-1", "\x1b]0;pwned\x07", "", "6f1c2a9e-51b4-4c2e-9d3a-0b7e5c1f2a48"]
_SHARED = st.sampled_from(_IDS)
_TIMES = st.one_of(
    st.integers(FIXED_NOW_MS - 120_000, FIXED_NOW_MS + 120_000),
    st.integers(-(2**63), 2**63 - 1),
)
_INTS = {
    FieldDescriptor.TYPE_INT32: st.integers(-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SINT32: st.integers(-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SFIXED32: st.integers(-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_INT64: st.integers(-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SINT64: st.integers(-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SFIXED64: st.integers(-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_UINT32: st.integers(0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: st.integers(0, 2**32 - 1),
    FieldDescriptor.TYPE_UINT64: st.integers(0, 2**64 - 1),
    FieldDescriptor.TYPE_FIXED64: st.integers(0, 2**64 - 1),
}


def _scalar(f: FieldDescriptor) -> st.SearchStrategy[Any]:
    t = f.type
    if t in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return st.floats(allow_nan=True, allow_infinity=True, width=64 if t == 1 else 32)
    if t == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if t == FieldDescriptor.TYPE_STRING:
        if f.name.endswith("_id") or f.name in ("peer_id", "replay_of", "targets"):
            return st.one_of(_SHARED, st.text(max_size=20))
        return st.text(max_size=40)
    if t == FieldDescriptor.TYPE_BYTES:
        return st.binary(max_size=40)
    if t == FieldDescriptor.TYPE_ENUM:
        return st.integers(-3, 12)  # declared numbers and a few that are not
    if "time" in f.name or f.name.endswith("_ms"):
        return _TIMES if t in (3, 4, 6, 16, 18) else _INTS[t]
    return _INTS[t]


def message(desc: Descriptor, depth: int = 0) -> st.SearchStrategy[dict[str, Any]]:
    """Keyword arguments for ``desc``'s class: every field possibly set, one of each oneof."""
    fields: dict[str, st.SearchStrategy[Any]] = {}
    for f in desc.fields:
        if f.containing_oneof is not None:
            continue
        if f.type == FieldDescriptor.TYPE_MESSAGE:
            if f.message_type.GetOptions().map_entry:
                value = st.dictionaries(st.text(max_size=8), st.text(max_size=20), max_size=3)
            elif depth >= 3:
                continue
            else:
                inner = message(f.message_type, depth + 1)
                value = inner.map(lambda kw, c=f.message_type._concrete_class: c(**kw))
        else:
            value = _scalar(f)
        if f.is_repeated and not (
            f.type == FieldDescriptor.TYPE_MESSAGE and f.message_type.GetOptions().map_entry
        ):
            value = st.lists(value, max_size=4)
        fields[f.name] = value
    base = st.fixed_dictionaries({}, optional=fields)
    for oneof in desc.oneofs:
        choices = [
            message(f.message_type, depth + 1).map(
                lambda kw, n=f.name, c=f.message_type._concrete_class: {n: c(**kw)}
            )
            if f.type == FieldDescriptor.TYPE_MESSAGE
            else _scalar(f).map(lambda v, n=f.name: {n: v})
            for f in oneof.fields
        ]
        base = st.tuples(base, st.one_of(*choices, st.just({}))).map(lambda p: {**p[0], **p[1]})
    return base


def _events(cls: Any) -> st.SearchStrategy[Any]:
    return message(cls.DESCRIPTOR).map(lambda kw: cls(**kw))


ANY_EVENT = st.one_of(
    _events(device_state_pb2.StateEvent),
    _events(registry_pb2.RegistryEvent),
    _events(device_request_pb2.DeviceRequest),
    _events(device_response_pb2.DeviceResponse),
    _events(chaos_pb2.ChaosExperiment),
    _events(audit_pb2.AuditRecord),
    st.builds(
        DlqRecord,
        st.just("device-request-dlq-v1"),
        st.integers(0, 5),
        st.integers(0, 2**40),
        _TIMES,
        st.one_of(st.none(), st.binary(max_size=20)),
        st.one_of(st.none(), st.binary(max_size=60)),
        st.lists(st.tuples(st.text(max_size=30), st.binary(max_size=30)), max_size=4).map(tuple),
    ),
)
