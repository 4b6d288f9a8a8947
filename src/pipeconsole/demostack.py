"""The demo's moving parts: embedded broker, topics, a simulated fleet and a device-actor service.

:class:`DemoStack` starts them in order and stops them in reverse, quickly, leaving no process
behind: the fleet and the actors run as child processes of this one (``pipeconsole simulate``
and ``pipeconsole dispatch``, the same commands an operator would run), each started with
``PR_SET_PDEATHSIG`` so that even a ``kill -9`` of the demo takes them down. Their output goes
to log files, never to the terminal the console draws on. A child that dies is reported by
:meth:`DemoStack.problems`, which the console shows; nothing is restarted behind the user's back.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from pipeconsole.broker import EmbeddedBroker, _die_with_parent
from pipeconsole.config import Profile

__all__ = ["SCENARIOS", "Child", "DemoStack", "Scenario"]


@dataclass(frozen=True, slots=True)
class Scenario:
    """A scripted incident: a fault on one device, a few seconds after start."""

    name: str
    stage: str
    """The stage of the device the fault goes to ("" for a fault on the request topic)."""
    ordinal: int
    """Which device of the stage: the ``ordinal``-th in id order, counted from 1, or the stage's
    last when it has fewer (a 4-device fleet has one transcoder). Ids are zero-padded to the
    stage's width (``transcode-03`` in the default fleet, ``transcode-003`` from 297 devices
    on), so a fixed id would name no device in some fleets."""
    fault: str
    params: dict[str, float] = field(default_factory=dict)
    description: str = ""
    traffic_per_s: float = 0.0
    """DeviceRequests per second sent to the device once the fault is on (0: none): a
    scenario about requests needs requests to show."""

    def pick(self, stages: Mapping[str, str]) -> str | None:
        """The target among ``stages`` (device id -> stage); None when the stage has none."""
        ids = sorted(d for d, stage in stages.items() if stage == self.stage)
        return ids[min(self.ordinal, len(ids)) - 1] if ids else None


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("encoder-crash", "transcode", 3, "crash", description="a transcoder crashes"),
        Scenario("slow-packager", "package", 2, "stall", description="a packager stops output"),
        Scenario(
            "retry-storm",
            "origin",
            1,
            "error_rate",
            {"rate": 0.6},
            description="an origin fails 60% of commands, sent 5 a second",
            traffic_per_s=5.0,
        ),
        Scenario(
            "telemetry-blackout",
            "transcode",
            5,
            "blackout",
            description="a transcoder's health endpoint goes silent",
        ),
        Scenario(
            "poison-requests",
            "",
            0,
            "protocol",
            description="malformed and malicious DeviceRequests on the request topic",
        ),
    )
}


@dataclass(slots=True)
class Child:
    """A child process of the demo and where its output goes."""

    name: str
    argv: list[str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )

    def exit_code(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def stop(self, timeout: float = 5.0) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)

    def log_tail(self, lines: int = 3) -> str:
        try:
            text = self.log.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return " | ".join(text[-lines:])


class DemoStack:
    """Broker + topics + fleet + actors. A context manager; ``profile`` points at the broker."""

    def __init__(
        self,
        devices: int = 24,
        seed: int = 7,
        *,
        check_interval_s: float = 1.0,
        log_dir: Path | None = None,
        role: str = "chaos",
    ) -> None:
        self.devices = devices
        self.seed = seed
        self.check_interval_s = check_interval_s
        self.log_dir = log_dir or Path(tempfile.mkdtemp(prefix="pipeconsole-demo-"))
        self.broker = EmbeddedBroker()
        self.children: list[Child] = []
        self.profile = Profile(name="demo", role=role)
        """The console's profile. Role ``chaos`` by default: the demo is a sandbox on a
        memory-only broker, and its Chaos view runs the example experiments (typed
        confirmation still asked)."""
        self.started_at = time.monotonic()

    def start(self) -> DemoStack:
        from pipeconsole.kafka.admin import ensure_topics

        self.started_at = time.monotonic()
        self.broker.start()
        try:
            self.profile = replace(
                self.profile,
                bootstrap=self.broker.bootstrap,
                check_interval_s=self.check_interval_s,
            )
            ensure_topics(self.profile, self.profile.topics)
            py = [sys.executable, "-m", "pipeconsole"]
            boot = ["--bootstrap", self.broker.bootstrap]
            self.children = [
                Child(
                    "fleet",
                    [
                        *py,
                        "simulate",
                        *boot,
                        "--devices",
                        str(self.devices),
                        "--seed",
                        str(self.seed),
                    ],
                    self.log_dir / "fleet.log",
                ),
                Child(
                    "actors",
                    [
                        *py,
                        "dispatch",
                        *boot,
                        "--check-interval",
                        str(self.check_interval_s),
                        # A group join on Tansu takes about half the session timeout:
                        # 6 s keeps the first health checks within ~3 s of start.
                        "--session-timeout-ms",
                        "6000",
                    ],
                    self.log_dir / "actors.log",
                ),
            ]
            for child in self.children:
                child.start()
        except BaseException:
            self.stop()
            raise
        return self

    def problems(self) -> list[str]:
        """One line per part that is not running, with the end of its log."""
        out = []
        if not self.broker.running():
            out.append("broker: exited" + self.broker.log_tail(2))
        for child in self.children:
            code = child.exit_code()
            if code is not None:
                out.append(f"{child.name}: exited with status {code}: {child.log_tail()}")
        return out

    def describe(self) -> str:
        parts = [f"broker {self.broker.bootstrap}"]
        for child in self.children:
            pid = child.proc.pid if child.proc else "-"
            parts.append(f"{child.name} pid {pid}")
        return "demo: " + " · ".join(parts) + f" · logs {self.log_dir}"

    def pids(self) -> list[int]:
        pids = [c.proc.pid for c in self.children if c.proc is not None]
        if self.broker.pid is not None:
            pids.append(self.broker.pid)
        return pids

    def stop(self) -> None:
        for child in reversed(self.children):
            with contextlib.suppress(Exception):
                child.stop()
        self.broker.stop()

    def __enter__(self) -> DemoStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
