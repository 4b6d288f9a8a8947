"""A scrolling list of one-line items that formats and draws only the visible ones.

Long histories (timeline, console log, audit) are bounded upstream; this view keeps them
cheap to show anyway: ``render_line`` formats item ``scroll_y + y`` on demand and caches the
result by item identity (Toolong's line cache, in a few lines).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from rich.text import Text
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

__all__ = ["LineList"]

T = TypeVar("T")


class LineList(ScrollView, Generic[T], can_focus=True):
    """Shows ``items`` one per line through ``formatter`` (which must make text safe)."""

    def __init__(
        self,
        formatter: Callable[[T], Text],
        *,
        empty: str = "(nothing yet)",
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(id=id, classes=classes)
        self.formatter = formatter
        self.empty = empty
        """Shown when there are no items."""
        self.items: Sequence[T] = ()
        self._cache: dict[int, tuple[T, Strip]] = {}

    def set_items(self, items: Sequence[T]) -> None:
        if items is self.items:
            return
        old = self.items
        if len(items) == len(old) and (not items or items[0] == old[0]):
            # Bounded, newest-first histories: same length and same newest entry means
            # nothing new arrived; keep the cached lines and skip the repaint.
            self.items = items
            return
        self.items = items
        self._cache.clear()
        self.virtual_size = Size(0, len(items))
        self.refresh()

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        row = y + int(self.scroll_offset.y)
        if not self.items:
            if y == 0:
                return Strip([*Text(self.empty, style="dim").render(self.app.console)]).crop(
                    0, width
                )
            return Strip.blank(width, self.rich_style)
        if row >= len(self.items):
            return Strip.blank(width, self.rich_style)
        item = self.items[row]
        hit = self._cache.get(row)
        if hit is None or hit[0] is not item:
            text = self.formatter(item)
            text.no_wrap = True
            text.end = ""
            strip = Strip(list(text.render(self.app.console)))
            hit = (item, strip)
            if len(self._cache) > 512:
                self._cache.clear()
            self._cache[row] = hit
        return hit[1].crop(0, width).extend_cell_length(width).apply_style(self.rich_style)
