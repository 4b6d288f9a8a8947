"""Hostile device text renders literally: markup inert, escapes visible, layout intact."""

from __future__ import annotations

from typing import Any

from conftest import before, feed, make_app
from textual.widgets import Static
from uifixtures import EVIL, hostile

from pipeconsole.ui.screens.devices import DevicesScreen
from pipeconsole.ui.screens.overview import OverviewScreen


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
