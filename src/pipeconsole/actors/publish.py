"""Events out: DeviceResponse, StateEvent and DLQ records through the confirming producer.

:meth:`Publisher.send` awaits the broker's acknowledgement. :meth:`Publisher.send_until_acked`
keeps trying (the record may not be dropped: a final outcome or a dead letter holds its source
offset until it is acknowledged). :meth:`Publisher.fire` is for events whose loss costs nothing
but a gap in a timeline (SCHEDULED, DISPATCHED, health): failures are counted and logged.

Per-event cost is kept low: acknowledgements arrive on the producer's poll thread and are
queued; one ``call_soon_threadsafe`` wakes the loop for however many arrived meanwhile (not one
wake-up and one task per record), and :meth:`fire` creates no task at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future

from pipeconsole.kafka.producer import ConfirmingProducer, Delivery, DeliveryError

__all__ = ["Publisher"]

log = logging.getLogger(__name__)


_Ack = tuple["asyncio.Future[DeliveryError | None] | None", str, "Future[Delivery]"]


class Publisher:
    """An asyncio face on :class:`ConfirmingProducer`. Use it from one event loop."""

    def __init__(self, producer: ConfirmingProducer, *, stopping: Callable[[], bool]) -> None:
        self._producer = producer
        self._stopping = stopping
        self._loop: asyncio.AbstractEventLoop | None = None
        self._acks: deque[_Ack] = deque()
        """Completed deliveries not yet handed to the loop (appended by the poll thread)."""
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
        self._submit(waiter, topic, value, key, headers)
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
        """Send without waiting; a refusal is counted and logged."""
        self._bind()
        self._submit(None, topic, value, key, ())

    # -- plumbing ---------------------------------------------------------------------------------

    def _bind(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    def _submit(
        self,
        waiter: asyncio.Future[DeliveryError | None] | None,
        topic: str,
        value: bytes,
        key: str | bytes | None,
        headers: Sequence[tuple[str, bytes]],
    ) -> None:
        fut = self._producer.send(topic, value, key, headers or None)
        fut.add_done_callback(lambda f: self._acked(waiter, topic, f))

    def _acked(
        self,
        waiter: asyncio.Future[DeliveryError | None] | None,
        topic: str,
        fut: Future[Delivery],
    ) -> None:
        """On the poll thread (or the loop, when the send failed at once)."""
        self._acks.append((waiter, topic, fut))
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
            waiter, topic, fut = acks.popleft()
            exc = fut.exception()
            err: DeliveryError | None = None
            if exc is not None:
                err = exc if isinstance(exc, DeliveryError) else DeliveryError(str(exc))
                self.failed += 1
                log.warning("produce to %s failed: %s", topic, err.reason)
            if waiter is not None and not waiter.done():
                waiter.set_result(err)
