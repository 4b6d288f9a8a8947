"""``pipeconsole simulate``: a simulated fleet in the foreground until Ctrl-C or SIGTERM.

Starts the devices (real HTTP servers on loopback), registers them on the registry topic,
prints one line per device (id, kind, base URL) and ``ready``, then runs until a signal, when
it publishes ServiceRemoved for every device and exits 0. ``--no-register`` runs without Kafka.
"""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

import click

from pipeconsole.cli import FiniteFloat, fail, profile_options
from pipeconsole.config import Profile

__all__ = ["simulate"]


@click.command()
@profile_options
@click.option("--devices", "-n", default=24, show_default=True, help="Devices to simulate.")
@click.option(
    "--stages",
    default="ingest,transcode,package,origin",
    show_default=True,
    help="Comma-separated stages, sources first.",
)
@click.option("--seed", default=1, show_default=True, help="Same seed, same pipeline.")
@click.option(
    "--topology",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="TOML file describing the pipeline (overrides --devices and --stages).",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--base-port",
    type=click.IntRange(0, 65535),
    default=0,
    help="First port (device i listens on base+i); 0: any free port.",
)
@click.option("--tick-ms", default=100, show_default=True, help="Flow model step.")
@click.option("--no-register", is_flag=True, help="Do not talk to Kafka at all.")
@click.option(
    "--register-timeout-s",
    type=FiniteFloat(min=0.1),
    default=15.0,
    show_default=True,
    help="How long the broker has to confirm the registry events.",
)
@click.option(
    "--manifest",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the devices (id, stage, kind, base_url) to this JSON file once listening.",
)
def simulate(
    profile: Profile,
    devices: int,
    stages: str,
    seed: int,
    topology: Path | None,
    host: str,
    base_port: int,
    tick_ms: int,
    no_register: bool,
    register_timeout_s: float,
    manifest: Path | None,
) -> None:
    """Run a simulated fleet of devices on loopback, registered on the registry topic."""
    from pipeconsole.sim.fleet import AsyncFleet, build_layout
    from pipeconsole.sim.registry import RegistrationError
    from pipeconsole.sim.topology import TopologyError

    if devices < 1 or devices > 20_000:
        fail("--devices must be between 1 and 20000", 2)
    if not 1 <= tick_ms <= 10_000:
        fail("--tick-ms must be between 1 and 10000", 2)
    if base_port and base_port + devices - 1 > 65535:
        # Ports past 65535 wrapped around: --base-port 70000 listened on 4464 and up.
        fail(f"--base-port {base_port} + {devices} devices runs past port 65535", 2)
    try:
        layout = build_layout(devices, stages=stages.split(","), seed=seed, topology=topology)
    except TopologyError as exc:
        fail(str(exc), 2)
        return
    engine = AsyncFleet(
        layout,
        seed=seed,
        tick_s=tick_ms / 1000.0,
        host=host,
        base_port=base_port,
        profile=None if no_register else profile,
        register_timeout_s=register_timeout_s,
    )

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await engine.start()
        except OSError as exc:
            await engine.stop()
            fail(f"cannot listen on {host}: {exc}")
        except RegistrationError as exc:
            await engine.stop()
            fail(f"{exc} (use --no-register to run without Kafka)")
        for spec in layout.devices:
            click.echo(f"{spec.device_id:<16} {spec.kind:<11} {engine.base_url(spec.device_id)}")
        if manifest is not None:
            _write_manifest(manifest, engine)
        where = f"registered on {profile.topics.registry}" if engine.registered else "unregistered"
        click.echo(f"simulate: {len(layout.devices)} devices ready, {where}", err=True)
        click.echo("ready")
        await stop.wait()
        click.echo("simulate: stopping", err=True)
        await engine.stop("shutdown")
        click.echo("simulate: stopped", err=True)

    from pipeconsole import aio

    aio.settle_gc()
    aio.run(run())


def _write_manifest(path: Path, engine: object) -> None:
    from pipeconsole.sim.fleet import AsyncFleet

    assert isinstance(engine, AsyncFleet)
    rows = [
        {
            "device_id": s.device_id,
            "stage": s.stage,
            "kind": s.kind,
            "base_url": engine.base_url(s.device_id),
            "upstream": list(s.upstream),
            "downstream": list(s.downstream),
        }
        for s in engine.layout.devices
    ]
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps({"devices": rows}, indent=2), encoding="utf-8")
    tmp.replace(path)
