"""``pipeconsole demo``: everything on the embedded default, then the console on it.

One command, nothing to set up: an embedded broker on a free port, the topics, a simulated
fleet and one device-actor service (:class:`~pipeconsole.demostack.DemoStack`), then the
console. ``q``/Ctrl-C (or SIGTERM) stops every part and leaves no process behind. A part that
dies is shown in the console, not hidden. ``--scenario`` starts a scripted incident a few
seconds in; ``--headless --script F --out DIR`` runs a script instead of the TUI (for CI).
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from pathlib import Path
from typing import Any

import click

from pipeconsole.cli import fail
from pipeconsole.config import Profile
from pipeconsole.demostack import SCENARIOS, DemoStack, Scenario

__all__ = ["demo", "inject_scenario"]

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


def inject_scenario(
    profile: Profile, scenario: Scenario, wait_s: float = 30.0, fleet_size: int = 1
) -> str:
    """Start ``scenario`` on the fleet behind ``profile``; return one line saying what was done.

    The target is picked once ``fleet_size`` devices have registered (or ``wait_s`` has passed):
    from a half-registered fleet, "the third transcoder" could be another one."""
    if scenario.fault == "protocol":
        return _poison(profile)
    from pipeconsole.chaos.faults import FaultClient, FaultError, Target

    deadline = time.monotonic() + wait_s
    devices = _registry(profile)
    while len(devices) < fleet_size and time.monotonic() < deadline:
        time.sleep(0.5)
        devices = _registry(profile)
    device = scenario.pick({d: stage for d, (stage, _url) in devices.items()})
    if device is None:
        return f"scenario {scenario.name}: no {scenario.stage} device is registered"
    client = FaultClient()
    try:
        lease = client.inject(
            Target(device, devices[device][1]), scenario.fault, SCENARIO_FAULT_S, scenario.params
        )
    finally:
        client.close()
    if isinstance(lease, FaultError):
        return f"scenario {scenario.name}: {lease.reason}"
    return f"scenario {scenario.name}: {scenario.description} ({device}, {scenario.fault})"


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


def _start_scenario(
    profile: Profile, scenario: Scenario, delay_s: float, fleet_size: int
) -> threading.Thread:
    def run() -> None:
        time.sleep(delay_s)
        try:
            LOG.warning("%s", inject_scenario(profile, scenario, fleet_size=fleet_size))
        except Exception as exc:  # shown in the console's log view; the demo goes on
            LOG.error("scenario %s failed: %s: %s", scenario.name, type(exc).__name__, exc)

    t = threading.Thread(target=run, name="demo-scenario", daemon=True)
    t.start()
    return t


@click.command()
@click.option("--devices", type=click.IntRange(4, 2000), default=24, show_default=True)
@click.option("--seed", type=int, default=7, show_default=True)
@click.option(
    "--scenario",
    type=click.Choice(sorted(SCENARIOS)),
    default=None,
    help="Start a scripted incident a few seconds in.",
)
@click.option("--scenario-delay", type=float, default=5.0, show_default=True)
@click.option(
    "--check-interval",
    type=float,
    default=1.0,
    show_default=True,
    help="Seconds between the device actors' health checks.",
)
@click.option("--headless", is_flag=True, help="Run --script instead of the TUI.")
@click.option("--script", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None)
def demo(
    devices: int,
    seed: int,
    scenario: str | None,
    scenario_delay: float,
    check_interval: float,
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
    stack = DemoStack(devices, seed, check_interval_s=check_interval)
    try:
        try:
            stack.start()
        except (BrokerError, AdminError, OSError) as exc:
            fail(f"cannot start the demo: {exc}")
        if scenario:
            _start_scenario(stack.profile, SCENARIOS[scenario], scenario_delay, devices)
        if headless:
            assert script is not None and out is not None
            code = _headless(stack, script, out, scenario)
        else:
            _console(stack)
            code = 0
    except KeyboardInterrupt:
        code = 130
    finally:
        stack.stop()
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
    from pipeconsole.ui.cli import run_app
    from pipeconsole.ui.factory import build_app

    app = build_app(stack.profile, connect=True)
    app.supervise(stack.problems, stack.describe())
    run_app(app)
