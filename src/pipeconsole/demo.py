"""``pipeconsole demo``: everything on the embedded default, then the console on it.

One command, nothing to set up: an embedded broker on a free port, the topics, a simulated
fleet and one device-actor service (:class:`~pipeconsole.demostack.DemoStack`), then the
console. ``q``/Ctrl-C (or SIGTERM) stops every part and leaves no process behind. A part that
dies is shown in the console, not hidden. ``--scenario`` starts a scripted incident a few
seconds in (with its own request traffic where it is about requests); ``--traffic R`` sends R
DeviceRequests a second across the fleet; ``--headless --script F --out DIR`` runs a script
instead of the TUI (for CI).
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from pathlib import Path
from typing import Any

import click

from pipeconsole.cli import FiniteFloat, fail
from pipeconsole.config import ROLES, Profile
from pipeconsole.demostack import SCENARIOS, DemoStack, Scenario
from pipeconsole.demotraffic import Traffic

__all__ = ["Background", "default_check_interval", "demo", "inject_scenario"]

LOG = logging.getLogger("pipeconsole.demo")
SCENARIO_FAULT_S = 600.0
"""How long a scenario's fault lasts: the whole demo, in practice (a lease all the same)."""


def _registry(profile: Profile, timeout: float = 30.0) -> dict[str, tuple[str, str]]:
    """device_id -> (stage, base_url) from the registry topic."""
    from pipeconsole.kafka.reader import AssignReader
    from pipeconsole.wire.codec import DecodeFailure, decode
    from pipeconsole.wire.gen.registry_pb2 import RegistryEvent

    out: dict[str, tuple[str, str]] = {}
    with AssignReader(profile, [profile.topics.registry]) as reader:
        for rec in reader.read_to_end(timeout):
            ev = decode(RegistryEvent, rec.value, allow_unknown=True)
            if isinstance(ev, DecodeFailure):
                continue
            if ev.HasField("added"):
                out[ev.added.device_id] = (ev.added.stage, ev.added.base_url)
            elif ev.HasField("removed"):
                out.pop(ev.removed.device_id, None)
    return out


CHECKS_PER_S = 200
"""Health checks a second the demo's one actor process is given by default: at 1,000 devices
checked every second it ran at ~95 % of a core, its checks of a crashed device timed out
("no answer within 2000 ms"), and the device flapped FAILING / UNKNOWN on the timeline."""


def default_check_interval(devices: int) -> float:
    """1 s, or longer for a fleet of more than :data:`CHECKS_PER_S` devices."""
    return max(1.0, devices / CHECKS_PER_S)


def _fleet(
    profile: Profile, fleet_size: int, wait_s: float, stop: threading.Event | None = None
) -> dict[str, tuple[str, str]]:
    """The registry once ``fleet_size`` devices are on it (or ``wait_s`` has passed, or
    ``stop`` is set)."""
    stop = stop or threading.Event()
    deadline = time.monotonic() + wait_s
    devices = _registry(profile)
    while len(devices) < fleet_size and time.monotonic() < deadline and not stop.wait(0.5):
        devices = _registry(profile)
    return devices


def inject_scenario(
    profile: Profile, scenario: Scenario, wait_s: float = 30.0, fleet_size: int = 1
) -> tuple[str, str | None]:
    """Start ``scenario`` on the fleet behind ``profile``: one line saying what was done, and
    the device whose fault is on (None: none is).

    The target is picked once ``fleet_size`` devices have registered (or ``wait_s`` has passed):
    from a half-registered fleet, "the third transcoder" could be another one."""
    if scenario.fault == "protocol":
        return _poison(profile), None
    from pipeconsole.chaos.faults import FaultClient, FaultError, Target

    devices = _fleet(profile, fleet_size, wait_s)
    device = scenario.pick({d: stage for d, (stage, _url) in devices.items()})
    if device is None:
        return f"scenario {scenario.name}: no {scenario.stage} device is registered", None
    client = FaultClient()
    try:
        lease = client.inject(
            Target(device, devices[device][1]), scenario.fault, SCENARIO_FAULT_S, scenario.params
        )
    finally:
        client.close()
    if isinstance(lease, FaultError):
        return f"scenario {scenario.name}: {lease.reason}", None
    line = f"scenario {scenario.name}: {scenario.description} ({device}, {scenario.fault})"
    return line, device


