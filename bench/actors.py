"""Benchmark of the device actors (issue 4): scheduling accuracy, throughput, amplification.

    python bench/actors.py [--accuracy N] [--throughput N] [--amplification N] [--devices D]

Starts an embedded Tansu broker, a simulated fleet (in this process) and one
``pipeconsole dispatch`` subprocess, then:

(a) accuracy: N requests scheduled at random offsets in [1 s, 2 s]; lateness = fire time minus
    schedule time as the actor reports it in the final DeviceResponse; mean and s.d.;
(b) throughput: N requests with empty schedule_time spread over the fleet; executed per second
    between the first DISPATCHED and the last final outcome (time_unix_ms of the events);
(c) amplification: N requests to a device failing every command (503) with max_attempts 4;
    attempts the device saw / requests.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "actors"))

from actor_harness import FINAL, Responses, Sender, at, dispatch_process, request

from pipeconsole.broker import EmbeddedBroker
from pipeconsole.config import Profile
from pipeconsole.kafka.admin import ensure_topics
from pipeconsole.sim.fleet import Fleet
from pipeconsole.wire.gen.device_response_pb2 import DeviceResponse as R


def _topics(suffix: str) -> object:
    from dataclasses import replace

    from pipeconsole.config import Topics

    base = Topics()
    names = {
        a: f"{getattr(base, a)}-{suffix}"
        for a in ("registry", "state", "request", "control", "response", "dlq", "chaos", "audit")
    }
    return replace(base, request_partitions=6, partitions=3, **names)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--accuracy", type=int, default=1000)
    ap.add_argument("--throughput", type=int, default=5000)
    ap.add_argument("--amplification", type=int, default=1000)
    ap.add_argument("--devices", type=int, default=24)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    results: dict[str, object] = {}
    with EmbeddedBroker() as broker:
        profile = Profile(name="bench", bootstrap=broker.bootstrap, topics=_topics("bench"))  # type: ignore[arg-type]
        ensure_topics(profile, profile.topics)
        with Fleet.start(devices=args.devices, seed=1, profile=profile) as fleet:
            devs = [d.device_id for d in fleet.devices]
            responses = Responses(profile)
            sender = Sender(profile)
            proc = dispatch_process(profile, "bench", "bench-actor", "--pool", "128")
            try:
                warm = [request(d) for d in devs]
                sender.requests(warm)
                responses.wait_final([r.request_id for r in warm], 60)

                if args.accuracy:
                    rng = random.Random(1)
                    reqs = [
                        request(rng.choice(devs), schedule=at(1.0 + rng.random()), deadline=at(30))
                        for _ in range(args.accuracy)
                    ]
                    sender.requests(reqs)
                    finals = responses.wait_final([r.request_id for r in reqs], 60)
                    late = [f.lateness_ms for f in finals.values()]
                    results["accuracy"] = {
                        "n": len(late),
                        "mean_ms": round(statistics.fmean(late), 2),
                        "sd_ms": round(statistics.pstdev(late), 2),
                        "max_ms": max(late),
                        "early": sum(x < 0 for x in late),
                        "outcomes": sorted({R.Outcome.Name(f.outcome) for f in finals.values()}),
                    }

                if args.throughput:
                    reqs = [
                        request(devs[i % len(devs)], deadline=at(120))
                        for i in range(args.throughput)
                    ]
                    t0 = time.time()
                    sender.requests(reqs)
                    finals = responses.wait_final([r.request_id for r in reqs], 300)
                    ids = {r.request_id for r in reqs}
                    evs = [m for m in responses.values() if m.request_id in ids]
                    first = min(m.time_unix_ms for m in evs if m.outcome == R.DISPATCHED)
                    last = max(m.time_unix_ms for m in evs if m.outcome in FINAL)
                    ok = sum(f.outcome == R.OK for f in finals.values())
                    results["throughput"] = {
                        "n": len(reqs),
                        "ok": ok,
                        "seconds": round((last - first) / 1000, 2),
                        "per_s": round(len(reqs) / max(0.001, (last - first) / 1000), 1),
                        "end_to_end_s": round(time.time() - t0, 2),
                    }

                if args.amplification:
                    bad = devs[-1]
                    fleet.device(bad).inject(fault="error_rate", duration_s=600, rate=1.0)
                    before = fleet.device(bad).counters().commands
                    reqs = [
                        request(bad, max_attempts=4, deadline=at(120))
                        for _ in range(args.amplification)
                    ]
                    sender.requests(reqs)
                    finals = responses.wait_final([r.request_id for r in reqs], 300)
                    seen = fleet.device(bad).counters().commands - before
                    results["amplification"] = {
                        "n": len(reqs),
                        "device_attempts": seen,
                        "ratio": round(seen / len(reqs), 3),
                        "without_budget_would_be": 4.0,
                    }
            finally:
                proc.send_signal(signal.SIGTERM)
                proc.wait(30)
                responses.close()
                sender.close()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
