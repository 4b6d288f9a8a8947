"""One actor per device: its jobs, its in-flight bound, its health-check state.

A :class:`DeviceActor` is plain state on the event loop. The service owns the scheduler and
the Kafka side; the actor owns what is per device:

- the requests it holds (:class:`Job`, by request id: scheduled or running) — at most one per
  request id, a second record with the same id joins the first;
- the per-device in-flight bound (a semaphore) and how many fired jobs wait for it;
- the last published state and health, so that a health check knows whether to publish
  ``ServiceStateChanged`` or ``ServiceStateUnchanged``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from pipeconsole.wire.gen import device_state_pb2 as ds
from pipeconsole.wire.gen.device_request_pb2 import DeviceRequest

__all__ = ["DeviceActor", "HealthTick", "Job", "Source"]

Source = tuple[str, int, int]
"""(topic, partition, offset) of a record."""


@dataclass(slots=True, eq=False)
class Job:
    """One request from acceptance to its final outcome."""

    request: DeviceRequest
    request_id: str
    device_id: str
    sources: list[Source]
    """Records carrying this request id (usually one; duplicates join)."""
    scheduled_for: float
    """Wall-clock seconds it should fire at (receipt time when schedule_time was empty)."""
    deadline: float | None
    """Wall-clock seconds; None = the QoS class default counted from the fire time."""
    received: float
    """Wall-clock seconds the record was read."""
    fired: bool = False
    fired_at: float = 0.0
    """Wall-clock seconds it fired."""
    dispatched: bool = False
    done: bool = False

    @property
    def partition(self) -> tuple[str, int]:
        topic, part, _ = self.sources[0]
        return topic, part


@dataclass(slots=True, eq=False)
class HealthTick:
    """The scheduler entry that runs a device's next health check."""

    device_id: str


@dataclass(slots=True, eq=False)
class DeviceActor:
    """Per-device state. Lives on the event loop."""

    device_id: str
    base_url: str
    stage: str
    per_device_limit: int
    jobs: dict[str, Job] = field(default_factory=dict)
    """Scheduled or running requests by id."""
    in_flight: int = 0
    waiting: int = 0
    """Fired jobs waiting for an in-flight slot."""
    health_seq: int = 0
    checking: bool = False
    last_state: int = ds.STATE_UNKNOWN
    last_health: int = ds.HEALTH_UNKNOWN
    published: bool = False
    """Whether a state event was published for this device by this instance."""
    slots: asyncio.Semaphore = field(init=False)

    def __post_init__(self) -> None:
        self.slots = asyncio.Semaphore(self.per_device_limit)

    def observe(self, state: ds.DeviceState) -> ds.StateEvent:
        """The event to publish for a fresh check, and remember it as the last state."""
        changed = (
            not self.published or state.state != self.last_state or state.health != self.last_health
        )
        if changed:
            event = ds.StateEvent(
                changed=ds.ServiceStateChanged(
                    state=state,
                    last_state=self.last_state,  # type: ignore[arg-type]
                    last_health=self.last_health,  # type: ignore[arg-type]
                )
            )
        else:
            event = ds.StateEvent(unchanged=ds.ServiceStateUnchanged(state=state))
        self.last_state = state.state
        self.last_health = state.health
        self.published = True
        return event
