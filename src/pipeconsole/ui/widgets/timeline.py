"""The event timeline: newest first, one line each, only the visible lines drawn."""

from __future__ import annotations

from rich.style import Style
from rich.text import Text

from pipeconsole.model.snapshot import TimelineEvent
from pipeconsole.ui.render import SEVERITY_STYLE, clock, plain
from pipeconsole.ui.widgets.lines import LineList

__all__ = ["Timeline", "event_text"]

_KIND_MARK = {
    "health": "♥",
    "registry": "+",
    "request": "→",
    "dlq": "☠",
    "chaos": "⚡",
    "audit": "§",
    "connection": "⇄",
}


def event_text(e: TimelineEvent) -> Text:
    style = SEVERITY_STYLE[e.severity]
    return Text.assemble(
        (clock(e.time_ms) + " ", Style(dim=True)),
        (_KIND_MARK.get(e.kind, "·") + " ", style),
        plain(e.subject, max_len=40, style=Style(bold=True)),
        " ",
        plain(e.text, max_len=300, style=style),
        end="",
    )


class Timeline(LineList[TimelineEvent]):
    """Timeline events (health changes, registry, requests, DLQ, chaos, audit, connection)."""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(event_text, empty="(no events yet)", id=id, classes=classes)
