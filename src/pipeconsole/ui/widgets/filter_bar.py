"""The ``/`` filter prompt docked under every view, with live parsing and clear errors.

Typing re-parses on every change: a valid query is applied at once, an invalid one keeps the
previous filter and shows the parser's message (which names the column). ``enter`` closes the
prompt and keeps the filter; ``esc`` (handled by the screen) clears it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Input, Static

from pipeconsole.query import Query, QueryError, parse

__all__ = ["FilterBar"]


class FilterBar(Vertical):
    """Hidden until ``/``; posts :class:`FilterBar.FilterChanged` with a parsed query."""

    class FilterChanged(Message):
        def __init__(self, query: Query) -> None:
            super().__init__()
            self.current = query

    class FilterClosed(Message):
        """The prompt was closed with ``enter``: focus goes back to the view."""

    def __init__(
        self,
        fields: Iterable[str],
        choices: Mapping[str, tuple[str, ...]] | None = None,
        *,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self.fields = tuple(fields)
        """Field names the view's records have (unknown names are errors with a hint)."""
        self.choices = dict(choices or {})
        """Field -> every value it can hold (any other is an error with a hint)."""
        self.current = parse("")
        """The filter in force (the last valid one)."""

    def compose(self) -> ComposeResult:
        yield Static(id="filter-message")
        yield Input(
            placeholder="filter: words, field=value, and/or/not, field~regex", id="filter-input"
        )

    @property
    def input(self) -> Input:
        return self.query_one("#filter-input", Input)

    def open(self) -> None:
        self.add_class("-open")
        self.input.value = self.current.text
        self._say(Text("fields: " + ", ".join(self.fields), Style(dim=True)))
        self.input.focus()

    def close(self) -> None:
        self.remove_class("-open")

    @property
    def is_open(self) -> bool:
        return self.has_class("-open")

    def clear(self) -> None:
        self.input.value = ""
        self.current = parse("")
        self.post_message(self.FilterChanged(self.current))

    def _say(self, text: Text) -> None:
        self.query_one("#filter-message", Static).update(text)

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        try:
            q = parse(event.value, fields=self.fields, choices=self.choices)
        except QueryError as exc:
            self.set_class(True, "-error")
            self._say(Text(f"✖ {exc}", Style(color="red")))
            return
        self.set_class(False, "-error")
        self._say(Text("fields: " + ", ".join(self.fields), Style(dim=True)))
        if q.text != self.current.text:
            self.current = q
            self.post_message(self.FilterChanged(q))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if self.has_class("-error"):
            return  # keep the prompt open on the error
        self.close()
        self.post_message(self.FilterClosed())
