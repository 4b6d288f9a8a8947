"""Signed requests: each way a token can be wrong gives its own reason; a good one passes once."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeconsole.actions.sign import (
    REASONS,
    KeyFileError,
    NonceCache,
    Verifier,
    canonical,
    load_keys,
    sign,
)
from pipeconsole.wire.gen.device_request_pb2 import CancelRequest, DeviceRequest

KEYS = {"ops-1": "s3cret", "ops-2": "other"}


class Clock:
    def __init__(self, t: float = 1_800_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def _request() -> DeviceRequest:
    req = DeviceRequest(
        method="POST",
        uri="/streams/s1/start",
        entity=b'{"profile":"hd"}',
        entity_content_type="application/json",
        request_id="8a3e5f9e-8f3a-4f7e-9a55-0c7a1b2c3d4e",
        device_id="transcode-03",
        issued_by="ops-1",
    )
    req.headers["X-B"] = "2"
    req.headers["X-A"] = "1"
    req.qos.max_attempts = 3
    return req


def test_valid_token_passes_once_then_the_nonce_is_spent() -> None:
    clock = Clock()
    v = Verifier(KEYS, clock)
    signed = sign(_request(), "ops-1", "s3cret", 60, clock=clock)
    assert signed.nonce and signed.token.startswith("v1.ops-1.")
    assert v.verify(signed) is None
    assert v.verify(signed) == REASONS["nonce_reused"]


def test_each_bad_token_is_rejected_with_its_own_reason() -> None:
    clock = Clock()
    v = Verifier(KEYS, clock)
    good = sign(_request(), "ops-1", "s3cret", 60, clock=clock)

    unsigned = DeviceRequest()
    unsigned.CopyFrom(good)
    unsigned.token = ""
    assert v.check(unsigned) == "unsigned"

    tampered = DeviceRequest()
    tampered.CopyFrom(good)
    tampered.entity = b'{"profile":"4k"}'
    assert v.check(tampered) == "bad_signature"

    wrong_secret = sign(_request(), "ops-1", "guessed", 60, clock=clock)
    assert v.check(wrong_secret) == "bad_signature"

    unknown = sign(_request(), "intruder", "s3cret", 60, clock=clock)
    assert v.check(unknown) == "unknown_key"

    expired = sign(_request(), "ops-1", "s3cret", 1, clock=clock)
    clock.t += 60
    assert v.check(expired) == "expired"

    garbled = DeviceRequest()
    garbled.CopyFrom(good)
    garbled.token = "v1.ops-1.notanumber.zz"
    assert v.check(garbled) == "malformed"


def test_tampering_any_field_breaks_the_signature() -> None:
    clock = Clock()
    v = Verifier(KEYS, clock)
    good = sign(_request(), "ops-1", "s3cret", 60, clock=clock)
    changes = {
        "method": lambda r: setattr(r, "method", "PUT"),
        "header": lambda r: r.headers.__setitem__("X-A", "9"),
        "new header": lambda r: r.headers.__setitem__("X-C", ""),
        "qos": lambda r: setattr(r.qos, "max_attempts", 4),
        "device": lambda r: setattr(r, "device_id", "transcode-04"),
        "nonce": lambda r: setattr(r, "nonce", "0" * 32),
        "replay_of": lambda r: setattr(r, "replay_of", "x"),
    }
    for name, change in changes.items():
        r = DeviceRequest()
        r.CopyFrom(good)
        change(r)
        assert v.check(r) == "bad_signature", name


def test_canonical_form_is_deterministic_and_header_order_free() -> None:
    a = _request()
    b = DeviceRequest()
    b.CopyFrom(a)
    b.headers.clear()
    b.headers["X-A"] = "1"
    b.headers["X-B"] = "2"
    assert canonical(a) == canonical(b)
    # Boundaries are length-prefixed: moving bytes between fields changes the form.
    c = DeviceRequest(method="POST", uri="/a")
    d = DeviceRequest(method="POST/", uri="a")
    assert canonical(c) != canonical(d)
    assert canonical(a).startswith(b"pipeconsole-canonical-v1\npipeconsole.v1.DeviceRequest\n")
    # The token itself is not signed.
    e = DeviceRequest()
    e.CopyFrom(a)
    e.token = "anything"
    assert canonical(e) == canonical(a)


def test_a_request_signature_is_not_valid_for_a_cancel() -> None:
    clock = Clock()
    v = Verifier(KEYS, clock)
    cancel = sign(
        CancelRequest(request_id="r1", device_id="d1"), "ops-1", "s3cret", 60, clock=clock
    )
    assert v.check(cancel) is None
    forged = DeviceRequest(request_id="r1", device_id="d1", nonce=cancel.nonce, token=cancel.token)
    assert v.check(forged) == "bad_signature"


def test_redelivery_of_the_same_record_is_not_a_replay() -> None:
    clock = Clock()
    v = Verifier(KEYS, clock)
    signed = sign(_request(), "ops-1", "s3cret", 60, clock=clock)
    assert v.check(signed, position="t/0/17") is None
    assert v.check(signed, position="t/0/17") is None
    assert v.check(signed, position="t/0/18") == "nonce_reused"


def test_nonce_cache_forgets_expired_tokens_and_fails_closed_when_full() -> None:
    clock = Clock()
    cache = NonceCache(max_entries=2)
    v = Verifier(KEYS, clock, cache, skew_s=0)
    first = sign(_request(), "ops-1", "s3cret", 10, clock=clock)
    second = sign(_request(), "ops-1", "s3cret", 10, clock=clock)
    third = sign(_request(), "ops-1", "s3cret", 10, clock=clock)
    assert v.check(first) is None and v.check(second) is None
    assert v.check(third) == "nonce_cache_full"
    clock.t += 11
    fourth = sign(_request(), "ops-1", "s3cret", 10, clock=clock)
    assert v.check(fourth) is None
    assert len(cache) == 1


def test_overlong_token_lifetime_is_refused() -> None:
    clock = Clock()
    v = Verifier(KEYS, clock, max_ttl_s=60)
    assert v.check(sign(_request(), "ops-1", "s3cret", 3600, clock=clock)) == "too_long"


def test_sign_refuses_bad_configuration() -> None:
    with pytest.raises(ValueError, match="key id"):
        sign(_request(), "bad.id", "s", 60)
    with pytest.raises(ValueError, match="secret"):
        sign(_request(), "ok", "", 60)


def test_keys_file(tmp_path: Path) -> None:
    good = tmp_path / "keys.toml"
    good.write_text('[keys]\nops-1 = "s3cret"\n')
    assert load_keys(good) == {"ops-1": "s3cret"}
    bad = tmp_path / "bad.toml"
    bad.write_text('[keys]\n"a.b" = "x"\n')
    with pytest.raises(KeyFileError, match="must match"):
        load_keys(bad)
    with pytest.raises(KeyFileError, match="cannot read"):
        load_keys(tmp_path / "missing.toml")
