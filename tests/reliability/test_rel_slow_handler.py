"""A slow device against ``max.poll.interval.ms``: the actors stay in their group.

Issue 10's promise: a device that takes 30 s per request must not make the actors leave
their group (its partition is paused, the consumer keeps polling), and what waits behind the
pause is read after it with no gap. Scaled down: the dispatch's group
consumer gets the smallest ``max.poll.interval.ms`` librdkafka accepts with the session
timeout the tests use (it must be >= ``session.timeout.ms``: 6 s), and one device answers every
command after 15 s (2.5x that) while the first requests reach it.

The profile's ``kafka`` table reaches the group consumer (``client_settings`` applies it under
the consumer's own keys), so the test sets ``max.poll.interval.ms`` there, with a
``stats_cb`` that reads librdkafka's own consumer-group statistics every 500 ms:
``cgrp.rebalance_cnt`` (assignments and revocations), ``join_state`` and
``rebalance_reason``. A consumer that stops polling for longer than the interval leaves the
group: librdkafka logs ``MAXPOLL``, the partitions are lost and ``rebalance_cnt`` grows with
the reason "max.poll.interval.ms exceeded" (checked by hand against a listener that blocks the
consumer thread for 9 s). Statistics are served from ``consume()``, so their steady arrival
is also the evidence that the consumer kept polling.

Records for the slow partition are produced once the consumer has applied the pause, so they
are provably read only after the resume (``high_read`` in ActorStatus does not move while
paused). The narrower race the resume's seek guards against (records librdkafka fetched just
before the pause and purged) cannot be forced from outside the consumer thread: this test
also passes with that seek disabled, so it does not show the seek is needed, only that
nothing is skipped.
"""

from __future__ import annotations

import itertools
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import pytest
from ledger import Ledger, check_devices, wait_for
from relkit import Sender, ServiceThread, at, request, settings

from pipeconsole.actors.partitioner import crc32_partition
from pipeconsole.config import Profile
from pipeconsole.kafka.admin import group_lag
from pipeconsole.sim.fleet import Fleet
from pipeconsole.wire.gen.device_response_pb2 import DeviceResponse

SESSION_MS = 6000
"""The tests' session timeout; librdkafka refuses a max.poll.interval.ms below it."""
MAX_POLL_MS = SESSION_MS
SLOW_MS = 15_000
"""What each command takes while the slow phase lasts: 2.5x max.poll.interval.ms."""
SLOW_WINDOW_S = 8.0
"""Commands that reach the device within this many seconds of the fault are slow."""
PER_DEVICE = 2
SLOW = 8
"""Requests for the slow device in the first burst: PER_DEVICE run, the rest wait."""
GROUP_CLIENT = "pipeconsole-dispatch"
"""``client.id`` of the dispatch's group consumer (its statistics are told apart by it)."""


@dataclass(frozen=True, slots=True)
class GroupStats:
    """One statistics report of the group consumer."""

    seen: float
    """time.monotonic() when the callback ran (on the consumer thread, inside consume())."""
    state: str
    join_state: str
    rebalances: int
    assigned: int
    reason: str


