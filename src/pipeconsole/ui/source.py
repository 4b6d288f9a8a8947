"""Where snapshots come from: a small protocol, so the app never knows about Kafka.

The real source (``pipeconsole.ingest``: reader thread -> model) and the test/demo sources
implement :class:`SnapshotSource`. The app runs ``source.run(emit, stop)`` in one fully
declared thread worker; ``emit`` posts :class:`~pipeconsole.ui.messages.SnapshotReady`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from pipeconsole.config import Profile
from pipeconsole.model.snapshot import Snapshot

__all__ = ["Emit", "IngestSource", "SnapshotSource", "StaticSource"]

Emit = Callable[[Snapshot], None]
"""Thread-safe: hands one snapshot to the UI (coalesced if the UI is behind)."""


class SnapshotSource(Protocol):
    """Anything that can deliver snapshots until asked to stop."""

    def run(self, emit: Emit, stop: threading.Event) -> None:
        """Call ``emit`` with each new snapshot; return soon after ``stop`` is set.

        Must not raise for network trouble: connection state travels inside the snapshot.
        """
        ...


class StaticSource:
    """Emits the given snapshots in order, then waits for stop (tests, screenshots)."""

    def __init__(self, snapshots: Iterable[Snapshot]) -> None:
        self.snapshots = tuple(snapshots)
        """What :meth:`run` emits, in order."""

    def run(self, emit: Emit, stop: threading.Event) -> None:
        for s in self.snapshots:
            if stop.is_set():
                return
            emit(s)
        stop.wait()


class IngestSource:
    """The live source: :class:`pipeconsole.ingest.Ingest` (Kafka reader thread -> model).

    Ingest runs its own reader thread and posts at most ``profile.refresh_hz`` snapshots a
    second through ``on_snapshot``; this adapter starts it, waits for ``stop`` and stops it.
    """

    def __init__(self, profile: Profile) -> None:
        self.profile = profile
        self.ingest: Any = None
        """The running :class:`~pipeconsole.ingest.Ingest` (its ``errors`` count), once started."""

    @property
    def waiting(self) -> str:
        """What the console says until the first snapshot: the first attempt to read the
        cluster can take ``connect_timeout_s`` (10 s) to fail."""
        return f"connecting to {self.profile.bootstrap}… the first snapshot follows"

    def run(self, emit: Emit, stop: threading.Event) -> None:
        from pipeconsole.ingest import Ingest  # lazily: tests and screenshots need no Kafka

        ingest = self.ingest = Ingest(self.profile, on_snapshot=emit)
        ingest.start()
        try:
            stop.wait()
        finally:
            ingest.stop()
