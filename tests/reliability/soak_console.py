"""The soak's console: the real app (``build_app(..., connect=True)``), headless, fed by Kafka.

    PIPECONSOLE_CONFIG=... python tests/reliability/soak_console.py SECONDS

For SECONDS it focuses the pipeline graph and moves the cursor (``j``/``k``) twice a second,
timing each press from posting the key to the next frame written to the terminal driver
(``App._display``), the same measure as ``bench/ui_latency.py``. Meanwhile the live ingest folds
everything the soak produces and the app repaints each snapshot. At the end it prints one JSON
line: the press latencies' percentiles, frames written, snapshots applied, ingest errors.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

from pipeconsole.aio import settle_gc
from pipeconsole.config import load_config
from pipeconsole.ui.factory import build_app
from pipeconsole.ui.frames import FrameClock, percentile


async def run(seconds: float) -> dict[str, Any]:
    app = build_app(load_config().profile(), connect=True, capture_logging=False)
    clock = FrameClock(app)
    latencies: list[float] = []
    missed = 0
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("g")
        end = time.monotonic() + seconds
        n = 0
        while time.monotonic() < end:
            # three down, three up: the cursor always has somewhere to go, so every press repaints
            ms = await clock.press(pilot, "j" if n % 6 < 3 else "k")
            n += 1
            if ms is None:
                missed += 1
            else:
                latencies.append(ms)
            await asyncio.sleep(0.5)
        source: Any = app.source
        errors = source.ingest.errors if source is not None and source.ingest else -1
        latest = source.ingest.latest if source is not None and source.ingest else None
    latencies.sort()

    return {
        "presses": n,
        "painted": len(latencies),
        "missed": missed,
        "p50": percentile(latencies, 50),
        "p99": percentile(latencies, 99),
        "max": latencies[-1] if latencies else -1,
        "frames": len(clock.frames),
        "ingest_errors": errors,
        "requests_seen": latest.requests_total if latest is not None else 0,
    }


if __name__ == "__main__":
    settle_gc()  # as `pipeconsole console` does before the app runs
    print(json.dumps(asyncio.run(run(float(sys.argv[1])))), flush=True)
