"""``pipeconsole request validate [--json] [--binary] FILE``: check a request before sending it.

Reads one ``DeviceRequest`` from FILE (``-`` = stdin) as protobuf JSON (the default) or as
binary protobuf (``--binary``), runs the same ``decode`` and ``validate_request`` the device
actors run, and prints the field errors, one ``field: message`` per line (``--json``: a JSON
list of ``{"field", "code", "message"}``).

Exit status: 0 valid; 2 a request was read and has field errors; 1 no request could be read
(missing file, not UTF-8, not JSON, not the protobuf JSON mapping of DeviceRequest, binary that
does not decode). Every failure is one line on stderr; never a traceback.

The JSON path is guarded like the binary one: the file is read up to ``MAX_JSON_BYTES``,
NaN/Infinity and duplicate keys are refused, nesting is checked before ``json_format.ParseDict``
(which gets its own ``max_recursion_depth``), and every exception is caught.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any, Final, NoReturn

import click
from google.protobuf import json_format

from pipeconsole.text import sanitize
from pipeconsole.wire.codec import DEFAULT_MAX_BYTES, DEFAULT_MAX_DEPTH, DecodeFailure, decode
from pipeconsole.wire.gen.device_request_pb2 import DeviceRequest
from pipeconsole.wire.timefmt import TimeFormatError, parse_rfc3339
from pipeconsole.wire.validate import FieldError, validate_request

__all__ = ["MAX_JSON_BYTES", "read_request", "validate"]

MAX_JSON_BYTES: Final = 4 * DEFAULT_MAX_BYTES
"""A 1 MiB entity is 1.4 MiB of base64, plus the rest of the request."""

EXIT_VALID: Final = 0
EXIT_UNREADABLE: Final = 1
EXIT_INVALID: Final = 2


class Unreadable(Exception):
    """No request could be read from the input; the message is one safe line."""


def _read_bytes(source: str, limit: int) -> bytes:
    try:
        if source == "-":
            data = sys.stdin.buffer.read(limit + 1)
        else:
            with Path(source).open("rb") as fh:
                data = fh.read(limit + 1)
    except FileNotFoundError:
        raise Unreadable(f"{sanitize(source, max_len=200)}: no such file") from None
    except IsADirectoryError:
        raise Unreadable(f"{sanitize(source, max_len=200)}: is a directory") from None
    except OSError as exc:
        raise Unreadable(
            f"{sanitize(source, max_len=200)}: {sanitize(exc.strerror or str(exc))}"
        ) from None
    if len(data) > limit:
        raise Unreadable(f"input is larger than {limit} bytes")
    return data


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise Unreadable(f"duplicate JSON key {sanitize(key, max_len=40)!r}")
        out[key] = value
    return out


def _no_constants(name: str) -> NoReturn:
    raise Unreadable(f"{name} is not JSON")


def _depth(value: object, limit: int) -> bool:
    """True when ``value`` nests no deeper than ``limit`` (checked without recursion)."""
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack:
        item, level = stack.pop()
        if level > limit:
            return False
        if isinstance(item, dict):
            stack.extend((v, level + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, level + 1) for v in item)
    return True


def _from_json(data: bytes) -> DeviceRequest:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Unreadable(f"not UTF-8 text (byte {exc.start})") from None
    if text.startswith("\ufeff"):
        text = text[1:]
    try:
        obj = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
    except Unreadable:
        raise
    except json.JSONDecodeError as exc:
        raise Unreadable(f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise Unreadable("JSON nested too deeply") from None
    except ValueError as exc:  # e.g. integers longer than 4300 digits
        raise Unreadable(f"not usable JSON: {sanitize(str(exc), max_len=120)}") from None
    if not isinstance(obj, dict):
        raise Unreadable("expected a JSON object (the protobuf JSON mapping of DeviceRequest)")
    if not _depth(obj, DEFAULT_MAX_DEPTH):
        raise Unreadable(f"JSON nested deeper than {DEFAULT_MAX_DEPTH} levels")
    msg = DeviceRequest()
    try:
        json_format.ParseDict(obj, msg, max_recursion_depth=DEFAULT_MAX_DEPTH)
    except Exception as exc:
        detail = sanitize(str(exc).replace("\n", " "), max_len=200)
        raise Unreadable(f"not a DeviceRequest: {detail}") from None
    return msg


def _from_binary(data: bytes) -> DeviceRequest:
    result = decode(DeviceRequest, data)
    if isinstance(result, DecodeFailure):
        raise Unreadable(f"not a DeviceRequest ({result.code}): {result.reason}")
    return result


def read_request(source: str, *, binary: bool = False) -> DeviceRequest:
    """Read one DeviceRequest from a path (``-`` = stdin); raise ``Unreadable`` with one line."""
    if binary:
        return _from_binary(_read_bytes(source, DEFAULT_MAX_BYTES))
    return _from_json(_read_bytes(source, MAX_JSON_BYTES))


def _print_errors(errors: list[FieldError], as_json: bool) -> None:
    if as_json:
        rows = [{"field": e.field, "code": e.code, "message": e.message} for e in errors]
        click.echo(json.dumps(rows, indent=2, ensure_ascii=True))
        return
    for error in errors:
        # messages quote input only through sanitize(); this keeps stray controls out anyway
        click.echo(sanitize(f"{error.field}: {error.message}", max_len=1000))


@click.command("validate")
@click.option("--json", "as_json", is_flag=True, help="Print the errors as a JSON list.")
@click.option("--binary", is_flag=True, help="FILE is binary protobuf, not JSON.")
@click.option(
    "--now",
    "now_text",
    default=None,
    metavar="TIME",
    help="Validate as of this RFC 3339 time instead of the clock (for reproducible checks).",
)
@click.option(
    "--at-issue/--at-actor",
    default=True,
    help="Judge as the operator before sending (default; a past deadline is an error) "
    "or as the device actor does.",
)
@click.argument("file", metavar="FILE")
def validate(as_json: bool, binary: bool, now_text: str | None, at_issue: bool, file: str) -> None:
    """Check a DeviceRequest in FILE ('-' = stdin); exit 0 valid, 2 invalid, 1 unreadable."""
    from pipeconsole.cli import fail

    try:
        now: datetime | None = None
        if now_text is not None:
            try:
                now = parse_rfc3339(now_text)
            except TimeFormatError as exc:
                fail(f"--now: {exc}", EXIT_INVALID)
        try:
            request = read_request(file, binary=binary)
        except Unreadable as exc:
            fail(str(exc), EXIT_UNREADABLE)
            return
        errors = validate_request(request, now=now, at_issue=at_issue)
    except Exception as exc:  # a bug must still end as one line, not a traceback
        fail(f"unexpected error: {type(exc).__name__}", EXIT_UNREADABLE)
        return
    _print_errors(errors, as_json)
    sys.exit(EXIT_INVALID if errors else EXIT_VALID)
