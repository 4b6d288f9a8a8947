"""librdkafka settings from a profile.

librdkafka logs to stderr by default, which corrupts a TUI; every client made here routes its
logs through the ``logger`` setting into the ``pipeconsole.librdkafka`` Python logger instead.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from pipeconsole.config import Profile

__all__ = ["GROUP_ONLY", "LOG", "client_settings", "outside_a_group", "redact"]

LOG = logging.getLogger("pipeconsole.librdkafka")

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
