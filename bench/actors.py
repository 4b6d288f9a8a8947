"""Benchmark of the device actors (issue 4): scheduling accuracy, throughput, amplification.

    python bench/actors.py [--accuracy N] [--throughput N] [--amplification N] [--devices D]
        [--in-process-fleet] [--dispatch-args "..."] [--py-spy OUT] [--ramp]

Starts an embedded Tansu broker, a simulated fleet and one ``pipeconsole dispatch`` subprocess.
The fleet runs as its own ``pipeconsole simulate`` process by default (on a 2-core machine a
fleet inside the bench process competes with the bench's own Kafka reader for one GIL);
``--in-process-fleet`` hosts it on a thread of this process instead. Then:

(a) accuracy: N requests scheduled at random offsets in [1 s, 2 s]; lateness = fire time minus
    schedule time as the actor reports it in the final DeviceResponse (``lateness_ms``: the
    timer thread's stamp when it handed the request to execution); mean and s.d. Also
    reported: ``dispatch_delay`` = the DISPATCHED event's time (first attempt handed to HTTP)
    minus the schedule time, i.e. lateness plus the wait for the event loop;
(b) throughput: N requests with empty schedule_time spread over the fleet, all produced
    before the dispatch process is (re)started; executed per second between the first
    DISPATCHED and the last final outcome (time_unix_ms of the events). Nothing in the bench
    reads Kafka meanwhile (its reader would compete with the system under test for the same
    two cores): the end is seen in the dispatch group's committed offsets (a record is
    committed only once its final outcome is acknowledged), and the events are read after.
    ``cpu_ms_per_request``: each process's CPU between the first and the last commit that
    moved, over the records committed in between (start-up and the group join excluded);
(c) amplification: N requests to a device failing every command (503) with max_attempts 4;
    attempts the device saw / requests.

Prints JSON with the machine's load average at the start and end, and during (b) the CPU
seconds each process used and the share of the machine's CPU time the hypervisor stole (on a
shared VM this decides the figures as much as the code does).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "actors"))

from actor_harness import (
    FINAL,
    Responses,
    Sender,
    _write_config,
    at,
    dispatch_process,
    request,
)

from pipeconsole.broker import EmbeddedBroker
from pipeconsole.config import Profile, Topics
from pipeconsole.kafka.admin import ensure_topics
from pipeconsole.kafka.client import client_settings
from pipeconsole.wire.gen.device_response_pb2 import DeviceResponse as R


def _topics(suffix: str) -> Topics:
    from dataclasses import replace

    base = Topics()
    names = {
        a: f"{getattr(base, a)}-{suffix}"
        for a in ("registry", "state", "request", "control", "response", "dlq", "chaos", "audit")
    }
    return replace(base, request_partitions=6, partitions=3, **names)


class FleetProc:
    """``pipeconsole simulate`` in its own process, registered on the bench's topics."""

    def __init__(self, profile: Profile, devices: int) -> None:
        manifest = Path(tempfile.mkdtemp()) / "fleet.json"
        env = dict(os.environ, PIPECONSOLE_CONFIG=_write_config(profile))
        self.proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "pipeconsole", "simulate", "-n", str(devices)),
                *("--seed", "1", "--manifest", str(manifest)),
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.strip() == "ready":
                break
        else:
            raise SystemExit("the fleet process did not start")
        rows = json.loads(manifest.read_text())["devices"]
        self.urls = {r["device_id"]: r["base_url"] for r in rows}
        self.http = httpx.Client(timeout=10.0, trust_env=False)

    @property
    def ids(self) -> list[str]:
        return list(self.urls)

    def fail_all_commands(self, device_id: str) -> None:
        body = {"fault": "error_rate", "duration_s": 600, "rate": 1.0}
        self.http.post(f"{self.urls[device_id]}/chaos", json=body).raise_for_status()

    def commands(self, device_id: str) -> int:
        return int(self.http.get(f"{self.urls[device_id]}/_sim/counters").json()["commands"])

    def close(self) -> None:
        self.http.close()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class InProcFleet:
    """The fleet on a thread of this process (``--in-process-fleet``)."""

    def __init__(self, profile: Profile, devices: int) -> None:
        from pipeconsole.sim.fleet import Fleet

        self.fleet = Fleet.start(devices=devices, seed=1, profile=profile)

    @property
    def ids(self) -> list[str]:
        return [d.device_id for d in self.fleet.devices]

    def fail_all_commands(self, device_id: str) -> None:
        self.fleet.device(device_id).inject(fault="error_rate", duration_s=600, rate=1.0)

    def commands(self, device_id: str) -> int:
        return self.fleet.device(device_id).counters().commands

    def close(self) -> None:
        self.fleet.stop()


