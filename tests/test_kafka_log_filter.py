"""librdkafka's log lines: a run of like ones is one line, then one saying how many it held.

Against a dead broker a dispatcher printed 292 identical "Connect to ... failed" lines in the
15 s before its own error said the cluster was not ready.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys

from pipeconsole.kafka.client import RepeatFilter


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _record(msg: str, level: int = logging.ERROR) -> logging.LogRecord:
    return logging.LogRecord("pipeconsole.librdkafka", level, __file__, 1, msg, None, None)


def test_a_run_of_like_lines_is_one_line_then_one_saying_how_many_were_held() -> None:
    clock = _Clock()
    f = RepeatFilter(window_s=30, clock=clock)
    fail = "FAIL [p#producer-1] [thrd:b:9092/1]: Connect to ipv4#10.0.0.1:9092 failed ({}ms)"
    passed = [f.filter(_record(fail.format(ms))) for ms in range(0, 200)]
    assert passed == [True] + [False] * 199
    # Another broker, another level: not alike, so not held.
    assert f.filter(_record(fail.replace("10.0.0.1", "10.0.0.2").format(3)))
    assert f.filter(_record(fail.format(3), logging.WARNING))
    clock.now += 30
    again = _record(fail.format(7))
    assert f.filter(again)
    assert again.getMessage().endswith("(7ms) (and 199 more like it in 30 s)")
    clock.now += 31
    quiet = _record(fail.format(9))
    assert f.filter(quiet) and "more like it" not in quiet.getMessage()


def test_it_tracks_a_bounded_number_of_runs() -> None:
    f = RepeatFilter(max_keys=10, clock=_Clock())
    for i in range(1000):
        assert f.filter(_record(f"distinct message {chr(65 + i % 26)}{i}"))
    assert len(f._runs) == 10


def test_a_dispatcher_without_a_broker_prints_a_few_lines_not_hundreds() -> None:
    with socket.socket() as held:  # a port nobody listens on, held so nobody can take it
        held.bind(("127.0.0.1", 0))
        port = held.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, "-m", "pipeconsole", "dispatch", "--bootstrap", f"127.0.0.1:{port}"],
            env={**os.environ, "PIPECONSOLE_CONFIG": os.devnull},
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert proc.returncode == 1
    lines = proc.stderr.splitlines()
    assert lines[-1].startswith("pipeconsole: error: cluster not ready after 15 s")
    assert 1 <= sum("Connect to" in ln for ln in lines[:-1]) <= 3, lines[:5]
