"""The simulated fleet (``pipeconsole simulate``): real HTTP devices that behave like a pipeline.

Map of the package:

- ``topology``  who feeds whom: the default seeded layout or a TOML file;
- ``flow``      the deterministic flow model: bounded queues, rates, back-pressure, starvation;
- ``checks``    health from the flow state and the faults;
- ``faults``    chaos faults as leases, and the parsing of ``POST /chaos``;
- ``dedup``     the request log that executes each request id once;
- ``device``    one device's state, bodies and commands;
- ``server``    the aiohttp application of one device (docs/device-api.md);
- ``fleet``     the loop that hosts them all (:class:`Fleet` for sync code, :class:`AsyncFleet`);
- ``registry``  ServiceAdded / ServiceRemoved on the registry topic;
- ``clock``     real or manual time;
- ``cli``       ``pipeconsole simulate``.

Importing this package imports nothing heavy; ``Fleet`` and friends load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipeconsole.sim.clock import ManualClock, RealClock
    from pipeconsole.sim.device import Counters
    from pipeconsole.sim.fleet import AsyncFleet, DeviceHandle, Fleet
    from pipeconsole.sim.topology import Layout

__all__ = [
    "AsyncFleet",
    "Counters",
    "DeviceHandle",
    "Fleet",
    "Layout",
    "ManualClock",
    "RealClock",
]

_WHERE = {
    "AsyncFleet": "pipeconsole.sim.fleet",
    "DeviceHandle": "pipeconsole.sim.fleet",
    "Fleet": "pipeconsole.sim.fleet",
    "Counters": "pipeconsole.sim.device",
    "Layout": "pipeconsole.sim.topology",
    "ManualClock": "pipeconsole.sim.clock",
    "RealClock": "pipeconsole.sim.clock",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(name)
