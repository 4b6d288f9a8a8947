"""Write screenshots/*.svg: every console view, from the model's fixture fleet (no broker).

    python scripts/screenshots.py [--out screenshots] [--size 120x36]

The app is built by the same factory as the CLI; snapshots are injected as the ingest thread
would post them. Run it from the repository root (the Chaos view lists ./experiments).
Times on screen come from the fixture's fixed clock, so reruns are stable.
"""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import replace
from pathlib import Path

from pipeconsole.config import Profile
from pipeconsole.model.fixtures import demo_snapshot
from pipeconsole.model.snapshot import GraphView, LagRow, Snapshot
from pipeconsole.ui.factory import build_app
from pipeconsole.ui.messages import SnapshotReady

SHOTS: list[tuple[str, bool | str, tuple[str, ...], tuple[int, int] | None]] = [
    ("overview", True, (), None),
    ("overview-healthy", False, (), None),
    ("overview-graph-blast-radius", True, ("g", "b"), None),
    ("overview-collapsed-by-stage", True, ("g", "c"), None),
    ("device-detail", True, ("enter",), None),
    ("devices", True, ("2",), None),
    ("devices-filtered", True, ("2", "slash", *"health!=healthy", "enter"), None),
    ("requests", True, ("3",), None),
    ("request-detail", True, ("3", "enter"), None),
    ("backpressure", "lagging", ("4",), None),
    ("log", True, ("5",), None),
    ("help", True, ("question_mark",), (100, 44)),
    ("command", True, ("colon", *"dev"), None),
    ("overview-80x24", True, (), (80, 24)),
    ("schedule-form", True, ("3", "n"), None),
    ("cancel-confirmation", True, ("3", "C", *"transc"), None),
    ("chaos", True, ("6", "enter"), None),
    ("chaos-confirmation", True, ("6", "enter", "r"), None),
    ("chaos-compose", True, ("6", "c"), None),
    ("overview-reading-backlog", "backlog", (), None),
]
"""(file name, incident?, "lagging" or "backlog", keys pressed, terminal size or None for the
default)."""


def lagging() -> Snapshot:
    """The incident fixture plus consumer lag on the request topic (one partition stuck)."""
    s = demo_snapshot(incident=True)
    rows = tuple(
        LagRow("pipeconsole-actors", "device-request-v1", p, 1000, 1000 + lag, lag, sec, drain)
        for p, lag, sec, drain in ((0, 4200, 95.0, 12.0), (1, 12, 0.4, 30.0), (2, 900, 41.0, 0.0))
    )
    fleet = replace(s.fleet, total_lag=sum(r.lag for r in rows), max_lag_seconds=95.0)
    return replace(s, lag=rows, fleet=fleet)


def backlog() -> Snapshot:
    """The incident fixture as the console shows it while reading its start-up window: devices
    known, the graph analyses not run yet (``graph.computed_ms == 0``), the summary bar saying
    so (``connection.caught_up`` false)."""
    s = demo_snapshot(incident=True)
    return replace(
        s,
        graph=GraphView(),
        incidents=(),
        bottlenecks=(),
        connection=replace(s.connection, caught_up=False),
    )


async def shoot(
    out: Path, name: str, snapshot: Snapshot, keys: tuple[str, ...], size: tuple[int, int]
) -> None:
    # role chaos: the Chaos view's confirmation is offered (nothing is sent in a screenshot)
    app = build_app(Profile(role="chaos"), None, capture_logging=False)
    async with app.run_test(size=size) as pilot:
        app.post_message(SnapshotReady(snapshot))
        await pilot.pause()
        for k in keys:
            await pilot.press(k)
        await pilot.pause()
        await pilot.pause()
        app.save_screenshot(filename=f"{name}.svg", path=str(out))


async def main(out: Path, size: tuple[int, int]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    snaps: dict[bool | str, Snapshot] = {
        True: demo_snapshot(incident=True),
        False: demo_snapshot(incident=False),
        "lagging": lagging(),
        "backlog": backlog(),
    }
    for name, incident, keys, shot_size in SHOTS:
        await shoot(out, name, snaps[incident], keys, shot_size or size)
        print(out / f"{name}.svg")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=Path("screenshots"))
    ap.add_argument("--size", default="120x36")
    args = ap.parse_args()
    w, h = (int(x) for x in args.size.split("x"))
    asyncio.run(main(args.out, (w, h)))
