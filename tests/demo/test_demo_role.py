"""The demo's console role: chaos by default (its Chaos view runs the example experiments)."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from pipeconsole.config import ROLES
from pipeconsole.demo import demo
from pipeconsole.demostack import DemoStack


def test_the_demo_console_may_run_experiments_unless_told_otherwise(tmp_path: Path) -> None:
    assert DemoStack(log_dir=tmp_path).profile.role == "chaos"
    for role in ROLES:
        assert DemoStack(log_dir=tmp_path, role=role).profile.role == role


def test_an_unknown_role_is_refused_before_anything_starts() -> None:
    got = CliRunner().invoke(demo, ["--role", "admin"])
    assert got.exit_code == 2
    assert "'admin' is not one of 'viewer', 'operator', 'chaos'" in got.output
