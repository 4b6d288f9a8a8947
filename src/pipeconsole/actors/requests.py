"""The lifecycle of a DeviceRequest inside the service (DESIGN §3).

::

    record -> decode -> validate -> key == device_id -> verify token (when a verifier is set)
       |  any failure: DLQ record (acked) -> REJECTED response (acked) -> offset done
       v
    accept: duplicate id joins the pending job | cancelled earlier -> CANCELLED
            past by more than the misfire threshold: FORGET -> MISFIRED, BEST_EFFORT -> now
            -> SCHEDULED event, scheduler entry at schedule_time (empty = now)
    fire:   deadline passed -> DEADLINE_EXCEEDED; wait for a device slot and a global slot
            (bounded by the deadline) -> DISPATCHED -> attempts (executor) -> final outcome
    final:  the response is acked -> every source offset of the job is done

Cancels (device-control-v1): pending -> CANCELLED (never executed); fired or finished ->
CANCEL_TOO_LATE (the request's own outcome still follows); unknown id -> remembered, so a
request that arrives after its cancel is CANCELLED. With a verifier, a cancel must be signed
too: an unverified one is dead-lettered and answered REJECTED (empty request_id), not applied.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol, TypeAlias

from google.protobuf.message import Message

from pipeconsole.actors.actor import Job
from pipeconsole.actors.dlq import dead_letter, truncated
from pipeconsole.actors.retry import Deadline
from pipeconsole.actors.scheduler import Entry
from pipeconsole.kafka.records import Record
from pipeconsole.wire.codec import DecodeFailure, decode
from pipeconsole.wire.gen.device_request_pb2 import CancelRequest, DeviceRequest, QoS
from pipeconsole.wire.gen.device_response_pb2 import DeviceResponse
from pipeconsole.wire.validate import deadline_of, schedule_of, validate_cancel, validate_request

if TYPE_CHECKING:
    from pipeconsole.actors.actor import DeviceActor, HealthTick
    from pipeconsole.actors.service import DispatchService

__all__ = ["RequestLifecycle", "Verifier"]

log = logging.getLogger(__name__)


class Verifier(Protocol):
    """Checks a request's or a cancel's token; returns why it is refused, or None.

    ``position`` is where the record was read (``topic/partition/offset``): the same record
    delivered again (a rebalance, a restart) is a redelivery, not a replayed nonce.
    :class:`pipeconsole.actions.sign.Verifier` is one."""

    def __call__(self, msg: Message, *, position: str | None = None) -> str | None: ...


Outcome: TypeAlias = DeviceResponse.Outcome.ValueType
_MAX_EARLY_CANCELS = 10_000


class RequestLifecycle:
    """Request and cancel handling for one :class:`DispatchService` (on its loop)."""

    def __init__(self, service: DispatchService, *, verifier: Verifier | None = None) -> None:
        self._svc = service
        self._verifier = verifier
        self._early_cancels: OrderedDict[str, str] = OrderedDict()
        self.executed = 0
        """Requests that reached OK or FAILED (an attempt was made)."""
        self.rejected = 0
        self.dead_lettered = 0
        self.outcomes: dict[int, int] = {}
        """Final outcomes published, by outcome number."""

    # -- intake ---------------------------------------------------------------------------------

    def on_request(self, r: Record) -> None:
        svc = self._svc
        decoded = decode(DeviceRequest, r.value)
        if isinstance(decoded, DecodeFailure):
            self.reject(r, decoded.code, decoded.reason, None)
            return
        req = decoded
        now = svc._wall()
        errors = validate_request(req, now=datetime.fromtimestamp(now, UTC), at_issue=False)
        if errors:
            why = "; ".join(f"{e.field}: {e.message}" for e in errors[:5])
            self.reject(r, "invalid", why, req)
            return
        key = (r.key or b"").decode("utf-8", "replace")
        if key != req.device_id:
            self.reject(r, "key_mismatch", "record key differs from device_id", req)
            return
        if self._verifier is not None:
            why_not = self._verifier(req, position=_position(r))
            if why_not:
                self.reject(r, "unverified", why_not, req)
                return
        self._accept(req, r, now)

    def _accept(self, req: DeviceRequest, r: Record, now: float) -> None:
        svc = self._svc
        # The actor is made only for a job it keeps (see DispatchService.release).
        known = svc.actors.get(req.device_id)
        rid = req.request_id
        source = (r.topic, r.partition, r.offset)
        existing = known.jobs.get(rid) if known is not None else None
        if existing is not None:
            existing.sources.append(source)  # a duplicate record joins the pending request
            return
        if svc.finished(rid):
            svc.done(*source)  # answered already; devices de-duplicate anyway
            return
        sched = schedule_of(req)
        deadline = deadline_of(req)
        job = Job(
            request=req,
            request_id=rid,
            device_id=req.device_id,
            sources=[source],
            scheduled_for=sched.timestamp() if sched is not None else now,
            deadline=deadline.timestamp() if deadline is not None else None,
            received=now,
        )
        if rid in self._early_cancels:
            why = self._early_cancels.pop(rid)
            svc.spawn(self.finish(job, DeviceResponse.CANCELLED, reason=why))
            return
        late = now - job.scheduled_for
        misfired = sched is not None and late > svc.settings.misfire_threshold_s
        if misfired and req.misfire_strategy == DeviceRequest.FORGET:
            svc.spawn(self.finish(job, DeviceResponse.MISFIRED, reason=self._misfire(late)))
            return
        svc.actor(req.device_id).jobs[rid] = job
        self._event(job, DeviceResponse.SCHEDULED)
        if job.scheduled_for <= now:  # empty schedule_time, or late (BEST_EFFORT): fire now
            self._start(job, now)
            return
        svc.scheduler.add(svc._mono() + (job.scheduled_for - now), _key(job), job)

    def _misfire(self, late: float) -> str:
        threshold = self._svc.settings.misfire_threshold_s
        return f"late by {late:.1f} s (misfire threshold {threshold:g} s), strategy FORGET"

    # -- firing ---------------------------------------------------------------------------------

    def fire(self, job: Job, entry: Entry[Job | HealthTick]) -> None:
        svc = self._svc
        # The timer thread stamped the moment it fired; lateness is measured there.
        now = entry.fired_wall or svc._wall()
        if now < job.scheduled_for:  # the wall clock moved back: never fire early
            svc.scheduler.add(svc._mono() + (job.scheduled_for - now), entry.key, job)
            return
        self._start(job, now)

    def _start(self, job: Job, now: float) -> None:
        """``job`` fires at wall time ``now``: hand it to execution (a task on the loop)."""
        svc = self._svc
        job.fired = True
        job.fired_at = now
        late = now - job.scheduled_for
        misfire = job.request.misfire_strategy == DeviceRequest.FORGET
        if misfire and late > svc.settings.misfire_threshold_s:
            svc.spawn(self.finish(job, DeviceResponse.MISFIRED, reason=self._misfire(late)))
            return
        svc.spawn(self._run(job))

    def _deadline(self, job: Job) -> Deadline:
        svc = self._svc
        s = svc.settings
        at = job.deadline
        if at is None:
            prio = job.request.qos.priority
            budget = (
                s.deadline_interactive_s
                if prio == QoS.INTERACTIVE
                else s.deadline_bulk_s
                if prio == QoS.BULK
                else s.deadline_normal_s
            )
            at = job.fired_at + budget
            job.deadline = at
        return Deadline(svc._mono() + (at - svc._wall()))

    async def _run(self, job: Job) -> None:
        svc = self._svc
        deadline = self._deadline(job)
        if deadline.passed(svc._mono()):
            await self.finish(job, DeviceResponse.DEADLINE_EXCEEDED, reason="deadline passed")
            return
        actor = svc.actor(job.device_id)
        if not actor.slots.locked() and not svc.slots.locked():
            # Both slots free (and nobody queued before us): take them without suspending.
            await actor.slots.acquire()
            await svc.slots.acquire()
            have_device = have_global = True
        else:
            have_device, have_global = await self._wait_for_slots(job, actor, deadline)
        if not have_global:
            if have_device:
                actor.slots.release()
            await self.finish(
                job,
                DeviceResponse.DEADLINE_EXCEEDED,
                reason="no free in-flight slot before the deadline",
            )
            return
        actor.in_flight += 1
        svc.in_flight += 1
        started = svc._wall()
        try:
            info = svc.devices.get(job.device_id)
            if info is None:
                result = None
            else:
                req = job.request
                result = await svc.executor.execute(
                    svc.http,
                    url=info.base_url.rstrip("/") + req.uri,
                    method=req.method,
                    headers=dict(req.headers),
                    content=req.entity,
                    content_type=req.entity_content_type,
                    request_id=job.request_id,
                    deadline=deadline,
                    max_attempts=req.qos.max_attempts,
                    on_attempt=lambda n: self._dispatched(job, n),
                )
        finally:
            actor.in_flight -= 1
            svc.in_flight -= 1
            actor.slots.release()
            svc.slots.release()
        duration = int((svc._wall() - started) * 1000)
        if result is None:
            await self.finish(job, DeviceResponse.FAILED, reason="device is not in the registry")
            return
        if result.attempts:
            self.executed += 1
        await self.finish(
            job,
            result.outcome,
            status_code=result.status_code,
            attempts=result.attempts,
            reason=result.reason,
            entity_digest=result.entity_digest,
            duration_ms=duration,
        )

    async def _wait_for_slots(
        self, job: Job, actor: DeviceActor, deadline: Deadline
    ) -> tuple[bool, bool]:
        """Wait (bounded by the deadline) for a device and a global slot; counts as waiting
        for back-pressure meanwhile. Returns which of the two were taken."""
        svc = self._svc
        tp = job.partition
        actor.waiting += 1
        svc.waiting[tp] = svc.waiting.get(tp, 0) + 1
        svc.flow(tp)
        have_device = have_global = False
        try:
            async with asyncio.timeout(max(0.0, deadline.remaining(svc._mono()))):
                await actor.slots.acquire()
                have_device = True
                await svc.slots.acquire()
                have_global = True
        except TimeoutError:
            pass
        finally:
            actor.waiting -= 1
            if tp in svc.waiting:
                svc.waiting[tp] -= 1
            svc.flow(tp)
        return have_device, have_global

    def _dispatched(self, job: Job, attempt: int) -> None:
        if attempt == 1 and not job.dispatched:
            job.dispatched = True
            self._event(job, DeviceResponse.DISPATCHED)

    # -- cancels --------------------------------------------------------------------------------

    def on_cancel(self, r: Record) -> None:
        svc = self._svc
        decoded = decode(CancelRequest, r.value)
        if isinstance(decoded, DecodeFailure):
            self.reject(r, decoded.code, decoded.reason, None)
            return
        errors = validate_cancel(decoded)
        if errors:
            why = "; ".join(f"{e.field}: {e.message}" for e in errors[:5])
            self.reject(r, "invalid", why, None)
            return
        cancel = decoded
        if (r.key or b"").decode("utf-8", "replace") != cancel.device_id:
            self.reject(r, "key_mismatch", "record key differs from device_id", None)
            return
        if self._verifier is not None:
            # An unsigned or forged cancel is not applied: dead-lettered and answered REJECTED
            # with an empty request_id (the request it names keeps its own outcome).
            why_not = self._verifier(cancel, position=_position(r))
            if why_not:
                self.reject(
                    r, "unverified", f"cancel of {cancel.request_id[:128]}: {why_not}", None
                )
                return
        source = (r.topic, r.partition, r.offset)
        why = f"cancelled by {cancel.issued_by or 'an operator'}" + (
            f": {cancel.reason}" if cancel.reason else ""
        )
        actor = svc.actors.get(cancel.device_id)
        job = actor.jobs.get(cancel.request_id) if actor is not None else None
        if job is not None and not job.fired:
            svc.scheduler.cancel(_key(job))
            svc.spawn(self._cancel_pending(job, why, source))
        elif job is not None or svc.finished(cancel.request_id):
            svc.spawn(self._too_late(cancel, job, source))
        else:
            self._early_cancels[cancel.request_id] = why
            if len(self._early_cancels) > _MAX_EARLY_CANCELS:
                self._early_cancels.popitem(last=False)
            svc.done(*source)

    async def _cancel_pending(self, job: Job, why: str, source: tuple[str, int, int]) -> None:
        if await self.finish(job, DeviceResponse.CANCELLED, reason=why):
            self._svc.done(*source)

    async def _too_late(
        self, cancel: CancelRequest, job: Job | None, source: tuple[str, int, int]
    ) -> None:
        svc = self._svc
        if job is not None:
            resp = self._response(job, DeviceResponse.CANCEL_TOO_LATE, reason="already fired")
        else:
            resp = DeviceResponse(
                request_id=cancel.request_id,
                device_id=cancel.device_id,
                outcome=DeviceResponse.CANCEL_TOO_LATE,
                reason=_finished_reason(svc.finished_as(cancel.request_id)),
                time_unix_ms=int(svc._wall() * 1000),
                actor_id=svc.settings.actor_id,
            )
        ok = await svc.publisher.send_until_acked(
            svc.topics.response, resp.SerializeToString(), cancel.device_id
        )
        if ok:
            svc.done(*source)

    # -- outcomes -------------------------------------------------------------------------------

    def _response(self, job: Job, outcome: Outcome, **fields: object) -> DeviceResponse:
        svc = self._svc
        req = job.request
        _topic, part, off = job.sources[0]
        resp = DeviceResponse(
            request_id=job.request_id,
            device_id=job.device_id,
            outcome=outcome,
            time_unix_ms=int(svc._wall() * 1000),
            actor_id=svc.settings.actor_id,
            scheduled_for_unix_ms=int(job.scheduled_for * 1000),
            deadline_unix_ms=int(job.deadline * 1000) if job.deadline is not None else 0,
            method=req.method,
            uri=req.uri,
            source_partition=part,
            source_offset=off,
            issued_by=req.issued_by,
            replay_of=req.replay_of,
            lateness_ms=int((job.fired_at - job.scheduled_for) * 1000) if job.fired else 0,
            **fields,  # type: ignore[arg-type]
        )
        return resp

    def _event(self, job: Job, outcome: Outcome) -> None:
        svc = self._svc
        resp = self._response(job, outcome)
        svc.publisher.fire(svc.topics.response, resp.SerializeToString(), job.device_id)

    async def finish(self, job: Job, outcome: Outcome, **fields: object) -> bool:
        """Publish the final outcome; once acked, every source record of the job is done."""
        svc = self._svc
        job.done = True
        actor = svc.actors.get(job.device_id)
        if actor is not None and actor.jobs.get(job.request_id) is job:
            del actor.jobs[job.request_id]
        svc.release(job.device_id)
        svc.remember_finished(job.request_id, DeviceResponse.Outcome.Name(outcome))
        resp = self._response(job, outcome, **fields)
        ok = await svc.publisher.send_until_acked(
            svc.topics.response, resp.SerializeToString(), job.device_id
        )
        if ok:
            self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
            for source in job.sources:
                svc.done(*source)
        return ok

    # -- rejects --------------------------------------------------------------------------------

    def reject(self, r: Record, code: str, reason: str, req: DeviceRequest | None) -> None:
        """Dead-letter ``r`` and answer REJECTED; the offset is done after both are acked."""
        self._svc.spawn(self._reject(r, code, reason, req))

    async def _reject(self, r: Record, code: str, reason: str, req: DeviceRequest | None) -> None:
        svc = self._svc
        tp = (r.topic, r.partition)
        letter = dead_letter(
            r,
            code=code,
            reason=reason,
            attempts=1,
            actor_id=svc.settings.actor_id,
            time_unix_ms=int(svc._wall() * 1000),
        )

        def alarm() -> None:
            svc.dlq_blocked.add(tp)
            svc.flow(tp)

        refused = await svc.publisher.try_send(
            svc.topics.dlq, letter.value or b"", letter.key, letter.headers
        )
        if refused is not None and not refused.retriable and not refused.possibly_persisted:
            letter = truncated(letter)  # e.g. MSG_SIZE_TOO_LARGE: it will never fit whole
        ok = refused is None or await svc.publisher.send_until_acked(
            svc.topics.dlq,
            letter.value or b"",
            letter.key,
            letter.headers,
            pause_s=svc.settings.dlq_retry_s,
            on_failure=alarm,
        )
        if not ok:
            return
        if tp in svc.dlq_blocked:
            svc.dlq_blocked.discard(tp)
            svc.flow(tp)
        self.dead_lettered += 1
        key = (r.key or b"")[:256].decode("utf-8", "replace")
        resp = DeviceResponse(
            request_id=req.request_id if req is not None else "",
            device_id=req.device_id if req is not None else key,
            outcome=DeviceResponse.REJECTED,
            reason=f"{code}: {reason}"[:1000],
            time_unix_ms=int(svc._wall() * 1000),
            actor_id=svc.settings.actor_id,
            source_partition=r.partition,
            source_offset=r.offset,
            method=req.method if req is not None else "",
            uri=req.uri if req is not None else "",
            issued_by=req.issued_by if req is not None else "",
        )
        if r.topic == svc.topics.request and req is not None:
            svc.remember_finished(req.request_id, "REJECTED")
        ok = await svc.publisher.send_until_acked(
            svc.topics.response, resp.SerializeToString(), resp.device_id or None
        )
        if ok:
            self.rejected += 1
            self.outcomes[DeviceResponse.REJECTED] = (
                self.outcomes.get(DeviceResponse.REJECTED, 0) + 1
            )
            svc.done(r.topic, r.partition, r.offset)


def _position(r: Record) -> str:
    return f"{r.topic}/{r.partition}/{r.offset}"


def _key(job: Job) -> str:
    return f"r:{job.device_id}/{job.request_id}"


def _finished_reason(outcome: str) -> str:
    """A too-late cancel's reason for a request finished here: with its outcome when known."""
    return f"already finished ({outcome})" if outcome else "already finished"
