"""Which partition a device id lands on: the producer's partitioner, in plain Python.

The actor that owns a device is the one assigned the partition its requests are produced to.
A device with no requests yet must still be health-checked by exactly one instance, so the
service computes that partition itself, with the same function the producers use.

librdkafka (and so confluent-kafka's ``Producer``) defaults to ``partitioner=consistent_random``:
CRC-32 of the key modulo the partition count (keyless records go to a random partition). Java
clients default to murmur2; a profile that sets ``partitioner=murmur2_random`` (or ``murmur2``)
in its ``kafka`` table gets that function here as well. ``test_actor_partitioner`` checks CRC-32
against records a real producer wrote; murmur2 is checked against Kafka's reference values.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

__all__ = ["crc32_partition", "murmur2", "murmur2_partition", "partitioner_for"]


def crc32_partition(key: bytes, partitions: int) -> int:
    """librdkafka's ``consistent`` / ``consistent_random`` for a non-empty key."""
    return zlib.crc32(key) % partitions


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 (the Java client's ``Utils.murmur2``), as a signed 32-bit value."""
    m = 0x5BD1E995
    r = 24
    length = len(data)
    h = (0x9747B28C ^ length) & 0xFFFFFFFF
    n4 = length // 4
    for i in range(n4):
        k = int.from_bytes(data[4 * i : 4 * i + 4], "little")
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> r
        k = (k * m) & 0xFFFFFFFF
        h = (h * m) & 0xFFFFFFFF
        h ^= k
    rest = length % 4
    tail = data[4 * n4 :]
    if rest == 3:
        h ^= tail[2] << 16
    if rest >= 2:
        h ^= tail[1] << 8
    if rest >= 1:
        h ^= tail[0]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def murmur2_partition(key: bytes, partitions: int) -> int:
    """``murmur2_random`` / the Java default: ``(murmur2(key) & 0x7fffffff) % n``."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def partitioner_for(name: str | None) -> Callable[[bytes, int], int]:
    """The partition function for librdkafka's ``partitioner`` setting (default: CRC-32)."""
    if name and name.startswith("murmur2"):
        return murmur2_partition
    return crc32_partition
