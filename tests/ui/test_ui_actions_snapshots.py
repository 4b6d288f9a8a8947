"""SVG snapshots of the action and chaos screens: the schedule form (clean and with field
errors), the typed cancel confirmation with the blast radius on the graph, the Chaos view with
a plan and an experiment seen on the cluster, its confirmation, and the audit tab.

Update after looking at the report: ``pytest tests/ui/test_ui_actions_snapshots.py
--snapshot-update``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from conftest import before, feed
from textual.pilot import Pilot
from textual.widgets import Input
from uifixtures import incident

from pipeconsole.config import Profile
from pipeconsole.model.snapshot import AuditView, ChaosView, Snapshot
from pipeconsole.ui.app import PipeConsoleApp
from pipeconsole.ui.factory import build_app

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _in_repo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)


def _app() -> PipeConsoleApp:
    return build_app(Profile(role="chaos"), None, capture_logging=False)


def with_history() -> Snapshot:
    """The incident fixture plus an experiment another console runs and two audit records."""
    s = incident()
    t = s.time_ms
    chaos = (
        ChaosView(
            "exp-5f2c", "Slow packager", "STEP", t - 4000, "fault: slow the packager",
            ("package-03",), False, "ops-2", t + 20_000,
        ),
        ChaosView(
            "exp-5f2c", "Slow packager", "STARTED", t - 5000, "fleet: 24 devices",
            ("package-03",), False, "ops-2", 0,
        ),
    )  # fmt: skip
    audit = (
        AuditView(
            "a2", t - 2000, "ops-1", "alice", "host-1", "cancel", ("transcode-02",),
            "cancel 6f1c2a9e on transcode-02", "ACCEPTED", "device-control-v1 partition 1 offset 7",
            "local", ("6f1c2a9e",),
        ),
        AuditView(
            "a1", t - 9000, "os:bob", "bob", "host-2", "schedule", ("ingest-01",), "",
            "REFUSED", "profile 'ro' is read-only: schedule is refused", "ro", (),
        ),
    )  # fmt: skip
    return replace(s, chaos=chaos, audit=audit, seq=s.seq + 1)


def _garbage_time(pilot: Pilot[None]) -> Awaitable[None]:
    async def run() -> None:
        await feed(pilot, incident())
        await pilot.press("3", "n")
        await pilot.pause()
        screen = pilot.app.screen
        screen.query_one("#f-uri", Input).value = "/streams/s1/start"
        screen.query_one("#f-schedule-time", Input).value = "2026-02-30T25:00:00Z[UTC]"
        await pilot.press("ctrl+s")
        await pilot.pause()

    return run()


CASES: dict[str, tuple[Callable[[Pilot[None]], Awaitable[None]], tuple[int, int]]] = {
    "schedule-form": (before(incident(), "3", "n"), (120, 36)),
    "schedule-form-80x24": (before(incident(), "3", "n"), (80, 24)),
    "schedule-field-errors": (_garbage_time, (120, 36)),
    "cancel-confirmation": (before(incident(), "3", "C", *"transc"), (120, 36)),
    "chaos-plan": (before(with_history(), "6", "enter"), (120, 36)),
    "chaos-80x24": (before(with_history(), "6", "enter"), (80, 24)),
    "chaos-confirmation": (before(with_history(), "6", "enter", "r"), (120, 36)),
    "chaos-compose": (before(incident(), "6", "c"), (120, 36)),
    "audit-tab": (before(with_history(), "5", "a"), (120, 36)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_action_screen(snap_compare: Any, case: str) -> None:
    run, size = CASES[case]
    assert snap_compare(_app(), terminal_size=size, run_before=run)
