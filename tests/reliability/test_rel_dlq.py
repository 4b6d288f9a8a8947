"""DLQ unwritable: the poison record's offset is not committed, its partition pauses with an
alarm, and a later instance that can write the DLQ settles it — nothing lost, nothing skipped."""

from __future__ import annotations

from ledger import Ledger, check_devices, wait_for
from relkit import Sender, ServiceThread, request, settings, with_topics

from pipeconsole.config import Profile
from pipeconsole.kafka.admin import group_lag
from pipeconsole.sim.fleet import Fleet


def test_unwritable_dlq_holds_the_offset_pauses_the_partition_and_raises_the_alarm(
    profile: Profile, fleet: Fleet, ledger: Ledger, sender: Sender
) -> None:
    dev = fleet.devices[0].device_id
    broken = with_topics(profile, dlq="dlq cannot be written")  # an invalid topic name
    s = settings()
    svc = ServiceThread(broken, s)
    before = [request(dev) for _ in range(3)]
    after = [request(dev) for _ in range(3)]
    try:
        svc.wait_ready()
        sender.requests(before)
        ledger.wait_balanced(30, expect_inputs=len(before))
        sender.raw([(dev.encode(), b"\xff" * 11)])
        wait_for(lambda: len(ledger.request_records()) == len(before) + 1, 10, "the poison record")
        poison = ledger.request_records()[-1]
        tp = (profile.topics.request, poison.partition)

        def alarmed() -> bool:
            st = svc.call(svc.service.status)
            paused = {(p.topic, p.partition) for p in st.partitions if p.paused}
            return bool(st.dlq_alarm) and tp in paused

        wait_for(alarmed, 30, "dlq_alarm and the poison's partition paused")
        sender.requests(after)
        # The commit point never passes the poison record while the DLQ cannot be written.
        for _ in range(3):
            rows = group_lag(profile, s.group, [profile.topics.request])
            committed = {r.partition: r.committed for r in rows}
            assert committed.get(poison.partition, -1) <= poison.offset, committed
        assert not ledger.dlq_records()
        assert ledger.balance().missing  # the poison (at least) is still open, not lost
    finally:
        svc.stop()
    heir = ServiceThread(profile, settings(group=s.group))
    try:
        heir.wait_ready()
        # Requests behind the poison may have run before the restart; their offsets were held
        # back, so the heir runs them again: a repeated final, absorbed by the devices' de-dup.
        b = ledger.wait_balanced(60, expect_inputs=len(before) + len(after) + 1, allow_repeats=True)
        assert b.finals == {"OK": len(before) + len(after), "REJECTED": 1}, b.explain()
        assert set(b.repeated) <= {r.request_id for r in after}, b.repeated
        check_devices(ledger, fleet.devices)
        assert len(ledger.dlq_records()) == 1
        assert ledger.dlq_records()[0].value == b"\xff" * 11

        ends: dict[int, int] = {}
        for r in ledger.request_records():
            ends[r.partition] = max(ends.get(r.partition, 0), r.offset + 1)

        def committed_past_poison() -> bool:
            # (compared with the records read: Tansu's high watermark can lag behind them)
            rows = group_lag(profile, s.group, [profile.topics.request])
            done = {r.partition: r.committed for r in rows}
            return all(done.get(p, -1) >= end for p, end in ends.items())

        wait_for(committed_past_poison, 30, "every request partition committed to its end")
    finally:
        heir.stop()
