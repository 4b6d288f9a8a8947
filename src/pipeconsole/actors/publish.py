"""Events out: DeviceResponse, StateEvent and DLQ records through the confirming producer.

:meth:`Publisher.send` awaits the broker's acknowledgement. :meth:`Publisher.send_until_acked`
keeps trying (the record may not be dropped: a final outcome or a dead letter holds its source
offset until it is acknowledged). :meth:`Publisher.fire` is for events whose loss costs nothing
but a gap in a timeline (SCHEDULED, DISPATCHED, health): failures are counted and logged.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from pipeconsole.kafka.producer import ConfirmingProducer, DeliveryError

__all__ = ["Publisher"]

log = logging.getLogger(__name__)


class Publisher:
    """An asyncio face on :class:`ConfirmingProducer`."""

    def __init__(self, producer: ConfirmingProducer, *, stopping: Callable[[], bool]) -> None:
        self._producer = producer
        self._stopping = stopping
        self._tasks: set[asyncio.Task[bool]] = set()
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
        try:
            fut = self._producer.send(topic, value, key, headers or None)
            await asyncio.wrap_future(fut)
            return None
        except DeliveryError as exc:
            self.failed += 1
            log.warning("produce to %s failed: %s", topic, exc.reason)
            return exc

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
        task = asyncio.get_running_loop().create_task(self.send(topic, value, key))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
