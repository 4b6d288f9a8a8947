"""``pipeconsole console``: the TUI against the profile's cluster."""

from __future__ import annotations

import logging

import click

from pipeconsole.cli import fail, profile_options
from pipeconsole.config import Profile

__all__ = ["console"]


@click.command()
@profile_options
def console(profile: Profile) -> None:
    """The operator console (TUI) for the profile's cluster."""
    from pipeconsole.ui.factory import build_app

    try:
        app = build_app(profile, connect=True)
    except (ImportError, RuntimeError) as exc:
        fail(f"cannot start the console: {exc}")
        return
    # The TUI owns the terminal: stderr log handlers would corrupt it. The app installs its
    # own handler that feeds the log view.
    root = logging.getLogger()
    saved = [h for h in root.handlers if isinstance(h, logging.StreamHandler)]
    for h in saved:
        root.removeHandler(h)
    try:
        app.run()
    finally:
        for h in saved:
            root.addHandler(h)
