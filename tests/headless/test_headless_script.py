"""The headless script language: what parses, what is refused (with the line), and conditions."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeconsole.headless.conditions import parse_condition
from pipeconsole.headless.script import ScriptError, parse_script
from pipeconsole.model.fixtures import demo_snapshot

TRIAGE = """\
# an operator's triage
wait-for fleet.total >= 24 timeout 20s
wait-for incident.top == "transcode-03"
press enter
snapshot detail
assert device.transcode-03.health == failing
sleep 500ms
chaos run experiments/encoder-crash.toml
schedule --device ingest-01 --method POST --uri '/streams/7/start'
"""


def test_triage_script_parses_into_its_steps() -> None:
    steps = parse_script(TRIAGE)
    assert [s.verb for s in steps] == [
        "wait-for",
        "wait-for",
        "press",
        "snapshot",
        "assert",
        "sleep",
        "chaos",
        "schedule",
    ]
    assert steps[0].timeout_s == 20.0 and steps[0].line == 2
    assert steps[5].seconds == 0.5
    assert steps[7].args == (
        "--device",
        "ingest-01",
        "--method",
        "POST",
        "--uri",
        "/streams/7/start",
    )


@pytest.mark.parametrize(
    ("script", "line", "fragment"),
    [
        ("press enter\nfrobnicate now\n", 2, "unknown step 'frobnicate'"),
        ("wait-for fleet.healthy >=\n", 1, "expected `<path> <op> <value>`"),
        ("\n\nwait-for nonsense.path == 3\n", 3, "unknown path"),
        ("sleep forever\n", 1, "not a duration"),
        ("snapshot ../../etc/passwd\n", 1, "snapshot needs a name"),
        ("chaos walk x\n", 1, "expected: chaos run FILE"),
        ("assert fleet.total ~ (\n", 1, "bad regular expression"),
        ("schedule --uri 'unterminated\n", 1, "quotation"),
    ],
)
def test_a_broken_script_is_refused_naming_its_line(script: str, line: int, fragment: str) -> None:
    with pytest.raises(ScriptError) as err:
        parse_script(script)
    assert err.value.line == line
    assert fragment in str(err.value)


@given(st.text(max_size=300))
def test_any_text_either_parses_or_is_a_script_error(text: str) -> None:
    with contextlib.suppress(ScriptError):
        parse_script(text)


def test_conditions_read_the_snapshot() -> None:
    snap = demo_snapshot()
    total = snap.fleet.total
    assert parse_condition(f"fleet.total == {total}").holds(snap)
    assert not parse_condition(f"fleet.total > {total}").holds(snap)
    assert parse_condition("screen == devices").holds(snap, {"screen": "devices"})
    missing = parse_condition("device.no-such-device.health == healthy")
    assert not missing.holds(snap)
    assert "is None" in missing.explain(snap)
    assert parse_condition("fleet.unhealthy_fraction <= 100%").holds(snap)
