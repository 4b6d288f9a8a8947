"""The operator's story end to end: broker + simulated fleet + device actors + ingest + the real
console in a pilot. Schedule from the form, watch the request reach OK in the Requests view,
edit and resend it (its content comes back from the request topic), replay it after typing the
count, and watch the replay reach OK with ``replay_of`` set. The command is ``PUT
/config/bitrate`` (idempotent: a replayed ``/streams/s1/start`` rightly gets 409 Conflict).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import DataTable, Select
from uistack import UiStack, layer_factory, log_text, until

from pipeconsole.actions.audit import LocalAuditLog
from pipeconsole.model.snapshot import RequestState
from pipeconsole.ui.factory import build_app
from pipeconsole.ui.screens.confirm import ConfirmScreen
from pipeconsole.ui.screens.devices import DevicesScreen
from pipeconsole.ui.screens.requests import RequestsScreen
from pipeconsole.ui.screens.schedule import ScheduleScreen
from pipeconsole.ui.source import IngestSource

pytestmark = pytest.mark.slow


async def test_scheduled_from_the_form_reaches_ok_then_resend_and_replay(
    ui_stack: UiStack, tmp_path: Path
) -> None:
    stack = ui_stack
    device = stack.device("package")
    app = build_app(
        stack.profile,
        IngestSource(stack.profile),
        capture_logging=False,
        make_layer=layer_factory(tmp_path),
    )

    def row_of(pred: object) -> object:
        s = app.snapshot
        return next((r for r in (s.requests if s else ()) if pred(r)), None)  # type: ignore[operator]

    async with app.run_test(size=(120, 36)) as pilot:
        await until(
            pilot,
            lambda: app.snapshot is not None and app.snapshot.device(device) is not None,
            30,
            "the fleet in the console",
        )
        await pilot.press("2")
        await pilot.pause()
        devices = app.screen
        assert isinstance(devices, DevicesScreen)
        devices.table.move_cursor(row=devices.table.get_row_index(device))
        await pilot.press("n")
        await pilot.pause()
        form = app.screen
        assert isinstance(form, ScheduleScreen)
        form.query_one("#f-template", Select).value = "config.bitrate"
        await pilot.pause()
        assert form.values()["device_id"] == device
        await pilot.press("ctrl+s")
        await until(pilot, lambda: "acked by the broker" in log_text(app), 20, "the ack")

        def mine(r: object) -> bool:
            return r.device_id == device and r.uri == "/config/bitrate" and not r.replay_of  # type: ignore[attr-defined]

        await until(
            pilot,
            lambda: getattr(row_of(mine), "state", None) == RequestState.OK,
            45,
            "the request to reach OK",
        )
        original = row_of(mine)
        rid = original.request_id  # type: ignore[attr-defined]

        # it is in the Requests view; edit and resend brings back its content from the topic
        await pilot.press("3")
        await pilot.pause()
        requests = app.screen
        assert isinstance(requests, RequestsScreen)
        table = requests.query_one("#request-table", DataTable)
        await until(pilot, lambda: rid in requests._order, 10, "the row in the table")
        table.move_cursor(row=table.get_row_index(rid))
        await pilot.pause()
        await pilot.press("e")
        await until(pilot, lambda: isinstance(app.screen, ScheduleScreen), 20, "the resend form")
        resend = app.screen
        assert isinstance(resend, ScheduleScreen)
        values = resend.values()
        assert (values["device_id"], values["uri"]) == (device, "/config/bitrate")
        assert values["entity"] == '{"kbps": 4000}'
        await pilot.press("escape")
        await pilot.pause()

        # replay it: dry run, typed count, then a new request with replay_of = the original
        table.move_cursor(row=table.get_row_index(rid))
        await pilot.press("R")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), 30, "the preview")
        confirm = app.screen
        assert isinstance(confirm, ConfirmScreen)
        assert confirm.expected == "1" and confirm.blast.targets == (device,)
        assert any("replay 1 request" in line for line in confirm.preview)
        await pilot.press("1", "enter")
        await until(pilot, lambda: "replayed" in log_text(app), 20, "the replay's acks")
        await until(
            pilot,
            lambda: getattr(row_of(lambda r: r.replay_of == rid), "state", None) == RequestState.OK,
            30,
            "the replay to reach OK",
        )
        assert "replayed 1 of 1" in log_text(app)
    audit = LocalAuditLog(tmp_path / "audit.jsonl").read()
    assert [(a["action"], a["outcome"]) for a in audit] == [
        ("schedule", "ACCEPTED"),
        ("replay", "ACCEPTED"),
    ]
