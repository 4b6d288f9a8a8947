"""Dead-letter records: the original bytes and headers, plus why and where they came from.

A DLQ record keeps the source record's key, value and headers untouched and adds
``pipeconsole.dlq.*`` headers (in the manner of Kafka Connect's ``__connect.errors.*``):
source topic, partition, offset and timestamp, a reason code, the one-line reason, the number of
attempts, the time it was dead-lettered and which actor did it. Replaying a DLQ record means
re-producing its value to the source topic, where it goes through the same validation again.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeconsole.kafka.records import Record
from pipeconsole.wire.headers import DLQ_PREFIX

__all__ = ["HEADER_PREFIX", "KEEP_BYTES", "DeadLetter", "dead_letter", "truncated"]

HEADER_PREFIX = DLQ_PREFIX
KEEP_BYTES = 64 * 1024
"""What a truncated dead letter keeps of a value the DLQ topic would not take whole."""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """What to produce on the DLQ topic."""

    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]


def dead_letter(
    record: Record,
    *,
    code: str,
    reason: str,
    attempts: int,
    actor_id: str,
    time_unix_ms: int,
) -> DeadLetter:
    """The DLQ record for ``record``, rejected with ``code`` (e.g. ``malformed``,
    ``invalid``, ``key_mismatch``, ``unverified``) and a one-line ``reason``."""
    extra = {
        "topic": record.topic,
        "partition": str(record.partition),
        "offset": str(record.offset),
        "timestamp": str(record.timestamp_ms),
        "code": code,
        "reason": reason[:1000],
        "attempts": str(attempts),
        "time": str(time_unix_ms),
        "actor": actor_id,
    }
    own = tuple((k, v) for k, v in record.headers if not k.startswith(HEADER_PREFIX))
    added = tuple((HEADER_PREFIX + k, v.encode("utf-8", "replace")) for k, v in extra.items())
    return DeadLetter(record.key, record.value, own + added)


def truncated(letter: DeadLetter) -> DeadLetter:
    """``letter`` cut down for a DLQ that refused it whole (a source record near the broker's
    size limit cannot take extra headers): the value's first :data:`KEEP_BYTES`, its original
    size and SHA-256, and the source headers dropped (they may be what made it too large)."""
    import hashlib

    value = letter.value or b""
    own = tuple(h for h in letter.headers if h[0].startswith(HEADER_PREFIX))
    extra = (
        (HEADER_PREFIX + "truncated", str(len(value)).encode()),
        (HEADER_PREFIX + "sha256", hashlib.sha256(value).hexdigest().encode()),
    )
    key = letter.key[:1024] if letter.key else letter.key
    return DeadLetter(key, value[:KEEP_BYTES], own + extra)
