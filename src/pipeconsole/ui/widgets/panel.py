"""A ``Static`` that ignores updates which change nothing.

``Static.update`` always asks for a new layout; at 4 snapshots a second on a 2,000-device
fleet that alone costs more than the keypress budget. :meth:`Panel.show_text` compares with what
is on screen and refreshes only on change (and re-lays out only when the line count changes).
"""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

__all__ = ["Panel"]


class Panel(Static):
    """Shows one Rich ``Text`` (built from safe pieces); updates only when it changes."""

    def __init__(
        self, text: Text | str = "", *, id: str | None = None, classes: str | None = None
    ) -> None:
        super().__init__(Text(text) if isinstance(text, str) else text, id=id, classes=classes)
        self._shown: Text | None = None

    def show_text(self, text: Text) -> None:
        old = self._shown
        if old is not None and old == text:
            return
        lines_changed = old is None or old.plain.count("\n") != text.plain.count("\n")
        self._shown = text
        self.update(text, layout=lines_changed)
