"""Probe now: the console asks a real device directly and compares with the telemetry."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
from aiohttp import web
from conftest import feed, make_app
from textual.widgets import Static
from uifixtures import incident

from pipeconsole.model.snapshot import Snapshot
from pipeconsole.ui.probe import MAX_BODY
from pipeconsole.ui.screens.devices import DevicesScreen


def with_url(s: Snapshot, device_id: str, url: str) -> Snapshot:
    devices = tuple(replace(d, base_url=url) if d.device_id == device_id else d for d in s.devices)
    return replace(s, devices=devices)


async def probe_text_after_p(snap: Snapshot, device_id: str) -> str:
    app = make_app()
    async with app.run_test(size=(140, 44)) as pilot:
        await feed(pilot, snap)
        app.open_device(device_id)
        await pilot.pause()
        assert isinstance(app.screen, DevicesScreen)
        await pilot.press("p")
        await app.workers.wait_for_complete()
        await pilot.pause()
        body = app.screen.query_one("#dd-probe", Static).render()
        return str(getattr(body, "plain", body))


def test_probe_of_a_simulated_device_says_whether_telemetry_agrees() -> None:
    sim = pytest.importorskip("pipeconsole.sim")
    import asyncio

    fleet = sim.Fleet.start(devices=4, seed=1)
    try:
        device = fleet.devices[0]
        snap = incident()
        top = snap.incidents[0].device_id  # FAILING in the telemetry
        text = asyncio.run(probe_text_after_p(with_url(snap, top, device.base_url), top))
    finally:
        fleet.stop()
    assert device.base_url in text
    assert "HTTP 200" in text
    assert "telemetry says FAILING: suspect the telemetry path" in text or "agrees" in text


@pytest.fixture
async def hostile_server() -> AsyncIterator[str]:
    async def huge(request: web.Request) -> web.StreamResponse:
        return web.Response(body=b"{" + b" " * (MAX_BODY * 2), content_type="application/json")

    app = web.Application()
    app.router.add_get("/health", huge)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def test_probe_caps_the_body_of_a_device_that_sends_too_much(hostile_server: str) -> None:
    snap = incident()
    top = snap.incidents[0].device_id
    text = await probe_text_after_p(with_url(snap, top, hostile_server), top)
    assert f"body larger than {MAX_BODY} bytes" in text


async def test_probe_of_an_unreachable_device_blames_the_device() -> None:
    # A port bound and never listened on, held for the whole test: connections to it are
    # refused, and no other process can take it meanwhile.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        snap = incident()
        healthy = next(d.device_id for d in snap.devices if d.health.value == "HEALTHY")
        url = f"http://127.0.0.1:{port}"
        text = await probe_text_after_p(with_url(snap, healthy, url), healthy)
    assert "no answer" in text
    assert "the device itself is unreachable" in text
