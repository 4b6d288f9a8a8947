"""``pipeconsole status``: the state model, once, as text or JSON; exit status = the SLO verdict.

It reads like the console does (snapshot then follow, never a group member), waits until the
backlog is read (every record below the high watermarks its first fetches reported:
``Ingest.caught_up``; and, with ``--wait-for-fleet N``, until N devices have reported),
polls the device actors' group lag once, and prints the fleet summary, incidents (root-cause
candidates with their blast radius), bottlenecks, lag and at-risk requests.

Exit status: 0 every SLO holds; 1 the cluster could not be read, or the fleet did not show up
(or its start-up window was not read) in time; 2 usage; 5 an SLO is breached
(``--max-unhealthy``, ``--max-deadline-miss``, ``--max-lag-seconds``; defaults from the
profile's ``[slo]``).
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import click

from pipeconsole.cli import FiniteFloat, fail, not_blank, profile_options, quiet_librdkafka
from pipeconsole.config import Profile
from pipeconsole.model import Snapshot
from pipeconsole.text import sanitize

__all__ = ["EXIT_SLO", "parse_fraction", "slo_breaches", "status"]

EXIT_SLO = 5
"""Exit status when an SLO is breached (0 ok, 1 failure, 2 usage, 3/4 chaos run)."""


def parse_fraction(text: str) -> float:
    """``"10%"`` -> 0.10; ``"0.1"`` -> 0.1. Raises ValueError with a reason."""
    t = text.strip()
    try:
        value = float(t[:-1]) / 100 if t.endswith("%") else float(t)
    except ValueError:
        raise ValueError(f"{text!r} is not a fraction (use 10% or 0.1)") from None
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{text!r} is outside 0..100%")
    return value


def slo_breaches(
    snap: Snapshot, *, max_unhealthy: float, max_deadline_miss: float, max_lag_seconds: float
) -> list[str]:
    """One line per breached SLO (empty: all hold)."""
    out = []
    f = snap.fleet
    if f.total and f.unhealthy_fraction > max_unhealthy:
        out.append(
            f"unhealthy {f.unhealthy_fraction:.1%} > {max_unhealthy:.1%} "
            f"({f.total - f.healthy} of {f.total} not HEALTHY)"
        )
    if f.deadline_miss_rate > max_deadline_miss:
        out.append(f"deadline misses {f.deadline_miss_rate:.2%} > {max_deadline_miss:.2%}")
    if f.max_lag_seconds > max_lag_seconds:
        out.append(f"lag {f.max_lag_seconds:.1f} s > {max_lag_seconds:g} s")
    if not snap.connection.connected:
        out.append(f"not connected: {snap.connection.last_error}")
    return out


def _fraction(_ctx: click.Context, _param: click.Parameter, value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return parse_fraction(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@click.command()
@profile_options
@click.option("--json", "as_json", is_flag=True, help="Print the whole snapshot as JSON.")
@click.option(
    "--wait-for-fleet",
    type=click.IntRange(min=0),
    default=0,
    help="Wait until this many devices have reported their state.",
)
@click.option("--timeout", type=FiniteFloat(min=0.1), default=30.0, show_default=True)
@click.option("--max-unhealthy", callback=_fraction, help="e.g. 10% (default: profile SLO).")
@click.option("--max-deadline-miss", callback=_fraction, help="e.g. 1% (default: profile SLO).")
@click.option("--max-lag-seconds", type=FiniteFloat(min=0), default=None)
@click.option("--lag-group", default="pipeconsole-dispatch", show_default=True, callback=not_blank)
@click.option(
    "--window",
    "window_s",
    type=FiniteFloat(min=0),
    default=None,
    help="Seconds of state/requests to read back (default: profile).",
)
def status(
    profile: Profile,
    as_json: bool,
    wait_for_fleet: int,
    timeout: float,
    max_unhealthy: float | None,
    max_deadline_miss: float | None,
    max_lag_seconds: float | None,
    lag_group: str,
    window_s: float | None,
) -> None:
    """Fleet, incidents, bottlenecks, lag and at-risk requests; non-zero exit on SLO breach."""
    from pipeconsole import aio
    from pipeconsole.ingest import Ingest, IngestOptions

    aio.settle_gc()
    quiet_librdkafka()  # an unreachable cluster: one line saying so, not dozens of retries
    ingest = Ingest(
        profile,
        options=IngestOptions(
            snapshot_hz=1.0,
            window_s=profile.snapshot_window_s if window_s is None else window_s,
            lag_group=lag_group,
            # A cluster that does not answer fails within --timeout, not librdkafka's 10 s.
            connect_timeout_s=min(10.0, timeout),
        ),
    )
    deadline = time.monotonic() + timeout
    problem = ""
    try:
        while not ingest.connect():
            if time.monotonic() > deadline:
                fail(
                    f"cannot read the cluster at {profile.bootstrap}: "
                    f"{sanitize(ingest.model.snapshot().connection.last_error)}"
                )
            time.sleep(0.2)
        reported = 0
        while time.monotonic() < deadline:
            ingest.step()
            reported = sum(1 for r in ingest.model.fleet if r.last_seen_ms)
            if reported >= wait_for_fleet and ingest.caught_up:
                break
        else:
            if reported < wait_for_fleet:
                problem = (
                    f"fleet not seen in {timeout:g} s "
                    f"(wanted {wait_for_fleet} devices, {reported} reported)"
                )
            else:
                problem = f"the start-up window was not read to its end in {timeout:g} s"
        ingest.poll_lag()
        snap = ingest.snapshot_now()
    finally:
        ingest.close()
    breaches = slo_breaches(
        snap,
        max_unhealthy=profile.slo.max_unhealthy if max_unhealthy is None else max_unhealthy,
        max_deadline_miss=(
            profile.slo.max_deadline_miss if max_deadline_miss is None else max_deadline_miss
        ),
        max_lag_seconds=profile.slo.max_lag_seconds if max_lag_seconds is None else max_lag_seconds,
    )
    if as_json:
        doc: dict[str, Any] = snap.to_json()
        doc["slo"] = {"ok": not breaches, "breaches": [sanitize(b) for b in breaches]}
        if problem:
            doc["problem"] = problem
        click.echo(json.dumps(doc, indent=None, separators=(",", ":"), allow_nan=False))
    else:
        click.echo(render_text(snap, breaches))
    if problem:
        click.echo(f"pipeconsole: error: {problem}", err=True)
        sys.exit(1)
    if breaches:
        sys.exit(EXIT_SLO)


def render_text(snap: Snapshot, breaches: list[str]) -> str:
    """The human summary. Every untrusted string goes through ``sanitize``."""
    s = sanitize
    f = snap.fleet
    lines = [
        f"fleet     {f.total} devices: {f.healthy} healthy, {f.degraded} degraded, "
        f"{f.failing} failing, {f.unknown} unknown ({f.stale} stale); "
        f"unhealthy {f.unhealthy_fraction:.1%}",
        f"requests  {snap.requests_total} seen, deadline misses {f.deadline_miss_rate:.2%}, "
        f"DLQ {snap.dlq_total}",
        f"lag       {f.total_lag} messages, {f.max_lag_seconds:.1f} s",
        "connected "
        + ("yes" if snap.connection.connected else f"NO: {s(snap.connection.last_error)}")
        + ("" if snap.connection.caught_up else " (start-up window not read to its end)"),
    ]
    for t in f.topics:
        if t.undecodable:
            lines.append(
                f"undecodable  {s(t.topic)}: {t.undecodable} "
                f"(latest: {s(t.undecodable_sample, max_len=160)})"
            )
    lines.append("")
    lines.append("incidents (root-cause candidates)" if snap.incidents else "incidents: none")
    for i in snap.incidents[:10]:
        radius = ", ".join(s(d, max_len=40) for d in i.blast_radius[:8])
        more = f" +{i.blast_size - 8}" if i.blast_size > 8 else ""
        lines.append(
            f"  {i.rank}. {s(i.device_id, max_len=64)} {i.health.value} blast radius {i.blast_size}"
            f" (weight {i.weight:g}): {radius}{more}"
        )
        for c in i.failing_checks[:3]:
            lines.append(f"       check {s(c, max_len=160)}")
        if i.reason:
            lines.append(f"       reason {s(i.reason, max_len=160)}")
        if i.behind:
            worse = ", ".join(s(d, max_len=40) for d in i.behind[:4])
            lines.append(f"       feeds {worse}, worse off: likely back-pressure, a symptom")
    if snap.bottlenecks:
        lines.append("")
        lines.append("bottlenecks")
    for b in snap.bottlenecks[:5]:
        ttf = (
            "full"
            if b.time_to_full_s == 0
            else (
                f"full in {b.time_to_full_s:.0f} s"
                if b.time_to_full_s is not None
                else "not filling"
            )
        )
        lines.append(
            f"  {s(b.device_id, max_len=64)} in {b.rate_in:g}/s out {b.rate_out:g}/s queue "
            f"{b.queue_depth}/{b.queue_capacity} ({ttf}); upstream filling: "
            f"{', '.join(s(u, max_len=40) for u in b.upstream_filling[:5]) or 'none'}"
        )
    if snap.lag:
        lines.append("")
        lines.append("lag")
    for r in snap.lag[:20]:
        secs = f"{r.lag_seconds:.1f} s" if r.lag_seconds is not None else "? s"
        lines.append(
            f"  {s(r.group)} {s(r.topic)}[{r.partition}] "
            f"committed {r.committed if r.committed >= 0 else 'none'} high {r.high} "
            f"lag {r.lag} ({secs}) drain "
            + (f"{r.drain_rate:g}/s" if r.drain_rate is not None else "?")
        )
    if snap.at_risk:
        lines.append("")
        lines.append("at-risk requests (least budget first)")
    for q in snap.at_risk[:10]:
        lines.append(
            f"  {s(q.request_id, max_len=40)} {s(q.device_id, max_len=40)} "
            f"{s(q.method, max_len=16)} "
            f"{s(q.uri, max_len=80)} {q.state.value} remaining {q.remaining_ms} ms"
        )
    lines.append("")
    lines.append("SLO breached: " + "; ".join(breaches) if breaches else "SLO ok")
    return "\n".join(lines)
