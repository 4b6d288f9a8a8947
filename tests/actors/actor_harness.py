"""Test helpers for the device actors: run dispatch in-process or as a subprocess, produce
requests, collect DeviceResponse / StateEvent records and wait (bounded) for conditions."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar

from google.protobuf.message import Message

from pipeconsole.actors.background import BackgroundDispatch
from pipeconsole.actors.settings import DispatchSettings
from pipeconsole.config import Profile
from pipeconsole.kafka.producer import ConfirmingProducer, wait_all
from pipeconsole.kafka.reader import AssignReader
from pipeconsole.kafka.records import Record
from pipeconsole.wire.gen import device_state_pb2 as ds
from pipeconsole.wire.gen.device_request_pb2 import CancelRequest, DeviceRequest, QoS
from pipeconsole.wire.gen.device_response_pb2 import DeviceResponse
from pipeconsole.wire.timefmt import format_rfc3339

M = TypeVar("M", bound=Message)

FINAL = frozenset(
    {
        DeviceResponse.OK,
        DeviceResponse.FAILED,
        DeviceResponse.DEADLINE_EXCEEDED,
        DeviceResponse.MISFIRED,
        DeviceResponse.CANCELLED,
        DeviceResponse.REJECTED,
    }
)

FAST = dict(
    check_interval_s=0.3,
    check_timeout_s=0.5,
    status_interval_s=0.3,
    session_timeout_ms=6000,
    commit_interval_s=0.1,
    revoke_grace_s=2.0,
)


def settings(**kw: Any) -> DispatchSettings:
    base: dict[str, Any] = {"group": f"dispatch-{uuid.uuid4().hex[:8]}", **FAST}
    base.update(kw)
    return DispatchSettings(**base)


def at(seconds_from_now: float) -> str:
    return format_rfc3339(datetime.now(UTC) + timedelta(seconds=seconds_from_now))


def request(
    device_id: str,
    *,
    uri: str | None = None,
    method: str = "POST",
    schedule: str = "",
    deadline: str | None = None,
    forget: bool = False,
    max_attempts: int = 0,
    request_id: str | None = None,
) -> DeviceRequest:
    return DeviceRequest(
        method=method,
        uri=uri or f"/streams/s-{uuid.uuid4().hex[:12]}/start",
        schedule_time=schedule,
        misfire_strategy=DeviceRequest.FORGET if forget else DeviceRequest.BEST_EFFORT,
        request_id=request_id or str(uuid.uuid4()),
        device_id=device_id,
        deadline=at(60) if deadline is None else deadline,
        qos=QoS(priority=QoS.NORMAL, max_attempts=max_attempts),
        nonce=uuid.uuid4().hex,
        issued_by="test",
        issued_at=at(0),
    )


class Sender:
    """Produces requests and cancels, keyed by device id, and waits for the acks."""

    def __init__(self, profile: Profile) -> None:
        self.profile = profile
        self.producer = ConfirmingProducer(profile)

    def requests(self, reqs: Iterable[DeviceRequest]) -> None:
        futs = [
            self.producer.send(self.profile.topics.request, r.SerializeToString(), r.device_id)
            for r in reqs
        ]
        wait_all(futs, 30)

    def raw(self, items: Iterable[tuple[bytes | None, bytes]]) -> None:
        futs = [self.producer.send(self.profile.topics.request, v, k) for k, v in items]
        wait_all(futs, 30)

    def cancel(self, req: DeviceRequest) -> None:
        c = CancelRequest(request_id=req.request_id, device_id=req.device_id, issued_by="test")
        self.producer.send_sync(
            self.profile.topics.control, c.SerializeToString(), req.device_id, timeout=30
        )

    def close(self) -> None:
        self.producer.close()


class Collector(Generic[M]):
    """Reads a topic from the beginning in a thread and keeps the decoded values."""

    def __init__(self, profile: Profile, topic: str, msg_type: type[M]) -> None:
        self._reader = AssignReader(profile, [topic], "beginning")
        self._type = msg_type
        self.items: list[tuple[Record, M]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for r in self._reader.poll_batch(timeout=0.1):
                m = self._type()
                try:
                    m.ParseFromString(r.value or b"")
                except Exception:
                    continue
                with self._lock:
                    self.items.append((r, m))

    def snapshot(self) -> list[tuple[Record, M]]:
        with self._lock:
            return list(self.items)

    def values(self) -> list[M]:
        return [m for _, m in self.snapshot()]

    def wait(self, cond: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not cond():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout} s waiting for {what}")
            time.sleep(0.05)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._reader.close()


class Responses(Collector[DeviceResponse]):
    def __init__(self, profile: Profile) -> None:
        super().__init__(profile, profile.topics.response, DeviceResponse)

    def by_request(self) -> dict[str, list[DeviceResponse]]:
        out: dict[str, list[DeviceResponse]] = defaultdict(list)
        for m in self.values():
            out[m.request_id].append(m)
        return out

    def finals(self) -> dict[str, list[DeviceResponse]]:
        out: dict[str, list[DeviceResponse]] = defaultdict(list)
        for m in self.values():
            if m.outcome in FINAL:
                out[m.request_id].append(m)
        return out

    def final(self, rid: str) -> DeviceResponse | None:
        f = self.finals().get(rid)
        return f[0] if f else None

    def wait_final(self, rids: Iterable[str], timeout: float = 30.0) -> dict[str, DeviceResponse]:
        want = set(rids)

        def ready() -> bool:
            return want <= set(self.finals())

        self.wait(
            ready,
            timeout,
            f"final outcomes of {len(want)} requests (have {len(want & set(self.finals()))})",
        )
        finals = self.finals()
        return {rid: finals[rid][0] for rid in want}


class States(Collector[ds.StateEvent]):
    def __init__(self, profile: Profile) -> None:
        super().__init__(profile, profile.topics.state, ds.StateEvent)

    def actor_statuses(self) -> list[ds.ActorStatus]:
        return [m.actor for m in self.values() if m.WhichOneof("event") == "actor"]

    def device_states(self, device_id: str) -> list[ds.DeviceState]:
        out = []
        for m in self.values():
            kind = m.WhichOneof("event")
            if kind == "changed" and m.changed.state.device_id == device_id:
                out.append(m.changed.state)
            elif kind == "unchanged" and m.unchanged.state.device_id == device_id:
                out.append(m.unchanged.state)
        return out


ServiceThread = BackgroundDispatch
"""In-process dispatch (the shared one in pipeconsole.actors.background)."""


def dispatch_process(
    profile: Profile, group: str, actor_id: str, *extra: str
) -> subprocess.Popen[bytes]:
    """``pipeconsole dispatch`` as a real subprocess (for kill -9)."""
    prof = os.environ.get("PIPECONSOLE_DISPATCH_PROFILE")  # bench: a cProfile output path
    cmd = [
        sys.executable,
        *(["-m", "cProfile", "-o", prof] if prof else []),
        "-m",
        "pipeconsole",
        "dispatch",
        "--bootstrap",
        profile.bootstrap,
        "--group",
        group,
        "--actor-id",
        actor_id,
        "--check-interval",
        "0.5",
        "--status-interval",
        "0.3",
        "--session-timeout-ms",
        "6000",
        *extra,
    ]
    env = dict(os.environ, PIPECONSOLE_CONFIG=_write_config(profile))
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _write_config(profile: Profile) -> str:
    import tempfile

    t = profile.topics
    lines = [
        'default_profile = "t"',
        "[profiles.t]",
        f'bootstrap = "{profile.bootstrap}"',
        "[profiles.t.topics]",
    ]
    for attr in ("registry", "state", "request", "control", "response", "dlq", "chaos", "audit"):
        lines.append(f'{attr} = "{getattr(t, attr)}"')
    lines.append(f"request_partitions = {t.request_partitions}")
    lines.append(f"partitions = {t.partitions}")
    fd, path = tempfile.mkstemp(suffix=".toml")
    with os.fdopen(fd, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def with_topics(profile: Profile, **kw: Any) -> Profile:
    return replace(profile, topics=replace(profile.topics, **kw))
