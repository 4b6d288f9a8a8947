"""Keypress -> repaint latency of the console while the model ingests 50k msg/s for 2,000 devices.

    python bench/ui_latency.py [--rate 50000] [--devices 2000] [--presses 200]

A source thread plays the ingest's role exactly: it is the model's single writer, folds
pre-built ServiceState events in batches paced to ``--rate`` messages per second, and posts a
snapshot at the profile's refresh rate (4 Hz) through the same ``emit`` callback the real
ingest uses. The app is the real one from :func:`pipeconsole.ui.factory.build_app`, headless.
We focus the pipeline graph and press ``j``/``k`` (move the cursor) ``--presses`` times; the
latency of one press is from posting the key until the next frame is written to the
terminal driver (``App._display``). Prints p50/p95/p99/max, the ingest rate achieved and the
snapshots delivered. Target: p99 <= 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import threading
import time
from typing import Any

from pipeconsole.aio import settle_gc
from pipeconsole.config import Profile
from pipeconsole.model import Model, pipeline
from pipeconsole.model.fixtures import added, downstream_of, state
from pipeconsole.ui.factory import build_app
from pipeconsole.ui.frames import FrameClock, percentile
from pipeconsole.ui.source import Emit


class BusySource:
    """Folds ``rate`` state events a second into a Model and emits snapshots at ``hz``."""

    def __init__(self, devices: int, rate: float, hz: float = 4.0) -> None:
        self.rate = rate
        self.hz = hz
        self.specs = pipeline(devices)
        self.model = Model(bootstrap="bench")
        self.model.set_connection(True)
        self.applied = 0
        self.snapshots = 0
        self.snapshot_ms: list[float] = []
        now = int(time.time() * 1000)
        self.model.apply(
            added(s, f"http://127.0.0.1:{18000 + i}", now) for i, s in enumerate(self.specs)
        )
        down = downstream_of(self.specs)
        self.pool = [
            state(s.device_id, now, upstream=s.upstream, downstream=down[s.device_id],
                  stage=s.stage, seq=k, queue_depth=5 + k % 7,
                  health="FAILING" if (s.device_id == "ingest-01" and k > 0) else "HEALTHY")
            for k in range(3)
            for s in self.specs
        ]  # fmt: skip

    def run(self, emit: Emit, stop: threading.Event) -> None:
        batch = 2_500
        start = time.perf_counter()
        next_snap = start
        i = 0
        while not stop.is_set():
            events = self.pool[i : i + batch]
            if len(events) < batch:
                events += self.pool[: batch - len(events)]
            i = (i + batch) % len(self.pool)
            self.model.apply(events)
            self.model.consumed("device-state-v1", len(events))
            self.applied += len(events)
            now = time.perf_counter()
            if now >= next_snap:
                t0 = time.perf_counter()
                emit(self.model.snapshot())
                self.snapshot_ms.append((time.perf_counter() - t0) * 1000)
                self.snapshots += 1
                next_snap = now + 1 / self.hz
            ahead = self.applied / self.rate - (time.perf_counter() - start)
            if ahead > 0:
                stop.wait(ahead)


async def measure(devices: int, rate: float, presses: int) -> dict[str, Any]:
    source = BusySource(devices, rate)
    app = build_app(Profile(), source, capture_logging=False)
    clock = FrameClock(app)
    latencies: list[float] = []
    async with app.run_test(size=(160, 48)) as pilot:
        while source.snapshots < 2:
            await asyncio.sleep(0.05)
        await pilot.press("g")
        await asyncio.sleep(0.5)
        t_start, applied0 = time.perf_counter(), source.applied
        for n in range(presses):
            ms = await clock.press(pilot, "j" if n % 20 < 10 else "k")
            if ms is not None:
                latencies.append(ms)
            await asyncio.sleep(random.uniform(0.02, 0.06))
        elapsed = time.perf_counter() - t_start
        ingest_rate = (source.applied - applied0) / elapsed
    latencies.sort()

    def pct(p: float) -> float:
        return percentile(latencies, p)

    return {
        "devices": devices,
        "target_rate": rate,
        "ingest_rate": ingest_rate,
        "snapshots": source.snapshots,
        "snapshot_build_ms_p50": statistics.median(source.snapshot_ms),
        "presses": presses,
        "painted": len(latencies),
        "p50": pct(50),
        "p95": pct(95),
        "p99": pct(99),
        "max": latencies[-1],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rate", type=float, default=50_000)
    ap.add_argument("--devices", type=int, default=2_000)
    ap.add_argument("--presses", type=int, default=200)
    args = ap.parse_args()
    settle_gc()  # as `pipeconsole console` does before the app runs
    r = asyncio.run(measure(args.devices, args.rate, args.presses))
    print(
        f"devices {r['devices']}  ingest {r['ingest_rate']:,.0f} msg/s"
        f" (target {r['target_rate']:,.0f})"
        f"  snapshots {r['snapshots']} (build p50 {r['snapshot_build_ms_p50']:.1f} ms)"
    )
    print(
        f"keypress -> repaint over {r['painted']}/{r['presses']} presses: p50 {r['p50']:.1f} ms"
        f"  p95 {r['p95']:.1f} ms  p99 {r['p99']:.1f} ms  max {r['max']:.1f} ms"
        f"  (target p99 <= 100 ms: {'met' if r['p99'] <= 100 else 'NOT met'})"
    )


if __name__ == "__main__":
    main()
