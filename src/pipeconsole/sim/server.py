"""The HTTP face of one simulated device: an aiohttp application on its own loopback port.

Routes are those of docs/device-api.md. Every request passes the same gates, in this order:
headers are checked (400 on a malformed ``X-Request-Id``, ``X-Attempt`` or
``X-Deadline-Remaining-Ms``); a ``hang`` fault (and, for ``/health`` and ``/topology``, a
``blackout``) holds the request until the fault ends; the deadline budget left is checked
(504 when it is spent, or when the active latency fault would outlast it); the latency fault's
delay is slept. Commands then go through the request log (a repeated ``X-Request-Id`` gets the
first result with ``X-Duplicate: 1``) and the ``error_rate`` fault before they execute.

``/chaos`` and ``/_sim/counters`` skip the gates: they are the simulator's control plane, not
the device's API. Nothing a client sends can raise out of a handler: the ``_edge`` middleware
turns aiohttp's HTTP errors into JSON bodies and any other exception into a counted 500.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from aiohttp import http_exceptions, web

from pipeconsole.sim.dedup import Result
from pipeconsole.sim.device import Attempt, SimDevice
from pipeconsole.sim.faults import Fault, FaultRequest, FieldProblem, parse_fault

__all__ = ["MAX_BODY_BYTES", "DeviceHost", "DeviceServer", "quiet_parse_errors"]

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1_048_576
"""Request bodies above this are refused with 413 before they are parsed."""
CRASH_GRACE_S = 0.01
"""How long a closing listener waits for running handlers before cancelling them. Not 0:
aiohttp reads 0 as "no timeout" and would wait for a hung handler forever."""
REQUEST_ID_RE = re.compile(r"[\x21-\x7e]{1,128}")
ATTEMPT_RE = re.compile(r"[0-9]{1,6}")
DEADLINE_RE = re.compile(r"-?[0-9]{1,12}")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class _ParseErrorFilter(logging.Filter):
    """Drops aiohttp's traceback for a request it could not parse: that is the client's fault,
    answered with a 400 already, and logging it per request would let a client flood the log."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, http_exceptions.HttpProcessingError)


_FILTER = _ParseErrorFilter()


def quiet_parse_errors() -> None:
    """Install the filter on ``aiohttp.server`` (idempotent)."""
    logger = logging.getLogger("aiohttp.server")
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)


class DeviceHost(Protocol):
    """What a device's server needs from the fleet that hosts it."""

    def now(self) -> float: ...

    def unix_ms(self) -> int: ...

    async def inject(self, device_id: str, req: FaultRequest, *, from_http: bool) -> Fault: ...

    async def end_faults(self, device_id: str, fault_id: str | None) -> list[Fault]: ...


@dataclass(frozen=True, slots=True)
class _Headers:
    request_id: str | None
    attempt: int | None
    deadline_ms: int | None


def _json(status: int, body: dict[str, Any], **headers: str) -> web.Response:
    return web.Response(
        status=status,
        text=json.dumps(body, separators=(",", ":")),
        content_type="application/json",
        headers=headers or None,
    )


def _error(status: int, code: str, detail: str, field: str = "") -> web.Response:
    body: dict[str, Any] = {"error": code, "detail": detail}
    if field:
        body["field"] = field
    return _json(status, body)


