"""`pipeconsole request validate` as an operator runs it: a real subprocess, real files."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeconsole.wire.cli import validate
from pipeconsole.wire.timefmt import format_rfc3339

REQUESTS = Path(__file__).resolve().parent.parent / "data" / "requests"


def run(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "pipeconsole", "request", "validate", *args],
        input=stdin.decode("latin-1") if stdin is not None else None,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "Traceback" not in proc.stderr + proc.stdout
    return proc


def test_valid_json_request_exits_0_silently() -> None:
    proc = run(str(REQUESTS / "valid.json"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""


def test_valid_request_from_stdin() -> None:
    proc = run("-", stdin=(REQUESTS / "valid.json").read_bytes())
    assert proc.returncode == 0, proc.stderr


def test_seed_request_prints_one_error_per_field_and_exits_2() -> None:
    proc = run(str(REQUESTS / "invalid-seed.json"))
    assert proc.returncode == 2
    lines = proc.stdout.splitlines()
    fields = [line.split(":", 1)[0] for line in lines]
    assert fields == ["method", "uri", "entity_content_type", "schedule_time", "deadline"]
    assert "'%' at position 2" in lines[1]
    assert "zone-id" in lines[3] and "zone-id" in lines[4]


def test_json_output_is_machine_readable() -> None:
    proc = run("--json", str(REQUESTS / "invalid-headers.json"))
    assert proc.returncode == 2
    rows = json.loads(proc.stdout)
    assert all(set(row) == {"field", "code", "message"} for row in rows)
    by_field = {row["field"]: row["code"] for row in rows}
    assert by_field == {
        "uri": "not_allowed",
        "headers[Bad Name]": "grammar",
        "headers[X-Ok]": "grammar",
        "headers[X-Request-Id]": "not_allowed",
        "request_id": "grammar",
        "device_id": "grammar",
        "misfire_strategy": "bad_enum",
    }


def test_json_output_of_a_valid_request_is_an_empty_list() -> None:
    proc = run("--json", str(REQUESTS / "valid.json"))
    assert proc.returncode == 0
    assert json.loads(proc.stdout) == []


def test_binary_request() -> None:
    assert run("--binary", str(REQUESTS / "valid.bin")).returncode == 0


def test_deadline_is_checked_against_now_and_now_can_be_pinned(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    body = json.loads((REQUESTS / "valid.json").read_text())
    body["deadline"] = format_rfc3339(now + timedelta(minutes=10))
    body["requestId"] = str(uuid.uuid4())
    path = tmp_path / "deadline.json"
    path.write_text(json.dumps(body))
    assert run(str(path)).returncode == 0
    later = format_rfc3339(now + timedelta(hours=1))
    proc = run("--now", later, str(path))
    assert proc.returncode == 2
    assert proc.stdout.startswith("deadline: ")
    assert run("--now", later, "--at-actor", str(path)).returncode == 0


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["garbage.json"], "not JSON"),
        (["not-a-request.json"], "not a DeviceRequest"),
        (["duplicate-key.json"], "duplicate JSON key"),
        (["--binary", "garbage.bin"], "too_deep"),
        (["--binary", "valid.json"], "not a DeviceRequest"),
        (["missing.json"], "no such file"),
    ],
)
def test_unreadable_input_exits_1_with_one_line(args: list[str], words: str) -> None:
    proc = run(*args[:-1], str(REQUESTS / args[-1]))
    assert proc.returncode == 1
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pipeconsole: error: ")
    assert words in lines[0]


def run_in_process(*args: str) -> tuple[int, str, str]:
    """The command in this process (fast, for the many hostile-input cases)."""
    runner = CliRunner()
    result = runner.invoke(validate, list(args), catch_exceptions=True)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    return result.exit_code, result.stdout, result.stderr


def test_hostile_json_is_unreadable_not_a_crash(tmp_path: Path) -> None:
    cases: dict[str, str | bytes] = {
        "deep.json": "[" * 100_000 + "]" * 100_000,
        "deep-obj.json": '{"qos": ' * 50 + "{}" + "}" * 50,
        "nan.json": '{"method": NaN}',
        "bigint.json": '{"misfireStrategy": ' + "9" * 5000 + "}",
        "list.json": "[1, 2]",
        "bad-utf8.json": b'{"method": "\xff"}',
        "surrogate.json": '{"method": "\\ud800"}',
        "entity-number.json": '{"entity": 5}',
        "empty.json": "",
    }
    for name, body in cases.items():
        path = tmp_path / name
        if isinstance(body, bytes):
            path.write_bytes(body)
        else:
            path.write_text(body)
        code, out, err = run_in_process(str(path))
        assert code == 1, (name, out, err)
        assert out == ""
        assert len(err.strip().splitlines()) == 1, (name, err)


def test_terminal_escapes_in_input_are_not_echoed_raw(tmp_path: Path) -> None:
    path = tmp_path / "escape.json"
    path.write_text(json.dumps({"method": "GET\x1b]0;PWNED\x07", "uri": "/\x1b[2J"}))
    code, out, _ = run_in_process(str(path))
    assert code == 2
    assert "\x1b" not in out and "\x07" not in out
    assert "␛" in out
