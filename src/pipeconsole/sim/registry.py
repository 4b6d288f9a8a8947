"""Registration: the only thing the simulator says to Kafka.

``ServiceAdded`` for every device when the fleet is up, ``ServiceRemoved`` on a clean stop,
as ``RegistryEvent`` values keyed by device id on the registry topic (compacted: the last
event per device is its registration state). Sends are confirmed; a broker that does not
confirm within the timeout is a :class:`RegistrationError` naming the broker and why.
"""

from __future__ import annotations

from collections.abc import Sequence

from pipeconsole.config import Profile
from pipeconsole.kafka.producer import ConfirmingProducer, DeliveryError, wait_all
from pipeconsole.sim.topology import DeviceSpec
from pipeconsole.wire.gen.registry_pb2 import RegistryEvent, ServiceAdded, ServiceRemoved

__all__ = ["Registrar", "RegistrationError"]


class RegistrationError(Exception):
    """Registry events were not confirmed; the message says which broker and why."""


class Registrar:
    """Publishes a fleet's registry events through one confirming producer."""

    def __init__(self, profile: Profile, *, timeout_s: float = 15.0) -> None:
        self.profile = profile
        self.topic = profile.topics.registry
        self.timeout_s = timeout_s
        self._producer = ConfirmingProducer(profile, delivery_timeout_s=timeout_s)

    def added(self, devices: Sequence[tuple[DeviceSpec, str]], unix_ms: int) -> None:
        """Register ``(spec, base_url)`` pairs; blocks until the broker confirms them all."""
        events = []
        for spec, base_url in devices:
            added = ServiceAdded(
                device_id=spec.device_id,
                stage=spec.stage,
                kind=spec.kind,
                base_url=base_url,
                labels=dict(spec.labels),
                time_unix_ms=unix_ms,
                name=spec.name,
            )
            events.append((spec.device_id, RegistryEvent(added=added)))
        self._publish(events)

    def removed(self, device_ids: Sequence[str], unix_ms: int, reason: str) -> None:
        events = [
            (
                d,
                RegistryEvent(
                    removed=ServiceRemoved(device_id=d, time_unix_ms=unix_ms, reason=reason)
                ),
            )
            for d in device_ids
        ]
        self._publish(events)

    def _publish(self, events: Sequence[tuple[str, RegistryEvent]]) -> None:
        futures = [
            self._producer.send(self.topic, ev.SerializeToString(), key=device_id)
            for device_id, ev in events
        ]
        try:
            wait_all(futures, timeout=self.timeout_s + 5.0)
        except DeliveryError as exc:
            raise RegistrationError(
                f"registry events on {self.topic} at {self.profile.bootstrap} not confirmed: "
                f"{exc.reason}"
            ) from None
        except TimeoutError:
            raise RegistrationError(
                f"registry events on {self.topic} at {self.profile.bootstrap} not confirmed "
                f"within {self.timeout_s:.0f} s"
            ) from None

    def close(self) -> None:
        self._producer.close(timeout=5.0)
