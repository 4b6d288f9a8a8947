"""Every view, in every state, as SVG snapshots (pytest-textual-snapshot; clocks frozen:
every time on screen comes from the fixture's fixed snapshot time).

Update after looking at the report: ``pytest tests/ui/test_ui_snapshots.py --snapshot-update``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from conftest import before, make_app
from uifixtures import disconnected, healthy, incident, lagging

from pipeconsole.model.snapshot import Snapshot

VIEWS = {"overview": "1", "devices": "2", "requests": "3", "backpressure": "4", "log": "5"}
STATES: dict[str, tuple[Callable[[], Snapshot], tuple[int, int]]] = {
    "healthy": (healthy, (120, 36)),
    "incident": (incident, (120, 36)),
    "lagging": (lagging, (120, 36)),
    "disconnected": (disconnected, (120, 36)),
    "80x24": (incident, (80, 24)),
}


@pytest.mark.parametrize("state", list(STATES))
@pytest.mark.parametrize("view", list(VIEWS))
def test_view_in_state(snap_compare: Any, view: str, state: str) -> None:
    make, size = STATES[state]
    assert snap_compare(make_app(), terminal_size=size, run_before=before(make(), VIEWS[view]))


def test_drill_down_from_the_top_incident(snap_compare: Any) -> None:
    assert snap_compare(make_app(), terminal_size=(120, 36), run_before=before(incident(), "enter"))


def test_help(snap_compare: Any) -> None:
    assert snap_compare(
        make_app(), terminal_size=(100, 40), run_before=before(incident(), "question_mark")
    )


def test_graph_collapsed_by_stage(snap_compare: Any) -> None:
    assert snap_compare(
        make_app(), terminal_size=(120, 36), run_before=before(incident(), "g", "c")
    )


def _failed_request() -> Snapshot:
    """The incident fixture with a request that failed for a long reason at the top."""
    from dataclasses import replace

    from pipeconsole.model.snapshot import RequestState

    s = incident()
    first = replace(
        s.requests[0],
        state=RequestState.FAILED,
        remaining_ms=None,
        attempts=3,
        status_code=503,
        issued_by="alice@ops",
        actor_id="dispatch-host-1",
        reason="HTTP 503 Service Unavailable: upstream encoder transcode-02 refused the segment "
        "(queue 100/100 for 12.5 s); retried twice with backoff 200 ms, 400 ms; retry budget "
        "exhausted (10 % of requests over the last 10 s)",
    )
    return replace(s, requests=(first, *s.requests[1:]), at_risk=())


def test_request_detail_shows_the_whole_reason(snap_compare: Any) -> None:
    assert snap_compare(
        make_app(), terminal_size=(120, 36), run_before=before(_failed_request(), "3", "enter")
    )
