"""Pure logic of the device actors: scheduler heap, retry budget, backoff, offsets, DLQ headers."""

from __future__ import annotations

import asyncio

from pipeconsole.actors.dlq import HEADER_PREFIX, dead_letter
from pipeconsole.actors.offsets import PartitionOffsets
from pipeconsole.actors.partitioner import crc32_partition, murmur2, murmur2_partition
from pipeconsole.actors.retry import Deadline, RetryBudget, RetryPolicy, full_jitter
from pipeconsole.actors.scheduler import Scheduler
from pipeconsole.kafka.records import Record


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_scheduler_fires_in_due_order_and_never_early() -> None:
    clock = FakeClock()
    s: Scheduler[str] = Scheduler(clock)
    s.add(1002.0, "b", "B")
    s.add(1001.0, "a", "A")
    s.add(1003.0, "c", "C")
    assert s.pop_due(1000.999) == []
    assert [e.payload for e in s.pop_due(1002.0)] == ["A", "B"]
    assert s.next_due() == 1003.0
    assert len(s) == 1


def test_scheduler_refuses_a_second_entry_for_the_same_key() -> None:
    s: Scheduler[str] = Scheduler(FakeClock())
    assert s.add(1001.0, "req-1", "first") is not None
    assert s.add(1005.0, "req-1", "second") is None
    assert [e.payload for e in s.pop_due(2000.0)] == ["first"]


def test_cancelled_entry_never_fires_and_key_is_free_again() -> None:
    s: Scheduler[str] = Scheduler(FakeClock())
    s.add(1001.0, "req-1", "x")
    assert s.cancel("req-1") is not None
    assert s.cancel("req-1") is None
    assert s.pop_due(2000.0) == []
    assert s.add(1001.0, "req-1", "y") is not None


def test_drop_removes_matching_entries() -> None:
    s: Scheduler[int] = Scheduler(FakeClock())
    for i in range(10):
        s.add(1001.0 + i, f"k{i}", i)
    gone = s.drop(lambda e: e.payload % 2 == 0)
    assert sorted(e.payload for e in gone) == [0, 2, 4, 6, 8]
    assert [e.payload for e in s.pop_due(3000.0)] == [1, 3, 5, 7, 9]


async def test_attached_scheduler_fires_on_the_loop_after_due() -> None:
    loop = asyncio.get_running_loop()
    s: Scheduler[str] = Scheduler(loop.time)
    fired: list[tuple[str, float]] = []
    done = asyncio.Event()

    def fire(e: object) -> None:
        fired.append((e.payload, loop.time()))  # type: ignore[attr-defined]
        if len(fired) == 3:
            done.set()

    s.attach(loop, fire)
    t0 = loop.time()
    s.add(t0 + 0.05, "late", "late")
    s.add(t0 + 0.01, "early", "early")  # re-arms the timer for an earlier entry
    s.add(t0 + 0.03, "mid", "mid")
    await asyncio.wait_for(done.wait(), 5)
    s.detach()
    assert [p for p, _ in fired] == ["early", "mid", "late"]
    dues = {"early": 0.01, "mid": 0.03, "late": 0.05}
    assert all(at >= t0 + dues[p] for p, at in fired)


def test_retry_budget_allows_ten_percent_of_requests() -> None:
    clock = FakeClock()
    budget = RetryBudget(ratio=0.1, min_per_s=0.0, clock=clock)
    granted = 0
    for _ in range(1000):
        budget.deposit()
        if budget.try_withdraw():
            granted += 1
        if budget.try_withdraw():  # every request fails twice: wants two retries
            granted += 1
    assert granted == 100
    assert budget.refused == 2000 - 100


def test_retry_budget_floor_refills_over_time_and_is_capped() -> None:
    clock = FakeClock()
    budget = RetryBudget(ratio=0.1, min_per_s=1.0, max_tokens=5.0, clock=clock)
    assert not budget.try_withdraw()
    clock.t += 100.0
    assert budget.tokens == 5.0
    assert sum(budget.try_withdraw() for _ in range(10)) == 5


def test_full_jitter_stays_within_the_doubling_ceiling() -> None:
    assert full_jitter(1, 0.05, 2.0, lambda: 1.0) == 0.05
    assert full_jitter(3, 0.05, 2.0, lambda: 1.0) == 0.2
    assert full_jitter(20, 0.05, 2.0, lambda: 1.0) == 2.0
    assert full_jitter(5, 0.05, 2.0, lambda: 0.0) == 0.0


def test_policy_caps_requested_attempts() -> None:
    p = RetryPolicy(default_max_attempts=3, max_attempts_cap=5)
    assert p.attempts_for(0) == 3
    assert p.attempts_for(1) == 1
    assert p.attempts_for(50) == 5


