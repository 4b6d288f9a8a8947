"""Malformed requests get a 4xx with a reason, and the device lives on."""

from __future__ import annotations

import base64
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from pipeconsole.sim import Fleet

BLNS = Path("/work/shared/data/blns.base64.json")


def naughty() -> list[str]:
    raw = [base64.b64decode(x) for x in json.loads(BLNS.read_text())]
    return [b.decode("utf-8", errors="replace") for b in raw]


def reason(r: httpx.Response) -> str:
    """The reason a refusal gives: our JSON ``error``, or the HTTP parser's own text (aiohttp
    refuses a header with control characters before any application code runs)."""
    if r.headers.get("Content-Type", "").startswith("application/json"):
        return str(r.json()["error"])
    return r.text if r.status_code == 400 else ""


def assert_alive(fleet: Fleet, http: httpx.Client, device_id: str) -> None:
    device = fleet.device(device_id)
    assert http.get(f"{device.base_url}/health").status_code == 200
    assert device.counters().internal_errors == 0


@pytest.mark.parametrize(
    "body",
    [
        b"{",
        b'{"kbps": 5000',
        b"\xff\xfe\x00{",
        b"NaN",
        b'{"kbps": Infinity}',
        b"[" * 100_000 + b"]" * 100_000,
        b'{"kbps": ' + b"9" * 5000 + b"}",
        b'"just a string"',
        b"[1, 2, 3]",
        b'{"kbps": "5000"}',
        b'{"kbps": 5000, "extra": 1}',
        b'{"kbps": true}',
        b'{"kbps": 1e400}',
    ],
)
def test_bad_json_gets_a_4xx_with_a_reason(fleet: Fleet, http: httpx.Client, body: bytes) -> None:
    base = fleet.device("transcode-05").base_url
    r = http.put(
        f"{base}/config/bitrate", content=body, headers={"Content-Type": "application/json"}
    )
    assert 400 <= r.status_code < 500
    assert r.json()["error"] and r.json()["detail"]
    assert_alive(fleet, http, "transcode-05")


def test_huge_bodies_are_refused_before_parsing(fleet: Fleet, http: httpx.Client) -> None:
    base = fleet.device("package-04").base_url
    huge = b'{"profile": "' + b"a" * 2_000_000 + b'"}'
    r = http.post(f"{base}/streams/big/start", content=huge)
    assert r.status_code == 413 and r.json()["error"] == "too_large"

    def chunks() -> Iterator[bytes]:  # no Content-Length: the cap holds while streaming
        for _ in range(40):
            yield b" " * 65_536

    r = http.post(f"{base}/chaos", content=chunks())
    assert r.status_code == 413
    assert_alive(fleet, http, "package-04")


def test_bad_headers_are_refused_with_the_header_named(fleet: Fleet, http: httpx.Client) -> None:
    base = fleet.device("origin-01").base_url
    for name, value in [
        ("X-Request-Id", "x" * 129),
        ("X-Request-Id", "has space"),
        ("X-Attempt", "0"),
        ("X-Attempt", "two"),
        ("X-Deadline-Remaining-Ms", "soon"),
        ("X-Deadline-Remaining-Ms", "1e3"),
    ]:
        r = http.post(f"{base}/streams/s/start", headers={name: value})
        assert r.status_code == 400, (name, value)
        assert r.json()["field"] == name
    r = http.post(f"{base}/streams/s/start", content=b"{}", headers={"Content-Type": "text/x"})
    assert r.status_code == 415
    assert_alive(fleet, http, "origin-01")


def test_naughty_strings_in_every_field_never_break_the_device(
    fleet: Fleet, http: httpx.Client
) -> None:
    device = fleet.device("transcode-06")
    base = device.base_url
    sent = 0
    for s in naughty():
        answers = [
            http.post(f"{base}/streams/{quote(s, safe='')}/start"),
            http.post(f"{base}/streams/n{sent}/start", json={"profile": s}),
            http.put(f"{base}/config/bitrate", json={"kbps": s}),
            http.put(f"{base}/config/bitrate", json={s: 5000} if s != "kbps" else {}),
            http.post(f"{base}/chaos", json={"fault": s, "duration_s": 1}),
            http.post(f"{base}/chaos", json={"fault": "latency", "duration_s": 1, "mean_ms": s}),
        ]
        for status in (a.status_code for a in answers[2:]):
            assert 400 <= status < 500, (s, status)
        for header in ("X-Request-Id", "X-Attempt", "X-Deadline-Remaining-Ms", "Content-Type"):
            try:
                raw = [(header.encode(), s.encode("utf-8"))]
                answers.append(http.post(f"{base}/streams/h{sent}/start", headers=raw))
            except httpx.LocalProtocolError:
                pass  # the client itself refuses to send it (CR/LF): nothing reaches the device
        for a in answers:
            if a.status_code == 504:  # a number <= 0 in X-Deadline-Remaining-Ms: refused
                assert a.json()["error"] == "deadline_exceeded", (s, a.text)
                continue
            assert a.status_code < 500, (s, a.status_code, a.text)
            if a.status_code >= 400:
                assert a.status_code < 500
                assert reason(a), (s, a.text)
        sent += 1
    assert sent > 600
    assert_alive(fleet, http, "transcode-06")
    assert device.counters().faults_active == ()


def test_garbage_that_is_not_http_does_not_kill_the_listener(
    fleet: Fleet, http: httpx.Client
) -> None:
    device = fleet.device("ingest-04")
    for junk in (
        b"\x16\x03\x01\x02\x00garbage\r\n\r\n",
        b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n",
    ):
        with socket.create_connection(("127.0.0.1", device.port), timeout=5) as sock:
            sock.sendall(junk)
            reply = sock.recv(4096)
            assert reply == b"" or reply.split(b" ")[1].startswith(b"4"), reply
    assert_alive(fleet, http, "ingest-04")
