"""The ledger on a mixed run: every input ends in exactly one final state, poison included,
and the harness itself notices an input without one."""

from __future__ import annotations

import random

from ledger import Ledger, check_devices, wait_for
from relkit import Sender, ServiceThread, at, request, settings

from pipeconsole.actors.dlq import HEADER_PREFIX
from pipeconsole.config import Profile
from pipeconsole.sim.fleet import Fleet


def test_every_input_ends_in_exactly_one_final_state(
    profile: Profile, fleet: Fleet, ledger: Ledger, sender: Sender
) -> None:
    rng = random.Random(11)
    devs = [d.device_id for d in fleet.devices]
    now = [request(rng.choice(devs)) for _ in range(60)]
    soon = [request(rng.choice(devs), schedule=at(1.0)) for _ in range(10)]
    forgot = [request(rng.choice(devs), schedule=at(-120), forget=True) for _ in range(5)]
    to_cancel = [request(rng.choice(devs), schedule=at(60), deadline=at(90)) for _ in range(5)]
    invalid = [request(rng.choice(devs), uri="http://evil.example/../x") for _ in range(5)]
    expired = [request(rng.choice(devs), deadline=at(-5)) for _ in range(5)]
    dup = now[0]
    svc = ServiceThread(profile, settings())
    try:
        svc.wait_ready()
        sender.requests(now + soon + forgot + to_cancel + invalid + expired + [dup])
        junk = [b"\xff" * 11, b"\x0a\xff\xff\xff\x7f", b""]
        sender.raw((devs[0].encode(), j) for j in junk)
        scheduled = {r.request_id for r in to_cancel}
        wait_for(
            lambda: scheduled <= {m.request_id for m in ledger.response_values() if m.outcome == 1},
            60,
            "the far-future requests to be SCHEDULED",
        )
        for r in to_cancel:
            sender.cancel(r)
        inputs = len(now + soon + forgot + to_cancel + invalid + expired) + len(junk)
        b = ledger.wait_balanced(90, expect_inputs=inputs)
        assert b.inputs == inputs == sum(b.finals.values())
        assert b.records == inputs + 1  # the duplicate record is one input, not two
        assert b.finals["OK"] == len(now) + len(soon)
        assert b.finals["MISFIRED"] == len(forgot)
        assert b.finals["CANCELLED"] == len(to_cancel)
        # An already-past deadline is refused by the validator or expires at fire time.
        assert b.finals["REJECTED"] + b.finals["DEADLINE_EXCEEDED"] == len(invalid) + len(
            junk
        ) + len(expired)
        assert b.finals["REJECTED"] >= len(invalid) + len(junk)
        assert not ledger.cancels_settled()
        check_devices(ledger, fleet.devices)
    finally:
        svc.stop()


def test_the_ledger_sees_an_input_nobody_answered(
    profile: Profile, ledger: Ledger, sender: Sender
) -> None:
    reqs = [request("nobody-home") for _ in range(3)]
    sender.requests(reqs)
    wait_for(lambda: len(ledger.request_records()) == 3, 20, "three request records")
    b = ledger.balance()
    assert not b.ok
    assert set(b.missing) == {r.request_id for r in reqs}
    try:
        ledger.wait_balanced(0.5)
    except AssertionError as exc:
        assert "missing 3" in str(exc)
    else:
        raise AssertionError("an unanswered input must not balance")


def test_poison_goes_to_the_dlq_with_original_bytes_and_headers(
    profile: Profile, fleet: Fleet, ledger: Ledger, sender: Sender
) -> None:
    dev = fleet.devices[0].device_id
    poison = b"\x0a\xff\xff\xff\xff\x0f" + b"c" * 200
    own = [("trace-id", b"abc\x00\xff"), ("x-origin", b"rel")]
    svc = ServiceThread(profile, settings())
    try:
        svc.wait_ready()
        sender.raw([(dev.encode(), poison)], headers=own)
        wait_for(lambda: len(ledger.dlq_records()) == 1, 30, "one dead letter")
        letter = ledger.dlq_records()[0]
        src = ledger.request_records()[0]
        assert letter.value == poison and letter.key == dev.encode()
        for k, v in own:
            assert letter.header(k) == v
        assert letter.header(HEADER_PREFIX + "topic") == profile.topics.request.encode()
        assert letter.header(HEADER_PREFIX + "partition") == str(src.partition).encode()
        assert letter.header(HEADER_PREFIX + "offset") == str(src.offset).encode()
        assert letter.header(HEADER_PREFIX + "reason")
        assert letter.header(HEADER_PREFIX + "attempts") == b"1"
        b = ledger.wait_balanced(30, expect_inputs=1)
        assert b.finals == {"REJECTED": 1}
    finally:
        svc.stop()
