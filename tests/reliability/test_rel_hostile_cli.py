"""Hostile input at the operator's own ingresses: config files, CLI arguments, headless scripts.

A bad config file gives one ``pipeconsole: error:`` line naming the file and field (exit 2), a
naughty CLI argument gives a field error (exit 2) or is sent as the literal value (exit 0),
a bad script is refused whole with its line number (exit 2). Never a traceback, never a raw
control byte on the terminal.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from relkit import ESCAPES, cli_env, naughty, run_cli, write_config

from pipeconsole.cli import cli
from pipeconsole.config import ConfigError, Profile, load_config
from pipeconsole.wire.gen.device_request_pb2 import DeviceRequest

NAUGHTY = naughty()

BAD_CONFIGS: dict[str, bytes] = {
    "binary": bytes(range(256)) * 4,
    "invalid-utf8": b'[profiles.t]\nbootstrap = "\xff\xfe"\n',
    "not-toml": b"[profiles.t\nbootstrap = ",
    "profiles-not-table": b"profiles = 3\n",
    "profile-not-table": b"[profiles]\nt = 3\n",
    "bootstrap-int": b"[profiles.t]\nbootstrap = 5\n",
    "unknown-key": b'[profiles.t]\nbootstrap = "x:1"\nrm_rf = true\n',
    "bad-role": b'[profiles.t]\nrole = "root\\u001b]0;PWNED\\u0007"\n',
    "negative-hz": b"[profiles.t]\nrefresh_hz = -1\n",
    "read-only-string": b'[profiles.t]\nread_only = "no"\n',
    "partitions-string": b'[profiles.t.topics]\nrequest_partitions = "six"\n',
    "partitions-zero": b"[profiles.t.topics]\nrequest_partitions = 0\n",
    "kafka-nested": b'[profiles.t.kafka]\n"security.protocol" = { a = 1 }\n',
    "nul-in-string": b'[profiles.t]\nbootstrap = "a\\u0000b"\n',
    "no-default": b'default_profile = "nope"\n[profiles.t]\nbootstrap = "x:1"\n',
    "tls-verify-off": (
        b'[profiles.t]\nbootstrap = "x:1"\n[profiles.t.kafka]\n'
        b'"enable.ssl.certificate.verification" = false\n'
    ),
    "huge-nesting": b"a = " + b"[" * 5000 + b"]" * 5000 + b"\n",
}


def _one_clear_line(stderr: str) -> list[str]:
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert "Traceback" not in stderr, stderr[-2000:]
    errors = [ln for ln in lines if ln.startswith("pipeconsole: error:")]
    assert len(errors) == 1, lines
    assert "\x1b" not in stderr and "\x07" not in stderr
    return errors


def test_every_bad_config_file_is_one_clear_error_line_from_doctor(tmp_path: Path) -> None:
    procs = {}
    for name, body in BAD_CONFIGS.items():
        path = tmp_path / f"{name}.toml"
        path.write_bytes(body)
        env = cli_env(path, tmp_path / "state")
        procs[name] = subprocess.Popen(
            [sys.executable, "-m", "pipeconsole", "doctor"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
        )
    for name, p in procs.items():
        out, err = p.communicate(timeout=120)
        assert p.returncode == 2, (name, p.returncode, err)
        (line,) = _one_clear_line(err)
        assert f"{name}.toml" in line, (name, line)
        assert not out.strip(), (name, out)


def test_tls_verification_off_needs_insecure_true(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    base = '[profiles.t]\nbootstrap = "x:1"\n'
    kafka = '[profiles.t.kafka]\n"enable.ssl.certificate.verification" = "false"\n'
    path.write_text(base + kafka)
    with pytest.raises(ConfigError, match="insecure = true"):
        load_config(path)
    path.write_text(base + "insecure = true\n" + kafka)
    assert load_config(path).profile("t").insecure


def test_naughty_values_in_every_schedule_field_are_refused_or_sent_literally(
    profile: Profile, tmp_path: Path
) -> None:
    from pipeconsole.actions.audit import LocalAuditLog
    from pipeconsole.actions.layer import ActionLayer, Failed, Refused, ScheduleSpec, Sent
    from pipeconsole.actions.outbox import Outbox

    fields = ["device_id", "uri", "method", "content_type", "at", "deadline", "qos", "misfire"]
    base = ScheduleSpec(device_id="enc-01", method="POST", uri="/streams/s1/start")
    refused = sent = 0
    with ActionLayer(
        profile,
        send_timeout_s=30,  # sends must succeed, on a loaded machine too
        outbox=Outbox(tmp_path / "outbox.jsonl"),
        audit_log=LocalAuditLog(tmp_path / "audit.jsonl"),
    ) as layer:
        for i, s in enumerate(NAUGHTY):
            name = fields[i % len(fields)]
            kw: dict[str, Any] = {name: s}
            spec = replace(base, **kw)
            got = layer.schedule(spec)
            assert not isinstance(got, Failed), (name, s, got)
            if isinstance(got, Refused):
                refused += 1
                assert got.errors and all(e.field for e in got.errors), (name, s, got)
            else:
                assert isinstance(got, Sent)
                sent += 1
                msg = got.message
                assert isinstance(msg, DeviceRequest)
                stored = {"device_id": msg.device_id, "uri": msg.uri, "method": msg.method}
                if name in stored:
                    assert stored[name] == s  # byte-identical, never decoded twice
    assert refused > sent
    log = (tmp_path / "audit.jsonl").read_bytes()
    assert b"\x1b" not in log and log.decode("ascii")  # JSON with ensure_ascii: no raw bytes


def test_naughty_cli_arguments_exit_0_or_2_never_a_traceback(
    profile: Profile, tmp_path: Path
) -> None:
    config = write_config(profile, tmp_path / "c.toml")
    runner = CliRunner(env=cli_env(config, tmp_path / "state"))
    flags = ["--device", "--uri", "--method", "--content-type", "--at", "--deadline", "--qos"]
    cases = [*ESCAPES, "[/]", "1E+02", "\u202etxt.exe", "a/%%30%30"]
    for i, s in enumerate(cases):
        args = {"--device": "enc-01", "--uri": "/streams/s1/start", "--method": "POST"}
        args[flags[i % len(flags)]] = s
        argv = ["request", "schedule", "--send-timeout", "30"]  # exit 1 would be a timeout
        for k, v in args.items():
            argv += [k, v]
        res = runner.invoke(cli, argv, catch_exceptions=True)
        assert res.exception is None or isinstance(res.exception, SystemExit), (s, res.exception)
        assert res.exit_code in (0, 2), (s, res.exit_code, res.output)
        assert "Traceback" not in res.output
        assert "\x1b" not in res.output and "\x9b" not in res.output, (s, res.output)
        if res.exit_code == 2:
            assert "error:" in res.output.lower(), res.output


@pytest.mark.parametrize(
    "argv",
    [
        ["--device", "\x1b]0;PWNED\x07", "--method", "POST", "--uri", "/x"],
        ["--device", "enc-01", "--method", "GET\r\nX: y", "--uri", "/x"],
        ["--device", "enc-01", "--method", "POST", "--uri", "http://evil/../../etc/passwd"],
        ["--device", "enc-01", "--method", "POST", "--uri", "/x", "--header", "A=b\r\nC: d"],
        ["--device", "enc-01", "--method", "POST", "--uri", "/x", "--at", "2014-02-30T00:00:00Z"],
        ["--device", "enc-01", "--method", "POST", "--uri", "/x", "--header", "noequals"],
    ],
)
def test_bad_schedule_arguments_exit_2_with_a_field_error(
    profile: Profile, tmp_path: Path, argv: list[str]
) -> None:
    config = write_config(profile, tmp_path / "c.toml")
    res = run_cli(["request", "schedule", "--send-timeout", "3", *argv], cli_env(config, tmp_path))
    assert res.returncode == 2, (res.returncode, res.stderr)
    assert "Traceback" not in res.stderr
    assert "error:" in res.stderr
    assert "\x1b]0;" not in res.stderr and "\r\n" not in res.stderr.replace("\n", "")


SCRIPTS: dict[str, tuple[bytes, int]] = {
    "unknown-verb": (b"sleep 1s\nrm -rf /\n", 2),
    "escape": (b"press enter\n\x1b]0;PWNED\x07\n", 2),
    "bad-duration": (b"sleep forever\n", 1),
    "bad-condition": (b"wait-for ((( [@click=app.quit]x[/]\n", 1),
    "long-line": (b"type " + b"a" * 5000 + b"\n", 1),
    "nul": (b"sleep 1s\x00\n", 0),
    "invalid-utf8": (b"sleep 1s\n\xff\xfe\n", 0),
    "empty": (b"# nothing\n\n", 0),
}


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_a_bad_headless_script_exits_2_naming_the_line(tmp_path: Path, name: str) -> None:
    from pipeconsole.ui.headless import run_headless

    body, line = SCRIPTS[name]
    script = tmp_path / "s.txt"
    script.write_bytes(body)
    run = run_headless(Profile(bootstrap="127.0.0.1:1"), script, tmp_path / "out")
    assert run.exit_code == 2, (name, run.reason)
    if line:
        assert f"line {line}" in run.reason, run.reason
    assert "\x1b" not in run.reason
    assert (tmp_path / "out" / "report.json").exists()


def test_naughty_script_lines_parse_or_name_their_line() -> None:
    from pipeconsole.headless.script import ScriptError, parse_script

    refused = 0
    for s in NAUGHTY:
        text = "sleep 1s\n" + s.replace("\n", " ").replace("\r", " ") + "\n"
        try:
            parse_script(text)
        except ScriptError as exc:
            refused += 1
            # str.splitlines also splits on U+2028/2029, FS/GS/RS, VT, FF and NEL
            assert exc.line == 0 or exc.line >= 2, (s, exc)
    assert refused > len(NAUGHTY) // 2


def test_a_config_file_named_but_missing_is_an_error_not_the_default_cluster(
    tmp_path: Path,
) -> None:
    # An operator's typo in PIPECONSOLE_CONFIG used to give the default profile: every command
    # then talked to 127.0.0.1:9092 without a word about the file.
    missing = tmp_path / "prod.tmol"
    p = run_cli(["doctor"], cli_env(missing, tmp_path / "state"))
    assert p.returncode == 2, (p.returncode, p.stderr)
    (line,) = _one_clear_line(p.stderr)
    assert str(missing) in line and "no such config file" in line
    assert "PIPECONSOLE_CONFIG" in line
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(missing)
    # /dev/null is the empty config: one default profile.
    assert load_config(Path(os.devnull)).profile().bootstrap == Profile().bootstrap
