"""Run an experiment: plan → hypothesis before → method with guardrails → rollbacks → after.

:class:`Runner` is the one engine behind ``pipeconsole chaos run`` and (later) the TUI's Chaos
screen. It reads the state model through an injected ``snapshots()`` callable, injects faults
with a :class:`FaultClient`, publishes protocol chaos and ChaosExperiment events through an
injected sink (a ConfirmingProducer), and fills a :class:`Report`.

For a UI thread::

    runner = Runner(exp, snapshots=model.snapshot, topics=..., sink=producer,
                    on_progress=lambda p: app.post_message(ChaosProgress(p)))
    thread = runner.start()        # runs in its own thread
    runner.abort("operator")       # from any thread: rolls back within one probe interval
    report = runner.wait()         # or read runner.report when on_progress says "verdict"

Safety rules it keeps (the chaos tools' users' complaints, reliability-anchors §1):

- the blast-radius limit is checked, and a selector that matches nothing refused, **before**
  anything is injected; the hypothesis must hold before the method, else nothing is injected;
- every fault is a lease that ends by itself; rollback runs on every exit path (normal end,
  guardrail, operator abort, an exception in the runner) and a failed rollback step does not
  stop the others;
- guardrails are evaluated every ``probe_interval_s``; a breach aborts and rolls back at once,
  and the report records whether that took less than one probe interval.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipeconsole.chaos.experiment import Experiment, FaultAction, Probe, ProtocolAction, Selector
from pipeconsole.chaos.faults import FaultClient, Lease, Target
from pipeconsole.chaos.probes import (
    Baseline,
    Ledger,
    baseline_of,
    dlq_matches,
    measure,
    undecodable_of,
)
from pipeconsole.chaos.protocol import EvilSerializer
from pipeconsole.chaos.report import EXIT_CODES, FaultRecord, ProbeResult, Report, Verdict
from pipeconsole.chaos.traffic import (
    Sink,
    TrafficSender,
    counts,
    device_request_chaos,
    request_factory,
)
from pipeconsole.config import Topics
from pipeconsole.model.snapshot import Snapshot
from pipeconsole.wire.gen.chaos_pb2 import ChaosExperiment
from pipeconsole.wire.gen.device_request_pb2 import DeviceRequest

__all__ = ["Plan", "Progress", "Runner"]

LOG = logging.getLogger("pipeconsole.chaos")

MAX_REPORT_IN_EVENT = 512 * 1024
"""The report rides in the VERDICT event only up to this size (Kafka's 1 MB default)."""


@dataclass(frozen=True, slots=True)
class Plan:
    """What the experiment will touch, resolved against the fleet as it is now."""

    fleet_size: int
    actions: tuple[tuple[str, tuple[Target, ...]], ...]
    targets: tuple[str, ...]
    """Every device targeted directly, sorted."""
    stages: tuple[str, ...]
    downstream: tuple[str, ...]
    """Devices downstream of the targets (the indirect blast radius), sorted."""
    refusal: str = ""
    """Why the plan may not run; empty when it may."""
    unresolved: bool = False
    """Some target is not (yet) known to the console with an address."""

    def to_json(self) -> dict[str, Any]:
        return {
            "fleet_size": self.fleet_size,
            "actions": {name: [t.device_id for t in ts] for name, ts in self.actions},
            "targets": list(self.targets),
            "stages": list(self.stages),
            "downstream": list(self.downstream),
            "refusal": self.refusal,
        }

    def describe(self) -> str:
        lines = [f"fleet: {self.fleet_size} devices"]
        for name, ts in self.actions:
            lines.append(f"  {name}: {', '.join(t.device_id for t in ts) or '(none)'}")
        lines.append(
            f"blast radius: {len(self.targets)} device(s) in {len(self.stages)} stage(s) "
            f"directly, {len(self.downstream)} downstream"
        )
        if self.refusal:
            lines.append(f"REFUSED: {self.refusal}")
        return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class Progress:
    """One step of a running experiment, for a UI or a terminal."""

    phase: str
    """planned | before | method | abort | rollback | after | verdict"""
    elapsed_s: float
    text: str
    probes: tuple[ProbeResult, ...] = ()


@dataclass(slots=True)
class _Live:
    leases: list[tuple[Lease, FaultRecord]] = field(default_factory=list)
    senders: list[TrafficSender] = field(default_factory=list)
    targets: dict[str, Target] = field(default_factory=dict)


class Runner:
    """Runs one experiment once. Thread-safe controls: :meth:`abort`; everything else is
    called from the thread that runs it."""

    def __init__(
        self,
        experiment: Experiment,
        *,
        snapshots: Callable[[], Snapshot | None],
        topics: Topics,
        faults: FaultClient | None = None,
        sink: Sink | None = None,
        on_progress: Callable[[Progress], None] | None = None,
        experiment_id: str | None = None,
        issued_by: str = "chaos",
        sign: Callable[[DeviceRequest], DeviceRequest] | None = None,
        wall_ms: Callable[[], int] = lambda: int(time.time() * 1000),
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.exp = experiment
        self.experiment_id = experiment_id or f"exp-{uuid.uuid4().hex[:12]}"
        self._snapshots = snapshots
        self._topics = topics
        self._faults = faults or FaultClient()
        self._own_faults = faults is None
        self._sink = sink
        self._on_progress = on_progress
        self._issued_by = issued_by
        self._sign = sign
        self._wall_ms = wall_ms
        self._mono = monotonic
        self._abort = threading.Event()
        self._abort_reason = ""
        self._abort_by = ""
        self._t0 = monotonic()
        self._live = _Live()
        self._rolled_back = False
        self._baseline = Baseline()
        self.ledger = Ledger()
        self.report = Report(
            experiment_id=self.experiment_id,
            title=experiment.title,
            source=experiment.source,
            started_ms=wall_ms(),
        )
        self._thread: threading.Thread | None = None

    # -- controls --------------------------------------------------------------------------

    def start(self, *, dry_run: bool = False) -> threading.Thread:
        """Run in a background thread; read :attr:`report` after :meth:`wait`."""
        self._thread = threading.Thread(
            target=self.run, kwargs={"dry_run": dry_run}, name="chaos-runner", daemon=True
        )
        self._thread.start()
        return self._thread

    def wait(self, timeout: float | None = None) -> Report:
        if self._thread is not None:
            self._thread.join(timeout)
        return self.report

    def abort(self, reason: str = "operator abort", by: str = "operator") -> None:
        """Stop as soon as possible and roll back. Safe from any thread; idempotent."""
        if not self._abort.is_set():
            self._abort_reason, self._abort_by = reason, by
            self._abort.set()

    # -- planning --------------------------------------------------------------------------

    def _wait_snapshot(self, timeout: float) -> Snapshot | None:
        deadline = self._mono() + timeout
        snap = self._snapshots()
        while (snap is None or snap.fleet.total == 0) and self._mono() < deadline:
            if self._abort.wait(min(0.2, self.exp.probe_interval_s)):
                break
            snap = self._snapshots()
        return snap

    def plan(self, snap: Snapshot | None = None) -> Plan:
        """Resolve every action's targets against the fleet and check the blast-radius limit.

        Without ``snap``, wait (up to ``warmup_s``) for a snapshot in which every target is
        known: a console that just connected may not have read the whole registry yet."""
        if snap is not None:
            return self._plan(snap)
        deadline = self._mono() + self.exp.warmup_s
        while True:
            got = self._plan(self._wait_snapshot(max(0.0, deadline - self._mono())))
            unresolved = got.fleet_size == 0 or got.unresolved
            if not unresolved or self._mono() >= deadline or self._abort.is_set():
                return got
            self._abort.wait(min(0.2, self.exp.probe_interval_s))

    def _plan(self, snap: Snapshot | None) -> Plan:
        if snap is None or snap.fleet.total == 0:
            return Plan(0, (), (), (), (), refusal="no fleet visible (is anything registered?)")
        problems: list[str] = []
        actions: list[tuple[str, tuple[Target, ...]]] = []
        for a in self.exp.method:
            ts = _resolve(a.select, snap, problems, a.name)
            actions.append((a.name, ts))
        unresolved = bool(problems)
        by_id = {t.device_id: t for _, ts in actions for t in ts}
        targets = tuple(sorted(by_id))
        stages = tuple(sorted({t.stage for t in by_id.values()}))
        downstream = _downstream(snap, set(targets))
        br = self.exp.blast_radius
        total = snap.fleet.total
        if len(targets) > br.max_devices:
            problems.append(
                f"blast radius: {len(targets)} devices targeted, limit max_devices = "
                f"{br.max_devices}"
            )
        if len(stages) > br.max_stages:
            problems.append(
                f"blast radius: {len(stages)} stages targeted, limit max_stages = {br.max_stages}"
            )
        if total and len(targets) / total > br.max_fraction:
            problems.append(
                f"blast radius: {len(targets)}/{total} of the fleet targeted, limit "
                f"max_fraction = {br.max_fraction:g}"
            )
        return Plan(
            total, tuple(actions), targets, stages, downstream, "; ".join(problems), unresolved
        )

    # -- the run ---------------------------------------------------------------------------

    def run(self, *, dry_run: bool = False) -> Report:
        """Plan, then (unless ``dry_run``) run the experiment to a verdict. Never raises for
        anything the fleet or the network does; the report says what happened."""
        rep = self.report
        rep.dry_run = dry_run
        try:
            plan = self.plan()
            rep.plan = plan.to_json()
            self._progress("planned", plan.describe())
            if plan.refusal:
                return self._finish(Verdict.REFUSED, plan.refusal, emit=not dry_run)
            if dry_run:
                rep.verdict, rep.exit_code = "planned", 0
                rep.ended_ms = self._wall_ms()
                return rep
            self._live.targets = {t.device_id: t for _, ts in plan.actions for t in ts}
            self.ledger.targets = plan.targets
            self._emit(ChaosExperiment.STARTED, plan.describe(), list(plan.targets))
            self._baseline = baseline_of(self._snapshots(), self._topics.request)
            if not self._await_hypothesis("before", self.exp.warmup_s):
                return self._finish(
                    Verdict.NOT_STARTED, "the steady-state hypothesis did not hold before"
                )
            self._baseline = baseline_of(self._snapshots(), self._topics.request)
            deviated = self._method(plan)
        except Exception as exc:  # a bug: roll back, then say so in the report
            LOG.exception("chaos runner failed")
            self.abort(f"runner error: {type(exc).__name__}: {exc}", by="runner")
            deviated = False
        finally:
            self._rollback_all()
        held_after = self._after()
        if self._abort.is_set():
            return self._finish(Verdict.ABORTED, self._abort_reason)
        if deviated or not held_after:
            why = "a 'during' probe left its tolerance" if deviated else "not after the method"
            return self._finish(Verdict.DEVIATED, f"the hypothesis did not hold: {why}")
        return self._finish(Verdict.HELD, "")

    def _method(self, plan: Plan) -> bool:
        """Run the method; True when a ``during`` probe left its tolerance."""
        exp = self.exp
        targets_of = dict(plan.actions)
        pending = sorted(exp.method, key=lambda a: a.at_s)
        breaches = {g.name: 0 for g in exp.guardrails}
        deviated = False
        t0 = self._t0 = self._mono()
        self._progress("method", f"method starts: {len(pending)} action(s)")
        grace = 60.0
        while True:
            now = self._mono() - t0
            while pending and pending[0].at_s <= now and not self._abort.is_set():
                action = pending.pop(0)
                self._start_action(action, targets_of.get(action.name, ()))
            snap = self._snapshots()
            results = [self._probe("during", p, snap) for p in exp.hypothesis if p.during]
            deviated |= any(not r.ok for r in results)
            for g in exp.guardrails:
                r = self._probe("guardrail", g, snap)
                results.append(r)
                breaches[g.name] = 0 if r.ok else breaches[g.name] + 1
                if breaches[g.name] >= g.consecutive and not self._abort.is_set():
                    self.abort(
                        f"guardrail {g.name!r}: {g.probe} = {_fmt(r.value)} outside "
                        f"[{g.low:g}, {g.high:g}]",
                        by=g.name,
                    )
            self._progress("method", f"t={now:.1f}s", tuple(results))
            if self._abort.is_set():
                self._abort_now()
                break
            senders_done = all(s.done for s in self._live.senders)
            if now >= exp.duration_s and not pending and senders_done:
                break
            if now >= exp.duration_s + grace:
                for s in self._live.senders:
                    s.stop()
                break
            self._abort.wait(exp.probe_interval_s)
        return deviated

    def _abort_now(self) -> None:
        detected = self._wall_ms()
        self._progress("abort", f"aborting: {self._abort_reason}")
        self._rollback_all()
        done = self._wall_ms()
        within = (done - detected) <= self.exp.probe_interval_s * 1000
        self.report.aborted = {
            "by": self._abort_by,
            "reason": self._abort_reason,
            "detected_ms": detected,
            "rolled_back_ms": done,
            "rollback_s": (done - detected) / 1000,
            "within_probe_interval": within,
        }
        self._emit(ChaosExperiment.ABORTED, self._abort_reason, list(self.ledger.targets))

    def _start_action(
        self, action: FaultAction | ProtocolAction, targets: Sequence[Target]
    ) -> None:
        step: dict[str, Any] = {
            "name": action.name,
            "type": action.type,
            "at_ms": self._wall_ms(),
            "targets": [t.device_id for t in targets],
        }
        if isinstance(action, FaultAction):
            step["fault"] = action.fault
            failed: list[str] = []
            for t in targets:
                rec = FaultRecord(action.name, t.device_id, action.fault)
                got = self._faults.inject(t, action.fault, action.duration_s, action.params)
                if isinstance(got, Lease):
                    rec.fault_id = got.fault_id
                    rec.injected_ms = self._wall_ms()
                    rec.expires_ms = got.expires_unix_ms
                    self._live.leases.append((got, rec))
                else:
                    rec.error = got.reason
                    failed.append(f"{t.device_id}: {got.reason}")
                self.report.faults.append(rec)
            if failed:
                # A step that could not be applied (the device refused the fault, or could not
                # be reached) makes the method something other than the file's: abort, so the
                # faults already started are rolled back now, not at the end of the method,
                # and the verdict says which step failed and why.
                self.abort(f"step {action.name!r} failed: {'; '.join(failed)}", by="step")
        else:
            step["count"] = action.count
            step["rates"] = dict(action.rates)
            self._start_traffic(action, targets)
        self.report.steps.append(step)
        self._emit(ChaosExperiment.STEP, f"{action.type}: {action.name}", step["targets"])
        self._progress("method", f"started {action.type} {action.name!r}")

    def _start_traffic(self, action: ProtocolAction, targets: Sequence[Target]) -> None:
        if self._sink is None:
            raise RuntimeError("protocol actions need a Kafka sink")
        ids = [t.device_id for t in targets]
        base = request_factory(
            ids,
            method=action.method,
            uri=action.uri,
            deadline_s=action.deadline_s,
            issued_by=self._issued_by,
            sign=self._sign,
        )
        gen = device_request_chaos(base, seed=action.seed)
        topic = getattr(self._topics, action.topic, None)
        sender = TrafficSender(
            self._sink,
            topic if isinstance(topic, str) else action.topic,
            EvilSerializer(gen, action.rates),
            count=action.count,
            rate_per_s=action.rate_per_s,
            experiment_id=self.experiment_id,
            ledger=self.ledger,
            fallback_key=ids[0],
        )
        self._live.senders.append(sender)
        sender.start()

    def _rollback_all(self) -> None:
        """End every fault the experiment started, then the file's rollbacks. Idempotent;
        every step runs even when an earlier one failed."""
        for s in self._live.senders:
            s.stop()
        if self._rolled_back:
            return
        self._rolled_back = True
        for lease, rec in self._live.leases:
            if rec.ended_by:
                continue
            err = self._faults.end(lease)
            rec.ended_ms = self._wall_ms()
            if err is None:
                rec.ended_by = "rollback"
            elif rec.expires_ms and rec.ended_ms >= rec.expires_ms:
                rec.ended_by = "expired"
            else:
                # e.g. a crashed device refuses connections: its lease still ends it.
                rec.ended_by = f"lease (rollback failed: {err.reason})"
        for rb in self.exp.rollbacks:
            if rb.type == "halt":
                for t in self._live.targets.values():
                    err = self._faults.halt(t)
                    self.report.rollbacks.append(
                        {"type": "halt", "device_id": t.device_id, "ok": err is None}
                        | ({"error": err.reason} if err else {})
                    )
        if self._live.leases:
            self._progress("rollback", f"rolled back {len(self._live.leases)} fault(s)")
        if any(rec for _l, rec in self._live.leases):
            self._emit(ChaosExperiment.ROLLED_BACK, "faults ended", list(self.ledger.targets))

    # -- probes ----------------------------------------------------------------------------

    def _measure(self, p: Probe, snap: Snapshot | None) -> float:
        return measure(p.probe, snap, self._baseline, self.ledger, self._topics.request)

    def _probe(self, phase: str, p: Probe, snap: Snapshot | None) -> ProbeResult:
        v = self._measure(p, snap)
        ok = p.within(v)
        r = ProbeResult(
            phase, p.name, p.probe, None if math.isnan(v) else v, (p.low, p.high), ok,
            self._wall_ms(),
        )  # fmt: skip
        if phase != "guardrail" or not ok:
            self.report.probes.append(r)
        return r

    def _await_hypothesis(self, phase: str, timeout: float) -> bool:
        """Poll until every hypothesis probe holds or ``timeout`` passes; record the last
        measurement. Before the method an abort ends the wait; after it, it does not."""
        deadline = self._mono() + timeout
        while True:
            snap = self._snapshots()
            held = all(p.within(self._measure(p, snap)) for p in self.exp.hypothesis)
            if held or self._mono() >= deadline or (phase == "before" and self._abort.is_set()):
                results = tuple(self._probe(phase, p, snap) for p in self.exp.hypothesis)
                self._progress(phase, "hypothesis held" if held else "hypothesis not met", results)
                return held
            pause = min(self.exp.probe_interval_s, max(0.0, deadline - self._mono()))
            if phase == "before":
                self._abort.wait(pause)
            else:
                time.sleep(pause)  # the abort flag is set for good after an abort

    def _after(self) -> bool:
        """Wait for the senders' deliveries, then for the hypothesis to hold again."""
        for s in self._live.senders:
            s.join(timeout=30.0)
        held = self._await_hypothesis("after", self.exp.settle_s)
        snap = self._snapshots()
        if snap is not None:
            self.report.dlq_by_reason = dlq_matches(snap, self.ledger)
            self.report.undecodable_seen = (
                undecodable_of(snap, self._topics.request) - self._baseline.undecodable
            )
        if self._live.senders:
            self.report.protocol = dict(counts(self.ledger))
        return held

    # -- events, progress, verdict ---------------------------------------------------------

    def _finish(self, verdict: str, reason: str, *, emit: bool = True) -> Report:
        rep = self.report
        rep.verdict, rep.reason = verdict, reason
        rep.exit_code = EXIT_CODES[verdict]
        rep.ended_ms = self._wall_ms()
        if emit:
            text = rep.dumps()
            self._emit(
                ChaosExperiment.VERDICT,
                f"{verdict}: {reason}" if reason else verdict,
                list(self.ledger.targets),
                held=verdict == Verdict.HELD,
                report_json=text if len(text) <= MAX_REPORT_IN_EVENT else "",
            )
        self._progress("verdict", rep.summary())
        if self._own_faults:
            self._faults.close()
        return rep

    def _emit(
        self,
        phase: int,
        detail: str,
        targets: list[str],
        *,
        held: bool = False,
        report_json: str = "",
    ) -> None:
        if self._sink is None:
            return
        ev = ChaosExperiment(
            experiment_id=self.experiment_id,
            name=self.exp.title,
            phase=phase,  # type: ignore[arg-type]
            time_unix_ms=self._wall_ms(),
            detail=detail[:4000],
            targets=targets,
            hypothesis_held=held,
            issued_by=self._issued_by,
            report_json=report_json,
            lease_expires_unix_ms=max((rec.expires_ms for _l, rec in self._live.leases), default=0),
        )
        try:
            self._sink.send(
                self._topics.chaos, ev.SerializeToString(), key=self.experiment_id.encode()
            )
        except Exception:  # events are for watchers; never let them stop a rollback
            LOG.warning("could not publish a chaos event", exc_info=True)

    def _progress(self, phase: str, text: str, probes: tuple[ProbeResult, ...] = ()) -> None:
        if self._on_progress is None:
            return
        try:
            self._on_progress(Progress(phase, self._mono() - self._t0, text, probes))
        except Exception:
            LOG.warning("progress callback failed", exc_info=True)


def _resolve(sel: Selector, snap: Snapshot, problems: list[str], action: str) -> tuple[Target, ...]:
    devices = {d.device_id: d for d in snap.devices}
    out: list[Target] = []
    for t in sel.targets:
        d = devices.get(t)
        if d is None:
            problems.append(f"{action}: no device {t!r} in the fleet")
        elif not d.base_url:
            problems.append(f"{action}: device {t!r} has no address (not registered)")
        else:
            out.append(Target(d.device_id, d.base_url, d.stage))
    if sel.stage:
        matched = sorted(
            (d for d in snap.devices if d.stage == sel.stage and d.base_url),
            key=lambda d: d.device_id,
        )
        if sel.count:
            matched = matched[: sel.count]
        if not matched:
            problems.append(f"{action}: no device in stage {sel.stage!r}")
        out += [Target(d.device_id, d.base_url, d.stage) for d in matched]
    return tuple(dict.fromkeys(out))


def _downstream(snap: Snapshot, targets: set[str]) -> tuple[str, ...]:
    children: dict[str, set[str]] = {}
    for e in snap.graph.edges:
        children.setdefault(e.src, set()).add(e.dst)
    seen: set[str] = set()
    stack = list(targets)
    while stack:
        for c in children.get(stack.pop(), ()):
            if c not in seen and c not in targets:
                seen.add(c)
                stack.append(c)
    return tuple(sorted(seen))


def _fmt(v: float | None) -> str:
    return "unknown" if v is None else f"{v:.3g}"
