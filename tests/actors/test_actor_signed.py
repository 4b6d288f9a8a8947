"""Signed mode: with a token verifier, the actors execute only signed requests and apply only
signed cancels; ``pipeconsole dispatch --keys`` refuses an unusable key file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from actor_harness import Responses, Sender, ServiceThread, at, request, settings

from pipeconsole.actions.sign import Verifier, sign
from pipeconsole.config import Profile
from pipeconsole.sim.fleet import Fleet
from pipeconsole.wire.gen.device_request_pb2 import CancelRequest
from pipeconsole.wire.gen.device_response_pb2 import DeviceResponse as R

KEY_ID, SECRET = "ops-1", "actor-test-secret"


class RecordingVerifier:
    """The real verifier, remembering the positions it was given."""

    def __init__(self) -> None:
        self.inner = Verifier({KEY_ID: SECRET})
        self.positions: list[str | None] = []

    def __call__(self, msg: object, *, position: str | None = None) -> str | None:
        self.positions.append(position)
        return self.inner(msg, position=position)  # type: ignore[arg-type]


def _cancel(sender: Sender, profile: Profile, c: CancelRequest) -> None:
    sender.producer.send_sync(
        profile.topics.control, c.SerializeToString(), c.device_id, timeout=30
    )


def test_signed_mode_executes_signed_requests_and_refuses_unsigned_ones_and_cancels(
    profile: Profile, fleet: Fleet, responses: Responses, sender: Sender
) -> None:
    dev = fleet.devices[0].device_id
    verifier = RecordingVerifier()
    svc = ServiceThread(profile, settings(), verifier=verifier)
    try:
        svc.wait_ready()
        good = sign(request(dev), KEY_ID, SECRET)
        unsigned = request(dev)
        forged = sign(request(dev), KEY_ID, "another-secret")
        # Scheduled ahead, so that cancels can reach them while pending (even on a loaded
        # machine).
        target = sign(request(dev, schedule=at(10), deadline=at(60)), KEY_ID, SECRET)
        cancelled = sign(request(dev, schedule=at(10), deadline=at(60)), KEY_ID, SECRET)
        sender.requests([good, unsigned, forged, target, cancelled])
        responses.wait(
            lambda: (
                {target.request_id, cancelled.request_id}
                <= {m.request_id for m in responses.values() if m.outcome == R.SCHEDULED}
            ),
            20,
            "the scheduled requests to be accepted",
        )
        unsigned_cancel = CancelRequest(
            request_id=target.request_id, device_id=dev, issued_by="test", nonce="n-1"
        )
        _cancel(sender, profile, unsigned_cancel)
        signed_cancel = sign(
            CancelRequest(request_id=cancelled.request_id, device_id=dev, issued_by="test"),
            KEY_ID,
            SECRET,
        )
        _cancel(sender, profile, signed_cancel)

        rids = [good, unsigned, forged, target, cancelled]
        finals = responses.wait_final([r.request_id for r in rids], 60)
        assert finals[good.request_id].outcome == R.OK
        assert finals[unsigned.request_id].outcome == R.REJECTED
        assert "unsigned" in finals[unsigned.request_id].reason
        assert finals[forged.request_id].outcome == R.REJECTED
        assert "bad signature" in finals[forged.request_id].reason
        # The unsigned cancel was refused (REJECTED, no request id) and not applied.
        assert finals[target.request_id].outcome == R.OK
        assert finals[cancelled.request_id].outcome == R.CANCELLED
        refused_cancels = [
            m
            for m in responses.values()
            if m.outcome == R.REJECTED and not m.request_id and "cancel of" in m.reason
        ]
        assert len(refused_cancels) == 1
        assert target.request_id in refused_cancels[0].reason
        assert "unsigned" in refused_cancels[0].reason
        # Every record was verified with where it was read, so a redelivery is not a replay.
        topics = {profile.topics.request, profile.topics.control}
        assert verifier.positions and all(
            p is not None and p.rsplit("/", 2)[0] in topics for p in verifier.positions
        )
    finally:
        svc.stop()


def test_dispatch_refuses_an_unusable_key_file(tmp_path: Path) -> None:
    bad = tmp_path / "keys.toml"
    bad.write_text("[keys]\n", encoding="utf-8")
    done = subprocess.run(
        [
            *(sys.executable, "-m", "pipeconsole", "dispatch"),
            *("--bootstrap", "127.0.0.1:1", "--keys", str(bad)),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "keys" in done.stderr and str(bad) in done.stderr
