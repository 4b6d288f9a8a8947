"""Protocol chaos generators: each class really is what it says, for more than one message type."""

from __future__ import annotations

import collections

import pytest

from pipeconsole.chaos import mangle
from pipeconsole.chaos.protocol import EvilSerializer, ProtocolChaos, codec_decodes
from pipeconsole.chaos.traffic import device_request_chaos, request_factory
from pipeconsole.wire.codec import DecodeFailure, decode
from pipeconsole.wire.gen.device_request_pb2 import CancelRequest, DeviceRequest
from pipeconsole.wire.gen.device_state_pb2 import StateEvent
from pipeconsole.wire.validate import validate_cancel, validate_request


def request_chaos(seed: int = 7) -> ProtocolChaos[DeviceRequest]:
    return device_request_chaos(request_factory(["encode-01", "package-02"]), seed=seed)


def cancel_chaos(seed: int = 7) -> ProtocolChaos[CancelRequest]:
    def base(rng: object) -> CancelRequest:
        import random
        import uuid

        assert isinstance(rng, random.Random)
        return CancelRequest(
            request_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            device_id="encode-01",
            issued_by="op",
            issued_at="2026-11-26T11:00:00Z",
            reason="no longer needed",
            nonce=uuid.UUID(int=rng.getrandbits(128), version=4).hex,
        )

    return ProtocolChaos(
        CancelRequest,
        seed=seed,
        base=base,
        decodes=codec_decodes(CancelRequest),
        validate=validate_cancel,
    )


def test_the_valid_base_requests_are_valid() -> None:
    gen = request_chaos()
    for _ in range(20):
        req = gen.valid()
        assert validate_request(req) == []
        assert isinstance(decode(DeviceRequest, req.SerializeToString()), DeviceRequest)


@pytest.mark.parametrize("make", [request_chaos, cancel_chaos], ids=["request", "cancel"])
def test_class1_every_kind_fails_to_decode(make: object) -> None:
    gen = make()  # type: ignore[operator]
    msg_type = gen.msg_type
    for _ in range(3):  # several rounds: damage is random
        for m in gen.all_of(1):
            got = decode(msg_type, m.data)
            assert isinstance(got, DecodeFailure), (m.kind, m.data[:40])
            assert m.chaos_class == 1
    assert {m.kind for m in gen.generate(1, len(mangle.KINDS))} == set(mangle.KINDS)


def test_class1_payloads_are_the_papers_shapes() -> None:
    gen = request_chaos()
    assert gen.one("empty").data == b""
    bomb = gen.one("unterminated_groups").data
    assert bomb.endswith(b"\x63" * 20_000)
    assert decode(DeviceRequest, bomb[: len(bomb) - 20_000]) is not None  # a valid prefix
    assert gen.one("overflow_padded").data.endswith(mangle.STACK_BOMB)
    assert mangle.varint(mangle.TEN_MIB) in gen.one("declared_10mib_string").data
    assert b"\xff" * 10 + b"\x01" in gen.one("overlong_varint").data


def test_class2_decodes_and_fails_validation_for_requests() -> None:
    gen = request_chaos()
    got = list(gen.all_of(2))
    assert len(got) > 50
    for m in got:
        msg = decode(DeviceRequest, m.data)
        assert isinstance(msg, DeviceRequest), (m.kind, m.field)
        assert validate_request(msg), (m.kind, m.field)
    kinds = collections.Counter(m.kind for m in got)
    # the field-name hints of the issue, all represented
    for kind in (
        "impossible_date",
        "zone_id_suffix",
        "non_uuid",
        "absolute_uri",
        "traversal",
        "double_percent",
        "injection",
        "non_token",
        "undeclared_enum",
        "huge_map",
        "huge_string",
    ):
        assert kinds[kind] > 0, kind
    assert {"schedule_time", "deadline", "uri", "method", "entity_content_type"} <= {
        m.field for m in got
    }
    assert any(m.field == "qos.priority" for m in got)  # nested messages are walked


def test_class2_decodes_and_fails_validation_for_cancels() -> None:
    gen = cancel_chaos()
    got = list(gen.all_of(2))
    assert got
    for m in got:
        msg = decode(CancelRequest, m.data)
        assert isinstance(msg, CancelRequest)
        assert validate_cancel(msg), (m.kind, m.field)
    assert {"request_id", "issued_at"} <= {m.field for m in got}


def test_class3_passes_validation_where_the_field_allows_it() -> None:
    gen = request_chaos()
    got = list(gen.all_of(3))
    assert len(got) > 100
    for m in got:
        msg = decode(DeviceRequest, m.data)
        assert isinstance(msg, DeviceRequest)
        assert validate_request(msg) == [], (m.kind, m.field)
    fields = {m.field for m in got}
    assert {"uri", "headers", "entity", "issued_by"} <= fields
    kinds = {m.kind for m in got}
    assert {"naughty", "terminal_escape", "markup", "bidi", "entity_at_cap"} <= kinds
    at_cap = next(m for m in got if m.kind == "entity_at_cap")
    assert len(at_cap.data) > 800_000
    # the escape really travels in the entity: nothing strips it on the way
    esc = [m for m in got if m.kind == "terminal_escape" and m.field == "entity"]
    assert esc and any(b"\x1b" in m.data for m in esc)


def test_class3_cancels_pass_validation() -> None:
    got = list(cancel_chaos().all_of(3))
    assert got
    for m in got:
        msg = decode(CancelRequest, m.data)
        assert isinstance(msg, CancelRequest)
        assert validate_cancel(msg) == []


def test_any_descriptor_works_without_oracles() -> None:
    """A message with oneofs, repeated messages, doubles and uint64: no per-type code needed."""
    gen = ProtocolChaos(StateEvent, seed=1)
    c1 = list(gen.all_of(1))
    assert all(isinstance(decode(StateEvent, m.data), DecodeFailure) for m in c1)
    c2 = list(gen.all_of(2))
    assert {"float_edge", "int_edge", "huge_repeated"} <= {m.kind for m in c2}
    assert all(isinstance(decode(StateEvent, m.data), StateEvent) for m in c2)


def test_same_seed_same_messages() -> None:
    def run(seed: int) -> list[bytes]:
        g = ProtocolChaos(CancelRequest, seed=seed)
        return [m.data for c in (1, 2, 3) for m in g.generate(c, 15)]

    assert run(5) == run(5)
    assert run(5) != run(6)


def test_evil_serializer_mixes_at_the_papers_rates() -> None:
    gen = request_chaos()
    evil = EvilSerializer(gen)  # 1/10 empty, 1/10 bit-flipped, 1/10 overflow-padded
    out = list(evil.stream(3000))
    kinds = collections.Counter(e.chaos.kind if e.chaos else "valid" for e in out)
    for k in ("empty", "bit_flip", "overflow_padded"):
        assert 220 <= kinds[k] <= 380, kinds
    for e in out:
        ok = decode(DeviceRequest, e.data)
        if e.chaos is None:
            assert isinstance(ok, DeviceRequest) and validate_request(ok) == []
        else:
            assert isinstance(ok, DecodeFailure)


def test_evil_serializer_refuses_unknown_kinds_and_rates_over_one() -> None:
    gen = request_chaos()
    with pytest.raises(ValueError, match="unknown chaos kind"):
        EvilSerializer(gen, {"nope": 0.1})
    with pytest.raises(ValueError, match="sum to at most 1"):
        EvilSerializer(gen, {"empty": 0.6, "class2": 0.6})
