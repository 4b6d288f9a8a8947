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
    ("simulate --no-register", "--register-timeout-s"),
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


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--pool", "0"], "Invalid value for '--pool': 0 is not in the range x>=1"),
        (["--per-device", "-1"], "Invalid value for '--per-device'"),
        (["--max-attempts", "101"], "Invalid value for '--max-attempts'"),
        (["--session-timeout-ms", "-5"], "Invalid value for '--session-timeout-ms'"),
        (["--group", ""], "Invalid value for '--group': must not be empty"),
        (["--actor-id", "  "], "Invalid value for '--actor-id': must not be empty"),
        (["--high-water", "2", "--low-water", "5"], "--low-water (5) must be below --high-water"),
    ],
)
def test_dispatch_names_the_option_that_is_wrong(args: list[str], message: str) -> None:
    # They shared one message ("--per-device, --pool, --high-water, --max-attempts must be
    # >= 1 and ..."), and an empty --group or a negative session timeout went to the broker.
    got = CliRunner().invoke(cli, ["dispatch", "--bootstrap", "127.0.0.1:1", *args])
    assert got.exit_code == 2, got.output
    assert message in got.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--base-port", "70000"], "Invalid value for '--base-port'"),
        (["--base-port", "65530"], "--base-port 65530 + 24 devices runs past port 65535"),
    ],
)
def test_simulate_refuses_ports_past_65535(args: list[str], message: str) -> None:
    # --base-port 70000 listened on 4464 and up (the port number wrapped around), silently.
    got = CliRunner().invoke(cli, ["simulate", "--no-register", *args])
    assert got.exit_code == 2, got.output
    assert message in got.output


@pytest.mark.parametrize(
    "command",
    [
        ["status", "--lag-group"],
        ["chaos", "run", "experiments/encoder-crash.toml", "--group"],
        ["dispatch", "--group"],
    ],
)
def test_an_empty_consumer_group_is_refused(command: list[str]) -> None:
    got = CliRunner().invoke(cli, [*command, " ", "--bootstrap", "127.0.0.1:1"])
    assert got.exit_code == 2, got.output
    assert f"Invalid value for '{command[-1]}': must not be empty" in got.output
