"""The console's state model: plain Python, no UI, no Kafka, no HTTP.

- :mod:`.snapshot`  the immutable :class:`Snapshot` the UI, headless mode and ``status`` read
- :mod:`.fixtures`  hand-made pipelines and :func:`demo_snapshot` for tests and UI work
"""

from __future__ import annotations

from pipeconsole.model.fixtures import demo_snapshot, pipeline
from pipeconsole.model.snapshot import Health, Snapshot

__all__ = ["Health", "Snapshot", "demo_snapshot", "pipeline"]
