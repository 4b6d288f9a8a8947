"""Time from ``pipeconsole demo`` to the first frame with the whole fleet on it.

    python bench/demo_startup.py [--runs 3] [--devices 24]

Runs the demo headless with a script that waits until every device is on screen (registered)
and then until every device has a health state (none UNKNOWN), and reports, per run, the wall
time from spawning the command to each of those frames, and how long the demo took to stop.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SCRIPT = """\
wait-for fleet.total >= {n} timeout 120s
snapshot whole-fleet
wait-for fleet.unknown == 0 timeout 120s
snapshot whole-fleet-with-health
"""


def one(devices: int) -> tuple[float, float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "startup.pcs"
        script.write_text(SCRIPT.format(n=devices))
        out = Path(tmp) / "out"
        t0 = time.time()
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "pipeconsole",
                "demo",
                "--headless",
                "--devices",
                str(devices),
                "--script",
                str(script),
                "--out",
                str(out),
            ],
            capture_output=True,
            text=True,
            timeout=600,
        )
        t_end = time.time()
        if proc.returncode != 0:
            raise SystemExit(f"demo failed: {proc.stderr[-2000:]}")
        report = json.loads((out / "report.json").read_text())
        steps = report["steps"]
        started = report["started_unix"]
        first = started + steps[0]["seconds"] - t0
        healthy = started + sum(s["seconds"] for s in steps[:3]) - t0
        run_end = started + report["seconds"]
        return first, healthy, t_end - run_end


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--devices", type=int, default=24)
    args = ap.parse_args()
    rows = [one(args.devices) for _ in range(args.runs)]
    for i, (a, b, c) in enumerate(rows, 1):
        print(
            f"run {i}: whole fleet on screen {a:5.2f} s · all with health {b:5.2f} s · "
            f"stop {c:4.2f} s"
        )
    med = [statistics.median(col) for col in zip(*rows, strict=True)]
    print(
        f"median: whole fleet on screen {med[0]:.2f} s · all with health {med[1]:.2f} s · "
        f"stop {med[2]:.2f} s  ({args.devices} devices)"
    )


if __name__ == "__main__":
    main()
