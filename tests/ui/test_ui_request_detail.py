"""The request detail is live: it follows the request through new snapshots (pilot, no broker)."""

from __future__ import annotations

from dataclasses import replace

from conftest import feed, make_app
from textual.widgets import Static
from uifixtures import incident

from pipeconsole.model.snapshot import RequestRow, RequestState, Snapshot
from pipeconsole.ui.screens.detail import DetailScreen
from pipeconsole.ui.screens.requests import RequestsScreen


def _with(s: Snapshot, row: RequestRow, at_ms: int) -> Snapshot:
    return replace(s, time_ms=at_ms, requests=(row,), at_risk=())


def _text(screen: object) -> str:
    assert isinstance(screen, DetailScreen)
    return str(screen.query_one("#detail-text", Static).render())


async def test_the_detail_follows_the_request_and_says_when_it_is_gone() -> None:
    s = incident()
    t0 = s.time_ms
    scheduled = RequestRow(
        request_id="6f1c0de4-live-detail",
        device_id="origin-01",
        method="POST",
        uri="/streams/s1/start",
        state=RequestState.SCHEDULED,
        scheduled_for_ms=t0 + 10_000,
        deadline_ms=t0 + 40_000,
        remaining_ms=40_000,
        attempts=0,
        reason="",
        replay_of="",
        updated_ms=t0,
    )
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        await feed(pilot, _with(s, scheduled, t0))
        await pilot.press("3")
        await pilot.pause()
        assert isinstance(app.screen, RequestsScreen)
        await pilot.press("enter")
        await pilot.pause()
        first = _text(app.screen)
        assert "SCHEDULED" in first and "40.0 s left" in first and "live" in first

        # Ten seconds on it is dispatched, then answered: the open detail shows both.
        dispatched = replace(
            scheduled, state=RequestState.DISPATCHED, remaining_ms=30_000, attempts=1
        )
        await feed(pilot, _with(s, dispatched, t0 + 10_000))
        assert "DISPATCHED" in _text(app.screen) and "30.0 s left" in _text(app.screen)
        done = replace(
            dispatched,
            state=RequestState.OK,
            remaining_ms=None,
            status_code=202,
            reason="accepted by the origin",
            actor_id="dispatch-vm-1",
        )
        await feed(pilot, _with(s, done, t0 + 11_000))
        text = _text(app.screen)
        assert "OK" in text and "202" in text and "accepted by the origin" in text
        assert "SCHEDULED" not in text and "DISPATCHED" not in text

        # Out of the snapshot's newest requests: kept as last seen, and it says so, once.
        await feed(pilot, replace(s, time_ms=t0 + 12_000, requests=(), at_risk=()))
        await feed(pilot, replace(s, time_ms=t0 + 13_000, requests=(), at_risk=()))
        gone = _text(app.screen)
        assert "accepted by the origin" in gone
        assert gone.count("no longer among the newest requests") == 1

        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, RequestsScreen)
