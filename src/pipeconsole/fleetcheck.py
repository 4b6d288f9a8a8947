"""What ``pipeconsole doctor`` says of the fleet: the devices registered, the device actors that
reported lately and the last device state, read from the topics (no consumer group, no commit).

The question at 3 a.m. after "can I reach the cluster?" is "is anything running?": a cluster
with its topics but no device actor shows every device UNKNOWN in the console, and doctor
said only "topics: all present".
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from pipeconsole.config import Profile
from pipeconsole.kafka.reader import AssignReader
from pipeconsole.text import sanitize
from pipeconsole.wire.codec import DecodeFailure, decode
from pipeconsole.wire.gen.device_state_pb2 import StateEvent
from pipeconsole.wire.gen.registry_pb2 import RegistryEvent

__all__ = ["ActorSeen", "FleetFacts", "fleet_facts", "report"]

RECENT_S = 30.0
"""How far back actor statuses and device states are looked for."""


@dataclass(frozen=True, slots=True)
class ActorSeen:
    actor_id: str
    devices: int
    in_flight: int
    age_s: float
    """Seconds since its latest status."""


@dataclass(frozen=True, slots=True)
class FleetFacts:
    registered: int
    """Devices whose latest registry record adds them."""
    actors: tuple[ActorSeen, ...]
    """Device actors with a status in the last ``RECENT_S``, newest first."""
    last_state_age_s: float | None
    """Seconds since the newest device state in the last ``RECENT_S`` (None: none)."""
    undecodable: int


def fleet_facts(profile: Profile, *, timeout_s: float = 15.0) -> FleetFacts:
    """Read the registry from the beginning and the last ``RECENT_S`` of device states."""
    t = profile.topics
    now = time.time()
    bad = 0
    present: dict[bytes, bool] = {}
    with AssignReader(profile, [t.registry], "beginning") as reader:
        for rec in reader.read_to_end(timeout_s):
            if rec.value is None:  # a tombstone on the compacted topic
                present[rec.key or b""] = False
                continue
            ev = decode(RegistryEvent, rec.value, allow_unknown=True)
            if isinstance(ev, DecodeFailure):
                bad += 1
                continue
            kind = ev.WhichOneof("event")
            if kind == "added":
                present[ev.added.device_id.encode()] = True
            elif kind == "removed":
                present[ev.removed.device_id.encode()] = False
    actors: dict[str, ActorSeen] = {}
    newest_ms = 0
    since = int((now - RECENT_S) * 1000)
    with AssignReader(profile, [t.state], since) as reader:
        for rec in reader.read_to_end(timeout_s):
            st = decode(StateEvent, rec.value, allow_unknown=True)
            if isinstance(st, DecodeFailure):
                bad += 1
                continue
            what = st.WhichOneof("event")
            if what == "actor":
                a = st.actor
                age = max(0.0, now - a.time_unix_ms / 1000)
                seen = actors.get(a.actor_id)
                if seen is None or age < seen.age_s:
                    actors[a.actor_id] = ActorSeen(a.actor_id, len(a.devices), a.in_flight, age)
            elif what in ("changed", "unchanged"):
                newest_ms = max(newest_ms, rec.timestamp_ms)
    return FleetFacts(
        registered=sum(present.values()),
        actors=tuple(sorted(actors.values(), key=lambda a: (a.age_s, a.actor_id))),
        last_state_age_s=max(0.0, now - newest_ms / 1000) if newest_ms else None,
        undecodable=bad,
    )


def report(facts: FleetFacts) -> list[str]:
    """``doctor``'s lines; a line that starts with ``warning:`` is something to look at."""
    lines = [f"registry: {facts.registered} device(s) registered"]
    if facts.registered == 0:
        lines.append("warning: no device is registered (is the fleet up?)")
    if facts.actors:
        shown = ", ".join(
            f"{sanitize(a.actor_id, max_len=64)} ({a.devices} devices, {a.in_flight} in flight, "
            f"{a.age_s:.0f} s ago)"
            for a in facts.actors[:5]
        )
        more = f" and {len(facts.actors) - 5} more" if len(facts.actors) > 5 else ""
        lines.append(f"device actors: {len(facts.actors)} reported in the last {RECENT_S:.0f} s: "
                     f"{shown}{more}")  # fmt: skip
    else:
        lines.append(
            f"warning: no device actor reported in the last {RECENT_S:.0f} s (is `pipeconsole "
            "dispatch` running? without it no device is checked and none can be sent requests)"
        )
    if facts.last_state_age_s is not None:
        lines.append(f"device states: the newest {facts.last_state_age_s:.1f} s ago")
    else:
        lines.append(f"warning: no device state in the last {RECENT_S:.0f} s")
    if facts.undecodable:
        lines.append(f"warning: {facts.undecodable} record(s) could not be decoded")
    return lines
