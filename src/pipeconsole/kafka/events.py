"""A lean idempotent producer for high event rates: one delivery callback per record.

:class:`EventProducer` is acks=all and idempotent like :class:`~pipeconsole.kafka.producer.
ConfirmingProducer`, but creates no future per record: each record's ``on_delivery(err, msg)``
runs on a small poll thread. The device actors' publisher (``actors/publish.py``) builds its
asyncio face on it. ``err`` is opaque outside this package: turn it into a
:class:`~pipeconsole.kafka.producer.DeliveryError` with :func:`delivery_error`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer

from pipeconsole.config import Profile
from pipeconsole.kafka.client import client_settings
from pipeconsole.kafka.producer import DeliveryError

__all__ = ["EventProducer", "KafkaErr", "OnDelivery", "delivery_error"]

KafkaErr = Any
"""The error object of a delivery callback (a ``confluent_kafka.KafkaError``)."""

OnDelivery = Callable[[KafkaError | None, Any], None]


class EventProducer:
    """An idempotent, acks=all producer whose records each end in a callback (on the poll
    thread), never in silence. Thread-safe."""

    def __init__(self, profile: Profile, *, delivery_timeout_s: float = 30.0) -> None:
        settings = client_settings(
            profile,
            {
                "enable.idempotence": True,
                "acks": "all",
                # Not 2 ms: with records spread over time, a short linger wakes librdkafka's
                # broker thread on nearly every produce() (35 us under the GIL each, measured;
                # 10 us at 10 ms linger). Outcomes are acknowledged ~10 ms later; nothing waits
                # on them but the commit.
                "linger.ms": 10,
                "message.timeout.ms": int(delivery_timeout_s * 1000),
                "client.id": "pipeconsole-dispatch",
            },
        )
        self._producer = Producer(settings)
        self._closed = threading.Event()
        self._poller = threading.Thread(target=self._poll_loop, name="events-poll", daemon=True)
        self._poller.start()

    def _poll_loop(self) -> None:
        while not self._closed.is_set():
            self._producer.poll(0.05)

    def produce(
        self,
        topic: str,
        value: bytes,
        key: str | bytes | None,
        headers: Sequence[tuple[str, bytes]],
        on_delivery: OnDelivery,
    ) -> KafkaError | None:
        """Queue a record; ``on_delivery(err, msg)`` follows. Returns the error at once when
        librdkafka refuses the record outright (then no callback follows)."""
        while True:
            try:
                if headers:
                    self._producer.produce(
                        topic, value, key, on_delivery=on_delivery, headers=list(headers)
                    )
                else:
                    self._producer.produce(topic, value, key, on_delivery=on_delivery)
                return None
            except BufferError:  # the local queue is full: wait for deliveries, drop nothing
                self._producer.poll(0.05)
            except KafkaException as exc:
                err: KafkaError = exc.args[0]
                return err

    def close(self, timeout: float = 10.0) -> int:
        """Flush for at most ``timeout`` s; returns how many records are still unconfirmed."""
        left = int(self._producer.flush(timeout))
        self._closed.set()
        self._poller.join(timeout=1.0)
        return left


def delivery_error(err: KafkaError) -> DeliveryError:
    """The Kafka error of a delivery callback as a DeliveryError (call off the poll thread)."""
    return DeliveryError(
        f"{err.name()}: {err.str()}",
        retriable=bool(err.retriable()),
        possibly_persisted=err.code() == KafkaError._MSG_TIMED_OUT,
    )
