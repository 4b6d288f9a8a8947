"""Messages that cross from other threads into the app (DESIGN §4; STYLE habits 2–3).

Threads never touch widgets: the snapshot source and the log handler call
``app.post_message(...)`` (thread-safe) with one of these, and the app's handlers change UI
state. :class:`SnapshotReady` replaces an older queued one, so a UI that falls behind skips
stale frames instead of queueing them (Toolong's ``can_replace``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.message import Message

from pipeconsole.model.snapshot import Snapshot

if TYPE_CHECKING:
    from pipeconsole.actions.layer import ActionResult, Failed, Refused, ReplayResult
    from pipeconsole.actions.replay import ReplayPlan
    from pipeconsole.chaos.report import Report
    from pipeconsole.chaos.runner import Progress
    from pipeconsole.wire.gen.device_request_pb2 import DeviceRequest

__all__ = [
    "ActionDone",
    "ChaosFinished",
    "ChaosProgressed",
    "ConnectionChanged",
    "LogRecorded",
    "ReplayDone",
    "ReplayPlanned",
    "RequestFound",
    "SnapshotReady",
]


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


# ---------------------------------------------------------------- operator actions (workers)


class ActionDone(Message, bubble=False):
    """A schedule or cancel finished in its worker: sent (broker ack), refused or failed."""

    def __init__(self, result: ActionResult) -> None:
        super().__init__()
        self.result = result


class ReplayPlanned(Message, bubble=False):
    """The replay dry run read its window (nothing sent yet)."""

    def __init__(self, plan: ReplayPlan | Refused | Failed) -> None:
        super().__init__()
        self.plan = plan


class ReplayDone(Message, bubble=False):
    """A confirmed replay ran (or was refused by the access rules)."""

    def __init__(self, result: ReplayResult | Refused) -> None:
        super().__init__()
        self.result = result


class RequestFound(Message, bubble=False):
    """ "Edit and resend" looked the original up on the request topic."""

    def __init__(self, request_id: str, request: DeviceRequest | None, error: str = "") -> None:
        super().__init__()
        self.request_id = request_id
        self.request = request
        """The original, or None when it was not found (``error`` says why, if it failed)."""
        self.error = error


class ChaosProgressed(Message, bubble=False):
    """The chaos runner's thread reported a step (phase, probes)."""

    def __init__(self, progress: Progress) -> None:
        super().__init__()
        self.progress = progress


class ChaosFinished(Message, bubble=False):
    """The experiment reached its verdict; faults are rolled back."""

    def __init__(self, report: Report, audit_error: str = "") -> None:
        super().__init__()
        self.report = report
        self.audit_error = audit_error
