"""The one way to build the console: the CLI, the tests, headless mode and the benchmark use it.

``build_app(profile, source)`` with an injected :class:`~pipeconsole.ui.source.SnapshotSource`
needs no broker (tests post fixture snapshots); with ``source=None`` and ``connect=True`` it
builds the Kafka-backed source from the profile (``pipeconsole.ingest``).
"""

from __future__ import annotations

import httpx

from pipeconsole.config import Profile
from pipeconsole.ui.app import PipeConsoleApp
from pipeconsole.ui.operator import LayerFactory
from pipeconsole.ui.source import IngestSource, SnapshotSource

__all__ = ["build_app", "kafka_source"]


def kafka_source(profile: Profile) -> SnapshotSource:
    """The live source: Kafka reader thread -> model -> snapshots (``pipeconsole.ingest``)."""
    return IngestSource(profile)


def build_app(
    profile: Profile | None = None,
    source: SnapshotSource | None = None,
    *,
    connect: bool = False,
    http_transport: httpx.AsyncBaseTransport | None = None,
    capture_logging: bool = True,
    make_layer: LayerFactory | None = None,
) -> PipeConsoleApp:
    """The console for ``profile``, fed by ``source`` (or Kafka when ``connect`` is true).

    ``make_layer`` builds the action layer (tests give it a temporary outbox and audit log)."""
    profile = profile or Profile()
    if source is None and connect:
        source = kafka_source(profile)
    return PipeConsoleApp(
        profile,
        source,
        http_transport=http_transport,
        capture_logging=capture_logging,
        make_layer=make_layer,
    )
