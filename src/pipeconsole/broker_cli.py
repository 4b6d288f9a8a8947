"""``pipeconsole broker``, ``topics ensure`` and ``doctor``: the cluster plumbing commands."""

from __future__ import annotations

import signal
import sys
import threading

import click

from pipeconsole.broker import BrokerError, EmbeddedBroker
from pipeconsole.cli import fail, profile_options
from pipeconsole.config import Profile

__all__ = ["broker", "doctor", "topics"]


@click.command()
@click.option("--port", type=int, default=0, help="Port to listen on (default: a free one).")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--no-topics", is_flag=True, help="Do not create pipeconsole's topics.")
def broker(port: int, host: str, no_topics: bool) -> None:
    """Run the embedded Kafka-compatible broker (Tansu, memory-only) in the foreground."""
    from pipeconsole.kafka.admin import AdminError, ensure_topics

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        with EmbeddedBroker(port, host) as b:
            if not no_topics:
                try:
                    ensure_topics(b.bootstrap, Profile().topics)
                except AdminError as exc:
                    fail(str(exc))
            click.echo(f"broker listening on {b.bootstrap} (memory-only; Ctrl-C stops it)")
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
    """Check the configuration and that the cluster and topics are reachable."""
    from pipeconsole.kafka.admin import AdminError, wait_ready
    from pipeconsole.kafka.client import client_settings, redact

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
