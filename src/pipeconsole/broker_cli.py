"""``pipeconsole broker``, ``topics ensure`` and ``doctor``: the cluster plumbing commands."""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path

import click

from pipeconsole.broker import BrokerError, EmbeddedBroker
from pipeconsole.cli import fail, profile_options, quiet_librdkafka
from pipeconsole.config import Profile

__all__ = ["broker", "doctor", "topics"]


@click.command()
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=0,
    help="Port to listen on (default: a free one).",
)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--no-topics", is_flag=True, help="Do not create pipeconsole's topics.")
@click.option(
    "--cert",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Serve TLS with this certificate (PEM; needs --key).",
)
@click.option(
    "--key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The certificate's private key (PEM).",
)
@click.option(
    "--ca",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="With TLS: the CA to trust when creating the topics.",
)
def broker(
    port: int,
    host: str,
    no_topics: bool,
    cert: Path | None,
    key: Path | None,
    ca: Path | None,
) -> None:
    """Run the embedded Kafka-compatible broker (Tansu, memory-only) in the foreground."""
    from pipeconsole.kafka.admin import AdminError, ensure_topics

    if (cert is None) != (key is None):
        fail("--cert and --key go together", code=2)
    if cert is not None and ca is None and not no_topics:
        fail("with --cert, give --ca (the CA clients trust) to create topics, or --no-topics", 2)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        with EmbeddedBroker(port, host, cert=cert, key=key) as b:
            if cert is not None and ca is not None:
                admin = Profile(
                    bootstrap=b.bootstrap,
                    kafka={"security.protocol": "SSL", "ssl.ca.location": str(ca)},
                )
            else:
                admin = Profile(bootstrap=b.bootstrap)
            if not no_topics:
                try:
                    ensure_topics(admin, admin.topics)
                except AdminError as exc:
                    fail(str(exc))
            proto = "TLS" if b.tls else "plaintext"
            click.echo(f"broker listening on {b.bootstrap} ({proto}, memory-only; Ctrl-C stops it)")
            sys.stdout.flush()
            try:
                while not stop.wait(0.5):
                    if not b.running():
                        fail("the broker exited unexpectedly" + b.log_tail())
            except KeyboardInterrupt:
                pass
            click.echo("stopping broker")
    except BrokerError as exc:
        fail(str(exc))


@click.group()
def topics() -> None:
    """Manage pipeconsole's topics."""


@topics.command("ensure")
@profile_options
def ensure(profile: Profile) -> None:
    """Create the topics of DESIGN §1 that do not exist yet."""
    from pipeconsole.kafka.admin import AdminError, ensure_topics

    quiet_librdkafka()  # an unreachable cluster: one line saying so, not every retry
    try:
        created = ensure_topics(profile, profile.topics)
    except AdminError as exc:
        fail(str(exc))
        return
    for name in created:
        click.echo(f"created {name}")
    click.echo(f"{len(profile.topics.all_names())} topics ready on {profile.bootstrap}")


@click.command()
@profile_options
def doctor(profile: Profile) -> None:
    """Check the configuration, that the cluster and topics are reachable, and what runs: the
    devices registered, the device actors and device states of the last 30 s."""
    from pipeconsole.kafka.admin import AdminError, wait_ready
    from pipeconsole.kafka.client import client_settings, redact

    quiet_librdkafka()  # the verdict says why the cluster is unreachable, once
    click.echo(f"profile {profile.name}: role={profile.role} read_only={profile.read_only}")
    click.echo(f"settings: {redact(client_settings(profile))}")
    try:
        wait_ready(profile, timeout=10.0)
    except AdminError as exc:
        fail(f"cluster {profile.bootstrap}: {exc}")
    click.echo(f"cluster {profile.bootstrap}: reachable")
    from pipeconsole.kafka.reader import AssignReader, ReaderError

    missing = []
    for name in profile.topics.all_names():
        try:
            AssignReader(profile, [name], "end").close()
        except ReaderError:
            missing.append(name)
    if missing:
        fail(f"missing topics: {', '.join(missing)} (run: pipeconsole topics ensure)")
    click.echo("topics: all present")
    from pipeconsole.fleetcheck import fleet_facts, report

    try:
        facts = fleet_facts(profile)
    except ReaderError as exc:
        fail(f"cannot read the fleet's topics: {exc}")
        return
    for line in report(facts):
        click.echo(line)
