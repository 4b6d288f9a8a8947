"""The device actors in-process: a :class:`DispatchService` on its own event-loop thread.

For tests, benchmarks and tools that embed the actors beside other parts (the actors'
counterpart of :class:`pipeconsole.sim.Fleet`). ``pipeconsole dispatch`` runs the same service
in the foreground instead. Stopping is bounded: :meth:`BackgroundDispatch.stop` raises when
the service does not end in time, rather than hanging its caller.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from pipeconsole.actors.service import DispatchService
from pipeconsole.actors.settings import DispatchSettings
from pipeconsole.config import Profile

__all__ = ["BackgroundDispatch", "DispatchError"]

T = TypeVar("T")


class DispatchError(RuntimeError):
    """The background service did not start, answer or stop in time."""


class BackgroundDispatch:
    """Start with the constructor; ``wait_ready()``, then ``stop()`` (or use ``with``)."""

    def __init__(
        self, profile: Profile, settings: DispatchSettings | None = None, **kw: Any
    ) -> None:
        self.service = DispatchService(profile, settings, **kw)
        self.error: BaseException | None = None
        """What the service raised, if it ended by an exception (raised again by stop())."""
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dispatch", daemon=True)
        self._thread.start()
        if not self._started.wait(10):
            raise DispatchError("the dispatch loop did not start")

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)

        async def main() -> None:
            self._stop = asyncio.Event()
            self._started.set()
            await self.service.run(self._stop)

        try:
            self._loop.run_until_complete(main())
        except BaseException as exc:  # surfaced by stop()
            self.error = exc
        finally:
            self._loop.close()

    def alive(self) -> bool:
        return self._thread.is_alive()

    def call(self, fn: Callable[[], T], timeout: float = 5.0) -> T:
        """Run ``fn()`` on the service's loop (where its state lives) and return the result."""
        done = threading.Event()
        box: list[T] = []

        def run() -> None:
            box.append(fn())
            done.set()

        self._loop.call_soon_threadsafe(run)
        if not done.wait(timeout):
            raise DispatchError("the service loop did not answer")
        return box[0]

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Return once the service owns partitions (its consumer group assigned them)."""
        deadline = time.monotonic() + timeout
        while not self.service.ready.is_set():
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise DispatchError("dispatch did not get an assignment")
            time.sleep(0.05)

    def stop(self, timeout: float = 30.0) -> None:
        if self._stop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout)
        if self._thread.is_alive():
            import faulthandler
            import sys

            faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
            raise DispatchError(f"dispatch did not stop within {timeout:g} s")
        if self.error is not None:
            raise self.error

    def __enter__(self) -> BackgroundDispatch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
