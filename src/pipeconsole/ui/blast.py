"""Blast radius of an operator action: what it touches directly and what depends on that.

Pure (no widgets): the confirmation modal, the chaos screen and the tests use it. The
downstream set is computed from the snapshot's graph edges (every device reachable from a
target), so it is the same radius the overview's ``b`` highlights; open incidents whose device
or whose own blast radius meets the action are listed too, because acting on a device that is
already part of an incident is what an operator most wants to be warned about.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from rich.style import Style
from rich.text import Text

from pipeconsole.model.snapshot import Snapshot
from pipeconsole.ui.render import plain

__all__ = ["Blast", "blast_of", "blast_text", "confirmation_word"]

LIST_MAX = 12
"""Device ids listed per line before the rest is summarised as ``+N more``."""


@dataclass(frozen=True, slots=True)
class Blast:
    """What an action on ``targets`` reaches, as the console sees the pipeline now."""

    targets: tuple[str, ...]
    """Devices the action is aimed at, sorted."""
    downstream: tuple[str, ...]
    """Devices fed (directly or not) by a target, targets excluded, sorted."""
    stages: tuple[str, ...]
    """Stages of the targets."""
    unknown: tuple[str, ...] = ()
    """Targets the console does not know (not registered, or not seen yet)."""
    incidents: tuple[str, ...] = ()
    """Devices of open incidents that the action touches (target or downstream)."""
    fleet: int = 0

    @property
    def size(self) -> int:
        return len(self.targets) + len(self.downstream)


def blast_of(snapshot: Snapshot | None, targets: Iterable[str]) -> Blast:
    """The blast radius of acting on ``targets`` in ``snapshot`` (None: targets only)."""
    wanted = tuple(sorted(set(targets)))
    if snapshot is None:
        return Blast(wanted, (), (), unknown=wanted)
    children: dict[str, set[str]] = {}
    for e in snapshot.graph.edges:
        children.setdefault(e.src, set()).add(e.dst)
    seen: set[str] = set()
    stack = list(wanted)
    while stack:
        for child in children.get(stack.pop(), ()):
            if child not in seen and child not in wanted:
                seen.add(child)
                stack.append(child)
    known = {d.device_id: d for d in snapshot.devices}
    stages = tuple(sorted({known[t].stage for t in wanted if t in known}))
    touched = set(wanted) | seen
    incidents = tuple(
        i.device_id
        for i in snapshot.incidents
        if i.device_id in touched or touched.intersection(i.blast_radius)
    )
    return Blast(
        wanted,
        tuple(sorted(seen)),
        stages,
        tuple(t for t in wanted if t not in known),
        incidents,
        len(snapshot.devices),
    )


def confirmation_word(targets: tuple[str, ...]) -> str:
    """What the operator types to confirm: the device id for one target, else the count."""
    return targets[0] if len(targets) == 1 else str(len(targets))


def _ids(ids: tuple[str, ...]) -> Text:
    out = Text(end="")
    for n, x in enumerate(ids[:LIST_MAX]):
        if n:
            out.append(", ")
        out.append_text(plain(x, max_len=40))
    if len(ids) > LIST_MAX:
        out.append(f" +{len(ids) - LIST_MAX} more", Style(dim=True))
    if not ids:
        out.append("none", Style(dim=True))
    return out


def blast_text(blast: Blast) -> Text:
    """Lines for a confirmation screen; every id goes through ``plain`` (untrusted)."""
    out = Text(end="")
    out.append(
        f"Blast radius: {len(blast.targets)} device(s) directly, "
        f"{len(blast.downstream)} downstream",
        Style(bold=True, color="yellow"),
    )
    if blast.fleet:
        out.append(f" (fleet {blast.fleet})", Style(dim=True))
    out.append("\n  targets     ", Style(bold=True))
    out.append_text(_ids(blast.targets))
    out.append("\n  stages      ", Style(bold=True))
    out.append_text(_ids(blast.stages))
    out.append("\n  downstream  ", Style(bold=True))
    out.append_text(_ids(blast.downstream))
    if blast.incidents:
        out.append("\n  incidents   ", Style(bold=True, color="red"))
        out.append_text(_ids(blast.incidents))
        out.append("  (already unhealthy: acting here widens an incident)", Style(dim=True))
    if blast.unknown:
        out.append("\n  unknown     ", Style(bold=True, color="magenta"))
        out.append_text(_ids(blast.unknown))
        out.append("  (not in the console's fleet)", Style(dim=True))
    return out
