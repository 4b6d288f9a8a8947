"""Every number option refuses nan and infinities before anything starts (click's ranges let
``nan`` through: every comparison with it is false)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from pipeconsole.cli import cli

OPTIONS = [
    ("dispatch", "--check-interval"),
    ("dispatch", "--check-timeout"),
    ("dispatch", "--status-interval"),
    ("dispatch", "--misfire-threshold"),
    ("dispatch", "--retry-ratio"),
    ("dispatch", "--retry-min-per-s"),
    ("demo", "--traffic"),
    ("demo", "--check-interval"),
    ("demo", "--scenario-delay"),
    ("status", "--timeout"),
    ("status", "--max-lag-seconds"),
    ("chaos run experiments/encoder-crash.toml", "--duration"),
    ("chaos run experiments/encoder-crash.toml", "--settle"),
    ("chaos run experiments/encoder-crash.toml", "--warmup"),
]


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "NaN", "1e999"])
@pytest.mark.parametrize(
    ("command", "option"), OPTIONS, ids=[f"{c.split()[0]} {o}" for c, o in OPTIONS]
)
def test_a_number_option_refuses_what_is_not_a_finite_number(
    command: str, option: str, value: str
) -> None:
    got = CliRunner().invoke(cli, [*command.split(), option, value])
    assert got.exit_code == 2, got.output
    assert f"Invalid value for '{option}'" in got.output
    assert "not a finite number" in got.output or "is not in the range" in got.output


def test_a_finite_number_still_passes_the_type() -> None:
    from pipeconsole.cli import FiniteFloat

    assert FiniteFloat(min=0).convert("2.5", None, None) == 2.5
