"""A fleet of simulated devices in one asyncio loop: start, step, inject faults, stop.

:class:`AsyncFleet` is the engine, for code that already runs a loop (``pipeconsole
simulate``). :class:`Fleet` runs an ``AsyncFleet`` on a loop in a background thread, so sync
tests and other threads can use it as a context manager::

    with Fleet.start(devices=24, seed=1, bootstrap=None, clock=ManualClock()) as fleet:
        fleet.device("transcode-03").inject(fault="crash", duration_s=5)
        fleet.advance(6.0)        # ManualClock: step the flow and the fault leases
        fleet.device("transcode-03").counters().restarts   # 1

Every tick (``tick_s``, on the injected clock) expired faults end, each device's servers are
reconciled with its faults (a ``crash`` closes the listener, its end reopens the same port with
restarts+1), and the flow model steps. With a :class:`ManualClock` nothing ticks by itself:
``advance()`` steps synchronously and returns when crashed devices listen again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import threading
from collections.abc import Coroutine, Sequence
from concurrent.futures import Future
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

from pipeconsole.config import Profile, Topics
from pipeconsole.sim.clock import Clock, ManualClock, RealClock
from pipeconsole.sim.device import Counters, SimDevice
from pipeconsole.sim.faults import Fault, FaultRequest, FieldProblem, parse_fault
from pipeconsole.sim.flow import FlowModel
from pipeconsole.sim.registry import Registrar
from pipeconsole.sim.server import DeviceServer, quiet_parse_errors
from pipeconsole.sim.topology import DEFAULT_STAGES, Layout, default_layout, load_topology

__all__ = ["AsyncFleet", "DeviceHandle", "Fleet", "build_layout"]

log = logging.getLogger(__name__)
T = TypeVar("T")

HTTP_CRASH_DELAY_S = 0.05
"""A crash ordered over HTTP closes the socket this long after answering, so the answer leaves."""
OPEN_BATCH = 200
"""Listeners opened concurrently at start (1,000 devices open in a few batches)."""


def build_layout(
    devices: int = 24,
    *,
    stages: Sequence[str] = DEFAULT_STAGES,
    seed: int = 1,
    topology: Path | str | Layout | None = None,
) -> Layout:
    """The layout from a topology file or object if given, else the default for N devices."""
    if isinstance(topology, Layout):
        return topology
    if topology is not None:
        return load_topology(topology, seed=seed)
    return default_layout(devices, stages, seed)


class AsyncFleet:
    """Devices, their servers, the flow model and the ticker, all on the running loop."""

    def __init__(
        self,
        layout: Layout,
        *,
        seed: int = 1,
        clock: Clock | None = None,
        tick_s: float = 0.1,
        host: str = "127.0.0.1",
        base_port: int = 0,
        profile: Profile | None = None,
        starve_after_s: float = 2.0,
        blocked_after_s: float = 1.0,
        register_timeout_s: float = 15.0,
    ) -> None:
        self.layout = layout
        self.register_timeout_s = register_timeout_s
        self.clock: Clock = clock or RealClock()
        self.tick_s = tick_s
        self.profile = profile
        """Where to register (None: no Kafka at all)."""
        self.flow = FlowModel(layout, start=self.clock.now())
        self.devices: dict[str, SimDevice] = {}
        self.servers: dict[str, DeviceServer] = {}
        for i, spec in enumerate(layout.devices):
            dev = SimDevice(
                spec=spec,
                flow=self.flow,
                rng=random.Random(f"{seed}:{spec.device_id}"),
                starve_after_s=starve_after_s,
                blocked_after_s=blocked_after_s,
                started=self.clock.now(),
            )
            self.devices[spec.device_id] = dev
            port = base_port + i if base_port else 0
            self.servers[spec.device_id] = DeviceServer(dev, self, host, port)
        self._locks = {d: asyncio.Lock() for d in self.devices}
        self._ticker: asyncio.Task[None] | None = None
        self._registrar: Registrar | None = None
        self._pending: set[asyncio.Task[None]] = set()
        self.registered = False

    # ---- DeviceHost -------------------------------------------------------------------

    def now(self) -> float:
        return self.clock.now()

    def unix_ms(self) -> int:
        return self.clock.unix_ms()

    async def inject(self, device_id: str, req: FaultRequest, *, from_http: bool) -> Fault:
        dev = self.devices[device_id]
        fault = dev.faults.add(req, self.clock.now(), self.clock.unix_ms())
        self._changed(dev)
        if req.kind == "crash":
            self.flow.crash(device_id)
            if from_http:
                self._spawn(self._reconcile(device_id, delay=HTTP_CRASH_DELAY_S))
            else:
                await self._reconcile(device_id)
        return fault

    async def end_faults(self, device_id: str, fault_id: str | None) -> list[Fault]:
        dev = self.devices[device_id]
        if fault_id is None:
            ended = dev.faults.clear()
        else:
            one = dev.faults.remove(fault_id)
            ended = [one] if one is not None else []
        if ended:
            self._changed(dev)
            await self._reconcile(device_id)
        return ended

    # ---- lifecycle --------------------------------------------------------------------

    async def start(self) -> None:
        quiet_parse_errors()
        ids = list(self.servers)
        for i in range(0, len(ids), OPEN_BATCH):
            await asyncio.gather(*(self.servers[d].open() for d in ids[i : i + OPEN_BATCH]))
        profile = self.profile
        if profile is not None:
            loop = asyncio.get_running_loop()
            timeout = self.register_timeout_s
            registrar = await loop.run_in_executor(
                None, lambda: Registrar(profile, timeout_s=timeout)
            )
            self._registrar = registrar
            pairs = [(self.layout.get(d), self.servers[d].base_url) for d in ids]
            await loop.run_in_executor(None, registrar.added, pairs, self.unix_ms())
            self.registered = True
        if not isinstance(self.clock, ManualClock):
            self._ticker = asyncio.create_task(self._tick_forever(), name="sim-ticker")

    async def stop(self, reason: str = "shutdown") -> None:
        """Unregister (when registered), then close every listener."""
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        try:
            if self._registrar is not None:
                loop = asyncio.get_running_loop()
                registrar, self._registrar = self._registrar, None
                try:
                    if self.registered:
                        await loop.run_in_executor(
                            None, registrar.removed, list(self.devices), self.unix_ms(), reason
                        )
                        self.registered = False
                finally:
                    await loop.run_in_executor(None, registrar.close)
        finally:
            for task in list(self._pending):
                task.cancel()
            await asyncio.gather(*(s.close() for s in self.servers.values()))

    # ---- time ---------------------------------------------------------------------------

    async def _tick_forever(self) -> None:
        while True:
            await asyncio.sleep(self.tick_s)
            try:
                self.tick()
            except Exception:  # a bug must not stop the clock of the fleet
                log.exception("simulator tick failed")

    def tick(self) -> list[asyncio.Task[None]]:
        """Expire faults, reconcile listeners, step the flow; returns reconcile tasks."""
        now = self.clock.now()
        tasks = []
        for device_id, dev in self.devices.items():
            if dev.faults.expire(now):
                self._changed(dev)
            want_open = not dev.faults.has("crash")
            if want_open != self.servers[device_id].is_open and not self._locks[device_id].locked():
                tasks.append(self._spawn(self._reconcile(device_id)))
        self.flow.step(now)
        return tasks

    async def advance(self, seconds: float) -> None:
        """Move a :class:`ManualClock` by ``seconds`` in ticks of ``tick_s``."""
        clock = self.clock
        if not isinstance(clock, ManualClock):
            raise TypeError("advance() needs a fleet started with a ManualClock")
        start = clock.now()
        target = start + seconds
        steps = max(1, math.ceil(seconds / self.tick_s - 1e-9))
        for i in range(1, steps + 1):
            # The last step lands exactly on the target: a lease that ends at start + seconds
            # has ended when advance() returns, whatever the float rounding of the steps.
            clock.advance((target if i == steps else start + i * self.tick_s) - clock.now())
            tasks = self.tick()
            if tasks:
                await asyncio.gather(*tasks)

    # ---- faults and listeners ---------------------------------------------------------

    def _changed(self, dev: SimDevice) -> None:
        dev.flow.nodes[dev.device_id].stalled = dev.faults.has("stall")
        dev.notify()

    async def _reconcile(self, device_id: str, delay: float = 0.0) -> None:
        """Make the listener match the faults: closed while crashed, open otherwise."""
        if delay:
            await asyncio.sleep(delay)
        async with self._locks[device_id]:
            server, dev = self.servers[device_id], self.devices[device_id]
            crashed = dev.faults.has("crash")
            if crashed and server.is_open:
                await server.close()
            elif not crashed and not server.is_open:
                try:
                    await server.open()
                except OSError as exc:  # the port was taken meanwhile: the next tick retries
                    log.warning("%s: cannot listen on %s again: %s", device_id, server.port, exc)
                    return
                dev.restarts += 1
                dev.started = self.clock.now()
                self.flow.restart(device_id, self.clock.now())

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(coro)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
        return task

    # ---- in-process API (on the loop) ---------------------------------------------------

    async def inject_fault(
        self, device_id: str, fault: str, duration_s: float, **params: Any
    ) -> str:
        parsed = parse_fault({"fault": fault, "duration_s": duration_s, **params})
        if isinstance(parsed, FieldProblem):
            raise ValueError(f"{parsed.field or 'body'}: {parsed.detail}")
        return (await self.inject(device_id, parsed, from_http=False)).id

    def base_url(self, device_id: str) -> str:
        return self.servers[device_id].base_url


class DeviceHandle:
    """One device of a running :class:`Fleet`, usable from any thread."""

    def __init__(self, fleet: Fleet, device_id: str) -> None:
        self._fleet = fleet
        spec = fleet.engine.layout.get(device_id)
        self.device_id = device_id
        self.stage = spec.stage
        self.kind = spec.kind
        self.upstream = spec.upstream
        self.downstream = spec.downstream

    @property
    def port(self) -> int:
        return self._fleet.engine.servers[self.device_id].port

    @property
    def base_url(self) -> str:
        return self._fleet.engine.base_url(self.device_id)

    def inject(self, fault: str, duration_s: float, **params: Any) -> str:
        """Like ``POST /chaos``; returns the fault id. A crash has closed the socket on return."""
        return self._fleet.call(
            self._fleet.engine.inject_fault(self.device_id, fault, duration_s, **params)
        )

    def clear(self, fault_id: str | None = None) -> int:
        """End one fault (or all); returns how many ended."""
        return len(self._fleet.call(self._fleet.engine.end_faults(self.device_id, fault_id)))

    def counters(self) -> Counters:
        async def read() -> Counters:
            return self._fleet.engine.devices[self.device_id].counters()

        return self._fleet.call(read())

    def __repr__(self) -> str:
        return f"DeviceHandle({self.device_id!r}, {self.base_url!r})"


class Fleet:
    """An :class:`AsyncFleet` on its own loop thread; a context manager."""

    def __init__(self, engine_factory: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="sim-fleet", daemon=True)
        self._thread.start()
        self.engine: AsyncFleet = self.call(_make(engine_factory))
        self.devices: list[DeviceHandle] = [DeviceHandle(self, d) for d in self.engine.devices]
        """Every device, in topological order (sources first)."""
        self._by_id = {h.device_id: h for h in self.devices}
        self._stopped = False

    @classmethod
    def start(
        cls,
        devices: int = 24,
        *,
        seed: int = 1,
        stages: Sequence[str] = DEFAULT_STAGES,
        topology: Path | str | Layout | None = None,
        bootstrap: str | None = None,
        topics: Topics | None = None,
        profile: Profile | None = None,
        clock: Clock | None = None,
        tick_s: float = 0.1,
        host: str = "127.0.0.1",
        base_port: int = 0,
        starve_after_s: float = 2.0,
        blocked_after_s: float = 1.0,
    ) -> Fleet:
        """Start the fleet; it is registered on the registry topic when ``bootstrap`` or
        ``profile`` is given (``topics`` override the profile's)."""
        layout = build_layout(devices, stages=stages, seed=seed, topology=topology)
        if profile is None and bootstrap:
            profile = Profile(name="sim", bootstrap=bootstrap)
        if profile is not None:
            profile = profile.with_bootstrap(bootstrap)
            if topics is not None:
                profile = replace(profile, topics=topics)

        def factory() -> AsyncFleet:
            return AsyncFleet(
                layout,
                seed=seed,
                clock=clock,
                tick_s=tick_s,
                host=host,
                base_port=base_port,
                profile=profile,
                starve_after_s=starve_after_s,
                blocked_after_s=blocked_after_s,
            )

        fleet = cls(factory)
        try:
            fleet.call(fleet.engine.start())
        except BaseException:
            fleet.stop()
            raise
        return fleet

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()

    def call(self, coro: Coroutine[Any, Any, T], timeout: float | None = 60.0) -> T:
        """Run ``coro`` on the fleet's loop and wait for its result."""
        fut: Future[T] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return fut.result(timeout)

    def device(self, device_id: str) -> DeviceHandle:
        return self._by_id[device_id]

    def advance(self, seconds: float) -> None:
        """Step a ManualClock fleet by ``seconds`` (see :meth:`AsyncFleet.advance`)."""
        self.call(self.engine.advance(seconds))

    def stop(self, reason: str = "shutdown") -> None:
        if getattr(self, "_stopped", False):
            return
        self._stopped = True
        try:
            if hasattr(self, "engine"):
                self.call(self.engine.stop(reason))
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._loop.close()

    def __enter__(self) -> Fleet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


async def _make(factory: Any) -> AsyncFleet:
    """Build the engine on the loop thread (its locks and events belong to that loop)."""
    engine = factory()
    assert isinstance(engine, AsyncFleet)
    return engine
