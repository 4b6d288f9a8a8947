"""Hostile device HTTP: each body from its own tiny aiohttp server, checked by the actors'
HealthChecker next to a well-behaved device. The hostile device ends UNKNOWN with a reason
(capped, bounded by the check's deadline); the good one is unaffected."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from aiohttp import web

from pipeconsole.actors.health import MAX_BODY_BYTES, HealthChecker
from pipeconsole.wire.gen import device_state_pb2 as ds

TIMEOUT_S = 1.5

GOOD_HEALTH = (
    b'{"state": "IDLE", "health": "HEALTHY", "checks": [{"name": "input", "status": "HEALTHY",'
    b' "detail": "ok"}], "metrics": {"in_flight": 1, "rate_in": 10.5}}'
)
GOOD_TOPOLOGY = b'{"upstream": [], "downstream": [{"peer_id": "b", "rate": 1.0}]}'


def _metric(raw: bytes) -> bytes:
    return b'{"state": "IDLE", "health": "HEALTHY", "metrics": {"rate_in": ' + raw + b"}}"


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _body(data: bytes) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(body=data, content_type="application/json")

    return handler


async def _fifty_megabytes(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"Content-Type": "application/json"})
    resp.content_length = 50 * 1024 * 1024
    await resp.prepare(request)
    chunk = b"[" + b"1," * 32767 + b"1"
    try:
        for _ in range(50 * 1024 * 1024 // len(chunk)):
            await resp.write(chunk)
    except (ConnectionError, asyncio.CancelledError):
        pass
    return resp


async def _never_ending(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"Content-Type": "application/json"})
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    try:
        await resp.write(b'{"state": "IDLE", "checks": [')
        while True:
            await resp.write(b" ")
            await asyncio.sleep(0.01)
    except (ConnectionError, asyncio.CancelledError):
        pass
    return resp


HOSTILE: dict[str, tuple[Handler, str]] = {
    "deep-array": (_body(b"[" * 10_000 + b"]" * 10_000), "nested deeper"),
    "deep-object": (_body(b'{"a":' * 20_000 + b"1" + b"}" * 20_000), "nested deeper"),
    "5000-digit-int": (_body(_metric(b"9" * 5000)), "bad body"),
    "nan": (_body(_metric(b"NaN")), "non-finite"),
    "infinity": (_body(_metric(b"-Infinity")), "non-finite"),
    "1e400": (_body(_metric(b"1e400")), "out of range"),
    "duplicate-keys": (
        _body(b'{"state": "IDLE", "state": "ERROR", "health": "HEALTHY"}'),
        "duplicate key",
    ),
    "invalid-utf8": (_body(b'{"state": "\xff\xfe\xed\xa0\x80", "health": "HEALTHY"}'), "UTF-8"),
    "bom": (_body(b"\xef\xbb\xbf" + GOOD_HEALTH), "bad body"),
    "not-an-object": (_body(b'"HEALTHY"'), "not a JSON object"),
    "wrong-types": (_body(b'{"state": ["IDLE"], "health": {"x": 1}}'), "bad body"),
    "50MB": (_fifty_megabytes, f"larger than {MAX_BODY_BYTES}"),
    "never-ending-chunked": (_never_ending, "no answer within"),
}


async def _serve(routes: dict[str, Handler]) -> AsyncGenerator[str, None]:
    app = web.Application()
    for path, handler in routes.items():
        app.router.add_get(path, handler)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def _check_pair(hostile: Handler, *, topology_only: bool = False) -> tuple[Any, Any]:
    good_routes = {"/health": _body(GOOD_HEALTH), "/topology": _body(GOOD_TOPOLOGY)}
    bad_routes = (
        {"/health": _body(GOOD_HEALTH), "/topology": hostile}
        if topology_only
        else {"/health": hostile, "/topology": _body(GOOD_TOPOLOGY)}
    )
    good_cm, bad_cm = _serve(good_routes), _serve(bad_routes)
    good_url, bad_url = await anext(good_cm), await anext(bad_cm)
    try:
        async with httpx.AsyncClient(trust_env=False) as client:
            checker = HealthChecker(client, actor_id="rel", timeout_s=TIMEOUT_S)
            async with asyncio.timeout(TIMEOUT_S * 4):  # bounded: never waits on a body
                bad, good = await asyncio.gather(
                    checker.check("evil", bad_url, "encode", 1),
                    checker.check("good", good_url, "encode", 1),
                )
    finally:
        for cm in (good_cm, bad_cm):
            await cm.aclose()
    return bad, good


def _assert_good(state: ds.DeviceState) -> None:
    assert state.health == ds.HEALTH_HEALTHY, state.reason
    assert state.reason == ""
    assert [c.name for c in state.checks] == ["input"]
    assert len(state.links) == 1


@pytest.mark.parametrize("case", sorted(HOSTILE))
async def test_hostile_health_body_marks_only_that_device_unknown(case: str) -> None:
    handler, why = HOSTILE[case]
    bad, good = await _check_pair(handler)
    assert bad.state == ds.STATE_UNKNOWN and bad.health == ds.HEALTH_UNKNOWN, bad
    assert bad.reason.startswith("health: ") and why in bad.reason, bad.reason
    assert len(bad.reason) < 400
    assert not bad.checks and not bad.links
    _assert_good(good)


@pytest.mark.parametrize("case", ["deep-array", "50MB", "never-ending-chunked", "nan"])
async def test_hostile_topology_body_keeps_the_health_and_says_why(case: str) -> None:
    handler, _ = HOSTILE[case]
    bad, good = await _check_pair(handler, topology_only=True)
    assert bad.health == ds.HEALTH_HEALTHY
    assert bad.reason.startswith("topology: "), bad.reason
    assert not bad.links
    _assert_good(good)


async def test_a_400_digit_integer_is_a_bad_body_not_a_crash() -> None:
    bad, good = await _check_pair(_body(_metric(b"1" + b"0" * 400)))
    assert bad.health == ds.HEALTH_UNKNOWN and "out of range" in bad.reason
    _assert_good(good)
