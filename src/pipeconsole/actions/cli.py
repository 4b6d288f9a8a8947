"""``pipeconsole request ...``: the operator's request commands.

``validate`` comes from ``pipeconsole.wire.cli`` (the wire layer owns the decode and validate
rules it runs); ``schedule``, ``cancel`` and ``replay`` are added to this group by their modules.
"""

from __future__ import annotations

import click

from pipeconsole.wire.cli import validate

__all__ = ["request"]


@click.group("request")
def request() -> None:
    """Validate, schedule, cancel and replay DeviceRequests."""


request.add_command(validate)
