"""``enter`` on a row of the Requests view: every field of the request, or of the dead letter,
its reason in full.

The tables cut the reason at the screen's edge (an actor's reason runs to 150 characters, a
device's body-derived one longer); here it is wrapped. A request's detail is live: every new
snapshot redraws it (SCHEDULED -> DISPATCHED -> OK as it happens, the deadline counting down),
and when the request drops out of the snapshot's newest requests it stays as last seen and
says so. A dead letter never changes. ``esc`` closes it. Every value from the network is shown
as plain, sanitized text.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import ClassVar

from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from pipeconsole.model.snapshot import DlqEntry, RequestRow, Snapshot
from pipeconsole.text import sanitize
from pipeconsole.ui.keymap import bind
from pipeconsole.ui.render import clock, state_text

__all__ = ["DetailScreen", "dlq_detail_text", "live_request_detail", "request_detail_text"]

_LABEL = Style(bold=True, color="cyan")
_DIM = Style(dim=True)


def _seconds(ms: int) -> str:
    s = abs(ms) / 1000
    return f"{s:.1f} s" if s < 120 else f"{s / 60:.1f} min"


def _deadline(r: RequestRow) -> Text:
    if not r.deadline_ms:
        return Text("unknown", _DIM, end="")
    out = Text(clock(r.deadline_ms), end="")
    if r.remaining_ms is None:
        return out
    if r.remaining_ms >= 0:
        out.append(f" · {_seconds(r.remaining_ms)} left", Style(color="green"))
    else:
        out.append(f" · missed by {_seconds(r.remaining_ms)}", Style(color="red", bold=True))
    return out


def _fields(rows: list[tuple[str, Text | str]], reason: str, as_of_ms: int, note: str = "") -> Text:
    out = Text(end="")
    for label, value in rows:
        out.append(f"{label:<14}  ", _LABEL)
        out.append(value if isinstance(value, Text) else Text(value, end=""))
        out.append("\n")
    out.append("reason\n", _LABEL)
    out.append(sanitize(reason, max_len=4096, multiline=True) or "—")
    out.append(f"\n\nas of {clock(as_of_ms)}{note} · esc closes", _DIM)
    return out


def _safe(value: str, max_len: int = 512) -> str:
    return sanitize(value, max_len=max_len) or "—"


def request_detail_text(r: RequestRow, as_of_ms: int, note: str = "") -> Text:
    """The detail of ``r`` as of the snapshot time ``as_of_ms`` (``note`` follows the time)."""
    rows: list[tuple[str, Text | str]] = [
        ("request id", _safe(r.request_id, 128)),
        ("device", _safe(r.device_id, 128)),
        ("request", _safe(f"{r.method} {r.uri}", 2048)),
        ("state", state_text(r.state)),
        ("updated", clock(r.updated_ms)),
        ("scheduled for", clock(r.scheduled_for_ms) if r.scheduled_for_ms else "now"),
        ("deadline", _deadline(r)),
        ("attempts", str(r.attempts)),
        ("status", str(r.status_code) if r.status_code else "—"),
        ("issued by", _safe(r.issued_by, 128)),
        ("actor", _safe(r.actor_id, 128)),
        ("replay of", _safe(r.replay_of, 128)),
    ]
    return _fields(rows, r.reason, as_of_ms, note)


def live_request_detail(request_id: str) -> Callable[[Snapshot], Text | None]:
    """Redraws the detail of ``request_id`` from each new snapshot: None when the snapshot no
    longer holds it (it keeps the newest requests only)."""

    def render(snapshot: Snapshot) -> Text | None:
        # The Requests view lists the at-risk ones too, which may be older than the newest.
        for r in itertools.chain(snapshot.at_risk, snapshot.requests):
            if r.request_id == request_id:
                return request_detail_text(r, snapshot.time_ms, " · live")
        return None

    return render


def dlq_detail_text(e: DlqEntry, as_of_ms: int) -> Text:
    """The detail of the dead letter ``e``: where it is, its code, key and headers (raw,
    untrusted: a hostile producer chose the source record's), and the reason."""
    rows: list[tuple[str, Text | str]] = [
        ("dead letter", _safe(f"{e.topic} [{e.partition}] @ {e.offset}", 256)),
        ("time", clock(e.time_ms)),
        ("code", _safe(e.code, 128)),
        ("request id", _safe(e.request_id, 128)),
        ("key", _safe(e.key, 256)),
        ("size", f"{e.size} bytes"),
    ]
    for name, value in e.headers[:32]:
        rows.append(("header", f"{_safe(name, 128)}: {_safe(value, 512)}"))
    if len(e.headers) > 32:
        rows.append(("", Text(f"+{len(e.headers) - 32} more headers", _DIM, end="")))
    return _fields(rows, e.reason, as_of_ms)


class DetailScreen(ModalScreen[None]):
    """One record, every field; ``esc`` or ``q`` closes it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        bind("escape", "dismiss", "Close", "detail.close", key_display="esc"),
        bind("q", "dismiss", "Close", "detail.close_q", show=False),
    ]

    def __init__(self, text: Text, live: Callable[[Snapshot], Text | None] | None = None) -> None:
        super().__init__()
        self.text = text
        self.live = live
        """Redraws the detail from a new snapshot (None: the record is gone from it)."""
        self.gone = False
        """The record has dropped out of the snapshots: the text is as last seen."""

    def show_snapshot(self, snapshot: Snapshot) -> None:
        """The app calls this with each new snapshot while the detail is on top."""
        if self.live is None or not self.is_mounted:
            return
        text = self.live(snapshot)
        if text is None:
            if not self.gone:
                self.gone = True
                self.text.append(
                    f"\nno longer among the newest requests since {clock(snapshot.time_ms)}: "
                    "shown as last seen",
                    Style(color="yellow"),
                )
                self.query_one("#detail-text", Static).update(self.text)
            return
        self.gone = False
        self.text = text
        self.query_one("#detail-text", Static).update(text)

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="detail-body"):
            yield Static(self.text, id="detail-text")

    def on_mount(self) -> None:
        self.query_one("#detail-body").focus()

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(result)
