"""The Chaos view: the plan and blast radius before anything runs, the role and blast-radius
refusals (audited, nothing injected), and a composed experiment against a live fleet that
one ``x`` aborts, with every fault rolled back (``GET /chaos`` on the device shows none).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from conftest import feed
from textual.widgets import Input, Select
from uifixtures import incident
from uistack import UiStack, layer_factory, log_text, until

from pipeconsole.actions.audit import LocalAuditLog
from pipeconsole.chaos.faults import FaultClient, Target
from pipeconsole.config import Profile
from pipeconsole.ui.app import PipeConsoleApp
from pipeconsole.ui.factory import build_app
from pipeconsole.ui.screens.chaos import ChaosScreen
from pipeconsole.ui.screens.chaos_compose import ComposeExperimentScreen
from pipeconsole.ui.screens.confirm import ConfirmScreen
from pipeconsole.ui.source import IngestSource
from pipeconsole.ui.widgets.panel import Panel

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _in_repo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)  # the view lists ./experiments/*.toml


def _app(profile: Profile, state: Path, source: IngestSource | None = None) -> PipeConsoleApp:
    return build_app(profile, source, capture_logging=False, make_layer=layer_factory(state))


def _panel(app: PipeConsoleApp, wid: str) -> str:
    return str(app.screen.query_one(wid, Panel).render())


async def test_the_plan_and_blast_radius_show_before_anything_runs(tmp_path: Path) -> None:
    app = _app(Profile(role="chaos"), tmp_path)
    async with app.run_test(size=(120, 36)) as pilot:
        await feed(pilot, incident())
        await pilot.press("6")
        await pilot.pause()
        assert isinstance(app.screen, ChaosScreen)
        await pilot.press("enter")  # the first file: encoder-crash.toml
        await pilot.pause()
        plan = _panel(app, "#chaos-plan")
        assert "Encoder crash" in plan
        assert "1 device(s) directly, 3 downstream" in plan
        assert "origin-02, package-02, package-03" in plan
        assert "REFUSED" not in plan
        await pilot.press("r")
        await pilot.pause()
        confirm = app.screen
        assert isinstance(confirm, ConfirmScreen)
        assert confirm.expected == "transcode-03"
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, ChaosScreen) and not app.chaos.state.running
    assert not (tmp_path / "audit.jsonl").exists()


async def test_away_from_the_repository_the_demo_lists_the_examples_shipped_with_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeconsole.chaos.experiment import example_dir, load_experiment
    from pipeconsole.ui.chaos import experiment_files

    monkeypatch.chdir(tmp_path)  # no experiments/ here: the demo started from elsewhere
    examples = example_dir()
    assert examples is not None
    shipped = experiment_files(examples=examples)
    assert [p.name for p in shipped] == sorted(
        p.name for p in (REPO / "experiments").glob("*.toml")
    )
    assert all(load_experiment(p).title for p in shipped)
    assert experiment_files() == []  # the console outside the demo lists only ./experiments
    (tmp_path / "experiments").mkdir()
    (tmp_path / "experiments" / "mine.toml").write_text("", encoding="utf-8")
    assert [p.name for p in experiment_files(examples=examples)] == ["mine.toml"]
    (tmp_path / "experiments" / "mine.toml").unlink()

    app = _app(Profile(role="chaos"), tmp_path)
    app.example_experiments = examples
    async with app.run_test(size=(120, 36)) as pilot:
        await feed(pilot, incident())
        await pilot.press("6")
        await pilot.pause()
        await pilot.press("enter")  # the first file: encoder-crash.toml, from the examples
        await pilot.pause()
        assert "Encoder crash" in _panel(app, "#chaos-plan")


async def test_a_profile_without_the_chaos_role_is_refused_and_audited(
    profile: Profile, tmp_path: Path
) -> None:
    app = _app(replace(profile, role="operator"), tmp_path)
    async with app.run_test(size=(120, 36)) as pilot:
        await feed(pilot, incident())
        await pilot.press("6", "enter", "r")
        await until(pilot, lambda: (tmp_path / "audit.jsonl").exists(), 20, "the audit")
        assert isinstance(app.screen, ChaosScreen)  # no confirmation was offered
        assert "needs role chaos" in log_text(app)
    (rec,) = LocalAuditLog(tmp_path / "audit.jsonl").read()
    assert (rec["action"], rec["outcome"]) == ("chaos.run", "REFUSED")
    assert rec["targets"] == ["transcode-03"]


async def test_a_plan_over_the_blast_radius_limit_is_refused_before_anything_is_injected(
    profile: Profile, tmp_path: Path
) -> None:
    wide = (REPO / "experiments" / "encoder-crash.toml").read_text(encoding="utf-8")
    wide = wide.replace('targets = ["transcode-03"]', 'targets = ["transcode-03", "transcode-04"]')
    path = tmp_path / "wide.toml"
    path.write_text(wide, encoding="utf-8")
    app = _app(replace(profile, role="chaos"), tmp_path)
    async with app.run_test(size=(120, 36)) as pilot:
        await feed(pilot, incident())
        await pilot.press("6")
        await pilot.pause()
        app.screen.query_one("#chaos-path", Input).value = str(path)
        app.screen.query_one("#chaos-path", Input).focus()
        await pilot.press("enter")
        await pilot.pause()
        assert "REFUSED: blast radius: 2 devices targeted, limit max_devices = 1" in _panel(
            app, "#chaos-plan"
        )
        await pilot.press("r")
        await until(pilot, lambda: (tmp_path / "audit.jsonl").exists(), 20, "the audit")
        assert isinstance(app.screen, ChaosScreen) and not app.chaos.state.running
    (rec,) = LocalAuditLog(tmp_path / "audit.jsonl").read()
    assert rec["outcome"] == "REFUSED" and "max_devices" in str(rec["reason"])


@pytest.mark.slow
async def test_a_composed_experiment_runs_live_and_one_key_aborts_and_rolls_back(
    ui_stack: UiStack, tmp_path: Path
) -> None:
    stack = ui_stack
    device = stack.device("transcode")
    target = Target(device, stack.fleet.device(device).base_url)
    app = _app(stack.profile, tmp_path, IngestSource(stack.profile))
    async with app.run_test(size=(120, 36)) as pilot:
        await until(
            pilot,
            lambda: app.snapshot is not None and app.snapshot.device(device) is not None,
            30,
            "the fleet in the console",
        )
        await pilot.press("6", "c")
        await pilot.pause()
        compose = app.screen
        assert isinstance(compose, ComposeExperimentScreen)
        compose.query_one("#c-fault", Select).value = "latency"
        compose.query_one("#c-targets", Input).value = device
        compose.query_one("#c-duration", Input).value = "60"
        compose.query_one("#c-params", Input).value = "mean_ms=200"
        compose.query_one("#c-healthy", Input).value = "0"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, ChaosScreen)
        assert "1 device(s) directly" in _panel(app, "#chaos-plan")
        await pilot.press("r")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press(*device, "enter")
        faults = FaultClient()
        try:
            await until(pilot, lambda: faults.active(target), 30, "the fault on the device")
            state = app.chaos.state
            assert state.running and state.phase == "method"
            assert "RUNNING" in _panel(app, "#chaos-live")
            await pilot.press("x")
            await pilot.press("x")  # idempotent: a second press only says so
            await until(pilot, lambda: state.report is not None, 30, "the verdict")
            assert faults.active(target) == []  # rolled back, not left to the lease
        finally:
            faults.close()
        report = state.report
        assert report is not None and report.verdict == "aborted"
        assert report.aborted["reason"] == "operator abort (console)"
        assert [f.ended_by for f in report.faults] == ["rollback"]
        assert "aborted" in _panel(app, "#chaos-report")
        eid = state.experiment_id
        await until(
            pilot,
            lambda: any(c.experiment_id == eid for c in app.snapshot.chaos),  # type: ignore[union-attr]
            20,
            "the experiment's events on chaos-experiment-v1",
        )
    audit = LocalAuditLog(tmp_path / "audit.jsonl").read()
    assert [(a["action"], a["outcome"]) for a in audit] == [("chaos.run", "ACCEPTED")]
