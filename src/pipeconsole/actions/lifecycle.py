"""Follow requests through their lifecycle on device-response-v1 until a final outcome.

A :class:`Follower` is opened *before* anything is produced: it assigns every partition of
the response topic at a timestamp a little before "now" (``offsets_for_times`` resolves
synchronously, unlike ``OFFSET_END``, which librdkafka resolves lazily and could land after a
fast actor's answer). Old records in that margin are harmless: they carry other request ids
(ids are fresh UUIDs), and events older than ``not_before_ms`` can be ignored per call.

It never joins a consumer group and never commits. Undecodable records are counted and
skipped, never raised.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import Final, Protocol

from pipeconsole.config import Profile
from pipeconsole.kafka.records import Record
from pipeconsole.wire.codec import DecodeFailure, decode
from pipeconsole.wire.gen.device_response_pb2 import DeviceResponse

__all__ = [
    "FINAL",
    "Followed",
    "Follower",
    "Reader",
    "answers_cancel",
    "is_final",
    "outcome_name",
]

_O = DeviceResponse.Outcome
FINAL: Final = frozenset(
    {_O.OK, _O.FAILED, _O.DEADLINE_EXCEEDED, _O.MISFIRED, _O.CANCELLED, _O.REJECTED}
)
"""Outcomes that end a request (CANCEL_TOO_LATE answers a cancel; the request goes on)."""

_MAX_TRACKED = 50_000


def outcome_name(value: int) -> str:
    try:
        return DeviceResponse.Outcome.Name(value)  # type: ignore[arg-type]
    except ValueError:
        return f"OUTCOME_{value}"


def is_final(resp: DeviceResponse) -> bool:
    """The request's own final outcome."""
    return resp.outcome in FINAL


def answers_cancel(resp: DeviceResponse) -> bool:
    """What answers a cancel: CANCELLED, CANCEL_TOO_LATE, or the request ending otherwise."""
    return resp.outcome == _O.CANCEL_TOO_LATE or resp.outcome in FINAL


class Reader(Protocol):
    """What the follower needs of a reader (``AssignReader`` fits)."""

    def poll_batch(self, max_records: int = 5000, timeout: float = 0.1) -> list[Record]: ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Followed:
    """What was seen of one request."""

    request_id: str
    events: tuple[DeviceResponse, ...]
    """Every lifecycle event seen for it, in arrival order."""
    final: DeviceResponse | None
    """The event that ended the wait; None when the wait timed out."""

    @property
    def timed_out(self) -> bool:
        return self.final is None

    @property
    def outcome(self) -> str:
        return "TIMEOUT" if self.final is None else outcome_name(self.final.outcome)


@dataclass
class _Seen:
    events: list[DeviceResponse] = field(default_factory=list)


class Follower:
    """Reads device-response-v1 from just before its creation; :meth:`wait` for request ids."""

    def __init__(
        self,
        profile: Profile,
        *,
        reader: Reader | None = None,
        margin_s: float = 2.0,
        clock: Callable[[], float] = time.time,
        metadata_timeout_s: float = 10.0,
    ) -> None:
        """Raises ``ReaderError`` when the topic cannot be read (the layer makes it a value)."""
        self._clock = clock
        self.started_ms = int(clock() * 1000)
        """When following began (Unix ms)."""
        if reader is None:
            from pipeconsole.kafka.reader import AssignReader

            reader = AssignReader(
                profile,
                [profile.topics.response],
                start=self.started_ms - int(margin_s * 1000),
                metadata_timeout_s=metadata_timeout_s,
            )
        self._reader = reader
        self._seen: dict[str, _Seen] = {}
        self.undecodable = 0
        """Records on the response topic that could not be decoded (skipped)."""

    def _ingest(self, records: Iterable[Record]) -> list[DeviceResponse]:
        out: list[DeviceResponse] = []
        for r in records:
            resp = decode(DeviceResponse, r.value)
            if isinstance(resp, DecodeFailure):
                self.undecodable += 1
                continue
            seen = self._seen.get(resp.request_id)
            if seen is None:
                if len(self._seen) >= _MAX_TRACKED:
                    self._seen.pop(next(iter(self._seen)))
                seen = self._seen[resp.request_id] = _Seen()
            seen.events.append(resp)
            out.append(resp)
        return out

    def wait(
        self,
        request_ids: Collection[str],
        *,
        timeout: float,
        until: Callable[[DeviceResponse], bool] = is_final,
        not_before_ms: int = 0,
        on_event: Callable[[DeviceResponse], None] | None = None,
    ) -> dict[str, Followed]:
        """Block until every id has an event that satisfies ``until``, or ``timeout`` s pass.

        Events with ``time_unix_ms < not_before_ms`` do not end the wait (an old answer to an
        earlier cancel of the same request, say). ``on_event`` sees each new event of the ids.
        """
        ids = set(request_ids)
        done: dict[str, DeviceResponse] = {}

        def consider(resp: DeviceResponse) -> None:
            if resp.request_id not in ids or resp.request_id in done:
                return
            if until(resp) and resp.time_unix_ms >= not_before_ms:
                done[resp.request_id] = resp

        for rid in ids:  # events read by an earlier wait
            for resp in list(self._seen.get(rid, _Seen()).events):
                consider(resp)
        deadline = time.monotonic() + timeout
        while len(done) < len(ids):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            for resp in self._ingest(self._reader.poll_batch(timeout=min(0.2, left))):
                if resp.request_id in ids and on_event is not None:
                    on_event(resp)
                consider(resp)
        return {
            rid: Followed(rid, tuple(self._seen.get(rid, _Seen()).events), done.get(rid))
            for rid in ids
        }

    def close(self) -> None:
        self._reader.close()

    def __enter__(self) -> Follower:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
