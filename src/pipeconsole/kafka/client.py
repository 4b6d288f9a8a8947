"""librdkafka settings from a profile.

librdkafka logs to stderr by default, which corrupts a TUI; every client made here routes its
logs through the ``logger`` setting into the ``pipeconsole.librdkafka`` Python logger instead.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

from pipeconsole.config import Profile

__all__ = ["GROUP_ONLY", "LOG", "RepeatFilter", "client_settings", "outside_a_group", "redact"]


class RepeatFilter(logging.Filter):
    """Lets the first of a run of like messages through, holds back the rest for ``window_s``,
    then lets the next one through saying how many it held back.

    librdkafka logs every failed connect attempt: against a dead broker a dispatcher printed
    292 identical lines in 15 s. Messages are alike when they differ only in durations (``after
    0ms in state CONNECT``); addresses, broker ids and levels keep them apart. At most
    ``max_keys`` runs are tracked (the oldest forgotten)."""

    _DURATIONS = re.compile(r"\d+(?:\.\d+)? ?ms\b")

    def __init__(
        self,
        window_s: float = 30.0,
        max_keys: int = 256,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.window_s = window_s
        self.max_keys = max_keys
        self.clock = clock
        self._runs: OrderedDict[str, list[float]] = OrderedDict()
        """Message shape -> [when its window began, messages held back since]."""
        self._lock = threading.Lock()
        """Clients log from their own threads (the reader's, the lag probe's, the actors')."""

    def filter(self, record: logging.LogRecord) -> bool:
        key = f"{record.levelno}:{self._DURATIONS.sub('#ms', record.getMessage())}"
        with self._lock:
            now = self.clock()
            run = self._runs.get(key)
            if run is not None and now - run[0] < self.window_s:
                run[1] += 1
                return False
            held = int(run[1]) if run is not None else 0
            self._runs[key] = [now, 0]
            self._runs.move_to_end(key)
            while len(self._runs) > self.max_keys:
                self._runs.popitem(last=False)
        if held:
            record.msg = f"{record.getMessage()} (and {held} more like it in {self.window_s:g} s)"
            record.args = None
        return True


LOG = logging.getLogger("pipeconsole.librdkafka")
LOG.addFilter(RepeatFilter())

_SECRET_MARKERS = ("password", "secret", "key.pem", "sasl.oauthbearer.config", "ssl.key")


def client_settings(
    profile: Profile | str, extra: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """librdkafka settings for ``profile`` (or a bare bootstrap address), plus ``extra``."""
    if isinstance(profile, str):
        profile = Profile(bootstrap=profile)
    settings: dict[str, Any] = {
        "bootstrap.servers": profile.bootstrap,
        "logger": LOG,
        "client.id": "pipeconsole",
        # Short enough to notice a dead broker, long enough for a loaded CI machine.
        "socket.connection.setup.timeout.ms": 10000,
    }
    settings.update(profile.kafka)
    if extra:
        settings.update(extra)
    return settings


GROUP_ONLY = (
    "max.poll.interval.ms",
    "session.timeout.ms",
    "heartbeat.interval.ms",
    "group.instance.id",
    "group.protocol",
    "partition.assignment.strategy",
)
"""Settings of a consumer-group member. A profile's ``kafka`` table reaches every client; a
consumer that only ``assign()``s never joins a group, and librdkafka would still refuse one of
them that conflicts with a default (``max.poll.interval.ms`` below the 45 s session timeout)."""


def outside_a_group(settings: dict[str, Any]) -> dict[str, Any]:
    """``settings`` without :data:`GROUP_ONLY`, for consumers that only ``assign()``."""
    for key in GROUP_ONLY:
        settings.pop(key, None)
    return settings


def redact(settings: Mapping[str, Any]) -> dict[str, Any]:
    """``settings`` with secrets replaced, for logs and ``doctor`` output."""
    out: dict[str, Any] = {}
    for k, v in settings.items():
        if k == "logger":
            continue
        out[k] = "***" if any(m in k for m in _SECRET_MARKERS) else v
    return out
