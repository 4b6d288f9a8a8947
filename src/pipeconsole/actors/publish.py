"""Events out: DeviceResponse, StateEvent and DLQ records, from the event loop to Kafka.

:class:`~pipeconsole.kafka.events.EventProducer` is the service's one idempotent (acks=all)
producer: every record gets a delivery callback, served by a small poll thread.
:class:`Publisher` is its asyncio face:

- :meth:`Publisher.send` awaits the broker's acknowledgement; :meth:`Publisher.try_send` says
  why not; :meth:`Publisher.send_until_acked` keeps trying (a final outcome or a dead letter
  holds its source offset until it is acknowledged);
- :meth:`Publisher.fire` is for events whose loss costs nothing but a gap in a timeline
  (SCHEDULED, DISPATCHED, health): failures are counted and logged.

Per-event cost is what limits the actors' throughput (three events per request), so this path
is lean: no ``concurrent.futures.Future`` per record (each costs a lock and a condition), no
task per fired event, and acknowledgements are queued by the poll thread and handed to the
loop with one ``call_soon_threadsafe`` for however many arrived meanwhile. A fired event that
was delivered costs the loop nothing at all. All records go through the same producer, so the
events of one device (one key, one partition) stay in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from pipeconsole.kafka.events import EventProducer, KafkaErr, delivery_error
from pipeconsole.kafka.producer import DeliveryError

__all__ = ["EventProducer", "Publisher"]

log = logging.getLogger(__name__)


_Ack = tuple["asyncio.Future[DeliveryError | None] | None", str, KafkaErr | None]


class Publisher:
    """The asyncio face of an :class:`EventProducer`. Use it from one event loop."""

    def __init__(self, producer: EventProducer, *, stopping: Callable[[], bool]) -> None:
        self._producer = producer
        self._stopping = stopping
        self._loop: asyncio.AbstractEventLoop | None = None
        self._acks: deque[_Ack] = deque()
        """Deliveries to hand to the loop (appended by the poll thread)."""
        self._lock = threading.Lock()
        self._wake_pending = False
        self.failed = 0
        """Sends the broker did not acknowledge (each retried or logged)."""

    async def send(
        self,
        topic: str,
        value: bytes,
        key: str | bytes | None,
        headers: Sequence[tuple[str, bytes]] = (),
    ) -> bool:
        """True once acknowledged; False (logged) when the broker refused."""
        return await self.try_send(topic, value, key, headers) is None

    async def try_send(
        self,
        topic: str,
        value: bytes,
        key: str | bytes | None,
        headers: Sequence[tuple[str, bytes]] = (),
    ) -> DeliveryError | None:
        """None once acknowledged, else why not (the caller may choose another record)."""
        loop = self._bind()
        waiter: asyncio.Future[DeliveryError | None] = loop.create_future()

        def delivered(err: KafkaErr | None, _msg: Any) -> None:
            self._post((waiter, topic, err))

        refused = self._producer.produce(topic, value, key, headers, delivered)
        if refused is not None:
            self._post((waiter, topic, refused))
        return await waiter

    async def send_until_acked(
        self,
        topic: str,
        value: bytes,
        key: str | bytes | None,
        headers: Sequence[tuple[str, bytes]] = (),
        *,
        pause_s: float = 1.0,
        on_failure: Callable[[], None] | None = None,
    ) -> bool:
        """Retry until acknowledged; False only when the service stops first."""
        while True:
            if await self.send(topic, value, key, headers):
                return True
            if on_failure is not None:
                on_failure()
            if self._stopping():
                return False
            await asyncio.sleep(pause_s)

    def fire(self, topic: str, value: bytes, key: str | bytes | None) -> None:
        """Send without waiting; a refusal is counted and logged (on the loop)."""
        self._bind()

        def delivered(err: KafkaErr | None, _msg: Any) -> None:
            if err is not None:  # delivered records cost the loop nothing
                self._post((None, topic, err))

        refused = self._producer.produce(topic, value, key, (), delivered)
        if refused is not None:
            self._post((None, topic, refused))

    # -- plumbing ---------------------------------------------------------------------------------

    def _bind(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    def _post(self, ack: _Ack) -> None:
        """On the poll thread (or the loop, when a record was refused at once)."""
        self._acks.append(ack)
        with self._lock:
            if self._wake_pending:
                return
            self._wake_pending = True
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # closed meanwhile: nobody waits any more
                loop.call_soon_threadsafe(self._drain)

    def _drain(self) -> None:
        with self._lock:
            self._wake_pending = False
        acks = self._acks
        while acks:
            waiter, topic, kerr = acks.popleft()
            err = None if kerr is None else delivery_error(kerr)
            if err is not None:
                self.failed += 1
                log.warning("produce to %s failed: %s", topic, err.reason)
            if waiter is not None and not waiter.done():
                waiter.set_result(err)
