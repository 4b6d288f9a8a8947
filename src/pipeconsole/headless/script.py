"""The headless script language: one step per line, parsed up front, errors name the line.

::

    # comments and blank lines are ignored
    wait-for fleet.healthy >= 20 timeout 30s     # poll a condition over the model (default 30 s)
    wait-for incident.top == "transcode-03"
    wait-for request 6f1c...-... outcome OK
    press enter                                  # Textual key names, space-separated
    press colon d e v i c e s enter
    type transcode                               # the rest of the line, literally
    snapshot detail                              # DIR/detail.svg
    assert device.transcode-03.health == failing  # once the start-up window is read (30 s)
    schedule --device ingest-01 --method POST --uri /streams/7/start
    cancel <request-id> --device ingest-01
    replay <request-id>... [--execute]
    chaos run experiments/encoder-crash.toml
    sleep 2s

A script that does not parse is refused whole, before anything runs (exit 2, line and reason).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from pipeconsole.headless.conditions import Condition, ConditionError, parse_condition

__all__ = ["VERBS", "ScriptError", "Step", "parse_duration", "parse_script"]

VERBS = (
    "wait-for",
    "press",
    "type",
    "snapshot",
    "assert",
    "schedule",
    "cancel",
    "replay",
    "chaos",
    "sleep",
)
MAX_LINES = 10_000
MAX_LINE = 4_000
DEFAULT_WAIT_S = 30.0
MAX_WAIT_S = 3_600.0
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m)$")
_KEY = re.compile(r"^[a-z0-9_+-]{1,32}$|^[^\s]$")


class ScriptError(ValueError):
    """A script that cannot run; ``line`` is 1-based (0 when not about one line)."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"line {line}: {reason}" if line else reason)
        self.line = line
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Step:
    line: int
    verb: str
    text: str
    """The step's source line, for reports."""
    args: tuple[str, ...] = ()
    condition: Condition | None = None
    timeout_s: float = DEFAULT_WAIT_S
    seconds: float = 0.0


def parse_duration(text: str) -> float:
    """``500ms``, ``2s``, ``1.5m`` -> seconds."""
    m = _DURATION.match(text.strip())
    if not m:
        raise ValueError(f"{text!r} is not a duration (like 500ms, 2s, 1m)")
    value = float(m.group(1)) * {"ms": 0.001, "s": 1.0, "m": 60.0}[m.group(2)]
    if value > MAX_WAIT_S:
        raise ValueError(f"{text!r} is longer than {MAX_WAIT_S:.0f} s")
    return value


def parse_script(text: str) -> list[Step]:
    if "\x00" in text:
        raise ScriptError(0, "the script contains a NUL byte")
    lines = text.splitlines()
    if len(lines) > MAX_LINES:
        raise ScriptError(0, f"the script has more than {MAX_LINES} lines")
    steps = []
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if len(line) > MAX_LINE:
            raise ScriptError(number, f"line longer than {MAX_LINE} characters")
        steps.append(_step(number, line))
    if not steps:
        raise ScriptError(0, "the script has no steps")
    return steps


def _step(number: int, line: str) -> Step:
    verb, _, rest = line.partition(" ")
    rest = rest.strip()
    try:
        if verb == "wait-for":
            cond_text, timeout = _split_timeout(rest)
            return Step(number, verb, line, condition=parse_condition(cond_text), timeout_s=timeout)
        if verb == "assert":
            cond_text, timeout = _split_timeout(rest)
            return Step(number, verb, line, condition=parse_condition(cond_text), timeout_s=timeout)
        if verb == "press":
            keys = tuple(rest.split())
            if not keys:
                raise ValueError("press needs at least one key")
            bad = [k for k in keys if not _KEY.match(k)]
            if bad:
                raise ValueError(f"not a key name: {bad[0]!r}")
            return Step(number, verb, line, args=keys)
        if verb == "type":
            if not rest:
                raise ValueError("type needs text")
            return Step(number, verb, line, args=(_unquote(rest),))
        if verb == "snapshot":
            if not _NAME.match(rest):
                raise ValueError("snapshot needs a name of letters, digits, '.', '_' or '-'")
            return Step(number, verb, line, args=(rest,))
        if verb == "sleep":
            return Step(number, verb, line, seconds=parse_duration(rest))
        if verb in ("schedule", "cancel", "replay"):
            args = tuple(shlex.split(rest))
            if not args:
                raise ValueError(
                    f"{verb} needs arguments (the same as `pipeconsole request {verb}`)"
                )
            return Step(number, verb, line, args=args)
        if verb == "chaos":
            args = tuple(shlex.split(rest))
            if len(args) < 2 or args[0] != "run":
                raise ValueError("expected: chaos run FILE")
            return Step(number, verb, line, args=args[1:])
    except (ValueError, ConditionError) as exc:
        raise ScriptError(number, str(exc)) from None
    raise ScriptError(number, f"unknown step {verb!r} (expected one of: {', '.join(VERBS)})")


def _split_timeout(rest: str) -> tuple[str, float]:
    m = re.match(r"^(.*?)\s+timeout\s+(\S+)$", rest)
    if not m:
        return rest, DEFAULT_WAIT_S
    return m.group(1), parse_duration(m.group(2))


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text
