"""Small tools of the reliability tests: the dispatch service on a thread or as a process,
request builders, a producer of requests and cancels, profile files and naughty strings."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pipeconsole.actors.background import BackgroundDispatch
from pipeconsole.actors.settings import DispatchSettings
from pipeconsole.config import Profile, Topics
from pipeconsole.kafka.producer import ConfirmingProducer, wait_all
from pipeconsole.wire.gen.device_request_pb2 import CancelRequest, DeviceRequest, QoS
from pipeconsole.wire.timefmt import format_rfc3339

DATA = Path(__file__).resolve().parent.parent / "data"

FAST: dict[str, Any] = dict(
    check_interval_s=0.5,
    check_timeout_s=1.0,
    status_interval_s=0.3,
    session_timeout_ms=6000,
    commit_interval_s=0.1,
    revoke_grace_s=2.0,
    dlq_retry_s=0.3,
)

ESCAPES: tuple[str, ...] = (
    "\x1b]0;PWNED\x07",
    "\x1b]0;PWNED\x1b\\",
    "\x1b[2J\x1b[H",
    "\x1b]8;;http://evil.example/x\x1b\\click\x1b]8;;\x1b\\",
    "\x1b]52;c;Y2F0IC9ldGMvcGFzc3dk\x07",
    "\x9b31m",
    "\x1bP>|x\x1b\\",
    "\x1b[?1049l",
    "\x07\r\u202e",
)
"""Terminal payloads (title, clear, OSC 8, OSC 52, C1 CSI, DCS, alt screen, BEL/CR/RLO)."""

MARKUP: tuple[str, ...] = (
    "[@click=app.quit]x[/]",
    "[link='https://evil.example']x[/]",
    "[/]",
    "foo[/bar]",
    "[type=x, v={'a[0]'}]",
)


def naughty() -> list[str]:
    """The big list of naughty strings, plus what it cannot hold (NUL, CR, LF) and escapes."""
    raw = json.loads((DATA / "blns.base64.json").read_text())
    out = []
    for b in raw:
        try:
            out.append(base64.b64decode(b).decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            continue
    out += ["\x00", "\r", "\n", "\r\n", "a/%%30%30", "#cmds={({'/bin/echo', #eps})", "x" * 5000]
    return out + list(ESCAPES) + list(MARKUP)


def settings(**kw: Any) -> DispatchSettings:
    base: dict[str, Any] = {"group": f"rel-{uuid.uuid4().hex[:8]}", **FAST}
    base.update(kw)
    return DispatchSettings(**base)


def at(seconds_from_now: float) -> str:
    return format_rfc3339(datetime.now(UTC) + timedelta(seconds=seconds_from_now))


def request(
    device_id: str,
    *,
    schedule: str = "",
    deadline: str | None = None,
    forget: bool = False,
    uri: str | None = None,
    request_id: str | None = None,
) -> DeviceRequest:
    return DeviceRequest(
        method="POST",
        uri=uri or f"/streams/s-{uuid.uuid4().hex[:12]}/start",
        schedule_time=schedule,
        misfire_strategy=DeviceRequest.FORGET if forget else DeviceRequest.BEST_EFFORT,
        request_id=request_id or str(uuid.uuid4()),
        device_id=device_id,
        deadline=at(120) if deadline is None else deadline,
        qos=QoS(priority=QoS.NORMAL),
        nonce=uuid.uuid4().hex,
        issued_by="reliability",
        issued_at=at(0),
    )


class Sender:
    """Produces requests (or raw records) and cancels, keyed by device id; waits for acks."""

    def __init__(self, profile: Profile) -> None:
        self.profile = profile
        self.producer = ConfirmingProducer(profile)

    def requests(self, reqs: Iterable[DeviceRequest]) -> None:
        t = self.profile.topics.request
        wait_all([self.producer.send(t, r.SerializeToString(), r.device_id) for r in reqs], 30)

    def raw(
        self,
        items: Iterable[tuple[bytes | None, bytes | None]],
        headers: list[tuple[str, bytes]] | None = None,
    ) -> None:
        t = self.profile.topics.request
        wait_all([self.producer.send(t, v, k, headers) for k, v in items], 30)

    def cancel(self, req: DeviceRequest) -> None:
        c = CancelRequest(request_id=req.request_id, device_id=req.device_id, issued_by="rel")
        self.producer.send_sync(self.profile.topics.control, c.SerializeToString(), req.device_id)

    def close(self) -> None:
        self.producer.close()


ServiceThread = BackgroundDispatch
"""In-process dispatch (the shared one in pipeconsole.actors.background)."""


def write_config(profile: Profile, path: Path, **extra: Any) -> Path:
    """A config file holding ``profile`` (topics included) as profile ``t``."""
    t = profile.topics
    lines = ['default_profile = "t"', "[profiles.t]", f'bootstrap = "{profile.bootstrap}"']
    for k, v in extra.items():
        lines.append(f"{k} = {json.dumps(v)}")
    lines.append("[profiles.t.topics]")
    for attr in ("registry", "state", "request", "control", "response", "dlq", "chaos", "audit"):
        lines.append(f'{attr} = "{getattr(t, attr)}"')
    lines.append(f"request_partitions = {t.request_partitions}")
    lines.append(f"partitions = {t.partitions}")
    if profile.kafka:
        lines.append("[profiles.t.kafka]")
        lines += [f"{json.dumps(k)} = {json.dumps(v)}" for k, v in profile.kafka.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def cli_env(config: Path, state_dir: Path) -> dict[str, str]:
    return dict(
        os.environ,
        PIPECONSOLE_CONFIG=str(config),
        PIPECONSOLE_STATE_DIR=str(state_dir),
        NO_COLOR="1",
    )


def run_cli(
    args: list[str], env: dict[str, str], timeout: float = 60.0
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipeconsole", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        errors="replace",
    )


def dispatch_process(
    profile: Profile, config: Path, group: str, actor_id: str, log: Path
) -> subprocess.Popen[bytes]:
    """``pipeconsole dispatch`` as a real subprocess (for kill -9); stderr goes to ``log``."""
    cmd = [
        sys.executable,
        "-m",
        "pipeconsole",
        "dispatch",
        "--group",
        group,
        "--actor-id",
        actor_id,
        "--check-interval",
        "1",
        "--status-interval",
        "0.3",
        "--session-timeout-ms",
        "6000",
    ]
    env = dict(os.environ, PIPECONSOLE_CONFIG=str(config))
    with log.open("ab") as f:
        return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=f)


def fresh_topics(request_partitions: int = 4) -> Topics:
    """Topic names of their own (the session conftest's naming), for a test's own broker."""
    suffix = uuid.uuid4().hex[:8]
    base = Topics()
    names = {
        a: f"{getattr(base, a)}-{suffix}"
        for a in ("registry", "state", "request", "control", "response", "dlq", "chaos", "audit")
    }
    return replace(base, request_partitions=request_partitions, partitions=2, **names)


def with_topics(profile: Profile, **kw: Any) -> Profile:
    return replace(profile, topics=replace(profile.topics, **kw))
