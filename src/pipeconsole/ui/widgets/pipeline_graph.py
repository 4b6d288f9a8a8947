"""The pipeline graph: layers left to right, keyboard-navigable, rendering only what is visible.

Layout comes from the model (``GraphNode.layer`` = topological generation, ``order`` within
the layer), so this widget does no graph layout of its own: column = layer, row = order. Each
cell reads without colour::

    ─▶↓✖ transcode-03 ▆
    │ │ │              └ input-queue fill of the node, ▁ to █ (back-pressure)
    │ │ └ health marker (✔ ▲ ✖ ?) and id, coloured by health
    │ └ relation to the selected node: ◆ selected, ↑ upstream, ↓ downstream (blast radius)
    └ incoming edges: ``─▶`` coloured by the worst input-queue fill, ``┄▶`` all ghost edges

The first line is a sticky header (one label per layer), the last a sticky edge line for the
selected node (its upstream and downstream links with rate and queue). It is a
``ScrollView`` with ``render_line``: drawing a frame costs O(visible lines × layers), so
2,000 nodes scroll as fast as 20. Big fleets start collapsed by stage (``c`` toggles).

Attributes down, messages up: the screen calls :meth:`set_graph`; the widget posts
:class:`PipelineGraph.NodeSelected` / :class:`NodeOpened` / :class:`StageOpened`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from textual.binding import BindingType
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from pipeconsole.model.snapshot import DeviceView, GraphEdge, GraphView, Health, StageNode
from pipeconsole.text import sanitize
from pipeconsole.ui.keymap import bind
from pipeconsole.ui.render import HEALTH_MARK, HEALTH_STYLE, fill_style, rate

__all__ = ["COLLAPSE_AT", "PipelineGraph"]


COLLAPSE_AT = 300
"""Fleets with more nodes than this start collapsed by stage."""
NAME_MIN, NAME_MAX = 8, 16
"""Bounds of the id width in a cell (ids longer than the column are elided with …)."""
_FILL = " ▁▂▃▄▅▆▇█"
_HEALTH_RANK = {Health.FAILING: 0, Health.DEGRADED: 1, Health.UNKNOWN: 2, Health.HEALTHY: 3}


@dataclass(frozen=True, slots=True)
class _Cell:
    """What one grid position shows; built once per snapshot, drawn many times."""

    key: str
    """Device id, or stage name when collapsed."""
    label: str
    health: Health
    fill: float
    """Input-queue fill 0..1 (negative: unknown)."""
    gutter: str
    gutter_fill: float
    extra: str = ""


class PipelineGraph(ScrollView, can_focus=True):
    """Layered pipeline graph with health markers, back-pressure and keyboard navigation."""

    BINDINGS: ClassVar[list[BindingType]] = [
        bind("up", "move(0, -1)", "Up", "graph.up", show=False),
        bind("down", "move(0, 1)", "Down", "graph.down", show=False),
        bind("left", "move(-1, 0)", "Prev layer", "graph.left", show=False),
        bind("right", "move(1, 0)", "Next layer", "graph.right", show=False),
        bind("k", "move(0, -1)", "Up", "graph.up_vi", show=False),
        bind("j", "move(0, 1)", "Down", "graph.down_vi", show=False),
        bind("h", "move(-1, 0)", "Prev layer", "graph.left_vi", show=False),
        bind("l", "move(1, 0)", "Next layer", "graph.right_vi", show=False),
        bind("pageup", "move(0, -10)", "Page up", "graph.page_up", show=False),
        bind("pagedown", "move(0, 10)", "Page down", "graph.page_down", show=False),
        bind("u", "upstream", "Upstream", "graph.upstream"),
        bind("d", "downstream", "Downstream", "graph.downstream"),
        bind("f", "focus_neighbourhood", "Focus", "graph.focus"),
        bind("b", "blast_radius", "Blast radius", "graph.blast"),
        bind("c", "collapse", "Collapse", "graph.collapse"),
        bind("enter", "open", "Open", "graph.open"),
    ]

    class NodeSelected(Message):
        """The cursor moved to a device."""

        def __init__(self, device_id: str) -> None:
            super().__init__()
            self.device_id = device_id

    class NodeOpened(Message):
        """``enter`` on a device: drill down."""

        def __init__(self, device_id: str) -> None:
            super().__init__()
            self.device_id = device_id

    class StageOpened(Message):
        """``enter`` on a collapsed stage: show its devices."""

        def __init__(self, stage: str) -> None:
            super().__init__()
            self.stage = stage

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.graph = GraphView()
        """The last graph given by :meth:`set_graph`."""
        self.selected: str | None = None
        """Device id (or stage name when collapsed) under the cursor."""
        self.collapsed: bool | None = None
        """None until the first graph: then chosen by size (:data:`COLLAPSE_AT`)."""
        self.show_blast = False
        """Highlight every downstream device of the selection, not only direct neighbours."""
        self.highlight: frozenset[str] = frozenset()
        """Devices an action is about to touch: marked ``◆`` with every descendant ``↓``,
        whatever the cursor is on (the confirmation screens' blast radius)."""
        self.focus_only = False
        """Show only the selection's two-hop neighbourhood."""
        self._visible: frozenset[str] | None = None
        self._devices: Mapping[str, DeviceView] = {}
        self._columns: list[list[_Cell]] = []
        self._headers: list[str] = []
        self._pos: dict[str, tuple[int, int]] = {}
        self._up: dict[str, list[str]] = {}
        self._down: dict[str, list[str]] = {}
        self._edges: dict[tuple[str, str], GraphEdge] = {}
        self._related: dict[str, str] = {}
        self._name_w = NAME_MIN
        self._cell_w = NAME_MIN + 8
        self._frame: tuple[int, int, Style] = (0, 0, Style())

    # ------------------------------------------------------------------ attributes down

    def set_graph(
        self,
        graph: GraphView,
        devices: Mapping[str, DeviceView],
        visible: frozenset[str] | None = None,
    ) -> None:
        """Show ``graph``; ``visible`` (device ids) hides the others (the ``/`` filter)."""
        self.graph = graph
        self._devices = devices
        self._visible = visible
        if self.collapsed is None and graph.nodes:
            self.collapsed = len(graph.nodes) > COLLAPSE_AT
        self._index()
        self._build()

    @property
    def node_count(self) -> int:
        return len(self._pos)

    def select(self, key: str) -> bool:
        """Put the cursor on ``key`` if it is shown; returns whether it is."""
        if key not in self._pos:
            return False
        old = set(self._related)
        before = self.scroll_offset
        self.selected = key
        self._relate()
        self._scroll_to_selected()
        if self.scroll_offset != before:
            self.refresh()
        else:  # repaint only the rows whose markers changed, and the edge line
            view = self.scrollable_content_region
            top = int(self.scroll_offset.y)
            rows = {self._pos[k][1] for k in old | set(self._related) if k in self._pos}
            for row in rows:
                if 1 <= row - top + 1 < view.height - 1:
                    self.refresh(Region(0, row - top + 1, view.width, 1))
            self.refresh(Region(0, view.height - 1, view.width, 1))
        if not self.collapsed:
            self.post_message(self.NodeSelected(key))
        return True

    # ------------------------------------------------------------------ model -> grid

    def _index(self) -> None:
        up: dict[str, list[str]] = {}
        down: dict[str, list[str]] = {}
        edges: dict[tuple[str, str], GraphEdge] = {}
        for e in self.graph.edges:
            up.setdefault(e.dst, []).append(e.src)
            down.setdefault(e.src, []).append(e.dst)
            edges[(e.src, e.dst)] = e
        self._up, self._down, self._edges = up, down, edges

    def _build(self) -> None:
        before_cols, before_headers = self._columns, self._headers
        if self.collapsed:
            self._build_stages()
        else:
            self._build_devices()
        self._repaint_changed(before_cols, before_headers)
        self._pos = {
            c.key: (x, y) for x, col in enumerate(self._columns) for y, c in enumerate(col)
        }
        if self.selected not in self._pos:
            self.selected = self._default_selection()
        self._relate()
        longest = max(
            (
                len(c.label) + (len(c.extra) + 1 if c.extra else 0)
                for col in self._columns
                for c in col
            ),
            default=NAME_MIN,
        )
        self._name_w = min(NAME_MAX, max(NAME_MIN, longest))
        self._cell_w = self._name_w + 8
        rows = max((len(c) for c in self._columns), default=0)
        self.virtual_size = Size(self._cell_w * len(self._columns), rows + 2)

    def _repaint_changed(self, cols: list[list[_Cell]], headers: list[str]) -> None:
        """Refresh only the visible rows whose cells changed (4 snapshots a second, 2,000
        nodes: repainting everything each time would eat the keypress budget)."""
        new = self._columns
        if headers != self._headers or [len(c) for c in cols] != [len(c) for c in new]:
            self.refresh()
            return
        view = self.scrollable_content_region
        top = int(self.scroll_offset.y)
        for y in range(1, view.height - 1):
            row = top + y - 1
            if any(row < len(a) and a[row] != b[row] for a, b in zip(cols, new, strict=True)):
                self.refresh(Region(0, y, view.width, 1))
        self.refresh(Region(0, view.height - 1, view.width, 1))

    def _default_selection(self) -> str | None:
        cells = [c for col in self._columns for c in col]
        if not cells:
            return None
        return min(cells, key=lambda c: (_HEALTH_RANK[c.health], -c.fill)).key

    def _shown(self) -> set[str] | None:
        shown: set[str] | None = set(self._visible) if self._visible is not None else None
        if self.focus_only and self.selected and not self.collapsed:
            hood = self._hops(self.selected, 2)
            shown = hood if shown is None else shown & hood
        return shown

    def _build_devices(self) -> None:
        shown = self._shown()
        columns: list[list[_Cell]] = []
        headers: list[str] = []
        for layer in self.graph.layers:
            col: list[_Cell] = []
            stages: dict[str, int] = {}
            for device_id in layer:
                if shown is not None and device_id not in shown:
                    continue
                col.append(self._device_cell(device_id))
                node = self._devices.get(device_id)
                stage = node.stage if node else "?"
                stages[stage] = stages.get(stage, 0) + 1
            if col:
                columns.append(col)
                label = "+".join(sanitize(s, max_len=12) for s in stages)
                headers.append(f"{label} ({len(col)})")
        self._columns, self._headers = columns, headers

    def _device_cell(self, device_id: str) -> _Cell:
        d = self._devices.get(device_id)
        health = d.health if d else Health.UNKNOWN
        fill = d.queue_fill if d and d.queue_capacity else -1.0
        incoming = [self._edges[(s, device_id)] for s in self._up.get(device_id, ())]
        gutter, gfill = _gutter(incoming)
        return _Cell(device_id, sanitize(device_id, max_len=64), health, fill, gutter, gfill)

    def _build_stages(self) -> None:
        by_layer: dict[int, list[StageNode]] = {}
        for s in self.graph.stages.nodes:
            by_layer.setdefault(s.layer, []).append(s)
        incoming: dict[str, float] = {}
        for e in self.graph.stages.edges:
            node = next((n for n in self.graph.stages.nodes if n.stage == e.dst), None)
            if node and node.queue_capacity:
                incoming[e.dst] = max(
                    incoming.get(e.dst, 0.0), node.queue_depth / node.queue_capacity
                )
        columns: list[list[_Cell]] = []
        headers: list[str] = []
        for layer in sorted(by_layer):
            col = []
            for s in sorted(by_layer[layer], key=lambda n: n.stage):
                problems = "".join(
                    f"{HEALTH_MARK[h]}{n}"
                    for h, n in (
                        (Health.FAILING, s.failing),
                        (Health.DEGRADED, s.degraded),
                        (Health.UNKNOWN, s.unknown),
                    )
                    if n
                )
                fill = s.queue_depth / s.queue_capacity if s.queue_capacity else -1.0
                has_in = s.stage in incoming
                col.append(
                    _Cell(
                        s.stage,
                        sanitize(s.stage, max_len=40),
                        s.health,
                        fill,
                        "─▶" if has_in else "  ",
                        incoming.get(s.stage, 0.0),
                        extra=f"{s.devices} {problems}".strip(),
                    )
                )
            columns.append(col)
            headers.append(f"layer {layer}")
        self._columns, self._headers = columns, headers

    def _hops(self, start: str, k: int) -> set[str]:
        seen = {start}
        frontier = [start]
        for _ in range(k):
            nxt = []
            for n in frontier:
                for m in (*self._up.get(n, ()), *self._down.get(n, ())):
                    if m not in seen:
                        seen.add(m)
                        nxt.append(m)
            frontier = nxt
        return seen

    def _descendants(self, start: str) -> set[str]:
        seen: set[str] = set()
        queue = deque(self._down.get(start, ()))
        while queue:
            n = queue.popleft()
            if n not in seen:
                seen.add(n)
                queue.extend(self._down.get(n, ()))
        return seen

    def set_highlight(self, device_ids: frozenset[str]) -> None:
        """Mark ``device_ids`` and everything downstream of them (see :attr:`highlight`)."""
        self.highlight = device_ids
        self._relate()
        self.refresh()

    def _relate(self) -> None:
        """Work out which cells are upstream / downstream of the selection."""
        related: dict[str, str] = {}
        if self.highlight and not self.collapsed:
            for t in self.highlight:
                for n in self._descendants(t):
                    related[n] = "↓"
            for t in self.highlight:
                related[t] = "◆"
            self._related = related
            return
        sel = self.selected
        if sel and not self.collapsed:
            for n in self._up.get(sel, ()):
                related[n] = "↑"
            down = self._descendants(sel) if self.show_blast else set(self._down.get(sel, ()))
            for n in down:
                related[n] = "↓"
            related[sel] = "◆"
        elif sel:
            related[sel] = "◆"
        self._related = related

    # ------------------------------------------------------------------ drawing

    def render_lines(self, crop: Region) -> list[Strip]:
        # Region and style lookups walk the DOM; do them once per frame, not once per line.
        view = self.scrollable_content_region
        self._frame = (view.width, view.height, self.rich_style)
        return super().render_lines(crop)

    def render_line(self, y: int) -> Strip:
        width, height, base = self._frame
        if y == 0:
            return self._header_line(width)
        if y == height - 1 and height > 2:
            return self._edge_line(width)
        _, scroll_y = self.scroll_offset
        row = y - 1 + int(scroll_y)
        segments: list[Segment] = []
        for col in self._columns:
            if row < len(col):
                segments.extend(self._cell_segments(col[row]))
            else:
                segments.append(Segment(" " * self._cell_w))
        if not self._columns and y == 1:
            if self._visible is not None:
                empty = "(no devices match)"
            elif self._devices and not self.graph.computed_ms:
                empty = "(reading the backlog: the graph follows once caught up)"
            else:
                empty = "(no devices yet)"
            segments = [Segment(empty, Style(dim=True))]
        strip = Strip(segments).crop(int(self.scroll_offset.x), int(self.scroll_offset.x) + width)
        return strip.extend_cell_length(width).apply_style(base)

    def _header_line(self, width: int) -> Strip:
        w = self._cell_w
        segs = [Segment(f"  {h}"[: w - 1].ljust(w), Style(bold=True)) for h in self._headers]
        x = int(self.scroll_offset.x)
        return Strip(segs).crop(x, x + width).extend_cell_length(width).apply_style(self._frame[2])

    def _cell_segments(self, c: _Cell) -> list[Segment]:
        rel = self._related.get(c.key, " ")
        hstyle = HEALTH_STYLE[c.health]
        name_style = hstyle
        if rel == "◆":
            name_style = hstyle + Style(reverse=True)
        elif rel != " ":
            name_style = hstyle + Style(underline=True)
        gstyle = fill_style(c.gutter_fill) if c.gutter.strip() else Style()
        w = self._name_w
        body = f"{c.label} {c.extra}" if c.extra else c.label
        label = (body if len(body) <= w else body[: w - 1] + "…").ljust(w)
        fill = "·" if c.fill < 0 else _fill_glyph(c.fill)
        return [
            Segment(c.gutter, gstyle),
            Segment(rel, Style(bold=True)),
            Segment(HEALTH_MARK[c.health] + " ", hstyle),
            Segment(label, name_style),
            Segment(" "),
            Segment(fill, fill_style(max(c.fill, 0.0))),
            Segment(" "),
        ]

    def _edge_line(self, width: int) -> Strip:
        sel = self.selected
        if not sel:
            return Strip.blank(width, self._frame[2])
        if self.collapsed:
            text = f"stage {sanitize(sel, max_len=40)} · enter: show its devices · c: expand"
            return Strip([Segment(text[:width].ljust(width), Style(dim=True))])
        parts = [f"◆ {sanitize(sel, max_len=40)}"]
        for src in self._up.get(sel, ())[:3]:
            parts.append("↑ " + _edge_text(src, self._edges[(src, sel)]))
        for dst in self._down.get(sel, ())[:3]:
            parts.append("↓ " + _edge_text(dst, self._edges[(sel, dst)]))
        if self.show_blast:
            parts.append(f"blast radius {len(self._descendants(sel))}")
        text = "  ".join(parts)
        return Strip([Segment(text[:width].ljust(width), Style(dim=True))])

    # ------------------------------------------------------------------ keys

    def _scroll_to_selected(self) -> None:
        if self.selected not in self._pos:
            return
        x, y = self._pos[self.selected]
        view = self.scrollable_content_region
        rows_visible = max(1, view.height - 2)
        sy = int(self.scroll_offset.y)
        if y < sy:
            sy = y
        elif y >= sy + rows_visible:
            sy = y - rows_visible + 1
        sx = int(self.scroll_offset.x)
        w = self._cell_w
        if x * w < sx:
            sx = x * w
        elif (x + 1) * w > sx + view.width:
            sx = (x + 1) * w - view.width
        self.scroll_to(sx, sy, animate=False, immediate=True)

    def action_move(self, dx: int, dy: int) -> None:
        if not self._columns:
            return
        x, y = self._pos.get(self.selected or "", (0, 0))
        x = min(max(0, x + dx), len(self._columns) - 1)
        if dx:  # keep the same relative height when changing layer
            y = min(y, len(self._columns[x]) - 1)
        y = min(max(0, y + dy), len(self._columns[x]) - 1)
        self.select(self._columns[x][y].key)

    def _neighbour(self, candidates: Iterable[str]) -> str | None:
        shown = [c for c in candidates if c in self._pos]
        if not shown:
            return None

        def rank(n: str) -> tuple[int, str]:
            d = self._devices.get(n)
            return (_HEALTH_RANK[d.health] if d else 2, n)

        return min(shown, key=rank)

    def action_upstream(self) -> None:
        """Jump to the worst upstream neighbour (follow the root-cause chain)."""
        if self.selected and not self.collapsed:
            target = self._neighbour(self._up.get(self.selected, ()))
            if target:
                self.select(target)

    def action_downstream(self) -> None:
        if self.selected and not self.collapsed:
            target = self._neighbour(self._down.get(self.selected, ()))
            if target:
                self.select(target)

    def action_focus_neighbourhood(self) -> None:
        self.focus_only = not self.focus_only
        self._build()

    def action_blast_radius(self) -> None:
        self.show_blast = not self.show_blast
        self._relate()
        self.refresh()

    def action_collapse(self) -> None:
        self.collapsed = not self.collapsed
        self.selected = None
        self._build()

    def action_open(self) -> None:
        if not self.selected:
            return
        if self.collapsed:
            self.post_message(self.StageOpened(self.selected))
        else:
            self.post_message(self.NodeOpened(self.selected))


def _fill_glyph(fill: float) -> str:
    """``▁``..``█`` for 0 < fill <= 1; a blank for an empty queue."""
    return _FILL[min(8, max(1 if fill > 0 else 0, round(fill * 8)))]


def _gutter(incoming: list[GraphEdge]) -> tuple[str, float]:
    if not incoming:
        return "  ", 0.0
    fill = max((e.queue_depth / e.queue_capacity if e.queue_capacity else 0.0) for e in incoming)
    if all(e.ghost for e in incoming):
        return "┄▶", fill
    return "─▶", fill


def _edge_text(peer: str, e: GraphEdge) -> str:
    q = f"q {e.queue_depth}/{e.queue_capacity}" if e.queue_capacity else f"q {e.queue_depth}"
    ghost = " ghost" if e.ghost else ""
    return f"{sanitize(peer, max_len=32)} {rate(e.rate)} {q}{ghost}"
