"""The fleet summary bar: one line of counts and rates, plus a banner when the link is down.

Reads without colour: every figure has a word or a marker, and a breached SLO adds ``!``.
Connection loss is a full-width banner with how long and the last error; recovery is shown
for a while after it happens ("reconnected 4s ago").
"""

from __future__ import annotations

from rich.style import Style
from rich.text import Text

from pipeconsole.config import Slo
from pipeconsole.model.snapshot import Health, Snapshot
from pipeconsole.text import sanitize
from pipeconsole.ui.render import HEALTH_MARK, HEALTH_STYLE, age, count, rate
from pipeconsole.ui.widgets.panel import Panel

__all__ = ["RECOVERED_SHOW_S", "SummaryBar", "summary_text"]

RECOVERED_SHOW_S = 30.0
"""How long "reconnected" stays on the bar after the link comes back."""

_BAD = Style(color="red", bold=True)


def summary_text(s: Snapshot, slo: Slo, source_ok: bool = True) -> Text:
    """The summary line for ``s`` (pure: the pilot and snapshot tests read it too)."""
    f = s.fleet
    out = Text(no_wrap=True, overflow="ellipsis", end="")
    out.append(f"{f.total} devices ", Style(bold=True))
    for health, n in (
        (Health.HEALTHY, f.healthy),
        (Health.DEGRADED, f.degraded),
        (Health.FAILING, f.failing),
        (Health.UNKNOWN, f.unknown),
    ):
        out.append(f"{HEALTH_MARK[health]}{n} ", HEALTH_STYLE[health] if n else Style(dim=True))
    if f.unhealthy_fraction > slo.max_unhealthy:
        out.append("! ", _BAD)
    out.append("│ ", Style(dim=True))
    out.append(f"in {rate(f.ingest_rate)} ")
    lag_bad = f.max_lag_seconds > slo.max_lag_seconds
    out.append(
        f"lag {count(f.total_lag)} ({age(f.max_lag_seconds)}){'!' if lag_bad else ''} ",
        _BAD if lag_bad else Style(),
    )
    miss_bad = f.deadline_miss_rate > slo.max_deadline_miss
    out.append(
        f"miss {f.deadline_miss_rate * 100:.1f}%{'!' if miss_bad else ''} ",
        _BAD if miss_bad else Style(),
    )
    out.append(f"flight {count(f.in_flight)} ")
    undecodable = sum(t.undecodable for t in f.topics)
    # Model buffers named "...-sampled" thinned data on purpose; the rest evicted it.
    dropped = sum(t.dropped for t in f.topics) + sum(
        n for name, n in s.dropped if not name.endswith("-sampled")
    )
    sampled = sum(t.sampled for t in f.topics) + sum(
        n for name, n in s.dropped if name.endswith("-sampled")
    )
    if undecodable or dropped or sampled:
        out.append("│ ", Style(dim=True))
        if undecodable:
            out.append(f"bad {count(undecodable)} ", Style(color="yellow"))
        if dropped:
            out.append(f"dropped {count(dropped)} ", Style(color="yellow"))
        if sampled:
            out.append(f"sampled {count(sampled)} ", Style(color="yellow"))
    out.append("│ ", Style(dim=True))
    if not source_ok:
        out.append("✖ source stopped", _BAD)
    elif s.connection.connected and not s.connection.caught_up:
        out.append("◌ catching up", Style(color="yellow"))
    elif s.connection.connected:
        out.append("● live", Style(color="green"))
    else:
        out.append("✖ OFFLINE", _BAD)
    return out


def banner_text(s: Snapshot, source_ok: bool, problems: tuple[str, ...] = ()) -> Text | None:
    """The connection banner, or None when there is nothing to say."""
    c = s.connection
    if problems:
        more = f" (+{len(problems) - 1} more, see the log screen)" if len(problems) > 1 else ""
        return Text(
            f"✖ {sanitize(problems[0], max_len=200)}{more}",
            _BAD + Style(reverse=True),
            no_wrap=True,
            end="",
        )
    since = max(0.0, (s.time_ms - c.since_ms) / 1000) if c.since_ms else None
    where = sanitize(c.bootstrap, max_len=80) or "the cluster"
    if not source_ok:
        return Text(
            "✖ the snapshot source stopped; see the log screen (5)", _BAD + Style(reverse=True)
        )
    if not c.connected:
        err = sanitize(c.last_error, max_len=160)
        msg = f"✖ DISCONNECTED from {where} for {age(since)}: showing the last known state"
        if err:
            msg += f" · {err}"
        return Text(msg, Style(color="red", bold=True, reverse=True), no_wrap=True, end="")
    if c.last_error and since is not None and since < RECOVERED_SHOW_S:
        return Text(f"✔ reconnected to {where} {age(since)} ago", Style(color="green"), end="")
    return None


class SummaryBar(Panel):
    """Counts by health, ingest rate, lag, deadline-miss rate, drops, connection state."""

    def show(
        self,
        snapshot: Snapshot | None,
        slo: Slo,
        source_ok: bool = True,
        problems: tuple[str, ...] = (),
        waiting: str = "",
    ) -> None:
        """``waiting``: what to say instead while there is no snapshot yet."""
        if snapshot is None:
            self.show_text(Text(waiting or "waiting for the first snapshot…", Style(dim=True)))
            self.set_class(False, "-alert")
            return
        line = summary_text(snapshot, slo, source_ok)
        banner = banner_text(snapshot, source_ok, problems)
        alert = problems or not snapshot.connection.connected
        self.set_class(banner is not None and bool(alert), "-alert")
        self.show_text(line if banner is None else Text("\n", end="").join([banner, line]))
