"""UI test fixtures: the real app from the factory, fed by injected snapshots (no broker)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator

import pytest
from textual.pilot import Pilot

from pipeconsole.config import Profile
from pipeconsole.model.snapshot import Snapshot
from pipeconsole.ui.app import PipeConsoleApp
from pipeconsole.ui.factory import build_app
from pipeconsole.ui.messages import SnapshotReady


def make_app(profile: Profile | None = None) -> PipeConsoleApp:
    """The app exactly as the CLI builds it, minus the Kafka source and the log capture."""
    return build_app(profile or Profile(), None, capture_logging=False)


async def feed(pilot: Pilot[None], snapshot: Snapshot) -> None:
    """Deliver ``snapshot`` as the ingest thread would, and let the screen redraw."""
    pilot.app.post_message(SnapshotReady(snapshot))
    await pilot.pause()
    await pilot.pause()


def before(snapshot: Snapshot, *keys: str) -> Callable[[Pilot[None]], Awaitable[None]]:
    """A ``run_before`` for snap_compare: feed ``snapshot`` then press ``keys``."""

    async def run(pilot: Pilot[None]) -> None:
        await feed(pilot, snapshot)
        for k in keys:
            await pilot.press(k)
            await pilot.pause()
        await pilot.pause()

    return run


@pytest.fixture(autouse=True)
def _no_cursor_blink(monkeypatch: pytest.MonkeyPatch) -> None:
    from textual.widgets import Input

    monkeypatch.setattr(Input, "cursor_blink", False, raising=False)


@pytest.fixture(scope="module")
def ui_stack(broker: object) -> Iterator[object]:
    """A live stack (fleet of 6 + device actors) for a module's action or chaos pilot tests.

    Module-scoped, not session-scoped: it is stopped before later modules run, so its health
    checks do not load the shared 2-core machine under other end-to-end tests."""
    from dataclasses import replace

    from uistack import Dispatch, UiStack

    from pipeconsole.kafka.admin import ensure_topics
    from pipeconsole.sim.fleet import Fleet
    from tests.conftest import make_topics

    profile = Profile(
        name="ui-actions",
        bootstrap=broker.bootstrap,  # type: ignore[attr-defined]
        topics=make_topics(request_partitions=2),
        role="chaos",
    )
    profile = replace(profile, check_interval_s=0.5, refresh_hz=4.0)
    ensure_topics(profile, profile.topics)
    fleet = Fleet.start(devices=6, seed=3, profile=profile)
    dispatch = Dispatch(profile)
    try:
        dispatch.wait_ready()
        yield UiStack(profile, fleet, dispatch)
    finally:
        dispatch.stop()
        fleet.stop()
