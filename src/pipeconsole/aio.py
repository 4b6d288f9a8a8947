"""How the long-running processes run: uvloop where it is installed, and a calmer collector.

``pipeconsole dispatch`` and ``pipeconsole simulate`` spend most of their CPU in the event loop
and in aiohttp; uvloop's loop (libuv, in C) takes about 7 % off the dispatch process's CPU per
request (``bench/actors.py``). It is a dependency on Linux and macOS; elsewhere, or when
``PIPECONSOLE_LOOP=asyncio`` is set (to compare, or to rule the loop out when debugging), the
standard loop runs the same code.

:func:`settle_gc` is for those and for the console (TUI, headless and ``status``), once start-up
is over. Allocation-heavy asyncio code (a task, futures, a request and a response per command)
runs CPython's collector with its default thresholds (700, 10, 10) about 70 times per 1,000
requests; in the dispatch process that was 11 % of its CPU (0.66-0.76 s of collections while it
served 10,000 requests, 5 of them full collections of ~40 ms with the GIL held, which also
delays the timer thread). With :data:`GC_THRESHOLDS` it collects twice in the same run
(0.02-0.06 s). Almost everything these services allocate is freed by reference counting; the
collector only finds cycles (exception tracebacks, mostly), and finding them later costs a
little memory, not correctness. The console's ingest of a backlog (``bench/ingest.py``: protobuf
messages, records and model rows by the hundred thousand) gained 18-38 % from the same
thresholds.
"""

from __future__ import annotations

import asyncio
import gc
import os
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["GC_THRESHOLDS", "run", "settle_gc"]

GC_THRESHOLDS = (50_000, 20, 50)
"""``gc.set_threshold`` of the services after start-up (CPython's default: 700, 10, 10)."""

T = TypeVar("T")


def _use_uvloop() -> bool:
    if os.environ.get("PIPECONSOLE_LOOP", "").strip().lower() == "asyncio":
        return False
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)`` on the fastest loop available."""
    if _use_uvloop():
        import uvloop

        return uvloop.run(main)
    return asyncio.run(main)


def settle_gc() -> None:
    """Call once start-up is over: freeze what start-up allocated, then collect less often.

    Objects alive after start-up (modules, classes, the libraries' tables: most of the heap)
    are moved out of the collector's reach; before, a full collection scanned them in ~40 ms
    with the GIL held, which stopped the scheduler's timer thread just as long (measured as
    lateness)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
