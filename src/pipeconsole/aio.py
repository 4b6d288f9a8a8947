"""How the long-running services run their event loop: uvloop where it is installed.

``pipeconsole dispatch`` and ``pipeconsole simulate`` spend most of their CPU in the event loop
and in aiohttp; uvloop's loop (libuv, in C) takes 7-10 % off the dispatch process's CPU per
request (``bench/actors.py``). It is a dependency on Linux and macOS; elsewhere, or when
``PIPECONSOLE_LOOP=asyncio`` is set (to compare, or to rule the loop out when debugging), the
standard loop runs the same code.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["loop_name", "run"]

T = TypeVar("T")


def _use_uvloop() -> bool:
    if os.environ.get("PIPECONSOLE_LOOP", "").strip().lower() == "asyncio":
        return False
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


def loop_name() -> str:
    """``uvloop`` or ``asyncio``: the loop :func:`run` uses."""
    return "uvloop" if _use_uvloop() else "asyncio"


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)`` on the fastest loop available."""
    if _use_uvloop():
        import uvloop

        return uvloop.run(main)
    return asyncio.run(main)
