"""The actors' HTTP client: aiohttp sessions and a capped body read.

One :class:`aiohttp.ClientSession` serves every command attempt of a service: its
``TCPConnector`` holds at most ``limit`` connections overall (the in-flight bound) and
``limit_per_host`` per device (each device listens on its own host:port). Health checks use a
second, smaller session so that a device whose command slots are all held by hanging requests
can still be checked (and found hanging) within the check deadline.

Both sessions send bodies as they are: no ``Content-Type`` is invented (aiohttp would add
``application/octet-stream`` to every POST), responses are not decompressed (a compressed body
would let a device make the actor inflate far more than the read cap), no redirects are
followed, no cookies are kept, and no proxy or ``.netrc`` from the environment is used.

httpx was used before; its connection pool scans every pooled connection on each request, which
took 75 % of the dispatch process's CPU and capped throughput at ~250 requests/s.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable

import aiohttp

__all__ = ["NO_CEIL", "ConnectorFactory", "new_session", "read_capped", "tcp_connector"]

NO_CEIL = 1e9
"""``ClientTimeout.ceil_threshold`` that turns off aiohttp's rounding of timeouts of 5 s and
more up to the next whole second: a deadline is a deadline."""

ConnectorFactory = Callable[[int, int], aiohttp.BaseConnector]
"""``(limit, limit_per_host) -> connector``: the seam tests use to change how devices are
reached (the default is a plain :class:`aiohttp.TCPConnector`)."""


def tcp_connector(
    limit: int, limit_per_host: int, tls: ssl.SSLContext | None = None
) -> aiohttp.TCPConnector:
    """The default connector: bounded, keep-alive, the shared TLS context for https devices."""
    return aiohttp.TCPConnector(
        limit=limit,
        limit_per_host=limit_per_host,
        ssl=tls if tls is not None else True,
        keepalive_timeout=30.0,
    )


def new_session(connector: aiohttp.BaseConnector) -> aiohttp.ClientSession:
    """A session that sends exactly what it is given and reads bodies raw."""
    return aiohttp.ClientSession(
        connector=connector,
        connector_owner=True,
        skip_auto_headers=("Content-Type", "Accept-Encoding"),
        cookie_jar=aiohttp.DummyCookieJar(),  # devices' cookies are not kept (nor filtered)
        auto_decompress=False,
        trust_env=False,
        raise_for_status=False,
        timeout=aiohttp.ClientTimeout(total=None),
    )


async def read_capped(content: aiohttp.StreamReader, cap: int) -> tuple[bytes, bool]:
    """Up to ``cap`` bytes of a body; ``(data, complete)`` where ``complete`` is False when
    more followed (the caller then closes the connection instead of reading the rest)."""
    chunks: list[bytes] = []
    size = 0
    while size < cap:
        chunk = await content.read(cap - size)
        if not chunk:
            return b"".join(chunks), True
        chunks.append(chunk)
        size += len(chunk)
    if content.at_eof():
        return b"".join(chunks), True
    # One more read tells "exactly cap bytes" from "more than cap" without buffering much.
    extra = await content.read(1)
    return b"".join(chunks), not extra
