"""``pipeconsole dispatch``: run one device-actor instance until SIGINT/SIGTERM.

Run N of them with the same ``--group`` and Kafka splits the devices between them.
"""

from __future__ import annotations

import asyncio
import signal
from dataclasses import replace
from pathlib import Path

import click

from pipeconsole.actors.retry import RetryPolicy
from pipeconsole.actors.settings import DispatchSettings, default_actor_id
from pipeconsole.cli import FiniteFloat, fail, not_blank, profile_options
from pipeconsole.config import Profile

__all__ = ["dispatch"]


@click.command()
@profile_options
@click.option(
    "--group",
    default="pipeconsole-dispatch",
    show_default=True,
    callback=not_blank,
    help="Consumer group.",
)
@click.option(
    "--actor-id",
    default=None,
    callback=not_blank,
    help="Name of this instance (default: host and pid).",
)
@click.option(
    "--check-interval",
    type=FiniteFloat(min=0.05),
    default=None,
    help="Health check period, seconds (default: the profile's).",
)
@click.option("--check-timeout", type=FiniteFloat(min=0.01), default=2.0, show_default=True)
@click.option("--status-interval", type=FiniteFloat(min=0.05), default=5.0, show_default=True)
@click.option("--misfire-threshold", type=FiniteFloat(min=0), default=5.0, show_default=True)
@click.option(
    "--per-device",
    type=click.IntRange(min=1),
    default=8,
    show_default=True,
    help="In-flight per device.",
)
@click.option(
    "--pool", type=click.IntRange(min=1), default=128, show_default=True, help="In-flight overall."
)
@click.option("--high-water", type=click.IntRange(min=1), default=16, show_default=True)
@click.option("--low-water", type=click.IntRange(min=0), default=4, show_default=True)
@click.option("--retry-ratio", type=FiniteFloat(0, 10), default=0.1, show_default=True)
@click.option("--retry-min-per-s", type=FiniteFloat(min=0), default=0.2, show_default=True)
@click.option("--max-attempts", type=click.IntRange(1, 100), default=3, show_default=True)
@click.option(
    "--session-timeout-ms",
    type=click.IntRange(1000, 3_600_000),
    default=10000,
    show_default=True,
)
@click.option(
    "--keys",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Operator keys (TOML [keys] table): every request and cancel must then be signed.",
)
def dispatch(
    profile: Profile,
    group: str,
    actor_id: str | None,
    check_interval: float | None,
    check_timeout: float,
    status_interval: float,
    misfire_threshold: float,
    per_device: int,
    pool: int,
    high_water: int,
    low_water: int,
    retry_ratio: float,
    retry_min_per_s: float,
    max_attempts: int,
    session_timeout_ms: int,
    keys: Path | None,
) -> None:
    """Run the device actors: health checks and requests for the devices this instance owns."""
    from pipeconsole.actors.service import DispatchService
    from pipeconsole.kafka.admin import AdminError, wait_ready

    if low_water >= high_water:
        fail(f"--low-water ({low_water}) must be below --high-water ({high_water})", 2)
    settings = DispatchSettings(
        group=group,
        actor_id=actor_id or default_actor_id(),
        check_interval_s=check_interval or profile.check_interval_s,
        check_timeout_s=check_timeout,
        status_interval_s=status_interval,
        misfire_threshold_s=misfire_threshold,
        per_device_in_flight=per_device,
        in_flight_limit=pool,
        high_water=high_water,
        low_water=low_water,
        retry_ratio=retry_ratio,
        retry_min_per_s=retry_min_per_s,
        retry=replace(RetryPolicy(), default_max_attempts=max_attempts),
        session_timeout_ms=session_timeout_ms,
    )
    verifier = None
    if keys is not None:
        from pipeconsole.actions.sign import KeyFileError, Verifier, load_keys

        try:
            verifier = Verifier(load_keys(keys))
        except KeyFileError as exc:
            fail(str(exc), 2)
    try:
        wait_ready(profile, timeout=15.0)
    except AdminError as exc:
        fail(str(exc))
    service = DispatchService(profile, settings, verifier=verifier)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await service.run(stop)

    signed = "signed requests only" if verifier is not None else "unsigned requests accepted"
    click.echo(
        f"dispatch {settings.actor_id}: group {group} on {profile.bootstrap} ({signed})", err=True
    )
    from pipeconsole import aio

    aio.settle_gc()
    aio.run(main())
