"""The console's state model: plain Python, no UI, no Kafka, no HTTP.

- :mod:`.model`     :class:`Model`, the single writer: ``apply(events)``, ``snapshot()``
- :mod:`.snapshot`  the immutable :class:`Snapshot` the UI, headless mode and ``status`` read
- :mod:`.fleet`     devices, staleness, metric history rings
- :mod:`.topology`  the networkx graph and its analyses (blast radius, root causes, bottlenecks)
- :mod:`.requests`  request lifecycles, outcomes, deadline misses, the DLQ
- :mod:`.lag`       consumer-group lag in messages and seconds
- :mod:`.timeline`  the bounded event timeline
- :mod:`.fixtures`  hand-made pipelines and :func:`demo_snapshot` for tests and UI work
"""

from __future__ import annotations

from pipeconsole.model.fixtures import demo_model, demo_snapshot, pipeline
from pipeconsole.model.model import DlqRecord, LagSample, Limits, Model, Undecodable
from pipeconsole.model.snapshot import Health, RequestState, Snapshot

__all__ = [
    "DlqRecord",
    "Health",
    "LagSample",
    "Limits",
    "Model",
    "RequestState",
    "Snapshot",
    "Undecodable",
    "demo_model",
    "demo_snapshot",
    "pipeline",
]
