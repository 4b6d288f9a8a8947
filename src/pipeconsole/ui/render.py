"""Small, pure helpers that turn snapshot values into display text.

The one rule: every string that came from the network passes through
:func:`pipeconsole.text.sanitize` (here :func:`plain`) or :func:`pipeconsole.ui.safe.safe_text`
before it reaches a widget; neither parses markup. Rich ``Text(...)`` built here never goes
through ``Text.from_markup``. Everything else here formats numbers, times and bars, using the
snapshot's own time (never the wall clock) so screens are reproducible.
"""

from __future__ import annotations

import time

from rich.style import Style
from rich.text import Text

from pipeconsole.model.snapshot import Health, RequestState, Severity
from pipeconsole.text import sanitize

__all__ = [
    "HEALTH_MARK",
    "HEALTH_STYLE",
    "age",
    "bar",
    "clock",
    "count",
    "deadline_bar",
    "health_text",
    "plain",
    "rate",
    "state_style",
    "state_text",
]

HEALTH_MARK: dict[Health, str] = {
    Health.HEALTHY: "✔",
    Health.DEGRADED: "▲",
    Health.FAILING: "✖",
    Health.UNKNOWN: "?",
}
"""A text marker per health, so the screen reads without colour (NO_COLOR, screen readers)."""

HEALTH_STYLE: dict[Health, Style] = {
    Health.HEALTHY: Style(color="green"),
    Health.DEGRADED: Style(color="yellow", bold=True),
    Health.FAILING: Style(color="red", bold=True),
    Health.UNKNOWN: Style(color="magenta"),
}

SEVERITY_STYLE: dict[Severity, Style] = {
    Severity.INFO: Style(),
    Severity.WARNING: Style(color="yellow"),
    Severity.ERROR: Style(color="red", bold=True),
}

_STATE_STYLE: dict[RequestState, Style] = {
    RequestState.OK: Style(color="green"),
    RequestState.FAILED: Style(color="red"),
    RequestState.DEADLINE_EXCEEDED: Style(color="red", bold=True),
    RequestState.DEAD_LETTERED: Style(color="red"),
    RequestState.REJECTED: Style(color="red"),
    RequestState.MISFIRED: Style(color="yellow"),
    RequestState.CANCELLED: Style(dim=True),
}


def plain(value: str | bytes, *, max_len: int = 512, style: Style | str = "") -> Text:
    """Untrusted text as a Rich ``Text``: sanitized, never markup."""
    return Text(sanitize(value, max_len=max_len), style=style, no_wrap=True, end="")


def health_text(health: Health, *, stale: bool = False, label: bool = True) -> Text:
    """``✖ FAILING`` in the health's colour; ``? STALE`` for a stale device."""
    mark = HEALTH_MARK[health]
    word = "STALE" if stale else health.value
    return Text(f"{mark} {word}" if label else mark, style=HEALTH_STYLE[health], end="")


def state_style(name: str) -> Style:
    """The style of a request state given by name (unknown names: plain)."""
    try:
        return _STATE_STYLE.get(RequestState(name), Style())
    except ValueError:
        return Style()


def state_text(state: RequestState) -> Text:
    return Text(state.value, style=_STATE_STYLE.get(state, Style()), end="")


def count(n: float) -> str:
    """``950``, ``12.3k``, ``4.1M``."""
    n = float(n)
    for div, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= div:
            return f"{n / div:.1f}{unit}"
    return f"{n:.0f}" if n == int(n) else f"{n:.1f}"


def rate(per_s: float) -> str:
    return f"{count(per_s)}/s"


def age(seconds: float | None) -> str:
    """``—``, ``850ms``, ``12s``, ``4m10s``, ``3h02m``."""
    if seconds is None:
        return "—"
    s = max(0.0, seconds)
    if s < 1:
        return f"{s * 1000:.0f}ms"
    if s < 60:
        return f"{s:.0f}s"
    if s < 3600:
        return f"{int(s // 60)}m{int(s % 60):02d}s"
    return f"{int(s // 3600)}h{int(s % 3600 // 60):02d}m"


def clock(time_ms: int) -> str:
    """``HH:MM:SS`` in UTC (operators compare logs across hosts)."""
    if time_ms <= 0:
        return "--:--:--"
    return time.strftime("%H:%M:%S", time.gmtime(time_ms / 1000))


_EIGHTHS = " ▏▎▍▌▋▊▉█"


def bar(fraction: float, width: int) -> str:
    """A horizontal bar of ``width`` cells, eighth-cell resolution; clamped to [0, 1]."""
    f = min(1.0, max(0.0, fraction))
    eighths = round(f * width * 8)
    full, rest = divmod(eighths, 8)
    out = "█" * full + (_EIGHTHS[rest] if rest and full < width else "")
    return out.ljust(width)


def fill_style(fraction: float) -> Style:
    if fraction >= 0.9:
        return Style(color="red", bold=True)
    if fraction >= 0.6:
        return Style(color="yellow")
    return Style(color="green")


def deadline_bar(remaining_ms: int | None, budget_ms: int, width: int = 10) -> Text:
    """What is left of a deadline: a bar that empties, and the time left (``MISSED`` past it)."""
    if remaining_ms is None:
        return Text("—".ljust(width + 8), end="")
    if remaining_ms <= 0:
        return Text(f"{'MISSED':<{width}} {age(-remaining_ms / 1000):>6} ", "red bold", end="")
    frac = remaining_ms / budget_ms if budget_ms > 0 else 1.0
    style = fill_style(1 - frac)
    return Text.assemble(
        (bar(frac, width), style), (f" {age(remaining_ms / 1000):>6} ", style), end=""
    )
