"""Profiles: how pipeconsole reaches a cluster and what it may do there.

Profiles live in one TOML file at ``platformdirs.user_config_path("pipeconsole") / "config.toml"``
(``PIPECONSOLE_CONFIG`` points elsewhere, for tests and for operators with several files; a file
it names must exist, and ``/dev/null`` is an empty one)::

    default_profile = "local"

    [profiles.local]
    bootstrap = "127.0.0.1:9092"
    role = "operator"            # viewer | operator | chaos
    read_only = false

    [profiles.local.kafka]       # any librdkafka key passes through
    "security.protocol" = "SASL_SSL"

    [profiles.local.topics]      # names and partition counts
    request = "device-request-v1"
    request_partitions = 6

Loading never raises on bad content: :func:`load_config` returns a :class:`Config` or raises
:class:`ConfigError`, whose message names the file, the field and why.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import platformdirs

__all__ = [
    "ROLES",
    "Config",
    "ConfigError",
    "Profile",
    "Slo",
    "Topics",
    "config_path",
    "load_config",
]

ROLES = ("viewer", "operator", "chaos")
"""Roles in increasing power: a viewer reads, an operator acts on requests, chaos runs faults."""


class ConfigError(ValueError):
    """The configuration file cannot be used; the message says where and why."""


@dataclass(frozen=True, slots=True)
class Topics:
    """Topic names and partition counts (DESIGN §1)."""

    registry: str = "device-registry-v1"
    state: str = "device-state-v1"
    request: str = "device-request-v1"
    control: str = "device-control-v1"
    """Always created with the same partition count as ``request`` (co-partitioned by key)."""
    response: str = "device-response-v1"
    dlq: str = "device-request-dlq-v1"
    chaos: str = "chaos-experiment-v1"
    audit: str = "operator-audit-v1"
    request_partitions: int = 6
    """Partitions of ``request`` and ``control``: the unit of work-sharing between actors."""
    partitions: int = 3
    """Partitions of every other topic."""

    def all_names(self) -> list[str]:
        return [
            self.registry,
            self.state,
            self.request,
            self.control,
            self.response,
            self.dlq,
            self.chaos,
            self.audit,
        ]


@dataclass(frozen=True, slots=True)
class Slo:
    """Thresholds that make ``status`` exit non-zero and colour the console's summary bar."""

    max_unhealthy: float = 0.10
    """Fraction of devices not HEALTHY (UNKNOWN counts) above which the fleet is in breach."""
    max_deadline_miss: float = 0.01
    max_lag_seconds: float = 30.0


@dataclass(frozen=True, slots=True)
class Profile:
    """One cluster and what this operator may do on it."""

    name: str = "default"
    bootstrap: str = "127.0.0.1:9092"
    kafka: Mapping[str, str] = field(default_factory=dict)
    """librdkafka settings passed through as they are (security.protocol, sasl.*, ssl.*)."""
    topics: Topics = field(default_factory=Topics)
    role: str = "operator"
    read_only: bool = False
    """When true, every write path (TUI and CLI) is refused with a message and audited."""
    refresh_hz: float = 4.0
    """Frames per second the console redraws at, at most."""
    check_interval_s: float = 5.0
    """How often device actors check health; the console calls a device stale after 3 of these."""
    snapshot_window_s: float = 900.0
    """How far back the console reads state, requests and responses at start-up."""
    slo: Slo = field(default_factory=Slo)
    key_id: str = ""
    """Operator key id for signed requests (empty: requests are not signed)."""
    key_secret: str = field(default="", repr=False)
    insecure: bool = False
    """Must be true for a profile that disables TLS certificate verification."""
    keymap: Mapping[str, str] = field(default_factory=dict)
    """Binding id -> keys, e.g. ``{"app.filter" = "slash,f"}``."""

    def with_bootstrap(self, bootstrap: str | None) -> Profile:
        return self if not bootstrap else replace(self, bootstrap=bootstrap)


@dataclass(frozen=True, slots=True)
class Config:
    profiles: Mapping[str, Profile]
    default_profile: str
    path: Path | None = None

    def profile(self, name: str | None = None) -> Profile:
        key = name or self.default_profile
        try:
            return self.profiles[key]
        except KeyError:
            known = ", ".join(sorted(self.profiles)) or "none"
            raise ConfigError(f"no profile named {key!r} (known: {known})") from None