def _poison(profile: Profile, count: int = 60) -> str:
    """Malformed, invalid and malicious DeviceRequests mixed with valid ones (1 in 3 each)."""
    import random

    from pipeconsole.chaos.traffic import EXPERIMENT_HEADER, device_request_chaos, request_factory
    from pipeconsole.kafka.producer import ConfirmingProducer, wait_all

    devices = sorted(_registry(profile)) or ["ingest-01"]
    chaos = device_request_chaos(request_factory(devices), seed=7)
    rng = random.Random(7)
    futures = []
    with ConfirmingProducer(profile) as producer:
        for n in range(count):
            valid = chaos.valid()
            if n % 3 == 0:
                kind = rng.choice(["empty", "bit_flip", "truncate"])
                try:
                    data = chaos.structural(kind).data
                except KeyError:
                    data = b"\x08\x01\x12\x03ABC" + b"\x63" * 20_000
            elif n % 3 == 1:
                valid.schedule_time = "2014-12-10T05:44:06.635Z[GMT]"
                data = valid.SerializeToString()
            else:
                data = valid.SerializeToString()
            futures.append(
                producer.send(
                    profile.topics.request,
                    data,
                    key=valid.device_id,
                    headers=[(EXPERIMENT_HEADER, b"demo-poison-requests")],
                )
            )
        wait_all(futures, timeout=30)
    return f"scenario poison-requests: {count} requests sent, 2 in 3 of them hostile"


class Background:
    """What the demo runs beside the console: a scenario a few seconds in (its fault, then its
    own traffic if it has one) and the fleet-wide request traffic of ``--traffic``. Stopped
    before the stack, so no sender outlives the broker."""

    def __init__(
        self,
        profile: Profile,
        fleet_size: int,
        *,
        scenario: Scenario | None = None,
        delay_s: float = 5.0,
        traffic_per_s: float = 0.0,
    ) -> None:
        self.profile = profile
        self.fleet_size = fleet_size
        self.scenario = scenario
        self.delay_s = delay_s
        self.traffic_per_s = traffic_per_s
        self.traffic: list[Traffic] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def start(self) -> Background:
        if self.scenario is not None:
            self._spawn("demo-scenario", self._scenario, self.scenario)
        if self.traffic_per_s > 0:
            self._spawn("demo-traffic-start", self._fleet_traffic)
        return self

    def _spawn(self, name: str, target: Any, *args: Any) -> None:
        def run() -> None:
            try:
                target(*args)
            except Exception as exc:  # shown in the console's log view; the demo goes on
                LOG.error("%s failed: %s: %s", name, type(exc).__name__, exc)

        t = threading.Thread(target=run, name=name, daemon=True)
        self._threads.append(t)
        t.start()

    def _scenario(self, scenario: Scenario) -> None:
        if self._stop.wait(self.delay_s):
            return
        line, device = inject_scenario(self.profile, scenario, fleet_size=self.fleet_size)
        LOG.warning("%s", line)
        if device is not None and scenario.traffic_per_s > 0:
            self._send(
                [device],
                scenario.traffic_per_s,
                f"scenario {scenario.name}: {scenario.traffic_per_s:g} requests/s to {device}",
            )

    def _fleet_traffic(self) -> None:
        devices = sorted(_fleet(self.profile, self.fleet_size, 30.0, self._stop))
        if devices:
            self._send(
                devices,
                self.traffic_per_s,
                f"traffic: {self.traffic_per_s:g} requests/s across {len(devices)} devices",
            )

    def _send(self, devices: list[str], rate: float, line: str) -> None:
        with self._lock:
            if self._stop.is_set():
                return
            self.traffic.append(Traffic(self.profile, devices, rate).start())
        LOG.warning("%s", line)

    def stop(self) -> None:
        with self._lock:
            self._stop.set()
        for traffic in self.traffic:
            traffic.stop()
        for t in self._threads:
            t.join(5.0)


