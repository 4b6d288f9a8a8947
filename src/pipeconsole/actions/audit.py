"""The audit trail: an AuditRecord for every action, refused ones included (DESIGN §6).

Each record goes to two places, in this order:

1. a local append-only JSON-lines log (``O_APPEND``, one ``write`` per line, ``fsync``), at
   ``platformdirs.user_log_path("pipeconsole") / "audit.jsonl"`` or
   ``$PIPECONSOLE_STATE_DIR/audit.jsonl`` when that variable is set (tests, several operators);
2. ``operator-audit-v1`` (not compacted), keyed by principal, with confirmed delivery.

The action layer calls :meth:`Auditor.record` *before* it reports an action done. A failure to
reach the audit topic never hides the action's own result: it comes back in
:class:`AuditNote` and the CLI prints it as a warning; the local line is always there.

Who: the principal is the profile's signing key id, else the SASL user of the profile, else
``os:<user>``; the OS user and host name are recorded beside it. JSON is written with
``ensure_ascii`` so a hostile reason or target cannot put raw control bytes in the file.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import platformdirs

from pipeconsole.config import Profile
from pipeconsole.wire.gen.audit_pb2 import AuditRecord

__all__ = [
    "AuditNote",
    "Auditor",
    "LocalAuditLog",
    "Principal",
    "Sender",
    "audit_log_path",
    "principal_of",
    "state_dir",
]

Outcome = Literal["ACCEPTED", "REFUSED", "FAILED"]

_PREVIEW_MAX = 2000


def state_dir() -> Path:
    """Where pipeconsole keeps local state (outbox); ``PIPECONSOLE_STATE_DIR`` overrides."""
    env = os.environ.get("PIPECONSOLE_STATE_DIR")
    return Path(env) if env else platformdirs.user_state_path("pipeconsole")


def audit_log_path() -> Path:
    env = os.environ.get("PIPECONSOLE_STATE_DIR")
    if env:
        return Path(env) / "audit.jsonl"
    return platformdirs.user_log_path("pipeconsole") / "audit.jsonl"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who acts."""

    principal: str
    """Profile key id, else SASL user, else ``os:<user>``."""
    os_user: str
    host: str


def principal_of(profile: Profile) -> Principal:
    try:
        os_user = getpass.getuser()
    except (KeyError, OSError):
        os_user = f"uid:{os.getuid()}" if hasattr(os, "getuid") else "unknown"
    sasl = profile.kafka.get("sasl.username", "")
    principal = profile.key_id or sasl or f"os:{os_user}"
    return Principal(principal=principal, os_user=os_user, host=socket.gethostname())


class Sender(Protocol):
    """What the auditor needs of a producer (``ConfirmingProducer`` fits)."""

    def send_sync(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | str | None = None,
        headers: Iterable[tuple[str, bytes | str]] | None = None,
        timeout: float | None = None,
    ) -> Any: ...


class LocalAuditLog:
    """The append-only local log: one JSON object per line. Thread-safe."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or audit_log_path()
        self._lock = threading.Lock()

    def append(self, entry: dict[str, Any]) -> None:
        """Write one line and fsync it; raises OSError when the disk says no."""
        line = (json.dumps(entry, ensure_ascii=True, sort_keys=True) + "\n").encode("ascii")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)

    def read(self, limit: int = 1000) -> list[dict[str, Any]]:
        """The last ``limit`` entries (lines that are not JSON objects are skipped)."""
        try:
            lines = self.path.read_text(encoding="utf-8", errors="replace").splitlines()
        except FileNotFoundError:
            return []
        out: list[dict[str, Any]] = []
        for line in lines[-limit:]:
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if isinstance(obj, dict):
                out.append(obj)
        return out


@dataclass(frozen=True, slots=True)
class AuditNote:
    """Where one audit record went."""

    audit_id: str
    local: Path | None
    """The local log it was appended to; None when the local write failed (see ``error``)."""
    topic_offset: tuple[int, int] | None
    """(partition, offset) on operator-audit-v1; None when not confirmed."""
    error: str | None = None
    """Why the record did not reach one of its two places, if it did not."""


def _record_dict(rec: AuditRecord) -> dict[str, Any]:
    return {
        "audit_id": rec.audit_id,
        "time_unix_ms": rec.time_unix_ms,
        "principal": rec.principal,
        "os_user": rec.os_user,
        "host": rec.host,
        "action": rec.action,
        "targets": list(rec.targets),
        "preview": rec.preview,
        "outcome": AuditRecord.Outcome.Name(rec.outcome),
        "reason": rec.reason,
        "profile": rec.profile,
        "request_ids": list(rec.request_ids),
    }


class Auditor:
    """Writes AuditRecords locally and to the audit topic."""

    def __init__(
        self,
        profile: Profile,
        sender: Sender | None,
        *,
        local: LocalAuditLog | None = None,
        principal: Principal | None = None,
        timeout_s: float = 10.0,
        clock: Any = time.time,
    ) -> None:
        self.profile = profile
        self.sender = sender
        """None: local log only (e.g. the broker is known to be unreachable)."""
        self.local = local or LocalAuditLog()
        self.principal = principal or principal_of(profile)
        self.timeout_s = timeout_s
        self._clock = clock

    def build(
        self,
        action: str,
        outcome: Outcome,
        *,
        targets: Sequence[str] = (),
        preview: str = "",
        reason: str = "",
        request_ids: Sequence[str] = (),
    ) -> AuditRecord:
        if len(preview) > _PREVIEW_MAX:
            preview = preview[:_PREVIEW_MAX] + "…"
        return AuditRecord(
            audit_id=str(uuid.uuid4()),
            time_unix_ms=int(self._clock() * 1000),
            principal=self.principal.principal,
            os_user=self.principal.os_user,
            host=self.principal.host,
            action=action,
            targets=list(targets),
            preview=preview,
            outcome=AuditRecord.Outcome.Value(outcome),
            reason=reason,
            profile=self.profile.name,
            request_ids=list(request_ids),
        )

    def record(
        self,
        action: str,
        outcome: Outcome,
        *,
        targets: Sequence[str] = (),
        preview: str = "",
        reason: str = "",
        request_ids: Sequence[str] = (),
    ) -> AuditNote:
        """Append locally, then produce with confirmation; never raises for I/O."""
        rec = self.build(
            action,
            outcome,
            targets=targets,
            preview=preview,
            reason=reason,
            request_ids=request_ids,
        )
        return self.write(rec)

    def write(self, rec: AuditRecord) -> AuditNote:
        errors: list[str] = []
        local: Path | None = self.local.path
        try:
            self.local.append(_record_dict(rec))
        except OSError as exc:
            local = None
            errors.append(f"local audit log {self.local.path}: {exc}")
        where: tuple[int, int] | None = None
        if self.sender is not None:
            try:
                d = self.sender.send_sync(
                    self.profile.topics.audit,
                    rec.SerializeToString(),
                    key=rec.principal,
                    timeout=self.timeout_s,
                )
                where = (int(d.partition), int(d.offset))
            except TimeoutError:
                errors.append(
                    f"audit topic {self.profile.topics.audit}: no ack within {self.timeout_s:g} s"
                )
            except Exception as exc:  # DeliveryError and the like: reported, never raised
                errors.append(f"audit topic {self.profile.topics.audit}: {_why(exc)}")
        else:
            errors.append("audit topic not written (no producer)")
        return AuditNote(rec.audit_id, local, where, "; ".join(errors) or None)


def _why(exc: BaseException) -> str:
    text = str(exc)
    if not text:
        text = type(exc).__name__
    return text
