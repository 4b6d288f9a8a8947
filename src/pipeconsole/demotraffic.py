"""The demo's request traffic: DeviceRequests at a steady rate, as the pipeline's own clients
would send them, so that a scenario about requests (a retry storm) has requests to show.

:class:`Traffic` is a thread that produces valid requests (round-robin over its devices, a
deadline a few seconds ahead, ``issued_by`` naming it) straight to the request topic, as any
producer of the fleet's requests would: not through the operator's action layer, which audits
an operator's actions. It never catches up after a stall (a late request pushes the next one
back), counts what was sent and what failed to be, and stops within one interval.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future

from pipeconsole.chaos.traffic import request_factory
from pipeconsole.config import Profile
from pipeconsole.kafka.producer import ConfirmingProducer, Delivery

__all__ = ["ISSUED_BY", "Traffic"]

LOG = logging.getLogger("pipeconsole.demo")

ISSUED_BY = "demo-traffic"
"""``issued_by`` of the traffic's requests: the Requests view tells them from an operator's."""


class Traffic:
    """``rate`` DeviceRequests per second to ``devices``, from :meth:`start` to :meth:`stop`
    (or ``limit`` requests). A context manager."""

    def __init__(
        self,
        profile: Profile,
        devices: Sequence[str],
        rate: float,
        *,
        deadline_s: float = 10.0,
        limit: int | None = None,
        seed: int | None = None,
    ) -> None:
        if not devices:
            raise ValueError("traffic needs at least one device")
        if not rate > 0:
            raise ValueError(f"traffic rate must be positive, got {rate}")
        self.profile = profile
        self.devices = list(devices)
        self.rate = rate
        self.limit = limit
        self._make = request_factory(
            self.devices, uri="/streams/demo-{n}/start", deadline_s=deadline_s, issued_by=ISSUED_BY
        )
        # Request ids and nonces come from this: seeded only when asked (a test), or two
        # senders, or two demo runs, would issue the same ids, and devices de-duplicate by id.
        self._rng = random.Random(seed)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-traffic", daemon=True)
        self._pending: list[Future[Delivery]] = []
        self.sent = 0
        """Requests the broker acknowledged."""
        self.failed = 0
        """Requests that could not be sent (logged by the producer; the demo goes on)."""
        self.last_error = ""

    def start(self) -> Traffic:
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self.running:
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until a ``limit``-ed run has sent everything; whether it finished."""
        self._thread.join(timeout)
        return not self.running

    def __enter__(self) -> Traffic:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        try:
            self._send_all()
        except Exception as exc:  # the demo goes on without its traffic, and says why
            self.last_error = f"{type(exc).__name__}: {exc}"
            LOG.error("demo traffic stopped: %s", self.last_error)

    def _send_all(self) -> None:
        interval = 1.0 / self.rate
        topic = self.profile.topics.request
        with ConfirmingProducer(self.profile) as producer:
            made = 0
            due = time.monotonic()
            while not self._stop.wait(max(0.0, due - time.monotonic())):
                req = self._make(self._rng)
                self._pending.append(
                    producer.send(topic, req.SerializeToString(), key=req.device_id)
                )
                made += 1
                self._settle(block=False)
                if self.limit is not None and made >= self.limit:
                    break
                due = max(due + interval, time.monotonic())  # no catch-up burst after a stall
            self._settle(block=True)

    def _settle(self, *, block: bool) -> None:
        """Count the sends that are done (all of them, waiting up to their timeout, if
        ``block``)."""
        left = []
        for fut in self._pending:
            if not block and not fut.done():
                left.append(fut)
                continue
            try:
                fut.result(timeout=35.0)
                self.sent += 1
            except Exception as exc:  # a send that failed: counted, never raised
                self.failed += 1
                self.last_error = str(exc)
        self._pending = left
