"""What an operator can tune in ``pipeconsole dispatch`` (every field has a CLI flag)."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field

from pipeconsole.actors.retry import RetryPolicy

__all__ = ["DispatchSettings", "default_actor_id"]


def default_actor_id() -> str:
    return f"dispatch-{socket.gethostname()}-{os.getpid()}"


@dataclass(frozen=True, slots=True)
class DispatchSettings:
    group: str = "pipeconsole-dispatch"
    """Consumer group shared by every dispatch instance of a cluster."""
    actor_id: str = field(default_factory=default_actor_id)
    """This instance's name in events and in its status."""
    check_interval_s: float = 5.0
    """Health check period per device."""
    check_timeout_s: float = 2.0
    """Deadline for one health check (both GETs)."""
    status_interval_s: float = 5.0
    """How often the service publishes its ActorStatus."""
    misfire_threshold_s: float = 5.0
    """A request whose schedule_time is further in the past than this has misfired."""
    per_device_in_flight: int = 8
    """Attempts running at once against one device."""
    in_flight_limit: int = 128
    """Attempts running at once overall (the HTTP pool size)."""
    high_water: int = 16
    """Fired requests of one partition waiting for a slot at which the partition is paused."""
    low_water: int = 4
    """... and at or below which it is resumed."""
    max_pending_per_partition: int = 20000
    """Records read without a final outcome at which a partition is paused (memory bound)."""
    retry_ratio: float = 0.1
    """Retry budget: retries earned per request."""
    retry_min_per_s: float = 0.2
    """Retry budget floor: retries earned per second whatever the traffic."""
    retry_max_tokens: float = 20.0
    """Retry budget bucket size: retries a burst of failures may spend at once, on top of the
    10% they earn (bounds the carry-over from earlier healthy traffic)."""
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    deadline_interactive_s: float = 10.0
    """Deadline of an INTERACTIVE request with an empty deadline, from its fire time."""
    deadline_normal_s: float = 30.0
    deadline_bulk_s: float = 120.0
    session_timeout_ms: int = 10000
    """Consumer-group session timeout (Tansu joins take about half of it)."""
    commit_interval_s: float = 0.2
    revoke_grace_s: float = 5.0
    """On revoke, how long running requests of the revoked partitions may finish first."""
    dlq_retry_s: float = 1.0
    """Pause between attempts to write a DLQ record the broker refused."""
