"""The experiment file format: every shipped file loads; mistakes are named field by field."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeconsole.chaos.cli import chaos
from pipeconsole.chaos.experiment import (
    ExperimentError,
    FaultAction,
    load_experiment,
    parse_experiment,
)

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"


def test_every_shipped_experiment_loads_with_a_blast_radius_and_a_hypothesis() -> None:
    names = {p.stem for p in EXPERIMENTS.glob("*.toml")}
    assert {
        "protocol-chaos-requests",
        "encoder-crash",
        "slow-packager",
        "retry-storm",
        "telemetry-blackout",
    } <= names
    for path in EXPERIMENTS.glob("*.toml"):
        exp = load_experiment(path)
        assert exp.hypothesis and exp.method and exp.blast_radius.max_devices >= 1


def test_a_bad_experiment_names_every_wrong_field() -> None:
    with pytest.raises(ExperimentError) as info:
        parse_experiment(
            {
                "title": "",
                "steady-state-hypothesis": {"probes": [{"probe": "vibes"}]},
                "method": [
                    {"type": "fault", "fault": "explode", "targets": ["a"]},
                    {"type": "protocol", "rates": {"empty": 0.7, "bit_flip": 0.7}},
                    {"type": "teleport"},
                ],
            }
        )
    text = str(info.value)
    for expected in (
        "title: required",
        "steady_state_hypothesis.probes[0].probe: 'vibes' is not one of",
        "steady_state_hypothesis.probes[0].tolerance: required",
        "method[0].fault: 'explode' is not one of",
        "method[0].duration_s: required",
        "method[1].rates: fractions add up to more than 1",
        "method[1]: needs explicit targets",
        "method[2].type: 'teleport' is not one of",
        "blast_radius: required",
    ):
        assert expected in text, (expected, text)


def test_a_duration_override_scales_the_method() -> None:
    exp = load_experiment(EXPERIMENTS / "encoder-crash.toml")
    short = exp.with_duration(exp.duration_s / 3)
    a, b = exp.method[0], short.method[0]
    assert isinstance(a, FaultAction) and isinstance(b, FaultAction)
    assert b.duration_s == pytest.approx(a.duration_s / 3)
    assert b.at_s == pytest.approx(a.at_s / 3)


def test_cli_refuses_a_bad_file_with_exit_2_and_field_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('title = "x"\n[[method]]\ntype = "fault"\nfault = "nope"\n', encoding="utf-8")
    result = CliRunner().invoke(chaos, ["run", str(bad), "--dry-run"])
    assert result.exit_code == 2
    assert "method[0].fault: 'nope' is not one of" in result.output
