"""Operator actions in the console: schedule, edit and resend, cancel, replay.

The flow of each action, on the UI thread except where it says *worker*:

``n`` new request / ``e`` edit and resend
    access check → the schedule form (:class:`~.screens.schedule.ScheduleScreen`, validated
    inline) → a typed confirmation when the command is destructive → *worker*
    ``ActionLayer.schedule`` → :class:`~.messages.ActionDone`. "Edit and resend" first looks
    the original up on the request topic (*worker* → :class:`~.messages.RequestFound`).
``C`` cancel
    access check → typed confirmation (the device id, blast radius on the graph) → *worker*
    ``ActionLayer.cancel`` → :class:`~.messages.ActionDone`.
``R`` replay
    *worker* dry run ``ActionLayer.plan_replay`` → :class:`~.messages.ReplayPlanned` → the
    preview (``ReplayPlan.summary()``) with a typed confirmation (the count) → *worker*
    ``ActionLayer.execute_replay`` → :class:`~.messages.ReplayDone`.

A profile that may not act (read-only, viewer) still *sees* the actions: pressing one runs
the layer, which refuses before anything is sent and audits the refusal; the console shows the
layer's message. Workers are thread workers in group ``actions`` (not exclusive: an operator
may queue several; :class:`~.operator.Operator` runs them one at a time), ``exit_on_error`` off,
so a bug lands in the app's one worker-failure handler. Workers only post messages.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from pipeconsole.actions.form import spec_from_request
from pipeconsole.actions.layer import (
    ActionLayer,
    Failed,
    Refused,
    ReplayResult,
    ScheduleSpec,
    Sent,
)
from pipeconsole.actions.replay import ReplayPlan
from pipeconsole.model.snapshot import FINAL_STATES, RequestRow
from pipeconsole.text import sanitize
from pipeconsole.ui.blast import blast_of, confirmation_word
from pipeconsole.ui.messages import ActionDone, ReplayDone, ReplayPlanned, RequestFound
from pipeconsole.ui.operator import Operator
from pipeconsole.ui.screens.confirm import CONFIRMED, ConfirmResult, ConfirmScreen
from pipeconsole.ui.screens.schedule import ScheduleScreen, is_destructive
from pipeconsole.wire.validate import FieldError

if TYPE_CHECKING:
    from pipeconsole.ui.app import PipeConsoleApp

__all__ = ["REPLAY_RATE", "ActionController"]

REPLAY_RATE = 10.0
"""Requests per second for replays started from the console."""


def _short(text: str, n: int = 80) -> str:
    return sanitize(text, max_len=n)


class ActionController:
    """Owns the action flows; the app routes the worker messages here."""

    def __init__(self, app: PipeConsoleApp, operator: Operator) -> None:
        self.app = app
        self.operator = operator
        self._rows: dict[str, RequestRow] = {}
        """Rows waiting for their "edit and resend" lookup, by request id."""

    # ------------------------------------------------------------------ workers

    def _work(self, description: str, job: Callable[[ActionLayer], object]) -> None:
        """Run ``job`` on the layer in a thread worker; ``job`` posts its own message."""
        operator = self.operator
        self.app.run_worker(
            lambda: operator.run(job),
            thread=True,
            exclusive=False,
            exit_on_error=False,
            group="actions",
            name="action",
            description=description,
        )

    def _post(self, message: ActionDone | ReplayPlanned | ReplayDone | RequestFound) -> None:
        self.app.post_message(message)  # thread-safe

    # ------------------------------------------------------------------ schedule

    def new_request(self, device_id: str = "", values: dict[str, str] | None = None) -> None:
        """``n``: open the schedule form (or refuse, audited, for a profile that may not)."""
        refusal = self.operator.check("schedule")
        if refusal is not None:
            spec = ScheduleSpec(device_id=device_id, method="", uri="")
            self._work(
                "Refusing a schedule", lambda layer: self._post(ActionDone(layer.schedule(spec)))
            )
            return
        title = "Edit and resend" if values else "New request"
        self.app.push_screen(
            ScheduleScreen(self._prepare, device_id=device_id, values=values, title=title),
            self._form_done,
        )

    def _prepare(self, spec: ScheduleSpec) -> list[FieldError]:
        """The validator's field errors, and a device the console does not know: a typo there
        was sent, and came back FAILED ("device is not in the registry") from the actors."""
        errors = self.operator.prepare(spec)
        snapshot = self.app.snapshot
        if (
            snapshot is None
            or not snapshot.devices
            or not spec.device_id
            or any(e.field == "device_id" for e in errors)
        ):
            return errors
        known = [d.device_id for d in snapshot.devices]
        if spec.device_id not in known:
            close = difflib.get_close_matches(spec.device_id, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            errors.append(
                FieldError(
                    "device_id",
                    "unknown",
                    f"{sanitize(spec.device_id, max_len=64)!r} is not in the fleet "
                    f"({len(known)} devices known){hint}",
                )
            )
        return errors

    def edit_and_resend(self, row: RequestRow) -> None:
        """``e``: the past request's content in the form (looked up on the request topic)."""
        if self.operator.check("schedule") is not None:
            self.new_request(row.device_id)
            return
        rid = row.request_id

        def job(layer: ActionLayer) -> None:
            try:
                found = layer.find_request(rid, timeout_s=10.0)
            except Exception as exc:  # a value for the UI, never raised into the worker
                self._post(RequestFound(rid, None, f"{type(exc).__name__}: {exc}"))
                return
            self._post(RequestFound(rid, found))

        self.app.notify("Looking the request up on the request topic…", markup=False, timeout=3)
        self._rows[rid] = row
        self._work("Looking up a request to resend", job)

    def request_found(self, message: RequestFound) -> None:
        row = self._rows.pop(message.request_id, None)
        if message.request is not None:
            self.new_request(message.request.device_id, spec_from_request(message.request))
            return
        if row is None:
            return
        why = message.error or "not on the request topic within the snapshot window"
        self.app.notify(
            f"original not found ({_short(why)}): headers and entity are not filled in",
            severity="warning",
            markup=False,
        )
        values = {"device_id": row.device_id, "method": row.method, "uri": row.uri}
        self.new_request(row.device_id, values)

    def _form_done(self, spec: ScheduleSpec | None) -> None:
        if spec is None:
            return
        if not is_destructive(spec):
            self._send(spec)
            return
        self._confirm(
            f"{spec.method} {spec.uri} stops work on a device",
            [f"schedule {spec.method} {spec.uri} on {spec.device_id}"]
            + ([f"at {spec.at}"] if spec.at else []),
            (spec.device_id,),
            lambda: self._send(spec),
            "schedule",
        )

    def _send(self, spec: ScheduleSpec) -> None:
        self._work(
            f"Scheduling {spec.method} {spec.uri}",
            lambda layer: self._post(ActionDone(layer.schedule(spec))),
        )

    # ------------------------------------------------------------------ cancel

    def cancel(self, row: RequestRow) -> None:
        """``C``: cancel a pending request, after a typed confirmation of its device id."""
        rid, device = row.request_id, row.device_id
        if self.operator.check("cancel") is not None:
            self._work(
                "Refusing a cancel", lambda layer: self._post(ActionDone(layer.cancel(rid, device)))
            )
            return
        if row.state in FINAL_STATES:
            self.app.notify(
                f"request {rid[:8]} is already {row.state.value}: nothing to cancel",
                severity="warning",
                markup=False,
            )
            return
        self._confirm(
            "Cancel a scheduled request",
            [f"cancel {rid}", f"{row.method} {row.uri} on {device}", f"state {row.state.value}"],
            (device,),
            lambda: self._work(
                f"Cancelling {rid[:8]}",
                lambda layer: self._post(ActionDone(layer.cancel(rid, device))),
            ),
            "cancel",
        )

    # ------------------------------------------------------------------ replay

    def replay(self, ids: Sequence[str]) -> None:
        """``R``: dry run first (reads the window), then the preview and typed confirmation."""
        chosen = tuple(dict.fromkeys(ids))
        if not chosen:
            self.app.notify("no request selected", severity="warning", markup=False)
            return
        refused = self.operator.check("replay") is not None

        def job(layer: ActionLayer) -> None:
            plan = layer.plan_replay(ids=chosen, rate=REPLAY_RATE, timeout_s=15.0)
            if refused and isinstance(plan, ReplayPlan):
                self._post(ReplayDone(layer.execute_replay(plan)))  # refused and audited
                return
            self._post(ReplayPlanned(plan))

        self.app.notify(
            f"Planning the replay of {len(chosen)} request(s) (dry run)…", markup=False, timeout=3
        )
        self._work("Planning a replay (dry run)", job)

    def replay_planned(self, message: ReplayPlanned) -> None:
        plan = message.plan
        if isinstance(plan, Refused | Failed):
            self._report(plan)
            return
        if plan.count == 0:
            missing = ", ".join(m[:8] for m in plan.missing) or "none"
            self.app.notify(
                f"nothing to replay: not found in the window: {missing}",
                severity="warning",
                markup=False,
            )
            return
        s = plan.summary()
        preview = [
            f"replay {plan.count} request(s) as new ones (new ids and nonces, replay_of set)",
            f"rate {plan.rate:g}/s, about {plan.estimated_s:.1f} s",
            f"originals' outcomes: {s['outcomes']}",
            f"per device: {s['targets']}",
        ]
        if plan.missing:
            preview.append(f"not found in the window (skipped): {len(plan.missing)}")
        self._confirm(
            f"Replay {plan.count} request(s)",
            preview,
            tuple(sorted(plan.targets)),
            lambda: self._work(
                f"Replaying {plan.count} request(s)",
                lambda layer: self._post(ReplayDone(layer.execute_replay(plan))),
            ),
            "replay",
            expected=str(plan.count),
        )

    def replay_done(self, message: ReplayDone) -> None:
        r = message.result
        if isinstance(r, Refused):
            self._report(r)
            return
        assert isinstance(r, ReplayResult)
        text = f"replayed {len(r.sent)} of {r.plan.count}"
        if r.failed:
            text += f"; {len(r.failed)} failed: {r.failed[0].reason}"
        self.app.log_line("INFO" if not r.failed else "ERROR", "replay", text)
        self.app.notify(
            _short(text, 300), severity="error" if r.failed else "information", markup=False
        )

    # ------------------------------------------------------------------ confirmation

    def _confirm(
        self,
        title: str,
        preview: list[str],
        targets: tuple[str, ...],
        then: Callable[[], None],
        action: str,
        *,
        expected: str | None = None,
    ) -> None:
        snapshot = self.app.snapshot
        blast = blast_of(snapshot, targets)
        word = expected if expected is not None else confirmation_word(blast.targets)

        def done(result: ConfirmResult | None) -> None:
            if result == CONFIRMED:
                then()
            elif result is not None:
                text = f"{action} refused: the typed confirmation did not match; nothing sent"
                self.app.log_line("WARNING", action, text)
                self.app.notify(text, severity="error", markup=False)

        what = "the count" if expected is not None or len(blast.targets) != 1 else ""
        self.app.push_screen(
            ConfirmScreen(title, preview, blast, word, snapshot=snapshot, what=what), done
        )

    # ------------------------------------------------------------------ results

    def action_done(self, message: ActionDone) -> None:
        self._report(message.result)

    def _report(self, r: Sent | Refused | Failed) -> None:
        if isinstance(r, Sent):
            text = (
                f"{r.action} {r.request_id[:8]} on {r.device_id}: acked by the broker "
                f"({r.topic} partition {r.partition} offset {r.offset})"
            )
            self.app.log_line("INFO", r.action, text)
            self.app.notify(_short(text, 300), title="Sent", markup=False)
        elif isinstance(r, Refused):
            text = f"{r.action} refused: {r.message}"
            self.app.log_line("WARNING", r.action, text)
            self.app.notify(_short(text, 400), title="Refused", severity="error", markup=False)
        else:
            text = f"{r.action} not done: {r.reason}"
            self.app.log_line("ERROR", r.action, text)
            self.app.notify(_short(text, 400), title="Failed", severity="error", markup=False)
        audit = getattr(r, "audit", None)
        if audit is not None and audit.error:
            self.app.log_line("WARNING", "audit", audit.error)