class CommitWatch:
    """The dispatch group's committed offsets on the request topic, against the end of it.

    One admin client, asked a few times a second: far cheaper than reading the responses."""

    def __init__(self, profile: Profile, group: str) -> None:
        from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, TopicPartition
        from confluent_kafka.admin import AdminClient

        self._cgtp = ConsumerGroupTopicPartitions
        settings = client_settings(profile, {"group.id": f"bench-{os.getpid()}"})
        self._admin = AdminClient({"bootstrap.servers": settings["bootstrap.servers"]})
        consumer = Consumer(settings)
        topic = profile.topics.request
        parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        self._tps = [TopicPartition(topic, p) for p in sorted(parts)]
        self.target = sum(consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in self._tps)
        """Sum of the partitions' high watermarks: every record committed."""
        consumer.close()
        self._group = group

    def committed(self) -> int:
        fut = self._admin.list_consumer_group_offsets([self._cgtp(self._group, self._tps)])
        got = fut[self._group].result(10).topic_partitions
        return sum(max(0, tp.offset) for tp in got)

    def idle(self, limit_s: float, since: float) -> None:
        if time.monotonic() - since > limit_s:
            raise SystemExit(f"the requests did not finish within {limit_s:.0f} s")
        time.sleep(0.2)


def _peak_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds of a process so far (0 when unknown)."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_totals() -> tuple[float, float]:
    """(all jiffies, stolen jiffies) of the machine so far, from /proc/stat."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return 0.0, 0.0
    return float(sum(fields[:8])), float(fields[7]) if len(fields) > 7 else 0.0


@contextmanager
def dispatching(
    profile: Profile, extra: list[str], spy: str | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    # The harness checks health every 0.5 s (fast tests); the bench runs the default 5 s.
    proc = dispatch_process(
        profile, "bench", "bench-actor", "--pool", "128", "--check-interval", "5", *extra
    )
    spying = None
    if spy:  # a sampling profile of the dispatch process (pip install py-spy)
        spying = subprocess.Popen(
            [
                *("py-spy", "record", "--pid", str(proc.pid), "--rate", "250", "--gil"),
                *("--format", "raw", "--nonblocking", "--output", spy),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    try:
        yield proc
    finally:
        if spying is not None:
            spying.send_signal(signal.SIGINT)
            spying.wait(30)
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise SystemExit("the dispatch process did not stop within 30 s") from None


def _stats(xs: list[float]) -> dict[str, float]:
    return {
        "mean_ms": round(statistics.fmean(xs), 2),
        "sd_ms": round(statistics.pstdev(xs), 2),
        "p99_ms": round(sorted(xs)[int(0.99 * (len(xs) - 1))], 2),
        "max_ms": max(xs),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--accuracy", type=int, default=1000)
    ap.add_argument("--throughput", type=int, default=5000)
    ap.add_argument("--amplification", type=int, default=1000)
    ap.add_argument("--devices", type=int, default=24)
    ap.add_argument("--in-process-fleet", action="store_true")
    ap.add_argument("--py-spy", default=None, help="record the throughput phase to this file")
    ap.add_argument(
        "--ramp", action="store_true", help="print (b)'s events per 100 ms for its first 2.5 s"
    )
    ap.add_argument(
        "--dispatch-args", default="", help="extra arguments of pipeconsole dispatch (one string)"
    )
    args = ap.parse_args()
    results: dict[str, Any] = {
        "load_average_start": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(),
        "fleet": "in the bench process" if args.in_process_fleet else "its own process",
        "dispatch_args": args.dispatch_args,
    }
    with EmbeddedBroker() as broker:
        profile = Profile(name="bench", bootstrap=broker.bootstrap, topics=_topics("bench"))
        ensure_topics(profile, profile.topics)
        fleet: FleetProc | InProcFleet = (
            InProcFleet(profile, args.devices)
            if args.in_process_fleet
            else FleetProc(profile, args.devices)
        )
        responses = Responses(profile)
        sender = Sender(profile)
        try:
            devs = fleet.ids
            extra = args.dispatch_args.split()
            with dispatching(profile, extra):
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
                    late = [float(f.lateness_ms) for f in finals.values()]
                    ids = {r.request_id for r in reqs}
                    delay = [
                        float(m.time_unix_ms - m.scheduled_for_unix_ms)
                        for m in responses.values()
                        if m.request_id in ids and m.outcome == R.DISPATCHED
                    ]
                    results["accuracy"] = {
                        "n": len(late),
                        **_stats(late),
                        "early": sum(x < 0 for x in late),
                        "outcomes": sorted({R.Outcome.Name(f.outcome) for f in finals.values()}),
                        "dispatch_delay": _stats(delay),
                    }

            if args.throughput:
                # Produced while no dispatch runs, so the clock measures execution only.
                reqs = [
                    request(devs[i % len(devs)], deadline=at(180)) for i in range(args.throughput)
                ]
                sender.requests(reqs)
            if args.throughput:
                # Nothing in this process reads Kafka while the requests run: the bench's reader
                # would compete with the system under test for the same two cores. The end is
                # seen in the group's commits (the service commits a record only once its
                # final outcome is acknowledged); the events are read afterwards.
                responses.close()
                watch = CommitWatch(profile, "bench")
            with dispatching(profile, extra, args.py_spy) as proc:
                if args.throughput:
                    pids = {
                        "dispatch": proc.pid,
                        "fleet": getattr(getattr(fleet, "proc", None), "pid", None),
                        "broker": broker.pid,
                        "bench": os.getpid(),
                    }
                    cpu0 = {k: cpu_seconds(p) for k, p in pids.items()}
                    total0, stolen0 = cpu_totals()
                    t0 = time.monotonic()
                    # CPU per request = CPU between the first commit that moved and the last,
                    # over the records committed in between (start-up and the join excluded).
                    base = watch.committed()
                    while (started := watch.committed()) == base:
                        watch.idle(120, t0)
                    cpu_started = {k: cpu_seconds(p) for k, p in pids.items()}
                    while (done := watch.committed()) < watch.target:
                        watch.idle(300, t0)
                    per_request = {
                        k: round(
                            (cpu_seconds(p) - cpu_started[k]) / max(1, done - started) * 1000, 3
                        )
                        for k, p in pids.items()
                    }
                    wall = time.monotonic() - t0
                    cpu = {k: round(cpu_seconds(p) - cpu0[k], 2) for k, p in pids.items()}
                    total1, stolen1 = cpu_totals()
                    steal = (stolen1 - stolen0) / max(1.0, total1 - total0)
                    peak_rss_mb = _peak_rss_mb(proc.pid)
                    responses = Responses(profile)
                    ids = {r.request_id for r in reqs}
                    finals = responses.wait_final(ids, 120)
                    evs = [m for m in responses.values() if m.request_id in ids]
                    first = min(m.time_unix_ms for m in evs if m.outcome == R.DISPATCHED)
                    last = max(m.time_unix_ms for m in evs if m.outcome in FINAL)
                    ok = sum(f.outcome == R.OK for f in finals.values())
                    per_s: dict[int, int] = {}
                    for m in evs:
                        if m.outcome in FINAL:
                            sec = (m.time_unix_ms - first) // 1000
                            per_s[sec] = per_s.get(sec, 0) + 1
                    if args.ramp:  # intake (SCHEDULED) against execution, per 100 ms
                        for kind in (R.SCHEDULED, R.DISPATCHED, R.OK):
                            b: dict[int, int] = {}
                            for m in evs:
                                if m.outcome == kind:
                                    k = (m.time_unix_ms - first) // 100
                                    b[k] = b.get(k, 0) + 1
                            row = [b.get(i, 0) for i in range(-5, 25)]
                            print(f"{R.Outcome.Name(kind):>10}", row, file=sys.stderr)
                    results["throughput"] = {
                        "n": len(reqs),
                        "ok": ok,
                        "seconds": round((last - first) / 1000, 2),
                        "per_s": round(len(reqs) / max(0.001, (last - first) / 1000), 1),
                        "finals_each_second": [per_s.get(i, 0) for i in range(max(per_s) + 1)],
                        "cpu_seconds": cpu,
                        "cpu_ms_per_request": per_request,
                        "dispatch_peak_rss_mb": peak_rss_mb,
                        "cpu_window_s": round(wall, 2),
                        "cpu_stolen_by_hypervisor": f"{steal:.0%}",
                    }

                if args.amplification:
                    bad = devs[-1]
                    fleet.fail_all_commands(bad)
                    before = fleet.commands(bad)
                    reqs = [
                        request(bad, max_attempts=4, deadline=at(120))
                        for _ in range(args.amplification)
                    ]
                    sender.requests(reqs)
                    responses.wait_final([r.request_id for r in reqs], 300)
                    seen = fleet.commands(bad) - before
                    results["amplification"] = {
                        "n": len(reqs),
                        "device_attempts": seen,
                        "ratio": round(seen / len(reqs), 3),
                        "without_budget_would_be": 4.0,
                    }
        finally:
            responses.close()
            sender.close()
            fleet.close()
    results["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
