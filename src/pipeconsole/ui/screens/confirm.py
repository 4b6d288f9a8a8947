"""Typed confirmation for destructive and bulk actions, with the blast radius on the graph.

The modal lists what the action will do (the preview), the blast radius
(:func:`~pipeconsole.ui.blast.blast_text`: targets, stages, downstream devices, incidents it
touches) and draws the pipeline graph with the targets marked ``◆`` and everything downstream
``↓``. The operator types the device id (one target) or the count (several) and presses
``enter``. It dismisses with :data:`CONFIRMED`, :data:`MISMATCH` (wrong text: the caller refuses
and sends nothing) or None (``esc``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Literal

from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from pipeconsole.model.snapshot import Snapshot
from pipeconsole.ui.blast import Blast, blast_text
from pipeconsole.ui.keymap import bind
from pipeconsole.ui.render import plain
from pipeconsole.ui.widgets.pipeline_graph import PipelineGraph

__all__ = ["CONFIRMED", "MISMATCH", "ConfirmResult", "ConfirmScreen"]

ConfirmResult = Literal["confirmed", "mismatch"]
CONFIRMED: ConfirmResult = "confirmed"
MISMATCH: ConfirmResult = "mismatch"


class ConfirmScreen(ModalScreen[ConfirmResult | None]):
    """Asks for ``expected`` to be typed before a destructive or bulk action."""

    BINDINGS: ClassVar[list[BindingType]] = [
        bind("escape", "cancel", "Cancel", "confirm.cancel", key_display="esc"),
    ]

    def __init__(
        self,
        title: str,
        preview: Sequence[str],
        blast: Blast,
        expected: str,
        *,
        snapshot: Snapshot | None = None,
        what: str = "",
    ) -> None:
        super().__init__()
        self.confirm_title = title
        self.preview = tuple(preview)
        """Lines describing the action (may quote network text: rendered plain)."""
        self.blast = blast
        self.expected = expected
        self.what = what or ("the device id" if len(blast.targets) == 1 else "the count")
        self.snapshot = snapshot

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-box"):
            yield Static(
                Text(self.confirm_title, Style(bold=True, color="red")), id="confirm-title"
            )
            preview = Text(end="")
            for n, line in enumerate(self.preview[:14]):
                if n:
                    preview.append("\n")
                preview.append_text(plain(line, max_len=200))
            yield Static(preview, id="confirm-preview")
            yield Static(blast_text(self.blast), id="confirm-blast")
            if self.snapshot is not None and self.snapshot.graph.nodes:
                yield PipelineGraph(id="confirm-graph")
            prompt = Text.assemble(
                f"Type {self.what} ",
                plain(self.expected, max_len=80, style=Style(bold=True, color="yellow")),
                " and press enter to confirm; esc cancels. Anything else sends nothing.",
            )
            yield Static(prompt, id="confirm-prompt")
            yield Input(placeholder=self.expected[:80], id="confirm-input")

    def on_mount(self) -> None:
        if self.snapshot is not None and self.snapshot.graph.nodes:
            graph = self.query_one(PipelineGraph)
            graph.collapsed = False
            devices = {d.device_id: d for d in self.snapshot.devices}
            graph.set_graph(self.snapshot.graph, devices)
            graph.set_highlight(frozenset(self.blast.targets))
            if self.blast.targets:
                graph.select(self.blast.targets[0])
        self.query_one("#confirm-input", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(CONFIRMED if event.value.strip() == self.expected else MISMATCH)

    def action_cancel(self) -> None:
        self.dismiss(None)