def config_path() -> Path:
    env = os.environ.get("PIPECONSOLE_CONFIG")
    if env:
        return Path(env)
    return platformdirs.user_config_path("pipeconsole") / "config.toml"


def load_config(path: Path | None = None) -> Config:
    """Read the config file. Without one at the default location, one default profile; a file
    named by ``path`` or ``PIPECONSOLE_CONFIG`` must exist (a typo there would otherwise connect
    to the default cluster, 127.0.0.1:9092, without a word). ``/dev/null`` is an empty config."""
    from_env = path is None and bool(os.environ.get("PIPECONSOLE_CONFIG"))
    named = path is not None or from_env
    path = path or config_path()
    if not path.exists():
        if named:
            why = " (named by PIPECONSOLE_CONFIG)" if from_env else ""
            raise ConfigError(f"{path}: no such config file{why}")
        return Config(profiles={"default": Profile()}, default_profile="default", path=None)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except RecursionError:  # tomllib recurses once per nested array or inline table
        raise ConfigError(f"{path}: not valid TOML: nested too deeply") from None
    profiles_raw = raw.get("profiles", {})
    if not isinstance(profiles_raw, dict):
        raise ConfigError(f"{path}: 'profiles' must be a table")
    profiles = {name: _profile(path, name, body) for name, body in profiles_raw.items()} or {
        "default": Profile()
    }
    default = raw.get("default_profile", next(iter(profiles)))
    if not isinstance(default, str) or default not in profiles:
        raise ConfigError(f"{path}: default_profile {default!r} names no profile")
    return Config(profiles=profiles, default_profile=default, path=path)


def _profile(path: Path, name: str, body: Any) -> Profile:
    where = f"{path}: profiles.{name}"
    if not isinstance(body, dict):
        raise ConfigError(f"{where}: must be a table")
    known = {f.name for f in fields(Profile)} - {"name"}
    unknown = sorted(set(body) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}")
    values: dict[str, Any] = {"name": name}
    for key, value in body.items():
        if key == "kafka":
            values[key] = _str_map(f"{where}.kafka", value)
        elif key == "keymap":
            values[key] = _str_map(f"{where}.keymap", value)
        elif key == "topics":
            values[key] = _sub(f"{where}.topics", Topics, value)
        elif key == "slo":
            values[key] = _sub(f"{where}.slo", Slo, value)
        else:
            values[key] = _typed(f"{where}.{key}", getattr(Profile(), key), value)
    profile = Profile(**values)
    if profile.role not in ROLES:
        raise ConfigError(f"{where}.role: {profile.role!r} is not one of {', '.join(ROLES)}")
    verify = str(profile.kafka.get("enable.ssl.certificate.verification", "true")).lower()
    if verify in ("false", "0") and not profile.insecure:
        raise ConfigError(
            f"{where}.kafka: enable.ssl.certificate.verification=false needs insecure = true"
        )
    if profile.refresh_hz <= 0 or profile.check_interval_s <= 0:
        raise ConfigError(f"{where}: refresh_hz and check_interval_s must be positive")
    return profile


def _str_map(where: str, value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: must be a table")
    out: dict[str, str] = {}
    for k, v in value.items():
        if isinstance(v, bool):
            v = "true" if v else "false"
        if not isinstance(v, str | int | float):
            raise ConfigError(f"{where}.{k}: must be a string or number")
        out[str(k)] = str(v)
    return out


def _sub(where: str, cls: Any, value: Any) -> Any:
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: must be a table")
    default = cls()
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(value) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}")
    return cls(**{k: _typed(f"{where}.{k}", getattr(default, k), v) for k, v in value.items()})


def _typed(where: str, default: Any, value: Any) -> Any:
    """Check ``value`` against the type of the field's default."""
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: must be true or false")
        return value
    if isinstance(default, int) and not isinstance(default, bool):
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ConfigError(f"{where}: must be a positive integer")
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ConfigError(f"{where}: must be a non-negative number")
        return float(value)
    if isinstance(default, str):
        if not isinstance(value, str) or "\x00" in value:
            raise ConfigError(f"{where}: must be a string")
        return value
    raise ConfigError(f"{where}: unsupported value")
