"""``pipeconsole``: argv -> profile -> the command's entry point; exit codes.

Each part of the system owns its command in its own ``cli`` module (``sim/cli.py`` has
``simulate``); this module routes to them lazily, so ``pipeconsole --help`` imports nothing
heavy and a part can be changed without touching the others.

Exit codes: 0 success; 1 failure (unreachable broker, unreadable input); 2 invalid input or
usage (click's own usage errors are 2 as well); 3 and 4 belong to ``chaos run`` (hypothesis
did not hold; aborted by a guardrail).
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import logging
import math
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from pipeconsole.config import ConfigError, Profile, load_config

__all__ = [
    "FiniteFloat",
    "fail",
    "main",
    "not_blank",
    "profile_options",
    "quiet_librdkafka",
    "resolve_profile",
]

F = TypeVar("F", bound=Callable[..., Any])

# command name -> "module:attribute" of a click.Command
COMMANDS: dict[str, str] = {
    "console": "pipeconsole.ui.cli:console",
    "demo": "pipeconsole.demo:demo",
    "broker": "pipeconsole.broker_cli:broker",
    "dispatch": "pipeconsole.actors.cli:dispatch",
    "simulate": "pipeconsole.sim.cli:simulate",
    "request": "pipeconsole.actions.cli:request",
    "chaos": "pipeconsole.chaos.cli:chaos",
    "status": "pipeconsole.status:status",
    "topics": "pipeconsole.broker_cli:topics",
    "doctor": "pipeconsole.broker_cli:doctor",
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported only when used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(n for n in COMMANDS if self._available(n))

    def _available(self, name: str) -> bool:
        module = COMMANDS[name].split(":")[0]
        try:
            return importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:  # the parent package is not there either
            return False

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None or not self._available(cmd_name):
            return None
        module, attr = target.split(":")
        cmd = getattr(importlib.import_module(module), attr)
        assert isinstance(cmd, click.Command)
        return cmd


def not_blank(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A click callback: a text option given must not be empty (a consumer group, an id)."""
    if value is not None and not value.strip():
        raise click.BadParameter("must not be empty")
    return value


def fail(message: str, code: int = 1) -> None:
    """Print ``pipeconsole: error: message`` on stderr and exit with ``code``."""
    click.echo(f"pipeconsole: error: {message}", err=True)
    sys.exit(code)


def resolve_profile(profile: str | None, bootstrap: str | None) -> Profile:
    try:
        return load_config().profile(profile).with_bootstrap(bootstrap)
    except ConfigError as exc:
        fail(str(exc), 2)
        raise AssertionError("unreachable") from None


def profile_options(f: F) -> F:
    """``--profile`` and ``--bootstrap``, resolved into a ``profile: Profile`` argument."""

    @click.option("--profile", "profile_name", default=None, help="Profile from the config file.")
    @click.option(
        "--bootstrap", default=None, help="Kafka bootstrap servers (overrides the profile)."
    )
    @functools.wraps(f)
    def wrapper(*args: Any, profile_name: str | None, bootstrap: str | None, **kw: Any) -> Any:
        return f(*args, profile=resolve_profile(profile_name, bootstrap), **kw)

    return wrapper  # type: ignore[return-value]


@click.group(cls=LazyGroup, invoke_without_command=True)
@click.option("-v", "--verbose", count=True, help="More logging on stderr (not in the TUI).")
@click.version_option(package_name="pipeconsole")
@click.pass_context
def cli(ctx: click.Context, verbose: int) -> None:
    """Operator console for reactive, Kafka-based streaming pipelines."""
    level = logging.WARNING - 10 * verbose
    logging.basicConfig(
        level=max(level, logging.DEBUG), format="%(levelname)s %(name)s: %(message)s"
    )
    if ctx.invoked_subcommand is None:
        console = cli.get_command(ctx, "console")
        if console is None:
            fail("the console is not available in this build")
        assert console is not None
        ctx.invoke(console)


class FiniteFloat(click.FloatRange):
    """``click.FloatRange`` that also refuses ``nan`` and infinities: a range check passes
    ``nan`` (every comparison with it is false), and ``--check-timeout inf`` would mean never."""

    name = "number"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        got = super().convert(value, param, ctx)
        if not math.isfinite(got):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return got


def quiet_librdkafka() -> None:
    """For one-shot commands: librdkafka logs every failed connect attempt (dozens a second
    against a dead broker) and the command's own error says it once; ``-v`` shows them all."""
    if not logging.getLogger().isEnabledFor(logging.INFO):
        logging.getLogger("pipeconsole.librdkafka").setLevel(logging.CRITICAL)


def main(argv: list[str] | None = None) -> None:
    cli.main(args=argv, prog_name="pipeconsole")
