"""A small live stack for the console's action and chaos tests: the session's Tansu broker,
a simulated fleet of 6 devices and an in-process device-actor service (health every 0.5 s).

Started once per module by the ``ui_stack`` fixture (tests/ui/conftest.py) and only when a
test asks for it; each test gets its own local outbox and audit log (``layer_factory``).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textual.pilot import Pilot

from pipeconsole.actions.audit import LocalAuditLog
from pipeconsole.actions.layer import ActionLayer
from pipeconsole.actions.outbox import Outbox
from pipeconsole.actors.background import BackgroundDispatch
from pipeconsole.actors.settings import DispatchSettings
from pipeconsole.config import Profile


def Dispatch(profile: Profile) -> BackgroundDispatch:
    """In-process dispatch checking health every 0.5 s, on its own consumer group."""
    return BackgroundDispatch(profile, FAST_DISPATCH(group=f"dispatch-{uuid.uuid4().hex[:8]}"))


def FAST_DISPATCH(**kw: Any) -> DispatchSettings:
    """Dispatch settings for tests: quick checks, quick status, a 6 s session (~3 s join)."""
    base = {
        "check_interval_s": 0.5,
        "check_timeout_s": 0.5,
        "status_interval_s": 0.5,
        "session_timeout_ms": 6000,
        "commit_interval_s": 0.1,
    }
    return DispatchSettings(**{**base, **kw})


@dataclass
class UiStack:
    profile: Profile
    fleet: Any
    dispatch: Dispatch

    def device(self, prefix: str) -> str:
        return next(d.device_id for d in self.fleet.devices if d.device_id.startswith(prefix))


def layer_factory(state: Path) -> Callable[[Profile], ActionLayer]:
    """Action layers with this test's own outbox and audit log (never the user's)."""

    def make(profile: Profile) -> ActionLayer:
        return ActionLayer(
            profile,
            send_timeout_s=30.0,
            outbox=Outbox(state / "outbox.jsonl"),
            audit_log=LocalAuditLog(state / "audit.jsonl"),
        )

    return make


def records_on(profile: Profile, topic: str) -> int:
    """How many records ``topic`` holds (high minus low watermarks)."""
    from pipeconsole.kafka.reader import AssignReader

    with AssignReader(profile, [topic]) as rd:
        return sum(hi - lo for lo, hi in rd.watermarks().values())


async def until(pilot: Pilot[None], cond: Callable[[], object], timeout: float, what: str) -> None:
    """Let the app run until ``cond()`` holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        await asyncio.sleep(0.1)
    await pilot.pause()


def log_text(app: Any) -> str:
    """The console's own log (every action result is logged there)."""
    return "\n".join(f"{x.level} {x.name} {x.text}" for x in app.log_lines)