@click.command()
@click.option("--devices", type=click.IntRange(4, 2000), default=24, show_default=True)
@click.option("--seed", type=int, default=7, show_default=True)
@click.option(
    "--scenario",
    type=click.Choice(sorted(SCENARIOS)),
    default=None,
    help="Start a scripted incident a few seconds in.",
)
@click.option("--scenario-delay", type=FiniteFloat(min=0), default=5.0, show_default=True)
@click.option(
    "--traffic",
    type=FiniteFloat(0, 1000),
    default=0.0,
    show_default=True,
    help="DeviceRequests per second, round-robin over the whole fleet (0: none).",
)
@click.option(
    "--check-interval",
    type=FiniteFloat(min=0.1),
    default=None,
    help="Seconds between the device actors' health checks. Default: 1, and one second per "
    f"{CHECKS_PER_S} devices in bigger fleets (one actor process checks them all).",
)
@click.option(
    "--role",
    type=click.Choice(ROLES),
    default="chaos",
    show_default=True,
    help="The console's role: chaos may run experiments, operator may act on requests, "
    "viewer only looks (the refusals are shown and audited).",
)
@click.option("--headless", is_flag=True, help="Run --script instead of the TUI.")
@click.option("--script", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None)
def demo(
    devices: int,
    seed: int,
    scenario: str | None,
    scenario_delay: float,
    traffic: float,
    check_interval: float | None,
    role: str,
    headless: bool,
    script: Path | None,
    out: Path | None,
) -> None:
    """Start a broker, a simulated fleet and the device actors, then open the console on them."""
    from pipeconsole.broker import BrokerError
    from pipeconsole.kafka.admin import AdminError

    if headless and (script is None or out is None):
        fail("--headless needs --script FILE and --out DIR", 2)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    interval = check_interval if check_interval is not None else default_check_interval(devices)
    stack = DemoStack(devices, seed, check_interval_s=interval, role=role)
    background: Background | None = None
    try:
        try:
            stack.start()
        except (BrokerError, AdminError, OSError) as exc:
            fail(f"cannot start the demo: {exc}")
        background = Background(
            stack.profile,
            devices,
            scenario=SCENARIOS[scenario] if scenario else None,
            delay_s=scenario_delay,
            traffic_per_s=traffic,
        ).start()
        if headless:
            assert script is not None and out is not None
            code = _headless(stack, script, out, scenario)
        else:
            _console(stack)
            code = 0
    except KeyboardInterrupt:
        code = 130
    finally:
        if background is not None:
            background.stop()
        stack.stop()
        # The logs outlive the demo (a part that misbehaved is read about after quitting);
        # the header said where while it ran, and this says so once it has gone.
        click.echo(
            f"pipeconsole demo: stopped; the fleet's and the actors' logs are in {stack.log_dir}",
            err=True,
        )
    raise SystemExit(code)


def _raise_interrupt(*_: Any) -> None:
    raise KeyboardInterrupt


def _headless(stack: DemoStack, script: Path, out: Path, scenario: str | None) -> int:
    from pipeconsole.ui.cli import run_script

    code = run_script(
        stack.profile,
        script,
        out,
        {"demo": {"stack": stack.describe(), "scenario": scenario, "pids": stack.pids()}},
    )
    problems = stack.problems()
    if problems:
        click.echo("a part of the demo died: " + "; ".join(problems), err=True)
        return code or 1
    return code


def _console(stack: DemoStack) -> None:
    from pipeconsole.chaos.experiment import example_dir
    from pipeconsole.ui.cli import run_app
    from pipeconsole.ui.factory import build_app

    app = build_app(stack.profile, connect=True)
    app.supervise(stack.problems, stack.describe())
    app.example_experiments = example_dir()
    run_app(app)
