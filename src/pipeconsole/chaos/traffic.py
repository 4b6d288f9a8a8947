"""Protocol-chaos traffic: valid DeviceRequests with chaos mixed in, published to Kafka.

- :func:`request_factory` builds valid DeviceRequests for a set of devices (fresh request_id
  and nonce, an absolute deadline, optionally signed);
- :func:`device_request_chaos` a :class:`ProtocolChaos` for DeviceRequest whose oracles are
  the wire codec and ``validate_request``;
- :class:`TrafficSender` paces an :class:`EvilSerializer` stream onto a topic, tags every
  record with the ``chaos-experiment-id`` header (plus ``chaos-class`` and ``chaos-kind``) and
  writes each confirmed delivery into the experiment's :class:`Ledger`.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from pipeconsole.chaos.probes import Ledger
from pipeconsole.chaos.protocol import EvilSerializer, ProtocolChaos, codec_decodes
from pipeconsole.kafka.producer import Sends
from pipeconsole.wire.gen.device_request_pb2 import DeviceRequest

__all__ = [
    "EXPERIMENT_HEADER",
    "Sink",
    "TrafficSender",
    "device_request_chaos",
    "request_factory",
    "rfc3339",
]

EXPERIMENT_HEADER = "chaos-experiment-id"


class _Delivered(Protocol):
    topic: str
    partition: int
    offset: int


Sink = Sends
"""What the traffic sender needs from a producer (``kafka.producer.ConfirmingProducer``)."""


def rfc3339(dt: datetime) -> str:
    """``2026-11-26T11:00:00.123Z`` (UTC, milliseconds)."""
    dt = dt.astimezone(UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def request_factory(
    device_ids: Sequence[str],
    *,
    method: str = "POST",
    uri: str = "/streams/chaos-{n}/start",
    deadline_s: float = 30.0,
    entity: bytes = b'{"profile": "chaos"}',
    content_type: str = "application/json",
    issued_by: str = "chaos",
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    sign: Callable[[DeviceRequest], DeviceRequest] | None = None,
) -> Callable[[Any], DeviceRequest]:
    """A base factory for :class:`ProtocolChaos`: valid requests, round-robin over devices."""
    if not device_ids:
        raise ValueError("request_factory needs at least one device id")
    counter = [0]

    def make(rng: Any) -> DeviceRequest:
        n = counter[0]
        counter[0] += 1
        t = now()
        req = DeviceRequest(
            method=method,
            uri=uri.replace("{n}", str(n)),
            request_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            device_id=device_ids[n % len(device_ids)],
            deadline=rfc3339(t + timedelta(seconds=deadline_s)),
            nonce=uuid.UUID(int=rng.getrandbits(128), version=4).hex,
            issued_by=issued_by,
            issued_at=rfc3339(t),
            entity_content_type=content_type if entity else "",
            entity=entity,
        )
        return sign(req) if sign else req

    return make


def device_request_chaos(
    base: Callable[[Any], DeviceRequest], *, seed: int = 0, size_cap: int = 900_000
) -> ProtocolChaos[DeviceRequest]:
    """Protocol chaos for DeviceRequest checked against the real codec and validator."""
    from pipeconsole.wire.validate import validate_request

    return ProtocolChaos(
        DeviceRequest,
        seed=seed,
        base=base,
        decodes=codec_decodes(DeviceRequest),
        readable=codec_decodes(DeviceRequest, allow_unknown=True),
        validate=lambda m: validate_request(m),
        size_cap=size_cap,
    )


class TrafficSender:
    """Sends ``count`` records at ``rate_per_s`` on a thread; :meth:`stop` ends it early."""

    def __init__(
        self,
        sink: Sink,
        topic: str,
        serializer: EvilSerializer[DeviceRequest],
        *,
        count: int,
        rate_per_s: float,
        experiment_id: str,
        ledger: Ledger,
        fallback_key: str,
        delivery_timeout_s: float = 30.0,
    ) -> None:
        self._sink = sink
        self._topic = topic
        self._ser = serializer
        self._count = count
        self._interval = 1.0 / rate_per_s
        self._exp = experiment_id
        self._ledger = ledger
        self._fallback_key = fallback_key
        self._timeout = delivery_timeout_s
        self._stop = threading.Event()
        self.sent = 0
        self._thread = threading.Thread(target=self._run, name="chaos-traffic", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float | None = None) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()

    def _run(self) -> None:
        pending: list[Future[Any]] = []
        next_at = time.monotonic()
        for _ in range(self._count):
            if self._stop.wait(max(0.0, next_at - time.monotonic())):
                break
            next_at += self._interval
            e = self._ser.next()
            msg = e.message
            key = (
                msg.device_id
                if isinstance(msg, DeviceRequest) and msg.device_id
                else self._fallback_key
            )
            c = e.chaos
            cls = str(c.chaos_class) if c else "0"
            kind = c.kind if c else "valid"
            headers = [
                (EXPERIMENT_HEADER, self._exp.encode()),
                ("chaos-class", cls.encode()),
                ("chaos-kind", kind.encode()),
            ]
            fut = self._sink.send(self._topic, e.data, key=key.encode("utf-8"), headers=headers)
            fut.add_done_callback(self._recorder(cls, kind, msg))
            pending.append(fut)
            self.sent += 1
        deadline = time.monotonic() + self._timeout
        for fut in pending:
            try:
                fut.result(max(0.0, deadline - time.monotonic()))
            except Exception:  # counted by the recorder; never raised through the loop
                continue

    def _recorder(self, cls: str, kind: str, msg: Any) -> Callable[[Future[Any]], None]:
        ledger = self._ledger

        def record(fut: Future[Any]) -> None:
            try:
                d = fut.result(0)
            except Exception:
                with ledger.lock:
                    ledger.failed_sends += 1
                return
            with ledger.lock:
                ledger.sent_by_class[cls] = ledger.sent_by_class.get(cls, 0) + 1
                ledger.sent_by_kind[kind] = ledger.sent_by_kind.get(kind, 0) + 1
                if cls in ("0", "3") and isinstance(msg, DeviceRequest):
                    ledger.valid_ids.add(msg.request_id)
                else:
                    ledger.chaos_at[(d.topic, d.partition, d.offset)] = kind
                if cls == "1":
                    ledger.undecodable_sent += 1

        return record


def counts(ledger: Ledger) -> Mapping[str, Any]:
    with ledger.lock:
        return {
            "by_class": dict(ledger.sent_by_class),
            "by_kind": dict(ledger.sent_by_kind),
            "valid_requests": len(ledger.valid_ids),
            "chaos_records": len(ledger.chaos_at),
            "undecodable_sent": ledger.undecodable_sent,
            "failed_sends": ledger.failed_sends,
        }
