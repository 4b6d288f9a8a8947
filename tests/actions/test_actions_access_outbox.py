"""Access rules, the local audit log and the outbox journal (pure parts, no broker)."""

from __future__ import annotations

import json
from pathlib import Path

from pipeconsole.actions.access import allowed_actions, check
from pipeconsole.actions.audit import Auditor, LocalAuditLog, Principal
from pipeconsole.actions.outbox import Outbox, reconcile
from pipeconsole.config import Profile


def test_read_only_profile_refuses_every_write_path_with_a_message() -> None:
    p = Profile(name="prod", read_only=True, role="chaos")
    for action in ("schedule", "cancel", "replay", "chaos.run"):
        r = check(p, action)  # type: ignore[arg-type]
        assert r is not None and r.code == "read_only"
        assert "read-only" in r.message and action in r.message
    assert allowed_actions(p) == frozenset()


def test_roles_grant_in_increasing_power() -> None:
    assert allowed_actions(Profile(role="viewer")) == frozenset()
    assert allowed_actions(Profile(role="operator")) == {"schedule", "cancel", "replay"}
    assert "chaos.run" in allowed_actions(Profile(role="chaos"))
    refusal = check(Profile(name="p", role="viewer"), "cancel")
    assert refusal is not None and refusal.code == "role" and "viewer" in refusal.message


def test_refusal_is_audited_locally_even_without_a_broker(tmp_path: Path) -> None:
    log = LocalAuditLog(tmp_path / "audit.jsonl")
    auditor = Auditor(
        Profile(name="prod"), None, local=log, principal=Principal("ops-1", "alice", "h1")
    )
    note = auditor.record("schedule", "REFUSED", targets=["enc-1"], reason="read-only \x1b[31mred")
    assert note.local == log.path and note.topic_offset is None and note.error
    raw = log.path.read_text()
    assert "\x1b" not in raw  # control bytes are escaped in the file
    (entry,) = log.read()
    assert entry["outcome"] == "REFUSED" and entry["principal"] == "ops-1"
    assert entry["os_user"] == "alice" and entry["targets"] == ["enc-1"]
    assert entry["reason"] == "read-only \x1b[31mred"


def test_outbox_keeps_unsettled_actions_across_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "outbox.jsonl"
    box = Outbox(path)
    a = box.entry("r-a", "request", "d1", "req")
    b = box.entry("r-b", "request", "d2", "req")
    c = box.entry("r-c", "cancel", "d3", "ctl", nonce="n1")
    box.pending([a, b, c])
    box.acked([(a, 0, 5)])
    box.failed(b, "timed out", possibly_persisted=True)
    with path.open("a") as f:
        f.write('{"op": "acked", "request_')  # torn line from a crash
    reopened = Outbox(path)
    open_ids = {e.request_id for e in reopened.open_entries()}
    assert open_ids == {"r-b", "r-c"}

    def read_keys(topic: str, since_ms: int) -> list[tuple[str, str, int, int]]:
        assert since_ms < a.time_ms
        return [("r-b", b.nonce, 1, 9)] if topic == "req" else []

    results = {r.entry.request_id: r for r in reconcile(reopened, read_keys)}
    assert results["r-b"].state == "present" and results["r-b"].offset == 9
    assert results["r-c"].state == "absent"
    assert reopened.open_entries() == []
    assert json.loads(path.read_text() or "[]") == []  # compacted to nothing
