"""Both protobuf backends give the same results.

The backend is fixed when protobuf is first imported, so the pure-Python run happens in a
subprocess: the whole tests/wire suite again (minus this module), plus a direct comparison of
the decode verdicts for a corpus of hostile payloads on both backends.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CORPUS_SCRIPT = r"""
import json
from google.protobuf.internal import api_implementation
from pipeconsole.wire.codec import DecodeFailure, decode
from pipeconsole.wire.gen.device_request_pb2 import DeviceRequest

def varint(n):
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | 0x80 if n else b)
        if not n:
            return bytes(out)

def nested(depth):
    data = b""
    for _ in range(depth):
        data = b"\x0a" + varint(len(data)) + data
    return data

corpus = [
    bytes([8, 1, 18, 3, 65, 66, 67]) + bytes([99]) * 20000,
    bytes([18]) + varint(10 * 1024 * 1024) + b"abc",
    b"", bytes([0x80] * 11), bytes([0x02, 1]), bytes([0x0E]), bytes([0x0C]),
    bytes([0x2B]) * 101 + bytes([0x2C]) * 101, bytes([0x7B]) * 5000,
    bytes([0x0A, 1, 0xFF]), bytes([0x0A, 3, 0xED, 0xA0, 0x80]), bytes([0x0A, 2, 0xC0, 0x80]),
    bytes([0x50, 5]), bytes([0xF8, 0xFF, 0xFF, 0xFF, 0x0F, 1]),
    bytes([0xBA, 0x01, 3, 0x0A, 1, 0x78]), bytes([0xBA, 0x01]) + varint(300) + nested(150)[:300],
    bytes([0x0A, 3]) + b"GET" + bytes([0x12, 7]) + b"/health",
] + [bytes([i, j]) for i in range(0, 256, 7) for j in (0, 1, 0x7F, 0x80, 0xFF)]
out = []
for data in corpus:
    r = decode(DeviceRequest, data)
    out.append(r.code if isinstance(r, DecodeFailure) else "ok:" + r.SerializeToString().hex())
print(json.dumps({"backend": api_implementation.Type(), "verdicts": out}))
"""


def _env(python_backend: bool) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION", None)
    if python_backend:
        env["PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION"] = "python"
    return env


def _verdicts(python_backend: bool) -> dict[str, object]:
    proc = subprocess.run(
        [sys.executable, "-c", CORPUS_SCRIPT],
        env=_env(python_backend),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    result: dict[str, object] = json.loads(proc.stdout)
    return result


def test_backend_verdicts_agree_on_hostile_payloads() -> None:
    upb = _verdicts(python_backend=False)
    pure = _verdicts(python_backend=True)
    assert upb["backend"] == "upb"
    assert pure["backend"] == "python"
    assert upb["verdicts"] == pure["verdicts"]
    assert "too_deep" in upb["verdicts"] and "bad_utf8" in upb["verdicts"]  # type: ignore[operator]


BACKEND_FREE = {
    "test_wire_timefmt.py": "pipeconsole.wire.timefmt",
    "test_text_sanitize.py": "pipeconsole.text",
    "test_text_safe.py": "pipeconsole.ui.safe",
}
"""tests/wire modules whose code under test never loads protobuf: the rerun skips them (they
ran once already; ~8 s of the rerun's ~25 s). :func:`test_backend_free_modules_load_no_protobuf`
keeps the list honest."""


def test_backend_free_modules_load_no_protobuf() -> None:
    imports = "; ".join(f"import {m}" for m in BACKEND_FREE.values())
    proc = subprocess.run(
        [sys.executable, "-c", f"import sys; {imports}; print('google.protobuf' in sys.modules)"],
        env=_env(python_backend=True),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"
    for module, under_test in BACKEND_FREE.items():  # and the test modules import no more
        source = (ROOT / "tests" / "wire" / module).read_text()
        imported = set(re.findall(r"^(?:from|import) (pipeconsole[\w.]*)", source, re.M))
        assert imported == {under_test}, (module, imported)
        assert not re.search(r"^(?:from|import) google", source, re.M), module


def test_backend_python_reruns_the_wire_suite() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/wire",
            "-k",
            "not backend",
            *(f"--ignore=tests/wire/{module}" for module in BACKEND_FREE),
        ],
        env=_env(python_backend=True),
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    tail = proc.stdout[-3000:]
    assert proc.returncode == 0, tail + proc.stderr[-2000:]
    assert " passed" in tail and "failed" not in tail
    # the suite itself checks api_implementation.Type() == "python" in this environment
    assert not re.search(r"\d+ errors?\b", tail)
