"""Ownership depends on computing the producers' partition of a device id in Python."""

from __future__ import annotations

from pipeconsole.actors.partitioner import crc32_partition
from pipeconsole.config import Profile
from pipeconsole.kafka.producer import ConfirmingProducer, wait_all


def test_default_producer_partitions_device_ids_by_crc32(profile: Profile) -> None:
    n = profile.topics.request_partitions
    keys = [f"device-{i:03d}" for i in range(64)]
    with ConfirmingProducer(profile) as producer:
        futs = [producer.send(profile.topics.request, b"x", k) for k in keys]
        delivered = wait_all(futs, 30)
    assert len({d.partition for d in delivered}) > 1
    assert [d.partition for d in delivered] == [crc32_partition(k.encode(), n) for k in keys]
