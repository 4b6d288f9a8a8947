"""librdkafka settings from a profile.

librdkafka logs to stderr by default, which corrupts a TUI; every client made here routes its
logs through the ``logger`` setting into the ``pipeconsole.librdkafka`` Python logger instead.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from pipeconsole.config import Profile

__all__ = ["LOG", "client_settings", "redact"]

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


def redact(settings: Mapping[str, Any]) -> dict[str, Any]:
    """``settings`` with secrets replaced, for logs and ``doctor`` output."""
    out: dict[str, Any] = {}
    for k, v in settings.items():
        if k == "logger":
            continue
        out[k] = "***" if any(m in k for m in _SECRET_MARKERS) else v
    return out
