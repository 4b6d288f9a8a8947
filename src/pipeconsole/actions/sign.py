"""Signed requests: an HMAC-SHA256 token over the canonical request (DESIGN §6).

The map:

- :func:`canonical` — the exact bytes that are signed (defined below, language-neutral);
- :func:`sign` — a copy of a request with a nonce and a ``token``;
- :class:`Verifier` — what the device actors call on every request: ``None`` when the token is
  good, otherwise the reason (:data:`REASONS`), which the actor reports as REJECTED;
- :class:`NonceCache` — the bounded memory of nonces already used;
- :func:`load_keys` — the ``--keys FILE`` of ``pipeconsole dispatch``.

Canonical form (version 1)
--------------------------
For a message ``m`` (``DeviceRequest`` or ``CancelRequest``), ``canonical(m)`` is::

    b"pipeconsole-canonical-v1\\n" + <full message name, e.g. pipeconsole.v1.DeviceRequest> + b"\\n"
    then, for every field of the message descriptor in ascending field number, except ``token``:
        <field number in decimal> b":" <netstring of the field's value>
    where netstring(x) = <len(x) in decimal> b":" x b","  and the value bytes are
        string           its UTF-8 bytes                  (an unset string is b"")
        bytes            the bytes as they are
        enum, integer    the decimal number (b"0" when unset)
        bool             b"1" or b"0"
        map<str,str>     the concatenation, over entries sorted by the UTF-8 bytes of the key,
                         of netstring(key) + netstring(value)
        message (QoS)    the canonical body of the sub-message: the same field-by-field
                         encoding (no prefix line), the empty body when unset

Every field takes part, present or not, so a field cannot be moved, dropped or added without
changing the bytes; lengths make every boundary unambiguous. proto3 does not distinguish an
unset scalar from its default, and neither does this form.

Token (version 1)
-----------------
``token = "v1." + key_id + "." + expires_unix_ms + "." + hex(HMAC-SHA256(secret, mac_input))``
with ``mac_input = b"v1\\n" + key_id + b"\\n" + expires_unix_ms + b"\\n" + canonical(m)``.
``key_id`` matches ``[A-Za-z0-9_-]{1,64}`` (so ``.`` separates unambiguously); the secret is the
UTF-8 bytes of the configured string. The nonce is the message's own ``nonce`` field (part of
the canonical form), so it is covered by the MAC.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TypeVar

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

__all__ = [
    "REASONS",
    "KeyFileError",
    "NonceCache",
    "Verifier",
    "canonical",
    "load_keys",
    "parse_token",
    "sign",
]

M = TypeVar("M", bound=Message)

_PREFIX: Final = b"pipeconsole-canonical-v1\n"
_KEY_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_TOKEN = re.compile(r"v1\.([A-Za-z0-9_-]{1,64})\.([0-9]{1,15})\.([0-9a-f]{64})")

REASONS: Final = {
    "unsigned": "unsigned: the request carries no token",
    "malformed": "malformed token",
    "unknown_key": "unknown key",
    "bad_signature": "bad signature: the request was altered or signed with another secret",
    "expired": "expired token",
    "too_long": "token lifetime longer than the verifier accepts",
    "no_nonce": "missing nonce",
    "nonce_reused": "reused nonce",
    "nonce_cache_full": "nonce cache full: too many live tokens",
}
"""Reason codes and the text a verifier returns (the text starts with a stable phrase)."""


def _netstring(data: bytes) -> bytes:
    return str(len(data)).encode() + b":" + data + b","


def _value_bytes(fd: FieldDescriptor, value: object) -> bytes:
    if fd.type == FieldDescriptor.TYPE_STRING:
        assert isinstance(value, str)
        return value.encode("utf-8")
    if fd.type == FieldDescriptor.TYPE_BYTES:
        assert isinstance(value, bytes)
        return value
    if fd.type == FieldDescriptor.TYPE_BOOL:
        return b"1" if value else b"0"
    if fd.type == FieldDescriptor.TYPE_MESSAGE:
        assert isinstance(value, Message)
        return _body(value, skip=None)
    if isinstance(value, int):
        return str(value).encode()
    raise TypeError(f"canonical form has no rule for field {fd.full_name}")


def _field_bytes(msg: Message, fd: FieldDescriptor) -> bytes:
    value = getattr(msg, fd.name)
    if fd.message_type is not None and fd.message_type.GetOptions().map_entry:
        key_fd = fd.message_type.fields_by_name["key"]
        val_fd = fd.message_type.fields_by_name["value"]
        entries = sorted(
            ((_value_bytes(key_fd, k), _value_bytes(val_fd, v)) for k, v in value.items()),
            key=lambda kv: kv[0],
        )
        return b"".join(_netstring(k) + _netstring(v) for k, v in entries)
    if fd.is_repeated:
        return b"".join(_netstring(_value_bytes(fd, v)) for v in value)
    return _value_bytes(fd, value)


def _body(msg: Message, skip: str | None) -> bytes:
    parts = []
    fds: Sequence[Any] = msg.DESCRIPTOR.fields
    for fd in sorted(fds, key=lambda f: f.number):
        if fd.name == skip:
            continue
        parts.append(str(fd.number).encode() + b":" + _netstring(_field_bytes(msg, fd)))
    return b"".join(parts)


def canonical(msg: Message) -> bytes:
    """The bytes a token signs: every field of ``msg`` except ``token`` (module docstring)."""
    return _PREFIX + msg.DESCRIPTOR.full_name.encode() + b"\n" + _body(msg, skip="token")


def _mac(secret: str | bytes, key_id: str, expires_ms: int, msg: Message) -> str:
    key = secret.encode("utf-8") if isinstance(secret, str) else secret
    data = b"v1\n" + key_id.encode() + b"\n" + str(expires_ms).encode() + b"\n" + canonical(msg)
    return hmac.new(key, data, hashlib.sha256).hexdigest()


def new_nonce() -> str:
    """128 random bits, hex."""
    return secrets.token_hex(16)


def sign(
    msg: M,
    key_id: str,
    secret: str | bytes,
    ttl: float = 300.0,
    *,
    clock: Callable[[], float] = time.time,
) -> M:
    """A signed copy of ``msg``: a fresh nonce when it has none, and a token valid ``ttl`` s.

    Raises ``ValueError`` for a key id outside ``[A-Za-z0-9_-]{1,64}``, an empty secret or a
    non-positive ttl (configuration errors, not network input).
    """
    if not _KEY_ID.fullmatch(key_id):
        raise ValueError(f"key id {key_id!r} must match [A-Za-z0-9_-]{{1,64}}")
    if not secret:
        raise ValueError("the signing secret is empty")
    if ttl <= 0:
        raise ValueError("ttl must be positive")
    out = type(msg)()
    out.CopyFrom(msg)
    if not getattr(out, "nonce", ""):
        out.nonce = new_nonce()  # type: ignore[attr-defined]
    out.token = ""  # type: ignore[attr-defined]
    expires_ms = int((clock() + ttl) * 1000)
    out.token = f"v1.{key_id}.{expires_ms}.{_mac(secret, key_id, expires_ms, out)}"  # type: ignore[attr-defined]
    return out


@dataclass(frozen=True, slots=True)
class ParsedToken:
    key_id: str
    expires_ms: int
    mac: str


def parse_token(token: str) -> ParsedToken | None:
    """The parts of a v1 token, or None when it is not one."""
    m = _TOKEN.fullmatch(token)
    if m is None:
        return None
    return ParsedToken(m.group(1), int(m.group(2)), m.group(3))


@dataclass
class NonceCache:
    """Nonces seen while their tokens are alive: ``(key_id, nonce) -> (expiry ms, position)``.

    Bounded: an entry is forgotten once its token has expired (from then on the expiry check
    rejects a replay by itself), and when ``max_entries`` live nonces are held the cache
    refuses new ones (fail closed) rather than forget a live one, which would let a replay
    through. Thread-safe.
    """

    max_entries: int = 1_000_000
    """Live nonces held at most; with a 5 min ttl that is ~3000 signed requests/s."""
    _seen: dict[tuple[str, str], tuple[int, str | None]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _next_sweep_ms: int = 0

    def admit(
        self, key_id: str, nonce: str, expires_ms: int, now_ms: int, position: str | None
    ) -> str | None:
        """Record the nonce; None when new (or the same position again), else a reason code.

        ``position`` identifies where the message was read (``topic/partition/offset``): the
        same record delivered twice (a rebalance, a restart of the reader) is a redelivery,
        not a replay, and is admitted again; the same nonce at another position is not.
        """
        k = (key_id, nonce)
        with self._lock:
            if now_ms >= self._next_sweep_ms or len(self._seen) >= self.max_entries:
                self._sweep(now_ms)
            old = self._seen.get(k)
            if old is not None and old[0] > now_ms:
                if position is not None and old[1] == position:
                    return None
                return "nonce_reused"
            if len(self._seen) >= self.max_entries:
                return "nonce_cache_full"
            self._seen[k] = (expires_ms, position)
            return None

    def _sweep(self, now_ms: int) -> None:
        self._seen = {k: v for k, v in self._seen.items() if v[0] > now_ms}
        self._next_sweep_ms = now_ms + 10_000

    def __len__(self) -> int:
        return len(self._seen)


class Verifier:
    """Checks tokens against the operators' keys. Call :meth:`verify`, or the object itself.

    Order of checks: a token at all, its shape, a known key id, the signature (constant-time),
    the expiry, the nonce. The nonce is remembered only once the signature is good, so forged
    messages cannot use up (or probe) the cache.
    """

    def __init__(
        self,
        keys: Mapping[str, str | bytes],
        clock: Callable[[], float] = time.time,
        nonce_cache: NonceCache | None = None,
        *,
        max_ttl_s: float = 3600.0,
        skew_s: float = 5.0,
    ) -> None:
        self._keys = dict(keys)
        self._clock = clock
        self.nonces = nonce_cache if nonce_cache is not None else NonceCache()
        """The nonce memory (one per verifier unless shared)."""
        self.max_ttl_s = max_ttl_s
        """Tokens that expire further ahead than this are refused (keeps the cache bounded)."""
        self.skew_s = skew_s
        """Clock skew tolerated between the issuer and the verifier."""

    def verify(self, msg: Message, *, position: str | None = None) -> str | None:
        """None when ``msg`` is validly signed, else the reason (a line from :data:`REASONS`)."""
        code = self.check(msg, position=position)
        return None if code is None else REASONS[code]

    __call__ = verify

    def check(self, msg: Message, *, position: str | None = None) -> str | None:
        """Like :meth:`verify` but returns the reason code (a key of :data:`REASONS`)."""
        token = getattr(msg, "token", "")
        if not token:
            return "unsigned"
        parsed = parse_token(token)
        if parsed is None:
            return "malformed"
        secret = self._keys.get(parsed.key_id)
        if secret is None:
            return "unknown_key"
        want = _mac(secret, parsed.key_id, parsed.expires_ms, msg)
        if not hmac.compare_digest(want, parsed.mac):
            return "bad_signature"
        now_ms = int(self._clock() * 1000)
        if parsed.expires_ms + int(self.skew_s * 1000) <= now_ms:
            return "expired"
        if parsed.expires_ms - now_ms > int((self.max_ttl_s + self.skew_s) * 1000):
            return "too_long"
        nonce = getattr(msg, "nonce", "")
        if not nonce:
            return "no_nonce"
        return self.nonces.admit(
            parsed.key_id,
            nonce,
            parsed.expires_ms + int(self.skew_s * 1000),
            now_ms,
            position,
        )


class KeyFileError(ValueError):
    """The keys file cannot be used; the message names the file and why."""


def load_keys(path: Path) -> dict[str, str]:
    """Operator keys from a TOML file: a ``[keys]`` table of ``key_id = "secret"``."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyFileError(f"{path}: cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise KeyFileError(f"{path}: not valid TOML: {exc}") from None
    table = raw.get("keys")
    if not isinstance(table, dict) or not table:
        raise KeyFileError(f'{path}: needs a non-empty [keys] table of key_id = "secret"')
    out: dict[str, str] = {}
    for k, v in table.items():
        if not _KEY_ID.fullmatch(k):
            raise KeyFileError(f"{path}: key id {k!r} must match [A-Za-z0-9_-]{{1,64}}")
        if not isinstance(v, str) or not v:
            raise KeyFileError(f"{path}: keys.{k} must be a non-empty string")
        out[k] = v
    return out
