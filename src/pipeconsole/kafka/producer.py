"""An idempotent producer whose every send ends in a confirmation or an error, never silence.

Delivery callbacks in librdkafka are served only from ``poll()``/``flush()``; a small thread
polls so that futures complete without the caller's help. ``send()`` returns a
:class:`concurrent.futures.Future` of :class:`Delivery`; ``send_sync()`` waits for it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Protocol

from confluent_kafka import KafkaError, KafkaException, Producer

from pipeconsole.config import Profile
from pipeconsole.kafka.client import client_settings

__all__ = ["ConfirmingProducer", "Delivery", "DeliveryError"]


@dataclass(frozen=True, slots=True)
class Delivery:
    topic: str
    partition: int
    offset: int


class Sends(Protocol):
    """What a part needs of a producer to send records and wait for their acks
    (:class:`ConfirmingProducer` fits; tests may pass their own)."""

    def send(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | str | None = None,
        headers: Any = None,
        partition: int | None = None,
    ) -> Future[Any]: ...


class DeliveryError(Exception):
    """The broker did not confirm a record. ``possibly_persisted`` when it may still be written
    (timed out in flight): reconcile by reading the topic, never by blindly re-sending."""

    def __init__(self, reason: str, *, retriable: bool = False, possibly_persisted: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.retriable = retriable
        self.possibly_persisted = possibly_persisted


class ConfirmingProducer:
    """Idempotent, acks=all. Thread-safe: send from any thread."""

    def __init__(
        self,
        profile: Profile | str,
        *,
        delivery_timeout_s: float = 30.0,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        settings = client_settings(
            profile,
            {
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 2,
                "message.timeout.ms": int(delivery_timeout_s * 1000),
                "client.id": "pipeconsole-producer",
            },
        )
        if extra:
            settings.update(extra)
        self._settings = settings
        self._producer = Producer(settings)
        self._lock = threading.Lock()
        self._fatal = False
        self._retired: list[Any] = []
        """Producers replaced after a fatal error, polled until their callbacks are served."""
        self.renewals = 0
        """Times the underlying producer was replaced after a fatal error."""
        self._closed = threading.Event()
        self._poller = threading.Thread(
            target=self._poll_loop, name="kafka-producer-poll", daemon=True
        )
        self._poller.start()

    def _poll_loop(self) -> None:
        while not self._closed.is_set():
            self._producer.poll(0.05)
            if self._retired:
                with self._lock:
                    for old in list(self._retired):
                        old.poll(0)
                        if len(old) == 0:
                            self._retired.remove(old)

    def _renew(self) -> None:
        """After a fatal error (e.g. the idempotent producer fenced after timeouts in flight)
        librdkafka refuses every later record: replace the producer. The old one's queued
        records have already failed with the fatal error, so nothing is re-sent here."""
        with self._lock:
            if not self._fatal:
                return
            self._retired.append(self._producer)
            self._producer = Producer(self._settings)
            self._fatal = False
            self.renewals += 1

    def send(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | str | None = None,
        headers: Iterable[tuple[str, bytes | str]] | None = None,
        partition: int | None = None,
    ) -> Future[Delivery]:
        fut: Future[Delivery] = Future()

        def on_delivery(err: KafkaError | None, msg: Any) -> None:
            if err is not None:
                if _is_fatal(err):
                    self._fatal = True
                fut.set_exception(_delivery_error(err))
            else:
                fut.set_result(Delivery(msg.topic(), msg.partition(), msg.offset()))

        kwargs: dict[str, Any] = {"value": value, "key": key, "on_delivery": on_delivery}
        if headers:
            kwargs["headers"] = list(headers)
        if partition is not None:
            kwargs["partition"] = partition
        if self._fatal:
            self._renew()
        while True:
            try:
                self._producer.produce(topic, **kwargs)
                return fut
            except BufferError:
                # The local queue is full: wait for deliveries rather than drop anything.
                self._producer.poll(0.05)
            except KafkaException as exc:
                if _is_fatal(exc.args[0]):
                    self._fatal = True
                fut.set_exception(_delivery_error(exc.args[0]))
                return fut

    def send_sync(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | str | None = None,
        headers: Iterable[tuple[str, bytes | str]] | None = None,
        timeout: float | None = None,
    ) -> Delivery:
        return self.send(topic, value, key, headers).result(timeout)

    def flush(self, timeout: float = 10.0) -> int:
        """Wait for outstanding deliveries; returns how many are still not confirmed."""
        return int(self._producer.flush(timeout))

    def close(self, timeout: float = 10.0) -> int:
        left = self.flush(timeout)
        self._closed.set()
        self._poller.join(timeout=1.0)
        with self._lock:
            for old in self._retired:
                old.flush(0)
            self._retired.clear()
        return left

    def __enter__(self) -> ConfirmingProducer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __len__(self) -> int:
        return len(self._producer)


_FENCED = {KafkaError.PRODUCER_FENCED, KafkaError.INVALID_PRODUCER_EPOCH}


def _is_fatal(err: KafkaError) -> bool:
    return bool(err.fatal()) or err.code() in _FENCED


def _delivery_error(err: KafkaError) -> DeliveryError:
    code = err.code()
    timed_out = code == KafkaError._MSG_TIMED_OUT
    return DeliveryError(
        f"{err.name()}: {err.str()}",
        retriable=bool(err.retriable()),
        possibly_persisted=timed_out,
    )


def wait_all(futures: Iterable[Future[Delivery]], timeout: float) -> list[Delivery]:
    """Results of ``futures`` in order; raises the first DeliveryError."""
    deadline = time.monotonic() + timeout
    return [f.result(max(0.0, deadline - time.monotonic())) for f in futures]
