"""GroupConsumer.stop is bounded: a revoke that never finishes (a slow broker rebalance, a
stuck listener) does not hold the caller past the timeout."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping

from pipeconsole.config import Profile
from pipeconsole.kafka.group import TP, GroupConsumer
from pipeconsole.kafka.records import Record


class StuckListener:
    def __init__(self) -> None:
        self.assigned = threading.Event()
        self.revoking = threading.Event()
        self.release = threading.Event()

    def on_records(self, records: list[Record]) -> None:
        pass

    def on_assigned(self, partitions: list[TP]) -> None:
        self.assigned.set()

    def on_revoked(self, partitions: list[TP], lost: bool) -> Mapping[TP, int]:
        self.revoking.set()
        self.release.wait(60)  # stuck until the test lets go
        return {}


def test_stop_returns_within_its_timeout_when_leaving_the_group_hangs(profile: Profile) -> None:
    listener = StuckListener()
    group = GroupConsumer(
        profile,
        f"stuck-{time.monotonic_ns()}",
        [profile.topics.request],
        listener,
        session_timeout_ms=6000,
    )
    group.start()
    try:
        assert listener.assigned.wait(30), "no assignment"
        assert group.stop(timeout=1.0) is False  # left behind, not waited for
        assert listener.revoking.wait(10)
    finally:
        listener.release.set()