class DeviceServer:
    """Listens for one device; :meth:`close` really closes the socket (a crash), :meth:`open`
    binds the same port again."""

    def __init__(self, device: SimDevice, host: DeviceHost, bind: str, port: int = 0) -> None:
        self.device = device
        self.host = host
        self.bind = bind
        self.port = port
        self._runner: web.AppRunner | None = None

    @property
    def is_open(self) -> bool:
        return self._runner is not None

    @property
    def base_url(self) -> str:
        return f"http://{self.bind}:{self.port}"

    async def open(self) -> None:
        if self._runner is not None:
            return
        app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[self._edge])
        app.add_routes(
            [
                web.get("/health", self.health),
                web.get("/topology", self.topology),
                web.post("/streams/{stream_id}/start", self.start_stream),
                web.post("/streams/{stream_id}/stop", self.stop_stream),
                web.put("/config/bitrate", self.set_bitrate),
                web.post("/restart", self.restart),
                web.post("/chaos", self.chaos_add),
                web.get("/chaos", self.chaos_list),
                web.delete("/chaos", self.chaos_clear),
                web.delete("/chaos/{fault_id}", self.chaos_end),
                web.get("/_sim/counters", self.counters),
            ]
        )
        runner = web.AppRunner(
            app, access_log=None, handle_signals=False, shutdown_timeout=CRASH_GRACE_S
        )
        await runner.setup()
        site = web.TCPSite(runner, self.bind, self.port, reuse_address=True)
        try:
            await site.start()
        except OSError:
            await runner.cleanup()
            raise
        address = runner.addresses[0]
        self.port = int(address[1])
        self._runner = runner

    async def close(self) -> None:
        """Stop listening and drop every connection, answered or not (a crash)."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    # ---- the edge: nothing escapes ---------------------------------------------------

    @web.middleware
    async def _edge(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        dev = self.device
        plane = request.path.startswith(("/chaos", "/_sim/"))
        if not plane:
            dev.requests += 1
            dev.in_flight += 1
        t0 = time.perf_counter()
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            response = _error(
                exc.status, _code(exc.status), exc.text or exc.reason or "request refused"
            )
        except Exception:  # the edge: a bug is counted, never a dead device
            log.exception("%s: %s %s failed", dev.device_id, request.method, request.path)
            dev.internal_errors += 1
            response = _error(500, "internal", "the device failed to handle the request")
        finally:
            if not plane:
                dev.in_flight -= 1
        if not plane:
            dev.latencies_ms.append((time.perf_counter() - t0) * 1000.0)
            dev.latency_samples += 1
            if 400 <= response.status < 500:
                dev.rejected += 1
        return response

    # ---- gates ------------------------------------------------------------------------

    def _headers(self, request: web.Request) -> _Headers | web.Response:
        h = request.headers
        rid = h.get("X-Request-Id")
        if rid is not None and not REQUEST_ID_RE.fullmatch(rid):
            return _error(
                400, "bad_header", "X-Request-Id: 1-128 visible ASCII characters", "X-Request-Id"
            )
        attempt = h.get("X-Attempt")
        if attempt is not None and (not ATTEMPT_RE.fullmatch(attempt) or int(attempt) < 1):
            return _error(400, "bad_header", "X-Attempt: a positive integer", "X-Attempt")
        deadline = h.get("X-Deadline-Remaining-Ms")
        if deadline is not None and not DEADLINE_RE.fullmatch(deadline):
            return _error(
                400,
                "bad_header",
                "X-Deadline-Remaining-Ms: an integer number of milliseconds",
                "X-Deadline-Remaining-Ms",
            )
        return _Headers(
            request_id=rid,
            attempt=int(attempt) if attempt is not None else None,
            deadline_ms=int(deadline) if deadline is not None else None,
        )

    async def _gate(self, hdr: _Headers, hold: tuple[str, ...], t0: float) -> web.Response | None:
        """Hold while a fault in ``hold`` is active, then enforce the deadline, then delay."""
        dev = self.device
        while dev.faults.has_any(hold):
            await dev.changed.wait()
        if hdr.deadline_ms is None:
            remaining = None
        else:
            remaining = hdr.deadline_ms - int((time.monotonic() - t0) * 1000)
        delay = dev.latency_ms()
        if remaining is not None and remaining <= 0:
            dev.deadline_refused += 1
            return _json(
                504,
                {
                    "error": "deadline_exceeded",
                    "detail": f"the deadline budget is spent ({remaining} ms left); "
                    "nothing was done",
                    "budget_ms": remaining,
                },
            )
        if remaining is not None and delay >= remaining:
            dev.deadline_refused += 1
            return _json(
                504,
                {
                    "error": "deadline_exceeded",
                    "detail": f"the work would take about {delay:.0f} ms but only {remaining} ms "
                    "of the deadline budget remain; nothing was done",
                    "budget_ms": remaining,
                    "estimate_ms": round(delay),
                },
            )
        if delay > 0:
            await asyncio.sleep(delay / 1000.0)
        return None

    # ---- telemetry ----------------------------------------------------------------------

    async def health(self, request: web.Request) -> web.StreamResponse:
        return await self._telemetry(request, lambda: self.device.health(self.host.now()))

    async def topology(self, request: web.Request) -> web.StreamResponse:
        return await self._telemetry(request, self.device.topology)

    async def _telemetry(
        self, request: web.Request, body: Callable[[], dict[str, Any]]
    ) -> web.StreamResponse:
        t0 = time.monotonic()
        hdr = self._headers(request)
        if isinstance(hdr, web.Response):
            return hdr
        refused = await self._gate(hdr, ("hang", "blackout"), t0)
        return refused or _json(200, body())

    # ---- commands -----------------------------------------------------------------------

    async def start_stream(self, request: web.Request) -> web.StreamResponse:
        sid = request.match_info["stream_id"]
        return await self._command(request, lambda body: self.device.start_stream(sid, body))

    async def stop_stream(self, request: web.Request) -> web.StreamResponse:
        sid = request.match_info["stream_id"]
        return await self._command(request, lambda _body: self.device.stop_stream(sid))

    async def set_bitrate(self, request: web.Request) -> web.StreamResponse:
        return await self._command(request, self.device.set_bitrate)

    async def restart(self, request: web.Request) -> web.StreamResponse:
        async def run(_body: Any) -> Result:
            dev = self.device
            req = FaultRequest(kind="crash", duration_s=RESTART_S, params={})
            await self.host.inject(dev.device_id, req, from_http=True)
            dev.executed += 1
            return 202, {"restarting": True, "restarts": dev.restarts + 1}

        return await self._command(request, run)

    async def _command(
        self, request: web.Request, op: Callable[[Any], Result | Awaitable[Result]]
    ) -> web.StreamResponse:
        t0 = time.monotonic()
        dev = self.device
        dev.commands += 1
        hdr = self._headers(request)
        if isinstance(hdr, web.Response):
            return hdr
        if hdr.request_id is not None:
            dev.attempts.append(
                Attempt(
                    request_id=hdr.request_id,
                    attempt=hdr.attempt,
                    started_unix_ms=int(time.time() * 1000),
                    deadline_remaining_ms=hdr.deadline_ms,
                    method=request.method,
                    path=request.path,
                )
            )
        refused = await self._gate(hdr, ("hang",), t0)
        if refused is not None:
            return refused
        if hdr.request_id is None:
            return _json(*await self._execute(request, op))
        first = dev.log.get(hdr.request_id)
        if first is not None:
            dev.duplicates += 1
            status, body = await asyncio.shield(first)
            return _json(status, body, **{"X-Duplicate": "1"})
        fut = dev.log.begin(hdr.request_id)
        result: Result = (503, {"error": "aborted", "detail": "the first attempt was abandoned"})
        try:
            result = await self._execute(request, op)
        finally:
            dev.log.finish(hdr.request_id, fut, result)
        return _json(*result)

    async def _execute(
        self, request: web.Request, op: Callable[[Any], Result | Awaitable[Result]]
    ) -> Result:
        injected = self.device.injected_error()
        if injected is not None:
            return injected
        body = await _read_json(request)
        if isinstance(body, _Bad):
            return body.result
        outcome = op(body)
        if not isinstance(outcome, tuple):
            outcome = await outcome
        return outcome

    # ---- control plane ------------------------------------------------------------------

    async def chaos_add(self, request: web.Request) -> web.StreamResponse:
        body = await _read_json(request)
        if isinstance(body, _Bad):
            return _json(*body.result)
        parsed = parse_fault(body)
        if isinstance(parsed, FieldProblem):
            return _error(422, parsed.code, parsed.detail, parsed.field)
        fault = await self.host.inject(self.device.device_id, parsed, from_http=True)
        return _json(201, fault.to_json())

    async def chaos_list(self, request: web.Request) -> web.StreamResponse:
        return _json(200, {"faults": [f.to_json() for f in self.device.faults.active()]})

    async def chaos_clear(self, request: web.Request) -> web.StreamResponse:
        ended = await self.host.end_faults(self.device.device_id, None)
        return _json(200, {"ended": [f.id for f in ended]})

    async def chaos_end(self, request: web.Request) -> web.StreamResponse:
        fid = request.match_info["fault_id"]
        ended = await self.host.end_faults(self.device.device_id, fid)
        if not ended:
            return _error(404, "unknown_fault", "no active fault with that id (expired?)")
        return web.Response(status=204)

    async def counters(self, request: web.Request) -> web.StreamResponse:
        return _json(200, self.device.counters().to_json())


RESTART_S = 0.5
"""Simulated seconds a ``POST /restart`` keeps the device down."""


@dataclass(frozen=True, slots=True)
class _Bad:
    result: Result


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


async def _read_json(request: web.Request) -> Any:
    """The body as JSON (None when empty), or why not. 413 propagates to the edge."""
    if not request.body_exists:
        return None
    raw = await request.read()
    if not raw:
        return None
    if "Content-Type" in request.headers and request.content_type != "application/json":
        return _Bad((415, {"error": "unsupported_media_type", "detail": "send application/json"}))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return _Bad((400, {"error": "bad_utf8", "detail": f"body is not UTF-8: {exc.reason}"}))
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        return _Bad((400, {"error": "bad_json", "detail": "body is nested too deeply"}))
    except ValueError as exc:
        return _Bad((400, {"error": "bad_json", "detail": f"body is not JSON: {exc}"[:300]}))


def _code(status: int) -> str:
    return {
        400: "bad_request",
        404: "not_found",
        405: "method_not_allowed",
        413: "too_large",
        415: "unsupported_media_type",
    }.get(status, "http_error")