class GroupWatch:
    """Collects the group consumer's ``cgrp`` statistics (``stats_cb`` for librdkafka)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reports: list[GroupStats] = []

    def on_stats(self, raw: str) -> None:
        d = json.loads(raw)
        cg = d.get("cgrp")
        if d.get("client_id") != GROUP_CLIENT or not isinstance(cg, dict):
            return
        report = GroupStats(
            seen=time.monotonic(),
            state=str(cg.get("state")),
            join_state=str(cg.get("join_state")),
            rebalances=int(cg.get("rebalance_cnt", -1)),
            assigned=int(cg.get("assignment_size", -1)),
            reason=str(cg.get("rebalance_reason", "")),
        )
        with self._lock:
            self.reports.append(report)

    def since(self, index: int) -> list[GroupStats]:
        with self._lock:
            return self.reports[index:]

    def count(self) -> int:
        with self._lock:
            return len(self.reports)

    def last(self) -> GroupStats | None:
        with self._lock:
            return self.reports[-1] if self.reports else None


def _dispatch_profile(profile: Profile, watch: GroupWatch) -> Profile:
    # Every client of the dispatch gets these (consumer keys on a producer are ignored with a
    # warning); session.timeout.ms too, or the registry reader (45 s default) would refuse a
    # max.poll.interval.ms below it.
    kafka: dict[str, Any] = {
        **profile.kafka,
        "session.timeout.ms": SESSION_MS,
        "max.poll.interval.ms": MAX_POLL_MS,
        "statistics.interval.ms": 500,
        "stats_cb": watch.on_stats,
    }
    return replace(profile, kafka=kafka)


def test_slow_device_pauses_its_partition_without_leaving_the_group(
    profile: Profile,
    fleet: Fleet,
    ledger: Ledger,
    sender: Sender,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="pipeconsole.librdkafka")
    n = profile.topics.request_partitions
    topic = profile.topics.request
    part_of: Callable[[str], int] = lambda d: crc32_partition(d.encode(), n)  # noqa: E731
    devs = [d.device_id for d in fleet.devices]
    slow_dev = devs[0]
    slow_part = part_of(slow_dev)
    others = [d for d in devs if part_of(d) != slow_part]
    neighbours = [d for d in devs[1:] if part_of(d) == slow_part]
    assert others, "the fleet needs a device on another partition"
    watch = GroupWatch()
    group = f"slow-{uuid.uuid4().hex[:8]}"
    svc = ServiceThread(
        _dispatch_profile(profile, watch),
        settings(
            group=group,
            session_timeout_ms=SESSION_MS,
            per_device_in_flight=PER_DEVICE,
            high_water=3,
            low_water=1,
        ),
    )
    try:
        svc.wait_ready()

        def steady() -> bool:
            s = watch.last()
            return s is not None and s.join_state == "steady" and s.assigned == 2 * n

        wait_for(steady, 20, "the group consumer to hold all 2n partitions, steady")
        start = watch.count() - 1
        base = watch.since(start)[0].rebalances

        def slow_partition() -> tuple[bool, int]:
            """(paused, one past the last offset read) of the slow partition, in ActorStatus."""
            st = svc.call(svc.service.status)
            for p in st.partitions:
                if (p.topic, p.partition) == (topic, slow_part):
                    return p.paused, p.high_read
            return False, -1

        def moved() -> list[GroupStats]:
            """Reports since the first steady one that saw a rebalance or a member not steady."""
            return [
                r for r in watch.since(start) if r.rebalances != base or r.join_state != "steady"
            ]

        def paused() -> bool:
            return slow_partition()[0]

        # The slow phase: every command reaching the device in the next 8 s takes 15 s.
        fleet.device(slow_dev).inject(fault="latency", duration_s=SLOW_WINDOW_S, mean_ms=SLOW_MS)
        slow = [request(slow_dev, deadline=at(60)) for _ in range(SLOW)]
        sender.requests(slow)
        wait_for(paused, 10, "the slow device's partition to be paused in ActorStatus")
        # The pause reaches the consumer thread through its command queue, applied before each
        # consume(); statistics are served inside consume(), so two more reports mean a
        # consume() that began after the pause was applied.
        seen = watch.count()
        wait_for(lambda: watch.count() >= seen + 2, 10, "the consumer to poll past the pause")
        assert not moved(), f"the group rebalanced: {moved()[:3]}"
        read_before = slow_partition()[1]
        # Paused once PER_DEVICE run and 3 (high water) wait: at least that much was read.
        assert read_before >= PER_DEVICE + 3, f"read {read_before} records of the slow partition"
        # While paused: more for the slow partition (queued behind: not read until the resume,
        # then all of them), and requests to devices on the other partitions, which must finish
        # before any slow one does.
        behind = [request(d, deadline=at(60)) for d in [slow_dev, *neighbours] for _ in range(4)]
        flowing = [request(d) for d in others for _ in range(3)]
        sender.requests(behind + flowing)
        slow_ids = {r.request_id for r in slow}
        flow_ids = {r.request_id for r in flowing}
        wait_for(
            lambda: flow_ids <= set(ledger.finals_by_request()),
            15,
            "requests to the other devices to finish during the slow phase",
        )
        finals = ledger.finals_by_request()
        assert {finals[i][0].outcome for i in flow_ids} == {DeviceResponse.OK}
        assert not slow_ids & set(finals), "the slow device answered early: nothing was tested"
        assert slow_partition() == (True, read_before), (
            "the slow partition was resumed, or read past its pause, while its device was busy"
        )

        inputs = len(slow) + len(behind) + len(flowing)
        b = ledger.wait_balanced(60, expect_inputs=inputs)
        assert b.finals == {"OK": inputs}, b.explain()
        check_devices(ledger, fleet.devices)
        took = [ledger.finals_by_request()[i][0].duration_ms for i in slow_ids]
        assert sum(1 for ms in took if ms >= 2 * MAX_POLL_MS) >= PER_DEVICE, (
            f"fewer than {PER_DEVICE} slow requests outlasted 2x max.poll.interval.ms: {took}"
        )

        ends: dict[int, int] = {}
        for r in ledger.request_records():
            ends[r.partition] = max(ends.get(r.partition, 0), r.offset + 1)

        def committed_to_the_end() -> bool:
            got = {r.partition: r.committed for r in group_lag(profile, group, [topic])}
            return all(got.get(p, -1) >= end for p, end in ends.items())

        wait_for(committed_to_the_end, 20, "every request partition committed to its end")
        wait_for(lambda: not paused(), 10, "the slow partition to be resumed")

        # The group never moved: librdkafka's own count of assignments and revocations is
        # what it was after the first assignment, and every report during the slow phase
        # (they are served from consume(), ~2 per second) saw a steady member holding all.
        reports = watch.since(start)
        gaps = [y.seen - x.seen for x, y in itertools.pairwise(reports)]
        assert reports[-1].seen - reports[0].seen > SLOW_MS / 1000
        assert max(gaps) < MAX_POLL_MS / 1000, f"the consumer stopped polling for {max(gaps):.1f} s"
        assert not moved(), f"the group rebalanced: {moved()[:3]}"
        assert {s.assigned for s in reports} == {2 * n}
        maxpoll = [r.getMessage() for r in caplog.records if "MAXPOLL" in r.getMessage()]
        assert not maxpoll, maxpoll
    finally:
        svc.stop()
