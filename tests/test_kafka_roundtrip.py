"""The Kafka plumbing against a real broker: confirmed sends, assign() reads, nothing lost."""

from __future__ import annotations

import socket
import uuid
from dataclasses import replace

import pytest

from pipeconsole.config import Profile
from pipeconsole.kafka.admin import group_lag
from pipeconsole.kafka.producer import ConfirmingProducer, wait_all
from pipeconsole.kafka.reader import AssignReader
from pipeconsole.wire.gen.device_request_pb2 import DeviceRequest


def test_ten_thousand_requests_round_trip_unchanged(profile: Profile) -> None:
    sent: dict[str, bytes] = {}
    with ConfirmingProducer(profile) as producer:
        futures = []
        for i in range(10_000):
            req = DeviceRequest(
                method="POST",
                uri=f"/streams/{i}/start",
                request_id=str(uuid.uuid4()),
                device_id=f"dev-{i % 37:03d}",
                entity=b"x" * (i % 50),
            )
            value = req.SerializeToString()
            sent[req.request_id] = value
            futures.append(producer.send(profile.topics.request, value, key=req.device_id))
        deliveries = wait_all(futures, timeout=120)
    assert len({(d.partition, d.offset) for d in deliveries}) == 10_000

    with AssignReader(profile, [profile.topics.request]) as reader:
        records = reader.read_to_end(timeout=120)
    got: dict[str, bytes] = {}
    for r in records:
        assert r.value is not None
        req = DeviceRequest.FromString(r.value)
        assert r.key == req.device_id.encode()
        got[req.request_id] = r.value
    assert len(records) == 10_000
    assert got == sent


def test_same_device_lands_on_one_partition(profile: Profile) -> None:
    with ConfirmingProducer(profile) as producer:
        parts = {
            producer.send_sync(profile.topics.request, b"v", key="encoder-01", timeout=30).partition
            for _ in range(20)
        }
    assert len(parts) == 1


def test_reading_to_the_end_from_the_end_returns_nothing_at_once(profile: Profile) -> None:
    with ConfirmingProducer(profile) as producer:
        producer.send_sync(profile.topics.state, b"old", key="d", timeout=30)
    future_ms = 4_102_444_800_000  # 2100-01-01: no record at or after it
    for start in ("end", future_ms):
        with AssignReader(profile, [profile.topics.state], start) as reader:
            assert reader.read_to_end(timeout=5) == []
    with AssignReader(profile, [profile.topics.state], "beginning") as reader:
        assert [r.value for r in reader.read_to_end(timeout=30)] == [b"old"]


def test_group_settings_in_a_profile_do_not_break_the_assign_only_clients(
    profile: Profile,
) -> None:
    """A profile tuned for the actors' group (a short max.poll.interval.ms, below librdkafka's
    45 s default session timeout) still serves the readers and the lag probe, which never join
    a group: librdkafka would refuse them that setting ("must be >= session.timeout.ms")."""
    tuned = replace(profile, kafka={**profile.kafka, "max.poll.interval.ms": 6000})
    with ConfirmingProducer(tuned) as producer:
        producer.send(tuned.topics.audit, b"x", key="k").result(30)
    with AssignReader(tuned, [tuned.topics.audit]) as reader:
        assert [r.value for r in reader.read_to_end()] == [b"x"]
    assert group_lag(tuned, "nobody", [tuned.topics.request])  # a row per partition


def test_a_broker_whose_picked_port_was_taken_starts_on_another(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The port is picked free, then bound by Tansu: another process may take it in between
    (here, one that listens and never answers Kafka). The broker comes up on a new port."""
    import pipeconsole.broker as broker_mod
    from pipeconsole.kafka.admin import wait_ready

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        picks: list[int] = []
        real = broker_mod.free_port

        def pick(host: str = "127.0.0.1") -> int:
            picks.append(port if not picks else real(host))
            return picks[-1]

        def ready(bootstrap: str, timeout: float) -> None:
            # The impostor accepts connections; Kafka's answer never comes. Not a whole
            # start-up timeout's wait for it in a test.
            wait_ready(bootstrap, 2.0 if bootstrap.endswith(f":{port}") else timeout)

        monkeypatch.setattr(broker_mod, "free_port", pick)
        with broker_mod.EmbeddedBroker(ready=ready) as b:
            assert len(picks) == 2 and b.port == picks[1] != port
            assert b.running()


def test_a_port_given_and_taken_or_a_host_not_ours_is_one_clear_error_at_once() -> None:
    """Given --port, the broker used to wait its whole 30 s start-up on whoever held the port
    (Tansu panics in a worker thread and lives on); --host 999.9.9.9 was a traceback."""
    import subprocess
    import sys

    from pipeconsole.broker import BrokerError, EmbeddedBroker

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(BrokerError, match=f"cannot listen on 127.0.0.1:{port}: Address"):
            EmbeddedBroker(port).start()
        cli = subprocess.run(
            [sys.executable, "-m", "pipeconsole", "broker", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert cli.returncode == 1 and "in use" in cli.stderr and "Traceback" not in cli.stderr
    for host in ("999.9.9.9", "192.0.2.1"):  # not a name; an address of another machine
        cli = subprocess.run(
            [sys.executable, "-m", "pipeconsole", "broker", "--host", host],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert cli.returncode == 1, cli.stderr
        assert cli.stderr.startswith(f"pipeconsole: error: cannot listen on {host}: "), cli.stderr
