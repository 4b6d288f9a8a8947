"""Headless conditions are judged on the fleet, never on the part of its start-up window read so
far: a half-read window has no failing device yet, and ``fleet.failing == 0`` holds on it."""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

from pipeconsole.config import Profile
from pipeconsole.model.fixtures import demo_snapshot
from pipeconsole.model.snapshot import Snapshot
from pipeconsole.ui.headless import run_headless
from pipeconsole.ui.source import Emit


def _read_so_far(full: Snapshot) -> Snapshot:
    """What the console shows while its reader is still reading: nothing failing yet."""
    return replace(
        full,
        connection=replace(full.connection, caught_up=False),
        fleet=replace(full.fleet, failing=0, healthy=full.fleet.total),
        seq=full.seq - 1,
    )


class _Reading:
    """A console reading its start-up window: first what it has read so far; the whole window
    (ingest-01 failing) only if ``finish``, and only after a while."""

    def __init__(self, finish: bool) -> None:
        self.finish = finish

    def run(self, emit: Emit, stop: threading.Event) -> None:
        full = demo_snapshot(incident=True)
        emit(_read_so_far(full))
        # The reader still at work: longer than a console takes to start and run a first step.
        if self.finish and not stop.wait(2.0):
            emit(full)
        stop.wait()


def _run(tmp_path: Path, script: str, finish: bool) -> tuple[int, str]:
    path = tmp_path / "s.pcs"
    path.write_text(script)
    run = run_headless(Profile(), path, tmp_path / "out", source=_Reading(finish))
    return run.exit_code, run.reason


def test_assert_waits_for_the_window_to_be_read(tmp_path: Path) -> None:
    code, reason = _run(tmp_path, "assert fleet.failing >= 1\n", finish=True)
    assert code == 0, reason


def test_wait_for_does_not_take_a_half_read_window_for_a_quiet_fleet(tmp_path: Path) -> None:
    code, reason = _run(tmp_path, "wait-for fleet.failing == 0 timeout 1s\n", finish=False)
    assert code == 1
    assert "start-up window is still being read" in reason, reason


def test_assert_names_a_window_that_is_never_read(tmp_path: Path) -> None:
    code, reason = _run(tmp_path, "assert fleet.failing == 0 timeout 1s\n", finish=False)
    assert code == 1
    assert "line 1" in reason and "start-up window is still being read" in reason, reason
