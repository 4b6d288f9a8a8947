"""``pipeconsole request ...``: the operator's request commands.

``validate`` comes from ``pipeconsole.wire.cli`` (the wire layer owns the decode and validate
rules it runs); ``schedule``, ``cancel`` and ``replay`` are thin wrappers over
:class:`pipeconsole.actions.layer.ActionLayer`, the same layer the TUI uses.

Exit status of the actions: 0 done (with ``--wait``: final outcome OK, or CANCELLED for a
cancel); 1 not done (broker unreachable or no ack, cannot read, ``--wait`` timed out);
2 refused before anything was sent (field errors, read-only profile, role, unknown request);
3 ``--wait`` saw another final outcome (printed).

Text that came from the network (reasons, ids) goes through ``sanitize()`` before printing.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

import click

from pipeconsole.cli import FiniteFloat, profile_options, quiet_librdkafka
from pipeconsole.config import Profile
from pipeconsole.text import sanitize
from pipeconsole.wire.cli import validate

__all__ = ["request"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_REFUSED = 2
EXIT_OTHER_OUTCOME = 3


@click.group("request")
def request() -> None:
    """Validate, schedule, cancel and replay DeviceRequests."""


request.add_command(validate)


def _err(line: str) -> None:
    click.echo(f"pipeconsole: {line}", err=True)


def _exit(code: int, message: str | None = None) -> NoReturn:
    if message:
        _err(f"error: {message}")
    sys.exit(code)


def _layer(profile: Profile, send_timeout: float) -> object:
    from pipeconsole.actions.layer import ActionLayer

    quiet_librdkafka()
    layer = ActionLayer(profile, send_timeout_s=send_timeout)
    if layer.outbox.open_entries(
        profile.bootstrap
    ):  # an earlier run died mid-send: settle it by reading
        try:
            for r in layer.reconcile(timeout_s=send_timeout):
                what = "was delivered" if r.state == "present" else "never reached the broker"
                _err(f"outbox: {r.entry.kind} {r.entry.request_id} from an earlier run {what}")
        except Exception as exc:  # the action itself still runs; reconcile next time
            _err(f"warning: outbox not reconciled: {sanitize(str(exc))}")
    return layer


def _report(result: object) -> None:
    """Print a Sent / Refused / Failed and exit for the last two."""
    from pipeconsole.actions.layer import Failed, Refused, Sent

    if isinstance(result, Refused):
        for e in result.errors:
            _err(f"error: {e.field}: {sanitize(e.message)}")
        if not result.errors:
            _err(f"error: {sanitize(result.message)}")
        _err(f"refused: nothing was sent ({result.action})")
        _audit_warning(result.audit)
        sys.exit(EXIT_REFUSED)
    if isinstance(result, Failed):
        _audit_warning(result.audit)
        maybe = (
            " (it may still reach the topic: check before re-sending)" * result.possibly_persisted
        )
        _exit(EXIT_FAILED, f"{result.action} {result.request_id}: {sanitize(result.reason)}{maybe}")
    assert isinstance(result, Sent)
    click.echo(
        f"sent {result.action} {result.request_id} to {result.topic} "
        f"partition {result.partition} offset {result.offset}"
    )
    _audit_warning(result.audit)


def _audit_warning(note: object) -> None:
    from pipeconsole.actions.audit import AuditNote

    if isinstance(note, AuditNote) and note.error:
        _err(f"warning: audit: {sanitize(note.error)}")


def _event_line(resp: object) -> str:
    from pipeconsole.actions.lifecycle import outcome_name
    from pipeconsole.wire.gen.device_response_pb2 import DeviceResponse

    assert isinstance(resp, DeviceResponse)
    parts = [outcome_name(resp.outcome), resp.request_id]
    if resp.status_code:
        parts.append(f"status {resp.status_code}")
    if resp.attempts:
        parts.append(f"attempts {resp.attempts}")
    if resp.lateness_ms:
        parts.append(f"late {resp.lateness_ms} ms")
    if resp.reason:
        parts.append(f"reason: {resp.reason}")
    return sanitize(" ".join(parts), max_len=400)


def _wait(
    follower: object, request_id: str, timeout: float, *, cancel: bool, since_ms: int
) -> None:
    from pipeconsole.actions.lifecycle import Follower, answers_cancel, is_final
    from pipeconsole.wire.gen.device_response_pb2 import DeviceResponse

    assert isinstance(follower, Follower)
    got = follower.wait(
        [request_id],
        timeout=timeout,
        until=answers_cancel if cancel else is_final,
        not_before_ms=since_ms,
        on_event=lambda r: _err(f"event: {_event_line(r)}"),
    )[request_id]
    if got.final is None:
        seen = got.events[-1] if got.events else None
        last = f" (last seen: {_event_line(seen)})" if seen is not None else " (no event seen)"
        _exit(EXIT_FAILED, f"no final outcome for {request_id} within {timeout:g} s{last}")
    good = DeviceResponse.CANCELLED if cancel else DeviceResponse.OK
    click.echo(f"final: {_event_line(got.final)}")
    if got.final.outcome != good:
        _err(f"final outcome is {got.outcome}, not {DeviceResponse.Outcome.Name(good)}")
        sys.exit(EXIT_OTHER_OUTCOME)


def _open_follower(layer: object) -> object:
    from pipeconsole.actions.layer import ActionLayer

    assert isinstance(layer, ActionLayer)
    try:
        return layer.follower()
    except Exception as exc:  # ReaderError: broker unreachable, topic missing
        layer.close()
        _exit(EXIT_FAILED, f"cannot follow {layer.profile.topics.response}: {sanitize(str(exc))}")


def _entity(value: str | None) -> bytes:
    if not value:
        return b""
    if value.startswith("@"):
        try:
            return Path(value[1:]).read_bytes()
        except OSError as exc:
            _exit(EXIT_FAILED, f"--entity {value}: cannot read: {exc.strerror or exc}")
    return value.encode("utf-8")


def _headers(items: Sequence[str]) -> tuple[tuple[str, str], ...]:
    out = []
    for item in items:
        name, sep, value = item.partition("=")
        if not sep:
            _err(f"error: headers: {item!r} is not K=V")
            sys.exit(EXIT_REFUSED)
        out.append((name, value))
    return tuple(out)


_SEND_TIMEOUT = click.option(
    "--send-timeout",
    type=FiniteFloat(min=0.5),
    default=10.0,
    show_default=True,
    help="Seconds to wait for the broker's ack (an unreachable broker fails after this).",
)
_WAIT = click.option("--wait", is_flag=True, help="Follow the request until its final outcome.")
_TIMEOUT = click.option(
    "--timeout",
    type=FiniteFloat(min=0.1),
    default=60.0,
    show_default=True,
    help="Seconds --wait follows before giving up (exit 1).",
)


@request.command("schedule")
@profile_options
@click.option("--device", "device_id", required=True, help="Target device id (the Kafka key).")
@click.option("--method", required=True, help="HTTP method, e.g. POST.")
@click.option("--uri", required=True, help="Relative path on the device, e.g. /restart.")
@click.option("--header", "headers", multiple=True, metavar="K=V", help="Request header (repeat).")
@click.option("--entity", default=None, help="Body: @FILE reads a file, otherwise the text itself.")
@click.option("--content-type", default="", help="Media type of the entity.")
@click.option("--at", default="", help="When: RFC 3339 or relative (+5m); default now.")
@click.option(
    "--misfire",
    type=click.Choice(["best-effort", "forget"]),
    default="best-effort",
    show_default=True,
    help="What to do when it fires late.",
)
@click.option("--deadline", default="", help="2s (after the fire time) or RFC 3339.")
@click.option(
    "--qos",
    type=click.Choice(["interactive", "normal", "bulk"]),
    default="normal",
    show_default=True,
)
@click.option("--max-attempts", type=click.IntRange(0, 100), default=0, help="0 = class default.")
@click.option("--idempotent", is_flag=True, help="May be retried after a timeout.")
@_WAIT
@_TIMEOUT
@_SEND_TIMEOUT
def schedule(
    profile: Profile,
    device_id: str,
    method: str,
    uri: str,
    headers: tuple[str, ...],
    entity: str | None,
    content_type: str,
    at: str,
    misfire: str,
    deadline: str,
    qos: str,
    max_attempts: int,
    idempotent: bool,
    wait: bool,
    timeout: float,
    send_timeout: float,
) -> None:
    """Schedule one request on a device: validated, signed, confirmed, audited."""
    from pipeconsole.actions.layer import ActionLayer, ScheduleSpec

    spec = ScheduleSpec(
        device_id=device_id,
        method=method,
        uri=uri,
        headers=_headers(headers),
        entity=_entity(entity),
        content_type=content_type,
        at=at,
        misfire=misfire,
        deadline=deadline,
        qos=qos,
        max_attempts=max_attempts,
        idempotent=idempotent,
    )
    layer = _layer(profile, send_timeout)
    assert isinstance(layer, ActionLayer)
    with layer:
        _, errors = layer.prepare(spec)
        follower = None
        if wait and not errors and layer.check("schedule") is None:
            follower = _open_follower(layer)  # before producing: no answer can be missed
        result = layer.schedule(spec)
        _report(result)
    if follower is not None:
        with follower:  # type: ignore[attr-defined]
            start = getattr(follower, "started_ms", 0) - 1000
            _wait(
                follower, getattr(result, "request_id", ""), timeout, cancel=False, since_ms=start
            )


@request.command("cancel")
@profile_options
@click.argument("request_id")
@click.option(
    "--device",
    "device_id",
    default=None,
    help="Device of the request (looked up on the request topic when omitted).",
)
@click.option("--reason", default="", help="Why (recorded in the outcome and the audit).")
@_WAIT
@_TIMEOUT
@_SEND_TIMEOUT
def cancel(
    profile: Profile,
    request_id: str,
    device_id: str | None,
    reason: str,
    wait: bool,
    timeout: float,
    send_timeout: float,
) -> None:
    """Cancel a pending request: CANCELLED, or CANCEL_TOO_LATE when it already fired."""
    from pipeconsole.actions.layer import ActionLayer

    layer = _layer(profile, send_timeout)
    assert isinstance(layer, ActionLayer)
    with layer:
        follower = None
        if wait and layer.check("cancel") is None:
            follower = _open_follower(layer)
        result = layer.cancel(request_id, device_id, reason)
        _report(result)
    if follower is not None:
        with follower:  # type: ignore[attr-defined]
            start = getattr(follower, "started_ms", 0) - 1000
            _wait(follower, request_id, timeout, cancel=True, since_ms=start)


@request.command("replay")
@profile_options
@click.argument("request_ids", nargs=-1)
@click.option("--filter", "filter_text", default="", help="e.g. \"outcome=failed device~'^enc'\".")
@click.option("--since", default="", help="Window start: RFC 3339 or an age (10m).")
@click.option("--until", default="", help="Window end: RFC 3339 or an age (default now).")
@click.option("--rate", default="10/s", show_default=True, help="At most N/s (or N/m).")
@click.option("--execute", is_flag=True, help="Send; without it this is a dry run.")
@click.option("--read-timeout", type=FiniteFloat(min=1), default=30.0, show_default=True)
@_SEND_TIMEOUT
def replay(
    profile: Profile,
    request_ids: tuple[str, ...],
    filter_text: str,
    since: str,
    until: str,
    rate: str,
    execute: bool,
    read_timeout: float,
    send_timeout: float,
) -> None:
    """Re-issue past requests as new ones (new id and nonce, replay_of set), paced.

    Dry run unless --execute: prints the count, targets, time window and rate.
    """
    from pipeconsole.actions.layer import ActionLayer, Failed, Refused
    from pipeconsole.actions.replay import RateError, parse_rate
    from pipeconsole.wire.timefmt import format_rfc3339, from_unix_ms

    try:
        per_s = parse_rate(rate)
    except RateError as exc:
        _exit(EXIT_REFUSED, f"rate: {exc}")
    layer = _layer(profile, send_timeout)
    assert isinstance(layer, ActionLayer)
    with layer:
        plan = layer.plan_replay(
            ids=request_ids,
            filter_text=filter_text,
            since=since,
            until=until,
            rate=per_s,
            timeout_s=read_timeout,
        )
        if isinstance(plan, Refused | Failed):
            _report(plan)
            return
        until_text = format_rfc3339(from_unix_ms(plan.until_ms)) if plan.until_ms else "now"
        click.echo(
            f"replay plan: {plan.count} request(s) from "
            f"{format_rfc3339(from_unix_ms(plan.since_ms))} to {until_text} "
            f"at {per_s:g}/s (about {plan.estimated_s:.1f} s)"
        )
        for dev, n in sorted(plan.targets.items()):
            click.echo(f"  target {sanitize(dev, max_len=80)}: {n}")
        for name, n in sorted(plan.summary()["outcomes"].items()):  # type: ignore[attr-defined]
            click.echo(f"  original outcome {name}: {n}")
        for rid in plan.missing:
            _err(f"warning: {sanitize(rid, max_len=80)} not found in the window")
        if plan.undecodable:
            _err(f"warning: {plan.undecodable} undecodable record(s) in the window skipped")
        if not execute:
            click.echo("dry run: nothing sent (add --execute to send)")
            return
        if plan.count == 0:
            click.echo("nothing to replay")
            return
        result = layer.execute_replay(plan)
        if isinstance(result, Refused):
            _report(result)
            return
        for s in result.sent:
            click.echo(
                f"sent {s.request_id} replay_of {result.replay_of.get(s.request_id, '')} "
                f"partition {s.partition} offset {s.offset}"
            )
        for f in result.failed:
            _err(f"error: {f.request_id}: {sanitize(f.reason)}")
        click.echo(f"replayed {len(result.sent)} of {plan.count} ({len(result.failed)} failed)")
        _audit_warning(result.audit)
        if result.failed:
            sys.exit(EXIT_FAILED)
