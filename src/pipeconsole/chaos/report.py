"""The experiment report: what was planned, measured, injected and decided; and the verdict.

:class:`Report` is filled in by the runner as it goes and written as JSON (``to_json``) to
``--report FILE`` and into the final ChaosExperiment event. Exit codes of ``chaos run``:
:data:`EXIT_CODES` (0 hypothesis held, 3 it did not, 4 aborted, 2 refused before start).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["EXIT_CODES", "FaultRecord", "ProbeResult", "Report", "Verdict"]


class Verdict:
    """Verdict names (strings, so they read the same in JSON and in the TUI)."""

    HELD = "held"
    """The steady-state hypothesis held before, during (where asked) and after."""
    DEVIATED = "deviated"
    """It did not hold after the method, or during it for a ``during`` probe."""
    NOT_STARTED = "not_started"
    """It did not hold before the method; nothing was injected."""
    ABORTED = "aborted"
    """A guardrail was crossed or the operator aborted; faults were rolled back."""
    REFUSED = "refused"
    """The plan broke the blast-radius limit or matched no device; nothing was injected."""


EXIT_CODES = {
    Verdict.HELD: 0,
    Verdict.DEVIATED: 3,
    Verdict.NOT_STARTED: 3,
    Verdict.ABORTED: 4,
    Verdict.REFUSED: 2,
}


@dataclass(frozen=True, slots=True)
class ProbeResult:
    phase: str
    """before | during | after | guardrail"""
    name: str
    probe: str
    value: float | None
    """None when it could not be measured (NaN)."""
    tolerance: tuple[float, float]
    ok: bool
    time_ms: int


@dataclass(slots=True)
class FaultRecord:
    action: str
    device_id: str
    fault: str
    fault_id: str = ""
    injected_ms: int = 0
    expires_ms: int = 0
    ended_ms: int = 0
    ended_by: str = ""
    """rollback | expired | error:<reason>"""
    error: str = ""


@dataclass(slots=True)
class Report:
    experiment_id: str
    title: str
    source: str
    started_ms: int
    dry_run: bool = False
    ended_ms: int = 0
    verdict: str = ""
    reason: str = ""
    exit_code: int = 0
    plan: dict[str, Any] = field(default_factory=dict)
    probes: list[ProbeResult] = field(default_factory=list)
    faults: list[FaultRecord] = field(default_factory=list)
    protocol: dict[str, Any] = field(default_factory=dict)
    """Records sent by class and kind, valid requests, chaos records, undecodable sent."""
    dlq_by_reason: dict[str, int] = field(default_factory=dict)
    """Reason code → chaos records of this experiment found in the DLQ."""
    undecodable_seen: int | None = None
    """Growth of the console's undecodable counter for the request topic."""
    aborted: dict[str, Any] = field(default_factory=dict)
    """by (guardrail name | operator), reason, detected_ms, rolled_back_ms,
    within_probe_interval."""
    rollbacks: list[dict[str, Any]] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["probes"] = [_clean(asdict(p)) for p in self.probes]
        return _clean(out)  # type: ignore[no-any-return]

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, sort_keys=True, ensure_ascii=True)

    def summary(self) -> str:
        """A few plain lines for the terminal (no markup, untrusted text kept out)."""
        lines = [f"experiment {self.experiment_id}: {self.verdict} (exit {self.exit_code})"]
        if self.reason:
            lines.append(f"  reason: {self.reason}")
        for phase in ("before", "during", "after"):
            got = [p for p in self.probes if p.phase == phase]
            if not got:
                continue
            bad = [p for p in got if not p.ok]
            lines.append(f"  {phase}: {len(got) - len(bad)}/{len(got)} probes within tolerance")
        if self.faults:
            lines.append(f"  faults injected: {sum(1 for f in self.faults if f.fault_id)}")
        if self.protocol:
            lines.append(f"  protocol records: {self.protocol.get('by_class', {})}")
        if self.dlq_by_reason:
            lines.append(f"  chaos records in DLQ by reason: {self.dlq_by_reason}")
        if self.aborted:
            lines.append(
                f"  aborted by {self.aborted.get('by')}: rolled back within one probe interval: "
                f"{self.aborted.get('within_probe_interval')}"
            )
        return "\n".join(lines)


def _clean(v: Any) -> Any:
    if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
        return None
    if isinstance(v, dict):
        return {str(k): _clean(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_clean(x) for x in v]
    return v
