"""End to end: broker + simulated fleet + device actors + ingest + the console in a pilot.

Crash one transcoder; the overview marks it, the incidents panel ranks it first, and one
``enter`` from launch opens its detail with the failing check's text (<= 3 keystrokes).
"""

from __future__ import annotations

import asyncio
import importlib.util
import time
from dataclasses import replace

import pytest
from textual.widgets import Static
from uistack import Dispatch

from pipeconsole.config import Profile
from pipeconsole.model.snapshot import Health

NEEDED = ("pipeconsole.sim.fleet", "pipeconsole.actors.service", "pipeconsole.ingest")
MISSING = [m for m in NEEDED if importlib.util.find_spec(m) is None]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(bool(MISSING), reason=f"needs {', '.join(MISSING)} (not built yet)"),
]


async def _drive(profile: Profile, crashed: str) -> tuple[int, str, str]:
    from pipeconsole.ui.factory import build_app
    from pipeconsole.ui.screens.devices import DevicesScreen
    from pipeconsole.ui.source import IngestSource

    app = build_app(profile, IngestSource(profile), capture_logging=False)
    keystrokes = 0
    async with app.run_test(size=(120, 36)) as pilot:
        deadline = time.monotonic() + 60
        while True:
            s = app.snapshot
            top = s.top_incident if s is not None else None
            # FAILING, not just first: before its first report reaches the console it is
            # UNKNOWN ("no state event yet"), which can rank it first too, and the detail
            # then shows the report that came meanwhile.
            if top is not None and top.device_id == crashed and top.health == Health.FAILING:
                break
            assert time.monotonic() < deadline, f"top incident never became {crashed}: {top}"
            await asyncio.sleep(0.2)
        await pilot.pause()
        assert app.snapshot is not None
        top = app.snapshot.top_incident
        assert top is not None
        expected = top.failing_checks[0].split(": ", 1)[-1] if top.failing_checks else top.reason
        graph_line = "".join(
            app.screen.query_one("#graph").render_line(y).text for y in range(1, 30)
        )
        assert crashed in graph_line  # the overview shows it
        await pilot.press("enter")
        keystrokes += 1
        await pilot.pause()
        assert isinstance(app.screen, DevicesScreen)
        assert app.screen.device_id == crashed
        text = "\n".join(
            str(getattr(w.render(), "plain", ""))
            for w in app.screen.query("#dd-checks, #dd-header").results(Static)
        )
    return keystrokes, text, expected


def test_crashed_transcoder_is_ranked_first_and_one_enter_opens_its_check(
    profile: Profile,
) -> None:
    from pipeconsole.sim.fleet import Fleet

    profile = replace(profile, check_interval_s=0.5, refresh_hz=4.0)
    fleet = Fleet.start(devices=8, seed=1, profile=profile)
    dispatch = Dispatch(profile)
    try:
        dispatch.wait_ready()
        crashed = next(d.device_id for d in fleet.devices if d.device_id.startswith("transcode"))
        fleet.device(crashed).inject("crash", duration_s=120)
        # The console's staleness bound (3 check intervals) well above the actors' fast checks:
        # a loaded machine that delays a report must not turn healthy devices UNKNOWN and
        # reorder the incidents between the test's look and its keystroke.
        console = replace(profile, check_interval_s=5.0)
        keystrokes, text, expected = asyncio.run(_drive(console, crashed))
    finally:
        dispatch.stop()
        fleet.stop()
    assert keystrokes <= 3
    assert expected and expected[:40] in text
