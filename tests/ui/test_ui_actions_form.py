"""Operator actions in the console, up to the broker: the schedule form's inline field errors,
templates, typed confirmations and the access rules (read-only, viewer). Real broker, per-test
topics; no device actors are needed because these tests are about what is (not) sent.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from conftest import feed
from textual.widgets import Input, Select, Static
from uifixtures import incident
from uistack import layer_factory, log_text, records_on, until

from pipeconsole.actions.audit import LocalAuditLog
from pipeconsole.config import Profile
from pipeconsole.model.snapshot import RequestState
from pipeconsole.ui.app import PipeConsoleApp
from pipeconsole.ui.factory import build_app
from pipeconsole.ui.screens.confirm import ConfirmScreen
from pipeconsole.ui.screens.requests import RequestsScreen
from pipeconsole.ui.screens.schedule import ScheduleScreen


def _app(profile: Profile, state: Path) -> PipeConsoleApp:
    return build_app(profile, None, capture_logging=False, make_layer=layer_factory(state))


def _audit(state: Path) -> list[dict[str, object]]:
    return LocalAuditLog(state / "audit.jsonl").read()


async def test_garbage_schedule_time_is_shown_on_its_field_and_nothing_is_sent(
    profile: Profile, tmp_path: Path
) -> None:
    app = _app(profile, tmp_path)
    async with app.run_test(size=(120, 36)) as pilot:
        await feed(pilot, incident())
        await pilot.press("2", "n")
        await pilot.pause()
        form = app.screen
        assert isinstance(form, ScheduleScreen)
        assert form.query_one("#f-device-id", Input).value == "ingest-01"  # the selected device
        form.query_one("#f-uri", Input).value = "/streams/s1/start"
        form.query_one("#f-schedule-time", Input).value = "2026-02-30T25:61:00Z[Europe/Paris]"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert app.screen is form, "a form with errors must stay open"
        assert [e.field for e in form.errors] == ["schedule_time"]
        shown = str(form.query_one("#e-schedule-time", Static).render())
        assert "schedule_time" in shown and "RFC 3339" in shown
        assert form.query_one("#row-schedule-time").has_class("-error")
        assert not form.query_one("#row-uri").has_class("-error")
        # fixing the field clears the error and sends
        form.query_one("#f-schedule-time", Input).value = "+30s"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: "acked by the broker" in log_text(app), 20, "the ack")
    assert records_on(profile, profile.topics.request) == 1
    assert [a["outcome"] for a in _audit(tmp_path)] == ["ACCEPTED"]


async def test_a_template_fills_the_form_with_a_known_device_command(
    profile: Profile, tmp_path: Path
) -> None:
    app = _app(profile, tmp_path)
    async with app.run_test(size=(120, 36)) as pilot:
        await feed(pilot, incident())
        await pilot.press("2", "n")
        await pilot.pause()
        form = app.screen
        assert isinstance(form, ScheduleScreen)
        form.query_one("#f-template", Select).value = "config.bitrate"
        await pilot.pause()
        values = form.values()
        assert (values["method"], values["uri"]) == ("PUT", "/config/bitrate")
        assert values["entity"] == '{"kbps": 4000}'
        assert values["device_id"] == "ingest-01"
        assert form.check() is not None  # the template validates as it is
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, ScheduleScreen)
    assert not (tmp_path / "audit.jsonl").exists()  # esc: no action at all


async def test_cancel_needs_the_device_id_typed_and_wrong_text_sends_nothing(
    profile: Profile, tmp_path: Path
) -> None:
    app = _app(profile, tmp_path)
    async with app.run_test(size=(120, 36)) as pilot:
        snap = incident()
        await feed(pilot, snap)
        await pilot.press("3")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, RequestsScreen)
        row = screen.selected
        assert row is not None and row.state == RequestState.DISPATCHED
        await pilot.press("C")
        await pilot.pause()
        confirm = app.screen
        assert isinstance(confirm, ConfirmScreen)
        assert confirm.expected == row.device_id
        assert row.device_id in confirm.blast.targets and confirm.blast.downstream
        await pilot.press(*"transcode-0", "enter")  # almost
        await pilot.pause()
        assert "did not match; nothing sent" in log_text(app)
        assert records_on(profile, profile.topics.control) == 0
        await pilot.press("C")
        await pilot.pause()
        await pilot.press(*row.device_id, "enter")
        await until(pilot, lambda: "acked by the broker" in log_text(app), 20, "the ack")
    assert records_on(profile, profile.topics.control) == 1


async def test_read_only_profile_sees_the_actions_but_each_is_refused_and_audited(
    profile: Profile, tmp_path: Path
) -> None:
    app = _app(replace(profile, read_only=True), tmp_path)
    async with app.run_test(size=(120, 36)) as pilot:
        await feed(pilot, incident())
        await pilot.press("2", "n")  # schedule from the devices view
        await until(pilot, lambda: "schedule refused" in log_text(app), 20, "the refusal")
        assert not isinstance(app.screen, ScheduleScreen)
        await pilot.press("3", "C")  # cancel from the requests view
        await until(pilot, lambda: "cancel refused" in log_text(app), 20, "the refusal")
        await pilot.press("R")  # replay (the dry run reads; the execution is refused)
        await until(pilot, lambda: "replay refused" in log_text(app), 30, "the refusal")
        text = log_text(app)
    assert "read-only" in text
    audit = _audit(tmp_path)
    assert sorted(a["action"] for a in audit) == ["cancel", "replay", "schedule"]
    assert {a["outcome"] for a in audit} == {"REFUSED"}
    for topic in (profile.topics.request, profile.topics.control):
        assert records_on(profile, topic) == 0


async def test_viewer_role_is_refused_with_the_role_it_needs(
    profile: Profile, tmp_path: Path
) -> None:
    app = _app(replace(profile, role="viewer"), tmp_path)
    async with app.run_test(size=(120, 36)) as pilot:
        await feed(pilot, incident())
        await pilot.press("3", "n")
        await until(pilot, lambda: "schedule refused" in log_text(app), 20, "the refusal")
    assert "needs role operator or chaos" in log_text(app)
    assert [a["outcome"] for a in _audit(tmp_path)] == ["REFUSED"]
    assert records_on(profile, profile.topics.request) == 0


async def test_a_device_the_console_does_not_know_is_a_field_error_with_a_suggestion(
    tmp_path: Path,
) -> None:
    # A typo there was sent, and came back FAILED from the actors ("device is not in the
    # registry"); the console knows the fleet and says so before anything is sent.
    app = _app(Profile(), tmp_path)
    async with app.run_test(size=(120, 36)) as pilot:
        await feed(pilot, incident())
        await pilot.press("2", "n")
        await pilot.pause()
        form = app.screen
        assert isinstance(form, ScheduleScreen)
        form.query_one("#f-device-id", Input).value = "ingest-1"
        form.query_one("#f-uri", Input).value = "/streams/s1/start"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert app.screen is form, "a form with errors must stay open"
        assert [e.field for e in form.errors] == ["device_id"]
        shown = str(form.query_one("#e-device-id", Static).render())
        assert "'ingest-1' is not in the fleet (24 devices known)" in shown
        assert "did you mean 'ingest-01'?" in shown
        form.query_one("#f-device-id", Input).value = "ingest-01"
        assert form.check() is not None  # a device it knows: clean
        await pilot.press("escape")
    assert not (tmp_path / "audit.jsonl").exists()  # nothing was sent, nothing refused
