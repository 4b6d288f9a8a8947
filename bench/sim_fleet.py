"""Benchmark: health checks served by 1,000 simulated devices hosted in ONE process.

The fleet runs as ``pipeconsole simulate --no-register`` in a separate process (the honest
setup: the load generator does not share the fleet's interpreter or GIL); the load comes from
``httpx.AsyncClient`` in this process, ``--concurrency`` requests in flight, spread round-robin
over every device, for ``--duration`` seconds after a warm-up. It prints the fleet's start-up
time, health requests served per second, latency percentiles and errors.

    python bench/sim_fleet.py [--devices 1000] [--duration 10] [--concurrency 16] [--in-process]
        [--client httpx|aiohttp]

``--in-process`` hosts the fleet on a thread of this process instead (fleet and load share one
GIL; usually slower, shown for comparison). Numbers depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx


def simulate_args(devices: int, manifest: Path) -> list[str]:
    return ["simulate", "--no-register", "-n", str(devices), "--manifest", str(manifest)]


def start_fleet_process(devices: int) -> tuple[subprocess.Popen[str], list[str], float]:
    manifest = Path(tempfile.mkdtemp()) / "fleet.json"
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeconsole", *simulate_args(devices, manifest)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PIPECONSOLE_CONFIG": os.devnull},
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.strip() == "ready":
            break
    else:
        raise SystemExit("the fleet process did not start")
    startup = time.perf_counter() - t0
    urls = [d["base_url"] for d in json.loads(manifest.read_text())["devices"]]
    return proc, urls, startup


async def drive(
    urls: list[str], duration: float, concurrency: int, warmup: float, client_kind: str
) -> None:
    # One small client per device: httpcore's pool scans every pooled connection on each
    # request, so ONE client holding 1,000 keep-alive connections spends its time in that scan
    # (~40 requests/s measured) and benchmarks itself, not the fleet. The TLS context is
    # built once and shared (building one per client costs ~0.2 s each).
    tls = ssl.create_default_context()
    clients = [
        httpx.AsyncClient(base_url=u, verify=tls, timeout=10.0, trust_env=False) for u in urls
    ]
    session = None
    if client_kind == "aiohttp":  # the fleet's capacity with a lighter client, for comparison
        import aiohttp

        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    latencies: list[float] = []
    errors = 0
    stop_at = 0.0
    measuring = False

    async def worker(offset: int) -> None:
        nonlocal errors
        i = offset
        while time.perf_counter() < stop_at:
            client = clients[i % len(clients)]
            i += concurrency
            t = time.perf_counter()
            try:
                if session is not None:
                    async with session.get(urls[(i - concurrency) % len(urls)] + "/health") as r:
                        await r.read()
                        ok = r.status == 200
                else:
                    response = await client.get("/health")
                    ok = response.status_code == 200
            except Exception:  # any failure is counted as an error
                ok = False
            if measuring:
                if ok:
                    latencies.append((time.perf_counter() - t) * 1000.0)
                else:
                    errors += 1

    try:
        stop_at = time.perf_counter() + warmup
        await asyncio.gather(*(worker(k) for k in range(concurrency)))
        measuring = True
        t0 = time.perf_counter()
        stop_at = t0 + duration
        await asyncio.gather(*(worker(k) for k in range(concurrency)))
        elapsed = time.perf_counter() - t0
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))
        if session is not None:
            await session.close()

    latencies.sort()

    def pct(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(len(latencies) * q))] if latencies else 0.0

    print(f"health requests served: {len(latencies)} in {elapsed:.1f} s, errors: {errors}")
    print(f"throughput: {len(latencies) / elapsed:,.0f} health requests/s")
    print(
        f"latency ms: p50 {pct(0.50):.2f}  p90 {pct(0.90):.2f}  p99 {pct(0.99):.2f}  "
        f"max {latencies[-1] if latencies else 0.0:.2f}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--devices", type=int, default=1000)
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--in-process", action="store_true")
    ap.add_argument(
        "--client",
        choices=("httpx", "aiohttp"),
        default="httpx",
        help="load generator (httpx: as the device actors use; aiohttp: lighter, for comparison)",
    )
    args = ap.parse_args()
    print(
        f"devices: {args.devices} in one process ({'same' if args.in_process else 'separate'} "
        f"process from the load), client {args.client}, concurrency {args.concurrency}, "
        f"{os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    if args.in_process:
        from pipeconsole.sim import Fleet

        t0 = time.perf_counter()
        fleet = Fleet.start(devices=args.devices)
        print(f"fleet start-up: {time.perf_counter() - t0:.2f} s")
        try:
            urls = [d.base_url for d in fleet.devices]
            asyncio.run(drive(urls, args.duration, args.concurrency, args.warmup, args.client))
        finally:
            fleet.stop()
        return
    proc, urls, startup = start_fleet_process(args.devices)
    print(f"fleet start-up (process start to ready): {startup:.2f} s")
    try:
        asyncio.run(drive(urls, args.duration, args.concurrency, args.warmup, args.client))
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
        print(f"fleet process exit status after SIGTERM: {code}")


if __name__ == "__main__":
    main()
