"""Hostile device text renders literally: markup inert, escapes visible, layout intact."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from conftest import before, feed, make_app
from hostile_events import ANY_EVENT  # tests/: on the path as the root conftest's folder
from hypothesis import given, settings
from hypothesis import strategies as st
from textual.widgets import Static
from uifixtures import EVIL, hostile

from pipeconsole.model.snapshot import DlqEntry
from pipeconsole.ui.screens.detail import DetailScreen, request_detail_text
from pipeconsole.ui.screens.devices import DevicesScreen
from pipeconsole.ui.screens.overview import OverviewScreen
from pipeconsole.ui.screens.requests import RequestsScreen


def test_hostile_names_in_the_overview_render_literally(snap_compare: Any) -> None:
    assert snap_compare(make_app(), terminal_size=(120, 36), run_before=before(hostile()))


def test_hostile_names_in_the_device_detail_render_literally(snap_compare: Any) -> None:
    assert snap_compare(make_app(), terminal_size=(120, 36), run_before=before(hostile(), "enter"))


async def test_hostile_text_is_shown_escaped_and_clicking_it_does_nothing() -> None:
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        await feed(pilot, hostile())
        screen = app.screen
        assert isinstance(screen, OverviewScreen)
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, DevicesScreen)
        assert app.screen.device_id == EVIL
        svg = app.export_screenshot()
        assert "\x1b" not in svg and "\u202e" not in svg and "\x07" not in svg
        assert "[bold red]x[/]" in svg.replace("&#160;", " ")
        assert "[@click=app.quit]z[/]" in svg.replace("&#160;", " ")
        header = app.screen.query_one("#dd-header", Static)
        # clicking every cell of the line that shows the name fires no action
        for x in range(0, header.region.width, 3):
            await pilot.click(header, offset=(x, 0))
        await pilot.pause()
        assert app.is_running
        assert isinstance(app.screen, DevicesScreen)
        checks = app.screen.query_one("#dd-checks", Static)
        for x in range(0, checks.region.width, 3):
            await pilot.click(checks, offset=(x, 1))
        await pilot.pause()
        assert app.is_running
        assert app.screen.query_one("#summary").region.height <= 2  # layout intact


async def test_a_hostile_request_opens_escaped_in_full_and_closes() -> None:
    """``enter`` on a request whose every text field is hostile: the detail shows them inert
    and whole (the table cuts the reason at the screen's edge), and ``esc`` goes back."""

    s = hostile()
    long_reason = f"{EVIL} " * 6 + "the end"
    evil = replace(
        s.requests[0],
        request_id=EVIL,
        device_id=EVIL,
        uri=EVIL,
        reason=long_reason,
        issued_by=EVIL,
        actor_id=EVIL,
        replay_of=EVIL,
    )
    s = replace(s, requests=(evil, *s.requests[1:]), at_risk=())
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        await feed(pilot, s)
        await pilot.press("3")
        await pilot.pause()
        assert isinstance(app.screen, RequestsScreen)
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, DetailScreen)
        text = str(app.screen.query_one("#detail-text", Static).render())
        assert "the end" in text  # the whole reason
        assert "[bold red]x[/]" in text and "\x1b" not in text and "\u202e" not in text
        svg = app.export_screenshot()
        assert "\x1b" not in svg and "\u202e" not in svg and "\x07" not in svg
        body = app.screen.query_one("#detail-text", Static)
        for y in range(0, body.region.height, 2):
            for x in range(0, body.region.width, 7):
                await pilot.click(body, offset=(x, y))
        await pilot.pause()
        assert app.is_running and isinstance(app.screen, DetailScreen)
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, RequestsScreen)


def test_the_request_detail_says_how_the_deadline_stands() -> None:

    s = hostile()
    r = s.requests[0]

    def line(**kw: Any) -> str:
        text = request_detail_text(replace(r, **kw), s.time_ms).plain
        return next(x for x in text.splitlines() if x.startswith("deadline"))

    assert line(deadline_ms=s.time_ms + 4000, remaining_ms=4000).endswith("· 4.0 s left")
    assert line(deadline_ms=s.time_ms - 1500, remaining_ms=-1500).endswith("· missed by 1.5 s")
    assert "left" not in line(deadline_ms=s.time_ms - 1500, remaining_ms=None)  # final
    assert line(deadline_ms=0, remaining_ms=None).endswith("unknown")


async def test_a_hostile_dead_letter_opens_with_its_headers_escaped() -> None:
    """A dead letter keeps the source record's headers: a hostile producer chose them."""

    entry = DlqEntry(
        topic="device-request-dlq-v1",
        partition=1,
        offset=7,
        time_ms=hostile().time_ms,
        key=EVIL,
        reason=f"malformed: {EVIL} and the rest",
        code="truncated",
        headers=((EVIL, EVIL), ("pipeconsole.dlq.code", "truncated")),
        size=11,
        request_id=EVIL,
    )
    s = replace(hostile(), dlq=(entry,), dlq_total=1)
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        await feed(pilot, s)
        await pilot.press("3")
        await pilot.pause()
        assert isinstance(app.screen, RequestsScreen)
        app.screen.query_one("#dlq-table").focus()
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, DetailScreen)
        text = str(app.screen.query_one("#detail-text", Static).render())
        assert "device-request-dlq-v1 [1] @ 7" in text and "and the rest" in text
        assert "pipeconsole.dlq" in text and "[bold red]x[/]" in text
        assert "\x1b" not in text and "\u202e" not in text and "\x07" not in text
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, RequestsScreen)


@settings(max_examples=4, derandomize=True, deadline=None)
@given(st.lists(ANY_EVENT, min_size=20, max_size=60))
def test_generated_hostile_events_render_in_every_view(events: list[Any]) -> None:
    """Events generated from the descriptors with any value of each wire type (NaN rates,
    times in 292,471,208 AD, undeclared enums, control characters), folded by the model: every
    view draws them, nothing escapes to the terminal, the app keeps running."""
    import asyncio

    from pipeconsole.model import Model
    from pipeconsole.model.fixtures import FakeClock

    clock = FakeClock()
    model = Model(clock=clock)
    model.apply(events)
    clock.advance(2)
    snap = model.snapshot(analyse=True)

    async def visit() -> None:
        app = make_app()
        async with app.run_test(size=(100, 30)) as pilot:
            await feed(pilot, snap)
            for key in ("1", "2", "enter", "escape", "3", "4", "5", "6", "g", "1"):
                await pilot.press(key)
                await pilot.pause()
                svg = app.export_screenshot()
                assert "\x1b" not in svg and "\x07" not in svg and "\u202e" not in svg
            assert app.is_running

    asyncio.run(visit())
