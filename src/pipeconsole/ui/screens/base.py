"""What every console view shares: the summary bar, the ``/`` filter, ``esc``, the footer.

A view subclasses :class:`ConsoleScreen`, composes its body in :meth:`compose_body`, lists
the fields its records have in ``FILTER_FIELDS``, and redraws from a snapshot in
:meth:`show`. The app calls :meth:`show_snapshot` on the *visible* screen only; a screen
that comes back into view catches up from ``app.snapshot`` (so hidden screens cost nothing).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.events import ScreenResume
from textual.screen import Screen
from textual.widgets import Footer, Static

from pipeconsole.model.snapshot import Snapshot
from pipeconsole.query import parse
from pipeconsole.ui.keymap import bind
from pipeconsole.ui.source import IngestSource
from pipeconsole.ui.widgets.filter_bar import FilterBar
from pipeconsole.ui.widgets.summary_bar import SummaryBar

if TYPE_CHECKING:
    from pipeconsole.ui.app import PipeConsoleApp

__all__ = ["ConsoleScreen"]


class ConsoleScreen(Screen[None]):
    """Base of the overview, devices, requests, back-pressure and log views."""

    FILTER_FIELDS: ClassVar[tuple[str, ...]] = ()
    FILTER_CHOICES: ClassVar[Mapping[str, tuple[str, ...]]] = {}
    """Field -> every value it can hold (``health``: HEALTHY, ...): the filter refuses others."""
    VIEW_TITLE: ClassVar[str] = ""
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (110, "-wide")]  # noqa: RUF012

    BINDINGS: ClassVar[list[BindingType]] = [
        bind("slash", "filter", "Filter", "screen.filter", key_display="/"),
        bind("escape", "back", "Back", "screen.back", key_display="esc"),
    ]

    def __init__(self, *, initial_filter: str = "") -> None:
        super().__init__()
        self.filter = parse("")
        """The filter in force on this view."""
        self._initial_filter = initial_filter
        self._shown_seq = -1
        self._ready = False
        """False until mounted: a snapshot arriving while a pushed view composes waits."""

    @property
    def drawable(self) -> bool:
        """Its widgets are there to draw on: mounted (a view switched to or pushed composes
        after it is already the current screen), and the console is not quitting (Textual then
        removes the widgets of the screens still on the stack). Messages from the threads
        (snapshots, log lines, chaos steps) can arrive in either window; the view catches up
        on mount, and there is nothing to draw for after."""
        return self._ready and self.app.is_running

    @property
    def console_app(self) -> PipeConsoleApp:
        from pipeconsole.ui.app import PipeConsoleApp

        assert isinstance(self.app, PipeConsoleApp)
        return self.app

    def compose(self) -> ComposeResult:
        yield SummaryBar(id="summary")
        yield Static(id="view-title")
        yield from self.compose_body()
        yield FilterBar(self.FILTER_FIELDS, self.FILTER_CHOICES, id="filter-bar")
        yield Footer()

    def compose_body(self) -> ComposeResult:
        yield from ()

    def on_mount(self) -> None:
        if self._initial_filter:
            self.set_filter(self._initial_filter)
        self._title()
        self._ready = True
        self.catch_up()

    def on_screen_resume(self, event: ScreenResume) -> None:
        self.catch_up()

    def catch_up(self) -> None:
        if not self.drawable:
            return
        snapshot = self.console_app.snapshot
        if snapshot is not None and snapshot.seq != self._shown_seq:
            self.show_snapshot(snapshot)
        elif snapshot is None:
            source = self.console_app.source
            waiting = source.waiting if isinstance(source, IngestSource) else ""
            self.query_one(SummaryBar).show(None, self.console_app.profile.slo, waiting=waiting)

    def show_snapshot(self, snapshot: Snapshot) -> None:
        """Redraw from ``snapshot`` (called by the app for the visible screen)."""
        if not self.drawable:
            return  # on_mount catches up
        self._shown_seq = snapshot.seq
        self.query_one(SummaryBar).show(
            snapshot,
            self.console_app.profile.slo,
            self.console_app.source_ok,
            self.console_app.problems,
        )
        self.show(snapshot)

    def show(self, snapshot: Snapshot) -> None:
        """Subclasses redraw their body here."""

    def set_filter(self, text: str) -> None:
        """Apply a filter typed elsewhere (``:devices health=failing``)."""
        bars = self.query(FilterBar)
        if not bars:  # not composed yet (a view just switched to): apply on mount
            self._initial_filter = text
            return
        bars.first().input.value = text  # parsed and applied by FilterBar.on_input_changed

    def on_filter_bar_filter_changed(self, event: FilterBar.FilterChanged) -> None:
        self.filter = event.current
        self._title()
        snapshot = self.console_app.snapshot
        if snapshot is not None:
            self.show(snapshot)

    def on_filter_bar_filter_closed(self, event: FilterBar.FilterClosed) -> None:
        self.focus_main()

    def focus_main(self) -> None:
        """Give focus to the view's main widget."""
        self.focus_next()

    def _title(self) -> None:
        text = self.VIEW_TITLE
        if not self.filter.is_empty:
            text += f"  /{self.filter.text}"
        if self.console_app.status_line:
            text += f"  · {self.console_app.status_line}"
        self.query_one("#view-title", Static).update(Text(text, end=""))  # typed text: no markup
        self.set_class(not self.filter.is_empty, "-filtered")

    def action_filter(self) -> None:
        self.query_one(FilterBar).open()

    def action_back(self) -> None:
        """k9s ``esc``: close the prompt, else clear the filter, else go back."""
        bar = self.query_one(FilterBar)
        if bar.is_open:
            bar.close()
            self.focus_main()
        elif not self.filter.is_empty:
            bar.clear()
        else:
            self.console_app.go_back()
