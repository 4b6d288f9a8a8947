"""The action layer: schedule, cancel and replay for the CLI and the TUI alike (no UI imports).

Every action goes the same way, and every step's failure is a value, never an exception:

1. **access** (:mod:`.access`): read-only profile or role -> :class:`Refused`, audited;
2. **build and validate** with the actors' own validator
   (``validate_request(at_issue=True)``) -> :class:`Refused` with the field errors, audited,
   nothing sent;
3. **sign** when the profile has ``key_id`` and ``key_secret`` (:mod:`.sign`);
4. **journal** in the outbox (:mod:`.outbox`) before producing;
5. **produce with confirmed delivery** (idempotent, acks=all) -> :class:`Sent` with
   partition/offset, or :class:`Failed` with the delivery error (broker unreachable included,
   within ``send_timeout_s``);
6. **audit** the outcome (:mod:`.audit`) before returning, so an action is never reported
   done without its record.

Following the lifecycle (``--wait``) is separate: open :meth:`ActionLayer.follower` *before*
the action, then :meth:`.lifecycle.Follower.wait` on the ids it returns.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

from pipeconsole.actions import access
from pipeconsole.actions.audit import AuditNote, Auditor, LocalAuditLog, principal_of
from pipeconsole.actions.lifecycle import Follower
from pipeconsole.actions.outbox import Outbox, OutboxEntry, Reconciled, reconcile
from pipeconsole.actions.replay import (
    Original,
    Pacer,
    ReplayPlan,
    index_window,
    parse_filter,
    read_window,
    reissue,
    select,
)
from pipeconsole.actions.sign import new_nonce, sign
from pipeconsole.config import Profile
from pipeconsole.kafka.producer import Sends
from pipeconsole.query import QueryError
from pipeconsole.wire import timefmt
from pipeconsole.wire.codec import DecodeFailure, decode
from pipeconsole.wire.gen.device_request_pb2 import CancelRequest, DeviceRequest, QoS
from pipeconsole.wire.validate import FieldError, validate_cancel, validate_request

__all__ = [
    "QOS_CLASSES",
    "ActionLayer",
    "ActionResult",
    "Failed",
    "Refused",
    "ReplayResult",
    "ScheduleSpec",
    "Sent",
    "build_request",
    "resolve_time",
]

QOS_CLASSES: dict[str, int] = {
    "interactive": QoS.INTERACTIVE,
    "normal": QoS.NORMAL,
    "bulk": QoS.BULK,
}
MISFIRE: dict[str, int] = {
    "best-effort": DeviceRequest.BEST_EFFORT,
    "forget": DeviceRequest.FORGET,
}

_REL = re.compile(r"\+?\s*([0-9]+(?:\.[0-9]+)?)\s*(ms|s|m|h)")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


class Sender(Sends, Protocol):
    """What the layer needs of a producer (``ConfirmingProducer`` fits): send, wait, close."""

    def send_sync(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | str | None = None,
        headers: Any = None,
        timeout: float | None = None,
    ) -> Any: ...

    def close(self, timeout: float = 10.0) -> int: ...


@dataclass(frozen=True, slots=True)
class ScheduleSpec:
    """A request as the operator typed it (CLI flags or the TUI form): text, not yet checked."""

    device_id: str
    method: str
    uri: str
    headers: tuple[tuple[str, str], ...] = ()
    entity: bytes = b""
    content_type: str = ""
    at: str = ""
    """Empty (now), RFC 3339, or relative to now: ``+5m``, ``+2s``, ``90s``."""
    misfire: str = "best-effort"
    """``best-effort`` or ``forget``."""
    deadline: str = ""
    """Empty (the QoS class default), relative (``2s``: from the fire time) or RFC 3339."""
    qos: str = "normal"
    """``interactive``, ``normal`` or ``bulk``."""
    max_attempts: int = 0
    idempotent: bool = False
    request_id: str = ""
    """Preset id (edit-and-resend keeps none: empty means a fresh UUID)."""


@dataclass(frozen=True, slots=True)
class Sent:
    """Confirmed by the broker."""

    action: str
    request_id: str
    device_id: str
    topic: str
    partition: int
    offset: int
    audit: AuditNote | None
    message: DeviceRequest | CancelRequest | None = None


@dataclass(frozen=True, slots=True)
class Refused:
    """Not attempted: nothing was sent."""

    action: str
    code: Literal["read_only", "role", "invalid", "not_found"]
    message: str
    errors: tuple[FieldError, ...] = ()
    audit: AuditNote | None = None


@dataclass(frozen=True, slots=True)
class Failed:
    """Attempted; the broker did not confirm (or could not be reached)."""

    action: str
    request_id: str
    device_id: str
    reason: str
    possibly_persisted: bool = False
    """The record may still be on the topic (timed out in flight): reconcile, do not re-send."""
    audit: AuditNote | None = None


ActionResult = Sent | Refused | Failed


@dataclass(frozen=True, slots=True)
class ReplayResult:
    plan: ReplayPlan
    sent: tuple[Sent, ...] = ()
    failed: tuple[Failed, ...] = ()
    audit: AuditNote | None = None
    replay_of: dict[str, str] = field(default_factory=dict)
    """New request id -> original request id."""


def resolve_time(text: str, base: datetime) -> str:
    """``+5m`` / ``2s`` -> RFC 3339 relative to ``base``; anything else comes back unchanged
    (an RFC 3339 time, or garbage that the validator then reports on its field)."""
    text = text.strip()
    m = _REL.fullmatch(text)
    if m is None:
        return text
    return timefmt.format_rfc3339(base + timedelta(seconds=float(m.group(1)) * _UNIT[m.group(2)]))


def build_request(
    spec: ScheduleSpec, *, now: datetime, issued_by: str
) -> tuple[DeviceRequest, list[FieldError]]:
    """The DeviceRequest for ``spec`` and every field error (the actors' validator's and ours)."""
    errors: list[FieldError] = []
    req = DeviceRequest(
        method=spec.method,
        uri=spec.uri,
        entity_content_type=spec.content_type,
        entity=spec.entity,
        request_id=spec.request_id or str(uuid.uuid4()),
        device_id=spec.device_id,
        nonce=new_nonce(),
        issued_by=issued_by,
        issued_at=timefmt.format_rfc3339(now),
    )
    for k, v in spec.headers:
        if k in req.headers:
            errors.append(FieldError(f"headers[{k}]", "duplicate", f"header {k!r} given twice"))
        req.headers[k] = v
    req.schedule_time = resolve_time(spec.at, now) if spec.at else ""
    misfire = MISFIRE.get(spec.misfire.strip().lower())
    if misfire is None:
        errors.append(
            FieldError("misfire_strategy", "grammar", "misfire must be best-effort or forget")
        )
    else:
        req.misfire_strategy = misfire  # type: ignore[assignment]
    if spec.deadline:
        fire = now
        if req.schedule_time:
            try:
                fire = timefmt.parse_rfc3339(req.schedule_time)
            except ValueError:
                fire = now
        req.deadline = resolve_time(spec.deadline, fire)
    prio = QOS_CLASSES.get(spec.qos.strip().lower())
    if prio is None:
        errors.append(
            FieldError("qos.priority", "grammar", "qos must be interactive, normal or bulk")
        )
    else:
        req.qos.priority = prio  # type: ignore[assignment]
    req.qos.max_attempts = max(0, spec.max_attempts)
    req.qos.idempotent = spec.idempotent
    errors.extend(validate_request(req, now=now, at_issue=True))
    return req, errors


def _preview(req: DeviceRequest) -> str:
    when = req.schedule_time or "now"
    size = f" entity={len(req.entity)}B" if req.entity else ""
    return f"{req.method} {req.uri} on {req.device_id} at {when}{size} id={req.request_id}"


def _errors_text(errors: Sequence[FieldError]) -> str:
    return "; ".join(f"{e.field}: {e.message}" for e in errors)


class ActionLayer:
    """Schedule, cancel and replay against one profile. Close it (or use ``with``)."""

    def __init__(
        self,
        profile: Profile,
        *,
        sender: Sender | None = None,
        send_timeout_s: float = 10.0,
        outbox: Outbox | None = None,
        audit_log: LocalAuditLog | None = None,
        clock: Callable[[], float] = time.time,
        sign_ttl_s: float = 300.0,
    ) -> None:
        self.profile = profile
        self.send_timeout_s = send_timeout_s
        """How long a send may wait for the broker's ack (also for an unreachable broker)."""
        self.clock = clock
        self.sign_ttl_s = sign_ttl_s
        self.principal = principal_of(profile)
        self._sender = sender
        self._own_sender = sender is None
        self.outbox = outbox or Outbox(clock=clock)
        self.auditor = Auditor(
            profile,
            None,
            local=audit_log,
            principal=self.principal,
            timeout_s=send_timeout_s,
            clock=clock,
        )

    # -- plumbing -------------------------------------------------------------------------

    @property
    def sender(self) -> Sender:
        if self._sender is None:
            from pipeconsole.kafka.producer import ConfirmingProducer

            # librdkafka scans for timed-out messages about once a second: ask it to give up
            # a second early so that the error arrives within send_timeout_s.
            self._sender = ConfirmingProducer(
                self.profile, delivery_timeout_s=max(0.5, self.send_timeout_s - 1.0)
            )
        self.auditor.sender = self._sender
        return self._sender

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    def close(self) -> None:
        if self._sender is not None and self._own_sender:
            self._sender.close(timeout=self.send_timeout_s)
        self._sender = None

    def __enter__(self) -> ActionLayer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def check(self, action: access.Action) -> access.Refusal | None:
        """Whether the profile may act at all (a UI hides or greys out what is refused)."""
        return access.check(self.profile, action)

    def follower(self) -> Follower:
        """A lifecycle follower from now; open it *before* acting. Raises ReaderError."""
        return Follower(
            self.profile, clock=self.clock, metadata_timeout_s=max(1.0, self.send_timeout_s)
        )

    def _audit(
        self,
        action: str,
        outcome: Literal["ACCEPTED", "REFUSED", "FAILED"],
        *,
        to_topic: bool = True,
        **kw: Any,
    ) -> AuditNote:
        if to_topic:
            _ = self.sender  # attaches the producer to the auditor
            return self.auditor.record(action, outcome, **kw)
        saved, self.auditor.sender = self.auditor.sender, None
        try:
            return self.auditor.record(action, outcome, **kw)
        finally:
            self.auditor.sender = saved

    def _refuse_access(self, action: access.Action, targets: Sequence[str]) -> Refused | None:
        refusal = access.check(self.profile, action)
        if refusal is None:
            return None
        note = self._audit(action, "REFUSED", targets=targets, reason=refusal.message)
        return Refused(action, refusal.code, refusal.message, audit=note)

    def _sign(self, msg: Any) -> Any:
        if self.profile.key_id and self.profile.key_secret:
            return sign(
                msg, self.profile.key_id, self.profile.key_secret, self.sign_ttl_s, clock=self.clock
            )
        return msg

    def _deliver(
        self, entry: OutboxEntry, topic: str, key: str, value: bytes
    ) -> tuple[int, int] | Failed:
        self.outbox.pending([entry])
        fut = self.sender.send(topic, value, key=key)
        return self._settle(entry, fut)

    def _settle(self, entry: OutboxEntry, fut: Future[Any]) -> tuple[int, int] | Failed:
        from pipeconsole.kafka.producer import DeliveryError

        try:
            d = fut.result(timeout=self.send_timeout_s + 5.0)
        except DeliveryError as exc:
            self.outbox.failed(entry, exc.reason, exc.possibly_persisted)
            return Failed(
                entry.kind,
                entry.request_id,
                entry.device_id,
                _delivery_text(self.profile, exc.reason, self.send_timeout_s),
                exc.possibly_persisted,
            )
        except TimeoutError:
            self.outbox.failed(entry, "no delivery report", True)
            return Failed(
                entry.kind,
                entry.request_id,
                entry.device_id,
                f"no answer from the broker at {self.profile.bootstrap} "
                f"within {self.send_timeout_s:g} s",
                True,
            )
        self.outbox.acked([(entry, int(d.partition), int(d.offset))])
        return int(d.partition), int(d.offset)

    # -- schedule -------------------------------------------------------------------------

    def prepare(self, spec: ScheduleSpec) -> tuple[DeviceRequest, list[FieldError]]:
        """Build and validate without sending (the TUI form's live check)."""
        return build_request(spec, now=self.now(), issued_by=self.principal.principal)

    def schedule(self, spec: ScheduleSpec) -> ActionResult:
        refused = self._refuse_access("schedule", [spec.device_id])
        if refused is not None:
            return refused
        req, errors = self.prepare(spec)
        if errors:
            text = _errors_text(errors)
            note = self._audit(
                "schedule", "REFUSED", targets=[spec.device_id], preview=_preview(req), reason=text
            )
            return Refused("schedule", "invalid", text, tuple(errors), note)
        return self.send_request(req, action="schedule")

    def send_request(self, req: DeviceRequest, *, action: str = "schedule") -> Sent | Failed:
        """Sign, journal, produce and audit one already-valid request."""
        req = self._sign(req)
        entry = self.outbox.entry(
            req.request_id,
            "request",
            req.device_id,
            self.profile.topics.request,
            req.nonce,
            self.profile.bootstrap,
        )
        got = self._deliver(entry, self.profile.topics.request, req.device_id, _encode(req))
        if isinstance(got, Failed):
            note = self._audit(
                action,
                "FAILED",
                to_topic=False,
                targets=[req.device_id],
                preview=_preview(req),
                reason=got.reason,
                request_ids=[req.request_id],
            )
            return Failed(
                action, got.request_id, got.device_id, got.reason, got.possibly_persisted, note
            )
        p, o = got
        note = self._audit(
            action,
            "ACCEPTED",
            targets=[req.device_id],
            preview=_preview(req),
            reason=f"{self.profile.topics.request} partition {p} offset {o}",
            request_ids=[req.request_id],
        )
        return Sent(
            action, req.request_id, req.device_id, self.profile.topics.request, p, o, note, req
        )

    # -- cancel ---------------------------------------------------------------------------

    def find_request(self, request_id: str, *, timeout_s: float = 30.0) -> DeviceRequest | None:
        """Look a request up on the request topic (within the profile's snapshot window)."""
        since = int((self.clock() - self.profile.snapshot_window_s) * 1000)
        reqs, _ = read_window(self.profile, since, timeout_s=timeout_s)
        for rec in reqs:
            req = decode(DeviceRequest, rec.value)
            if not isinstance(req, DecodeFailure) and req.request_id == request_id:
                return req
        return None

    def cancel(
        self, request_id: str, device_id: str | None = None, reason: str = ""
    ) -> ActionResult:
        """Cancel a pending request. Without ``device_id`` the request is looked up first
        (a cancel is keyed by device id so that it reaches the actor owning the request)."""
        refused = self._refuse_access("cancel", [device_id or request_id])
        if refused is not None:
            return refused
        if not device_id:
            try:
                found = self.find_request(request_id, timeout_s=max(5.0, self.send_timeout_s))
            except Exception as exc:  # ReaderError, TimeoutError: a value, never raised
                return Failed("cancel", request_id, "", f"cannot look the request up: {exc}")
            if found is None:
                msg = (
                    f"request {request_id} not found on {self.profile.topics.request} in the last "
                    f"{self.profile.snapshot_window_s:g} s; give --device"
                )
                note = self._audit("cancel", "REFUSED", targets=[request_id], reason=msg)
                return Refused("cancel", "not_found", msg, audit=note)
            device_id = found.device_id
        now = self.now()
        creq = CancelRequest(
            request_id=request_id,
            device_id=device_id,
            issued_by=self.principal.principal,
            issued_at=timefmt.format_rfc3339(now),
            reason=reason,
            nonce=new_nonce(),
        )
        errors = validate_cancel(creq)
        preview = f"cancel {request_id} on {device_id}"
        if errors:
            text = _errors_text(errors)
            note = self._audit(
                "cancel", "REFUSED", targets=[device_id], preview=preview, reason=text
            )
            return Refused("cancel", "invalid", text, tuple(errors), note)
        creq = self._sign(creq)
        entry = self.outbox.entry(
            request_id,
            "cancel",
            device_id,
            self.profile.topics.control,
            creq.nonce,
            self.profile.bootstrap,
        )
        got = self._deliver(entry, self.profile.topics.control, device_id, _encode(creq))
        if isinstance(got, Failed):
            note = self._audit(
                "cancel",
                "FAILED",
                to_topic=False,
                targets=[device_id],
                preview=preview,
                reason=got.reason,
                request_ids=[request_id],
            )
            return Failed("cancel", request_id, device_id, got.reason, got.possibly_persisted, note)
        p, o = got
        note = self._audit(
            "cancel",
            "ACCEPTED",
            targets=[device_id],
            preview=preview,
            reason=f"{self.profile.topics.control} partition {p} offset {o}",
            request_ids=[request_id],
        )
        return Sent("cancel", request_id, device_id, self.profile.topics.control, p, o, note, creq)

    # -- replay ---------------------------------------------------------------------------

    def plan_replay(
        self,
        *,
        ids: Sequence[str] = (),
        filter_text: str = "",
        since: str = "",
        until: str = "",
        rate: float = 10.0,
        timeout_s: float = 30.0,
    ) -> ReplayPlan | Refused | Failed:
        """The dry run: read the window, pick the originals. Sends nothing; open to viewers."""
        now = self.now()
        errors: list[FieldError] = []
        since_ms = 0
        until_ms: int | None = None
        for name, text in (("since", since), ("until", until)):
            if not text:
                continue
            try:
                when = _past_time(text, now)
            except ValueError as exc:
                errors.append(FieldError(name, "bad_time", str(exc)))
                continue
            if when > now:
                errors.append(
                    FieldError(name, "future", f"{text!r} is in the future ({_iso(when)})")
                )
            elif name == "since":
                since_ms = timefmt.to_unix_ms(when)
            else:
                until_ms = timefmt.to_unix_ms(when)
        if until_ms is not None and since and until_ms < since_ms:
            errors.append(
                FieldError(
                    "until",
                    "before_since",
                    f"the window ends ({_iso(until_ms)}) before it starts ({_iso(since_ms)}): "
                    "ages count back from now, so --until's is the smaller",
                )
            )
        if not since and not ids:
            errors.append(FieldError("since", "required", "give request ids or --since"))
        query = None
        if filter_text:
            try:
                query = parse_filter(filter_text)
            except QueryError as exc:
                errors.append(FieldError("filter", "grammar", str(exc)))
        if not since and ids:
            since_ms = int((self.clock() - self.profile.snapshot_window_s) * 1000)
        if errors:
            return Refused("replay", "invalid", _errors_text(errors), tuple(errors))
        try:
            reqs, resps = read_window(self.profile, since_ms, timeout_s=timeout_s)
        except Exception as exc:  # ReaderError / TimeoutError
            return Failed("replay", "", "", f"cannot read the window: {exc}")
        window = index_window(reqs, resps, since_ms, until_ms)
        chosen, missing = select(window.originals, ids=ids, query=query)
        return ReplayPlan(
            tuple(chosen),
            since_ms,
            until_ms,
            rate,
            tuple(missing),
            window.undecodable,
            filter_text,
        )

    def execute_replay(
        self,
        plan: ReplayPlan,
        *,
        on_sent: Callable[[Original, DeviceRequest], None] | None = None,
        pacer: Pacer | None = None,
    ) -> ReplayResult | Refused:
        """Re-issue every original of ``plan`` at ``plan.rate``; one audit record for the run."""
        targets = sorted(plan.targets)
        refused = self._refuse_access("replay", targets)
        if refused is not None:
            return refused
        pacer = pacer or Pacer(plan.rate)
        inflight: list[tuple[OutboxEntry, DeviceRequest, Future[Any]]] = []
        done: set[str] = set()
        for orig in plan.originals:
            if orig.request_id in done:
                continue  # the same original is never replayed twice in one run
            done.add(orig.request_id)
            new = self._sign(reissue(orig.request, now=self.now()))
            entry = self.outbox.entry(
                new.request_id,
                "request",
                new.device_id,
                self.profile.topics.request,
                new.nonce,
                self.profile.bootstrap,
            )
            self.outbox.pending([entry])
            pacer.wait()
            fut = self.sender.send(self.profile.topics.request, _encode(new), key=new.device_id)
            pacer.sent()
            inflight.append((entry, new, fut))
            if on_sent is not None:
                on_sent(orig, new)
        sent: list[Sent] = []
        failed: list[Failed] = []
        for entry, new, fut in inflight:
            got = self._settle(entry, fut)
            if isinstance(got, Failed):
                failed.append(
                    Failed(
                        "replay", got.request_id, got.device_id, got.reason, got.possibly_persisted
                    )
                )
            else:
                sent.append(
                    Sent(
                        "replay",
                        new.request_id,
                        new.device_id,
                        self.profile.topics.request,
                        got[0],
                        got[1],
                        None,
                        new,
                    )
                )
        summary = plan.summary()
        reason = f"{len(sent)} sent, {len(failed)} failed of {plan.count} at {plan.rate:g}/s"
        if failed:
            reason += f"; first failure: {failed[0].reason}"
        note = self._audit(
            "replay",
            "ACCEPTED" if not failed else "FAILED",
            to_topic=bool(sent),
            targets=targets,
            preview=f"replay {summary['count']} from window {plan.since_ms}..{plan.until_ms} "
            f"filter={plan.filter_text!r}",
            reason=reason,
            request_ids=[s.request_id for s in sent],
        )
        mapping = {new.request_id: new.replay_of for _, new, _ in inflight}
        return ReplayResult(plan, tuple(sent), tuple(failed), note, mapping)

    # -- outbox ---------------------------------------------------------------------------

    def reconcile(self, *, timeout_s: float = 30.0) -> list[Reconciled]:
        """Settle actions journalled by an earlier run that crashed mid-send (reads topics)."""
        if not self.outbox.open_entries(self.profile.bootstrap):
            return []

        def read_keys(topic: str, since_ms: int) -> list[tuple[str, str, int, int]]:
            from pipeconsole.kafka.reader import AssignReader

            out: list[tuple[str, str, int, int]] = []
            kind: type[DeviceRequest] | type[CancelRequest] = (
                CancelRequest if topic == self.profile.topics.control else DeviceRequest
            )
            with AssignReader(self.profile, [topic], start=max(0, since_ms)) as rd:
                for rec in rd.read_to_end(timeout_s):
                    msg = decode(kind, rec.value)
                    if not isinstance(msg, DecodeFailure):
                        out.append((msg.request_id, msg.nonce, rec.partition, rec.offset))
            return out

        return reconcile(self.outbox, read_keys, cluster=self.profile.bootstrap)


def _encode(msg: DeviceRequest | CancelRequest) -> bytes:
    from pipeconsole.wire.codec import encode

    return encode(msg)


def _past_time(text: str, now: datetime) -> datetime:
    """``--since``/``--until``: RFC 3339, or an age like ``10m`` / ``-10m`` (that long ago)."""
    m = _REL.fullmatch(text.strip().lstrip("-"))
    if m is not None:
        return now - timedelta(seconds=float(m.group(1)) * _UNIT[m.group(2)])
    try:
        return timefmt.parse_rfc3339(text.strip())
    except ValueError as exc:
        raise ValueError(
            f"{text!r} is neither an age (90s, 10m, 2h) nor an RFC 3339 time ({exc})"
        ) from None


def _iso(when: datetime | int) -> str:
    if isinstance(when, int):
        when = timefmt.from_unix_ms(when)
    return timefmt.format_rfc3339(when)


def _delivery_text(profile: Profile, reason: str, timeout_s: float) -> str:
    if "timed out" in reason.lower() or "MSG_TIMED_OUT" in reason:
        return (
            f"not delivered: no broker at {profile.bootstrap} confirmed the record within "
            f"{timeout_s:g} s ({reason})"
        )
    return f"not delivered: {reason}"
