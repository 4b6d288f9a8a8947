"""``pipeconsole console``: the TUI against the profile's cluster, or a headless scripted run."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from pipeconsole.cli import fail, profile_options
from pipeconsole.config import Profile
from pipeconsole.ui.app import PipeConsoleApp

__all__ = ["console", "run_app", "run_script"]


def run_app(app: PipeConsoleApp) -> None:
    """Run ``app`` on this terminal.

    The TUI owns the terminal: stderr log handlers would corrupt it, so they are set aside
    while it runs; the app installs its own handler that feeds the log view.
    """
    root = logging.getLogger()
    saved = [h for h in root.handlers if isinstance(h, logging.StreamHandler)]
    for h in saved:
        root.removeHandler(h)
    from pipeconsole import aio

    aio.settle_gc()
    try:
        app.run()
    finally:
        for h in saved:
            root.addHandler(h)


def run_script(
    profile: Profile, script: Path, out: Path, extra: dict[str, object] | None = None
) -> int:
    """A headless scripted run (``--headless``); prints the verdict, returns the exit status."""
    from pipeconsole import aio
    from pipeconsole.ui.headless import run_headless

    aio.settle_gc()
    run = run_headless(profile, script, out, extra_report=extra)
    click.echo(f"{run.result}: {len(run.steps)} steps, report {out / 'report.json'}")
    if run.reason:
        click.echo(run.reason, err=True)
    return run.exit_code


@click.command()
@profile_options
@click.option("--headless", is_flag=True, help="Run --script instead of the TUI (for CI).")
@click.option(
    "--script",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Headless script (docs/headless.md).",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where the headless run writes report.json and its SVG snapshots.",
)
def console(profile: Profile, headless: bool, script: Path | None, out: Path | None) -> None:
    """The operator console (TUI) for the profile's cluster."""
    if headless:
        if script is None or out is None:
            fail("--headless needs --script FILE and --out DIR", 2)
        assert script is not None and out is not None
        raise SystemExit(run_script(profile, script, out))
    from pipeconsole.ui.factory import build_app

    try:
        app = build_app(profile, connect=True)
    except (ImportError, RuntimeError) as exc:
        fail(f"cannot start the console: {exc}")
        return
    run_app(app)
