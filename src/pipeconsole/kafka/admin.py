"""Topics, readiness, watermarks and consumer-group offsets."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from confluent_kafka import ConsumerGroupTopicPartitions, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from pipeconsole.config import Profile, Topics
from pipeconsole.kafka.client import client_settings, outside_a_group

__all__ = [
    "AdminError",
    "GroupLag",
    "ensure_topics",
    "group_lag",
    "topic_plan",
    "transport_reason",
    "wait_ready",
]

_COMPACTED = "registry"


class AdminError(Exception):
    """A cluster operation failed; the message says which and why."""


def _admin(profile: Profile | str, extra: dict[str, Any] | None = None) -> AdminClient:
    return AdminClient(client_settings(profile, extra))


def transport_reason(error: str) -> str | None:
    """What a transport error from librdkafka that retrying cannot mend (a bad certificate or
    password) means, or None for any other error. In words that do not depend on how librdkafka
    phrased it this time: the same bad certificate comes as "SSL handshake failed: ...
    certificate verify failed: broker certificate could not be verified ..." or, on some
    connection attempts, only as "error:0A000086:SSL routines::certificate verify failed (after
    2ms in state SSL_HANDSHAKE)". Its own text follows, cut to 400 characters."""
    if "certificate verify failed" in error:
        what = (
            "SSL handshake failed: certificate verify failed (the broker's certificate is not "
            "signed by ssl.ca.location's CA, or does not name the host in bootstrap)"
        )
    elif "SSL handshake failed" in error:
        what = "SSL handshake failed"
    elif "Authentication failed" in error or "SASL" in error:
        what = "authentication failed (check sasl.mechanism, sasl.username and sasl.password)"
    else:
        return None
    return f"{what}; librdkafka: {error[:400]}"


def wait_ready(profile: Profile | str, timeout: float = 30.0) -> None:
    """Return once the cluster answers a metadata request; raise AdminError after ``timeout``."""
    # The transport's own reason (TLS handshake, SASL, refused) reaches only the error
    # callback; the metadata call just says "Broker transport failure".
    errors: list[str] = []
    admin = _admin(profile, {"error_cb": lambda err: errors.append(str(err.str()))})
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            md = admin.list_topics(timeout=min(2.0, max(0.1, deadline - time.monotonic())))
            if md.brokers:
                return
        except KafkaException as exc:
            last = exc.args[0].str()
        admin.poll(0)
        fatal = next((r for e in errors if (r := transport_reason(e)) is not None), None)
        if fatal is not None:  # waiting will not mend a bad certificate or password
            raise AdminError(f"cluster {last}: {fatal}")
        time.sleep(0.05)
    admin.poll(0)
    why = next((e for e in reversed(errors) if "brokers are down" not in e), "")
    raise AdminError(
        f"cluster not ready after {timeout:.0f} s: {last}" + (f" ({why[:400]})" if why else "")
    )


def topic_plan(topics: Topics) -> list[tuple[str, int, dict[str, str]]]:
    """(name, partitions, config) for every topic of DESIGN §1."""
    plan: list[tuple[str, int, dict[str, str]]] = []
    for attr in ("registry", "state", "request", "control", "response", "dlq", "chaos", "audit"):
        name = getattr(topics, attr)
        parts = topics.request_partitions if attr in ("request", "control") else topics.partitions
        config = {"cleanup.policy": "compact"} if attr == _COMPACTED else {}
        plan.append((name, parts, config))
    return plan


def ensure_topics(profile: Profile | str, topics: Topics, timeout: float = 30.0) -> list[str]:
    """Create the topics that do not exist yet; return the names created.

    An existing device-request topic whose partition count differs from device-control's is an
    error: co-partitioning is what routes a cancel to the actor owning the request.
    """
    admin = _admin(profile)
    try:
        md = admin.list_topics(timeout=timeout)
    except KafkaException as exc:
        raise AdminError(f"cannot list topics: {exc.args[0].str()}") from None
    existing = {name: len(t.partitions) for name, t in md.topics.items() if t.error is None}
    plan = topic_plan(topics)
    missing = [
        NewTopic(name, num_partitions=parts, replication_factor=-1, config=cfg)
        for name, parts, cfg in plan
        if name not in existing
    ]
    created: list[str] = []
    if missing:
        futures = admin.create_topics(missing, operation_timeout=timeout, request_timeout=timeout)
        for name, fut in futures.items():
            try:
                fut.result(timeout)
                created.append(name)
            except KafkaException as exc:
                err = exc.args[0]
                if err.name() != "TOPIC_ALREADY_EXISTS":
                    raise AdminError(f"cannot create topic {name!r}: {err.str()}") from None
    _wait_for_topics(admin, [name for name, _, _ in plan], timeout)
    md = admin.list_topics(timeout=timeout)
    req = len(md.topics[topics.request].partitions)
    ctl = len(md.topics[topics.control].partitions)
    if req != ctl:
        raise AdminError(
            f"{topics.request} has {req} partitions but {topics.control} has {ctl}: "
            "they must be equal so that a cancel reaches the actor that owns the request"
        )
    return sorted(created)


def _wait_for_topics(admin: AdminClient, names: list[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        md = admin.list_topics(timeout=timeout)
        if all(n in md.topics and md.topics[n].partitions for n in names):
            return
        if time.monotonic() > deadline:
            raise AdminError("topics created but not visible in metadata")
        time.sleep(0.05)


@dataclass(frozen=True, slots=True)
class GroupLag:
    group: str
    topic: str
    partition: int
    committed: int
    """Committed offset (-1 when the group has none for this partition)."""
    high: int
    """High watermark."""

    @property
    def lag(self) -> int:
        return self.high - self.committed if self.committed >= 0 else self.high


def group_lag(
    profile: Profile | str, group: str, topics: list[str], timeout: float = 10.0
) -> list[GroupLag]:
    """Committed offset and high watermark of every partition of ``topics`` for ``group``."""
    from confluent_kafka import Consumer

    admin = _admin(profile)
    md = admin.list_topics(timeout=timeout)
    tps = [
        TopicPartition(t, p)
        for t in topics
        if t in md.topics
        for p in sorted(md.topics[t].partitions)
    ]
    if not tps:
        return []
    try:
        fut = admin.list_consumer_group_offsets(
            [ConsumerGroupTopicPartitions(group, tps)], request_timeout=timeout
        )[group]
        committed = {
            (tp.topic, tp.partition): tp.offset for tp in fut.result(timeout).topic_partitions
        }
    except KafkaException as exc:
        raise AdminError(f"cannot read offsets of group {group!r}: {exc.args[0].str()}") from None
    settings: dict[str, Any] = client_settings(
        profile, {"group.id": f"pipeconsole-lag-{uuid.uuid4()}", "enable.auto.commit": False}
    )
    consumer = Consumer(outside_a_group(settings))  # it reads watermarks, never joins
    try:
        out = []
        for tp in tps:
            _lo, hi = consumer.get_watermark_offsets(tp, timeout=timeout, cached=False)
            out.append(
                GroupLag(
                    group, tp.topic, tp.partition, committed.get((tp.topic, tp.partition), -1), hi
                )
            )
        return out
    finally:
        consumer.close()
