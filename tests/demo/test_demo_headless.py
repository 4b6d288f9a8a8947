"""``pipeconsole demo --headless``: the whole system from one command, judged by a script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeconsole.config import Profile

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def _run(args: list[str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipeconsole", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


@pytest.mark.slow
def test_encoder_crash_triage_runs_headless_and_leaves_no_process_behind(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = _run(
        [
            "demo",
            "--headless",
            "--scenario",
            "encoder-crash",
            "--scenario-delay",
            "2",
            "--script",
            str(SCRIPTS / "triage.pcs"),
            "--out",
            str(out),
        ]
    )
    report = json.loads((out / "report.json").read_text())
    assert proc.returncode == 0, (proc.stderr, report["reason"], report["steps"])
    assert report["result"] == "passed"
    assert [s["ok"] for s in report["steps"]] == [True] * 10
    assert report["model"]["incidents"][0]["device_id"] == "transcode-03"
    detail = (out / "detail.svg").read_text()
    assert "transcode-03" in detail
    # The failing check's text is on the detail pane the operator reached with one key.
    assert "unreachable" in detail
    pids = report["demo"]["pids"]
    assert len(pids) == 3  # fleet, actors, broker
    assert not [pid for pid in pids if _alive(pid)]
    # The parts' logs outlive the demo, and the last line says where they are.
    logs = Path(proc.stderr.strip().splitlines()[-1].rsplit(" ", 1)[1])
    assert "logs are in" in proc.stderr and (logs / "actors.log").read_text().strip()


def test_a_failing_assertion_exits_1_and_the_report_says_why(
    profile: Profile, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    proc = _run(
        [
            "console",
            "--headless",
            "--bootstrap",
            profile.bootstrap,
            "--script",
            str(SCRIPTS / "failing-assert.pcs"),
            "--out",
            str(out),
        ],
    )
    assert proc.returncode == 1, proc.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["result"] == "failed"
    assert report["reason"].startswith("line 3: assert fleet.total >= 100000")
    assert "fleet.total is 0" in report["reason"]
    # Why it could not be judged: the reader never connected, and the report says why.
    assert "not connected yet (topic 'device-registry-v1' does not exist" in report["reason"]
    assert report["snapshots"] == ["failure.svg"]
    assert (out / "failure.svg").exists()
    assert not (out / "never-reached.svg").exists()


def test_a_script_with_a_syntax_error_exits_2_naming_the_line(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = _run(
        [
            "console",
            "--headless",
            "--bootstrap",
            "127.0.0.1:1",
            "--script",
            str(SCRIPTS / "syntax-error.pcs"),
            "--out",
            str(out),
        ],
        timeout=60,
    )
    assert proc.returncode == 2
    assert "line 3:" in proc.stderr
    assert "Traceback" not in proc.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["result"] == "script-error" and report["steps"] == []


def test_headless_without_a_script_is_a_usage_error(tmp_path: Path) -> None:
    proc = _run(["demo", "--headless"], timeout=60)
    assert proc.returncode == 2
    assert "--headless needs --script FILE and --out DIR" in proc.stderr
    assert not os.listdir(tmp_path)
