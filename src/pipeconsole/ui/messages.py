"""Messages that cross from other threads into the app (DESIGN §4; STYLE habits 2–3).

Threads never touch widgets: the snapshot source and the log handler call
``app.post_message(...)`` (thread-safe) with one of these, and the app's handlers change UI
state. :class:`SnapshotReady` replaces an older queued one, so a UI that falls behind skips
stale frames instead of queueing them (Toolong's ``can_replace``).
"""

from __future__ import annotations

from textual.message import Message

from pipeconsole.model.snapshot import Snapshot

__all__ = ["ConnectionChanged", "LogRecorded", "SnapshotReady"]


class SnapshotReady(Message, bubble=False):
    """The model built a new immutable snapshot."""

    def __init__(self, snapshot: Snapshot) -> None:
        super().__init__()
        self.snapshot = snapshot
        """The newest picture of the pipeline."""

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, SnapshotReady)


class ConnectionChanged(Message, bubble=False):
    """The snapshot source started, stopped or failed (the broker link is in the snapshot)."""

    def __init__(self, connected: bool, detail: str = "") -> None:
        super().__init__()
        self.connected = connected
        """True when the source is running and delivering snapshots."""
        self.detail = detail
        """Why, in one line (raw: it may quote network text)."""


class LogRecorded(Message, bubble=False):
    """A console log line (librdkafka, workers, probes) for the log screen, never the terminal."""

    def __init__(self, time_ms: int, level: str, name: str, text: str) -> None:
        super().__init__()
        self.time_ms = time_ms
        self.level = level
        self.name = name
        self.text = text
        """Raw: rendered through ``safe_text`` only."""