def test_deadline_remaining_is_never_negative_in_the_header() -> None:
    d = Deadline(at=10.0)
    assert d.remaining_ms(9.5) == 500
    assert d.remaining_ms(11.0) == 0
    assert d.passed(10.0) and not d.passed(9.99)


def test_commit_point_is_the_lowest_offset_without_outcome() -> None:
    po = PartitionOffsets("t", 0)
    assert po.commit_point() is None
    for off in range(5):
        assert po.read(off)
    po.done(0)
    po.done(2)
    po.done(3)
    assert po.advance() == 1  # offset 1 (scheduled an hour ahead, say) holds the partition
    assert po.advance() is None
    po.done(1)
    assert po.advance() == 4
    po.done(4)
    assert po.advance() == 5
    assert po.pending == 0


def test_redelivered_offsets_are_not_processed_twice() -> None:
    po = PartitionOffsets("t", 0)
    assert po.read(7)
    assert not po.read(7)
    assert not po.read(3)
    assert po.read(8)
    assert po.high_read == 9


def test_dead_letter_keeps_original_bytes_and_adds_reason_headers() -> None:
    rec = Record("req", 2, 41, 123, b"dev-1", b"\x00garbage", (("trace", b"abc"),))
    dl = dead_letter(
        rec, code="malformed", reason="bad tag", attempts=1, actor_id="a", time_unix_ms=5
    )
    assert dl.value == b"\x00garbage" and dl.key == b"dev-1"
    h = dict(dl.headers)
    assert h["trace"] == b"abc"
    assert h[HEADER_PREFIX + "offset"] == b"41"
    assert h[HEADER_PREFIX + "partition"] == b"2"
    assert h[HEADER_PREFIX + "topic"] == b"req"
    assert h[HEADER_PREFIX + "reason"] == b"bad tag"
    assert h[HEADER_PREFIX + "code"] == b"malformed"


def test_murmur2_matches_kafka_reference_values() -> None:
    # Values from Kafka's UtilsTest.testMurmur2.
    assert murmur2(b"21") == -973932308
    assert murmur2(b"foobar") == -790332482
    assert murmur2(b"a-little-bit-long-string") == -985981536
    assert murmur2(b"a-little-bit-longer-string") == -1486304829
    assert murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8") == -58897971
    assert murmur2(b"abc") == 479470107
    assert 0 <= murmur2_partition(b"device-7", 6) < 6
    assert 0 <= crc32_partition(b"device-7", 6) < 6


def test_a_dead_letter_too_large_for_the_dlq_is_truncated_with_size_and_digest() -> None:
    from pipeconsole.actors.dlq import KEEP_BYTES, truncated

    big = bytes(range(256)) * 4096  # 1 MiB
    rec = Record("req", 0, 9, 1, b"dev", big, (("huge", b"x" * 1000),))
    dl = truncated(
        dead_letter(rec, code="too_large", reason="r", attempts=1, actor_id="a", time_unix_ms=1)
    )
    h = dict(dl.headers)
    assert dl.value == big[:KEEP_BYTES]
    assert h[HEADER_PREFIX + "truncated"] == str(len(big)).encode()
    assert len(h[HEADER_PREFIX + "sha256"]) == 64
    assert "huge" not in h and h[HEADER_PREFIX + "offset"] == b"9"


def test_health_checks_spread_over_the_interval_after_the_first() -> None:
    """1,000 devices at 5 s: the first checks fall within a second, and each device's next
    ones at its own phase of the interval. They all repeated the first second's wave before
    (1,000 checks and state events in about a second, then 4 s of nothing)."""
    from pipeconsole.actors.service import first_check_s, next_check_s

    ids = [
        f"{stage}-{i:03d}"
        for stage in ("ingest", "transcode", "package", "origin")
        for i in range(250)
    ]
    interval = 5.0
    first = {d: first_check_s(d, interval) for d in ids}
    assert all(0 <= t < 1.0 for t in first.values())
    second = {d: first[d] + next_check_s(d, interval, first=True) for d in ids}
    assert all(second[d] - first[d] < 2 * interval for d in ids)  # never near stale (3)
    assert all(next_check_s(d, interval, first=False) == interval for d in ids)
    per_second = [0] * 5
    for t in second.values():
        per_second[int(t % interval)] += 1
    assert max(per_second) < 300 and min(per_second) > 100, per_second  # ~200 each
    # At 1 s and below the first checks already spread over the whole interval.
    assert next_check_s("ingest-001", 1.0, first=True) == 1.0
    assert next_check_s("ingest-001", 0.5, first=True) == 0.5
