"""The actors' aiohttp client against small real servers on loopback: body caps, headers sent
as given, failures classified, deadlines honoured (hostile health bodies: tests/reliability)."""

from __future__ import annotations

import asyncio
import hashlib
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web
from multidict import CIMultiDict

from pipeconsole.actors.executor import MAX_RESPONSE_BYTES, Executor
from pipeconsole.actors.http import new_session, tcp_connector
from pipeconsole.actors.retry import Deadline, RetryBudget, RetryPolicy
from pipeconsole.wire.gen.device_response_pb2 import DeviceResponse as R

BIG = bytes(range(256)) * (3 * MAX_RESPONSE_BYTES // 256)


@asynccontextmanager
async def serve(app: web.Application) -> AsyncIterator[str]:
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.2)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


def _app() -> tuple[web.Application, list[CIMultiDict[str]]]:
    seen: list[CIMultiDict[str]] = []

    async def big(request: web.Request) -> web.StreamResponse:
        seen.append(request.headers.copy())
        return web.Response(body=BIG)

    async def hang(request: web.Request) -> web.StreamResponse:
        seen.append(request.headers.copy())
        await asyncio.sleep(30)
        return web.Response(text="late")

    app = web.Application()
    app.router.add_post("/big", big)
    app.router.add_post("/hang", hang)
    return app, seen


def _executor() -> Executor:
    clock = asyncio.get_running_loop().time
    # Every request earns a whole retry here, so that a retriable failure is retried once.
    return Executor(RetryBudget(1.0, 0.0, 20.0, clock=clock), RetryPolicy(), clock=clock)


async def test_a_long_body_is_digested_up_to_the_cap_and_headers_are_sent_as_given() -> None:
    app, seen = _app()
    async with serve(app) as url, new_session(tcp_connector(4, 2)) as session:
        loop = asyncio.get_running_loop()
        result = await _executor().execute(
            session,
            url=url + "/big",
            method="POST",
            headers={"X-Custom": "1"},
            content=b"",
            content_type="",
            request_id="r-1",
            deadline=Deadline(loop.time() + 10),
            max_attempts=1,
        )
    assert result.outcome == R.OK and result.attempts == 1
    assert result.entity_digest == hashlib.sha256(BIG[:MAX_RESPONSE_BYTES]).hexdigest()
    sent = seen[0]
    assert sent["X-Request-Id"] == "r-1" and sent["X-Attempt"] == "1"
    assert sent["X-Custom"] == "1"
    assert "Content-Type" not in sent  # aiohttp would have invented application/octet-stream


async def test_a_hanging_device_ends_deadline_exceeded_at_the_deadline() -> None:
    app, seen = _app()
    async with serve(app) as url, new_session(tcp_connector(4, 2)) as session:
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(5):  # the attempt's own timeout must end it, well before
            result = await _executor().execute(
                session,
                url=url + "/hang",
                method="POST",
                headers={},
                content=b"{}",
                content_type="application/json",
                request_id="r-2",
                deadline=Deadline(loop.time() + 0.3),
                max_attempts=3,
            )
    assert result.outcome == R.DEADLINE_EXCEEDED
    assert result.attempts == 1 and len(seen) == 1
    assert "no answer within" in result.reason


async def test_a_refused_connection_is_retriable_and_reported() -> None:
    # A port bound and never listened on, held for the whole test: connections to it are
    # refused, and no other process can take it meanwhile.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        async with new_session(tcp_connector(4, 2)) as session:
            loop = asyncio.get_running_loop()
            result = await _executor().execute(
                session,
                url=f"http://127.0.0.1:{port}/x",
                method="POST",
                headers={},
                content=b"",
                content_type="",
                request_id="r-3",
                deadline=Deadline(loop.time() + 10),
                max_attempts=2,
            )
    assert result.outcome == R.FAILED
    assert result.attempts == 2  # retriable: retried once, then no attempts left
    assert "ClientConnectorError" in result.reason
