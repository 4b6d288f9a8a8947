"""Scripted runs of the real console without a terminal: SVG snapshots, a JSON report, a verdict.

The runner drives the app built by :func:`pipeconsole.ui.factory.build_app` through Textual's
pilot (the same app an operator gets), steps through a parsed script
(:mod:`pipeconsole.headless.script`) and evaluates conditions over the app's newest Snapshot.
Operator actions (``schedule``, ``cancel``, ``replay``, ``chaos run``) run the real CLI in a
child process against the same cluster, so a script exercises exactly what a person would.

Exit status: 0 every step held; 1 a step failed (the report says which and why, and a
``failure.svg`` shows the screen at that moment); 2 the script did not parse (line and reason).
A ``wait-for`` that times out fails with what it saw; nothing here waits without a bound.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeconsole.config import Profile
from pipeconsole.headless.script import ScriptError, Step, parse_script
from pipeconsole.model.snapshot import Snapshot
from pipeconsole.text import sanitize
from pipeconsole.ui.app import PipeConsoleApp
from pipeconsole.ui.source import SnapshotSource

__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_SCRIPT", "HeadlessRun", "run_headless"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_SCRIPT = 2
ACTION_TIMEOUT_S = 120.0
POLL_S = 0.1
_SENT = re.compile(r"^sent \w+ (\S+) to ", re.MULTILINE)


@dataclass(slots=True)
class StepResult:
    line: int
    text: str
    ok: bool
    seconds: float
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "line": self.line,
            "step": sanitize(self.text, max_len=300),
            "ok": self.ok,
            "seconds": round(self.seconds, 3),
            "detail": sanitize(self.detail, max_len=2000, multiline=True),
        }


@dataclass(slots=True)
class HeadlessRun:
    """One scripted run: what it did and what came of it."""

    script: Path
    out: Path
    steps: list[StepResult] = field(default_factory=list)
    snapshots: list[str] = field(default_factory=list)
    result: str = "passed"
    reason: str = ""
    exit_code: int = EXIT_OK
    started: float = field(default_factory=time.time)
    summary: dict[str, Any] = field(default_factory=dict)
    variables: dict[str, str] = field(default_factory=dict)

    def fail(self, code: int, reason: str) -> None:
        self.result = "failed" if code == EXIT_FAILED else "script-error"
        self.reason = reason
        self.exit_code = code

    def write_report(self, extra: dict[str, Any] | None = None) -> Path:
        self.out.mkdir(parents=True, exist_ok=True)
        report = {
            "script": str(self.script),
            "result": self.result,
            "exit_code": self.exit_code,
            "reason": sanitize(self.reason, max_len=4000, multiline=True),
            "started_unix": self.started,
            "seconds": round(time.time() - self.started, 3),
            "steps": [s.to_json() for s in self.steps],
            "snapshots": self.snapshots,
            "variables": {k: sanitize(v) for k, v in self.variables.items()},
            "model": self.summary,
            **(extra or {}),
        }
        path = self.out / "report.json"
        path.write_text(json.dumps(report, indent=2), encoding="utf-8")
        return path


def summarize(snap: Snapshot | None) -> dict[str, Any]:
    """The final model summary for the report: fleet, top incidents, outcomes, lag."""
    if snap is None:
        return {"snapshot": None}
    full = snap.to_json()
    return {
        "time_ms": snap.time_ms,
        "connection": full["connection"],
        "fleet": full["fleet"],
        "incidents": full["incidents"][:5],
        "bottlenecks": full["bottlenecks"][:5],
        "outcomes": full["outcomes"],
        "requests_total": snap.requests_total,
        "dlq_total": snap.dlq_total,
        "lag": full["lag"][:20],
        "dropped": full["dropped"],
    }


def run_headless(
    profile: Profile,
    script_path: Path,
    out: Path,
    *,
    source: SnapshotSource | None = None,
    size: tuple[int, int] = (120, 36),
    extra_report: dict[str, Any] | None = None,
) -> HeadlessRun:
    """Parse and run ``script_path``; write ``out``/report.json and the snapshots."""
    run = HeadlessRun(script=script_path, out=out)
    try:
        text = script_path.read_text(encoding="utf-8")
        steps = parse_script(text)
    except (OSError, UnicodeDecodeError) as exc:
        run.fail(EXIT_SCRIPT, f"cannot read the script: {exc}")
        run.write_report(extra_report)
        return run
    except ScriptError as exc:
        run.fail(EXIT_SCRIPT, str(exc))
        run.write_report(extra_report)
        return run
    out.mkdir(parents=True, exist_ok=True)
    asyncio.run(_drive(run, steps, profile, source, size))
    run.write_report(extra_report)
    return run


async def _drive(
    run: HeadlessRun,
    steps: list[Step],
    profile: Profile,
    source: SnapshotSource | None,
    size: tuple[int, int],
) -> None:
    from pipeconsole.ui.factory import build_app

    app = build_app(profile, source, connect=source is None)
    async with app.run_test(headless=True, size=size) as pilot:
        for step in steps:
            started = time.monotonic()
            try:
                ok, detail = await _step(run, app, pilot, step, profile)
            except Exception as exc:  # a bug or an environment failure: report, never hang
                ok, detail = False, f"{type(exc).__name__}: {exc}"
            run.steps.append(
                StepResult(step.line, step.text, ok, time.monotonic() - started, detail)
            )
            if not ok:
                run.fail(EXIT_FAILED, f"line {step.line}: {step.text}: {detail}")
                _save(run, app, "failure")
                break
        run.summary = summarize(app.snapshot)


def _save(run: HeadlessRun, app: PipeConsoleApp, name: str) -> str:
    path = app.save_screenshot(filename=f"{name}.svg", path=str(run.out))
    run.snapshots.append(Path(path).name)
    return path


def _extra(app: PipeConsoleApp) -> dict[str, Any]:
    """Values conditions may read besides the snapshot: ``screen`` is the view on show
    (``overview``, ``devices`` after a drill-down, ``help``...)."""
    name = type(app.screen).__name__.removesuffix("Screen").lower()
    return {"screen": name or app.current_mode}


def _substitute(run: HeadlessRun, value: str) -> str:
    for k, v in run.variables.items():
        value = value.replace(f"${k}", v)
    return value


async def _step(
    run: HeadlessRun, app: PipeConsoleApp, pilot: Any, step: Step, profile: Profile
) -> tuple[bool, str]:
    if step.verb in ("wait-for", "assert"):
        cond = step.condition
        assert cond is not None
        if "$" in cond.path or "$" in cond.value:
            from pipeconsole.headless.conditions import parse_condition

            cond = parse_condition(_substitute(run, cond.text))
        deadline = time.monotonic() + step.timeout_s
        while True:
            snap = app.snapshot
            why = _not_judgeable(snap, cond.path)
            # ``assert`` judges the first snapshot it may; ``wait-for`` waits for one that holds.
            if snap is not None and not why:
                extra = _extra(app)
                held = cond.holds(snap, extra)
                if held or step.verb == "assert":
                    return held, cond.explain(snap, extra)
            if time.monotonic() > deadline:
                seen = cond.explain(snap, _extra(app)) if snap else ""
                said = "; ".join(x for x in (why, seen) if x)
                return False, f"timed out after {step.timeout_s:g} s: {said}"
            await pilot.pause(POLL_S)
    if step.verb == "press":
        await pilot.press(*step.args)
        await pilot.pause()
        return True, ""
    if step.verb == "type":
        await pilot.press(*[_key_of(c) for c in step.args[0]])
        await pilot.pause()
        return True, ""
    if step.verb == "snapshot":
        await pilot.pause()
        return True, _save(run, app, step.args[0])
    if step.verb == "sleep":
        await pilot.pause(step.seconds)
        return True, ""
    if step.verb in ("schedule", "cancel", "replay"):
        argv = ["request", step.verb, *(_substitute(run, a) for a in step.args)]
        return await _cli(run, argv, profile)
    if step.verb == "chaos":
        argv = ["chaos", "run", *(_substitute(run, a) for a in step.args)]
        return await _cli(run, argv, profile)
    return False, f"unknown step {step.verb!r}"


def _not_judgeable(snap: Snapshot | None, path: str) -> str:
    """Why a condition on ``path`` may not be judged on ``snap`` yet ("" when it may).
    Conditions on the fleet are about all of it, not the part of its start-up window read so
    far (a half-read window has no failing device yet: ``fleet.failing == 0`` would hold);
    those on the console itself (``connection.*``, ``screen``) are judged at once."""
    if snap is None:
        return "no snapshot received"
    c = snap.connection
    if c.caught_up or path.split(".", 1)[0] in ("connection", "screen"):
        return ""
    if not c.connected:
        return f"not connected yet ({sanitize(c.last_error, max_len=200) or 'no answer'})"
    return "the start-up window is still being read"


def _key_of(char: str) -> str:
    names = {" ": "space", "/": "slash", ":": "colon", "?": "question_mark", ".": "full_stop"}
    return names.get(char, char)


async def _cli(run: HeadlessRun, argv: list[str], profile: Profile) -> tuple[bool, str]:
    """Run one ``pipeconsole`` command against the run's cluster; capture what it says."""
    cmd = [sys.executable, "-m", "pipeconsole", *argv]
    if "--bootstrap" not in argv:
        cmd += ["--bootstrap", profile.bootstrap]
    proc = await asyncio.to_thread(
        subprocess.run,
        cmd,
        capture_output=True,
        text=True,
        timeout=ACTION_TIMEOUT_S,
        stdin=subprocess.DEVNULL,
    )
    said = (proc.stdout + proc.stderr).strip()
    m = _SENT.search(proc.stdout)
    if m:
        run.variables["last_request"] = m.group(1)
    return proc.returncode == 0, f"exit {proc.returncode}: {said[-1500:]}"
