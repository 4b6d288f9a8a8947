"""The operator's story, driven through the real app with injected snapshots (no broker)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from conftest import feed, make_app
from rich.text import Text
from textual.widgets import DataTable, Static
from uifixtures import catching_up, disconnected, healthy, incident, reconnected

from pipeconsole.config import Profile
from pipeconsole.model.fixtures import FIXED_NOW_MS as T0
from pipeconsole.model.snapshot import Health, Severity, TimelineEvent
from pipeconsole.ui.screens.chaos import ChaosScreen
from pipeconsole.ui.screens.devices import DevicesScreen
from pipeconsole.ui.screens.help import HelpScreen
from pipeconsole.ui.screens.log import LogScreen
from pipeconsole.ui.screens.overview import OverviewScreen
from pipeconsole.ui.widgets.device_detail import DeviceDetail
from pipeconsole.ui.widgets.filter_bar import FilterBar
from pipeconsole.ui.widgets.pipeline_graph import PipelineGraph
from pipeconsole.ui.widgets.timeline import Timeline


def static_text(widget: Static) -> str:
    content = widget.render()
    return content.plain if hasattr(content, "plain") else str(content)


def detail_text(screen: DevicesScreen) -> str:
    return "\n".join(static_text(s) for s in screen.query_one(DeviceDetail).query(Static))


async def test_enter_on_launch_opens_the_top_incident_with_its_failing_check() -> None:
    app = make_app()
    snap = incident()
    top = snap.incidents[0]
    async with app.run_test(size=(120, 36)) as pilot:
        await feed(pilot, snap)
        assert isinstance(app.screen, OverviewScreen)
        await pilot.press("enter")  # the only keystroke
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, DevicesScreen)
        assert screen.device_id == top.device_id
        text = detail_text(screen)
        assert "no frames for 12 s" in text
        assert top.failing_checks[0].split(": ", 1)[1] in text
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, OverviewScreen)


async def test_number_keys_switch_views_and_esc_returns_to_the_overview() -> None:
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        await feed(pilot, incident())
        for key, mode in (("2", "devices"), ("3", "requests"), ("4", "backpressure"), ("5", "log")):
            await pilot.press(key)
            await pilot.pause()
            assert app.current_mode == mode
        await pilot.press("escape")
        await pilot.pause()
        assert app.current_mode == "overview"


async def test_the_log_views_timeline_fills_the_view() -> None:
    """The Timeline tab shows as many events as the view has rows. It once showed 5: its tab
    pane's id ("timeline") matched the overview strip's height rule."""
    events = tuple(
        TimelineEvent(T0 - i * 1000, "health", f"dev-{i:02d}", f"event {i}", Severity.INFO)
        for i in range(40)
    )
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        await feed(pilot, replace(incident(), timeline=events))
        await pilot.press("5")
        await pilot.pause()
        timeline = app.screen.query_one("#log-timeline", Timeline)
        height = timeline.size.height
        # 36 rows: the summary, the view's title, the tabs (2), the footer; the rest is events.
        assert height >= 30
        rows = ["".join(s.text for s in timeline.render_line(y)) for y in range(height)]
        shown = [r for r in rows if "event " in r]
        assert len(shown) == height
        assert "dev-00" in shown[0] and f"dev-{len(shown) - 1:02d}" in shown[-1]


async def test_colon_command_opens_a_view_with_a_filter() -> None:
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        await feed(pilot, incident())
        await pilot.press("colon", *"dev health=failing", "enter")
        await pilot.pause()
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, DevicesScreen)
        table = screen.query_one("#device-table", DataTable)
        keys = [rk.value for rk in table.rows]
        assert keys == [d.device_id for d in incident().devices if d.health.value == "FAILING"]


async def test_unknown_command_is_explained_not_run() -> None:
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        await feed(pilot, incident())
        await pilot.press("colon", *"nuke", "enter")
        await pilot.pause()
        message = static_text(app.screen.query_one("#command-message", Static))
        assert "unknown command 'nuke'" in message
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, OverviewScreen)


async def test_filter_narrows_the_table_live_reports_errors_and_esc_clears() -> None:
    app = make_app()
    snap = incident()
    async with app.run_test(size=(120, 36)) as pilot:
        await feed(pilot, snap)
        await pilot.press("2")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, DevicesScreen)
        table = screen.query_one("#device-table", DataTable)
        assert table.row_count == len(snap.devices)
        await pilot.press("slash", *"stage=transcode")
        await pilot.pause()
        assert table.row_count == sum(d.stage == "transcode" for d in snap.devices)
        await pilot.press("space", "left_parenthesis")  # invalid: the last good filter stays
        await pilot.pause()
        bar = screen.query_one(FilterBar)
        assert bar.has_class("-error")
        assert "expected an expression after '('" in static_text(
            bar.query_one("#filter-message", Static)
        )
        assert table.row_count == sum(d.stage == "transcode" for d in snap.devices)
        bar.input.value = "helth=failing"
        await pilot.pause()
        assert "did you mean 'health'" in static_text(bar.query_one("#filter-message", Static))
        # A value the field cannot hold is an error too, not an empty table that reads as
        # "nothing is failing".
        bar.input.value = "health=failng"
        await pilot.pause()
        message = static_text(bar.query_one("#filter-message", Static))
        assert "health 'failng' is not one of" in message and "did you mean 'failing'" in message
        assert table.row_count == sum(d.stage == "transcode" for d in snap.devices)
        bar.input.value = "health=FAILING"
        await pilot.pause()
        assert not bar.has_class("-error")
        assert table.row_count == sum(d.health == Health.FAILING for d in snap.devices) > 0
        await pilot.press("escape")  # closes the prompt
        await pilot.press("escape")  # clears the filter
        await pilot.pause()
        assert table.row_count == len(snap.devices)


async def test_graph_keys_move_follow_edges_and_show_the_blast_radius() -> None:
    app = make_app()
    snap = incident()
    top = snap.incidents[0].device_id
    async with app.run_test(size=(120, 36)) as pilot:
        await feed(pilot, snap)
        await pilot.press("g")
        graph = app.screen.query_one(PipelineGraph)
        assert graph.has_focus
        assert graph.selected == top
        await pilot.press("d")
        downstream = {e.dst for e in snap.graph.edges if e.src == top}
        assert graph.selected in downstream
        await pilot.press("u")
        assert graph.selected == top
        await pilot.press("b")
        assert graph.show_blast
        blast = set(snap.incidents[0].blast_radius)
        assert {k for k, v in graph._related.items() if v == "↓"} == blast
        await pilot.press("right", "down")
        assert graph.selected != top
        await pilot.press("c")
        assert graph.collapsed
        assert graph.selected in {s.stage for s in snap.graph.stages.nodes}
        await pilot.press("enter")  # opens the stage: graph expands, filtered to that stage
        await pilot.pause()
        assert not graph.collapsed
        assert app.screen.filter.text.startswith("stage=")


async def test_help_is_generated_from_live_bindings_including_remapped_keys() -> None:
    profile = Profile(keymap={"overview.graph": "G", "no.such.binding": "x"})
    app = make_app(profile)
    async with app.run_test(size=(120, 40)) as pilot:
        await feed(pilot, incident())
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        text = app.screen.text.plain
        assert "G" in [line.split()[0] for line in text.splitlines() if "overview.graph" in line]
        assert ":devices" in text and "health=failing" in text
        await pilot.press("escape")
        await pilot.pause()
        assert any("no.such.binding" in line.text for line in app.log_lines)


async def test_connection_loss_is_shown_and_recovery_too() -> None:
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        await feed(pilot, healthy())
        summary = app.screen.query_one("#summary", Static)
        assert "live" in static_text(summary)
        await feed(pilot, disconnected())
        text = static_text(summary)
        assert "DISCONNECTED from 127.0.0.1:9092 for 12s" in text
        assert "connection refused" in text
        assert summary.has_class("-alert")
        await feed(pilot, reconnected())
        assert "reconnected to 127.0.0.1:9092 3s ago" in static_text(summary)
        assert not summary.has_class("-alert")


async def test_a_console_still_reading_its_start_up_window_says_so() -> None:
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        await feed(pilot, catching_up())
        summary = app.screen.query_one("#summary", Static)
        assert "catching up" in static_text(summary)
        assert "live" not in static_text(summary)
        await feed(pilot, healthy())
        assert "live" in static_text(summary)
        assert "catching up" not in static_text(summary)


class _BrokenSource:
    def run(self, emit: object, stop: object) -> None:
        raise RuntimeError("boom: no route to broker")


async def test_a_failing_source_lands_in_the_log_view_not_a_crash() -> None:
    from pipeconsole.ui.factory import build_app

    app = build_app(Profile(), _BrokenSource(), capture_logging=False)
    async with app.run_test(size=(120, 36)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert not app.source_ok
        assert any("boom: no route to broker" in line.text for line in app.log_lines)
        await feed(pilot, incident())
        assert "source stopped" in static_text(app.screen.query_one("#summary", Static))
        await pilot.press("5", "o")
        await pilot.pause()
        assert isinstance(app.screen, LogScreen)


async def test_table_rows_update_in_place_by_key() -> None:
    app = make_app()
    snap = incident()
    async with app.run_test(size=(120, 36)) as pilot:
        await feed(pilot, snap)
        await pilot.press("2", "down", "down")
        await pilot.pause()
        table = app.screen.query_one("#device-table", DataTable)
        cursor = table.cursor_row
        first = snap.devices[0]
        changed = replace(first, restarts=first.restarts + 7)
        devices = (changed, *snap.devices[1:])
        await feed(pilot, replace(snap, devices=devices, seq=snap.seq + 1))
        assert table.cursor_row == cursor  # no rebuild: the cursor stayed
        cell = table.get_cell(first.device_id, "rst")
        assert isinstance(cell, Text) and cell.plain == str(first.restarts + 7)


@pytest.mark.parametrize("size", [(80, 24), (200, 60)])
async def test_every_view_renders_at_small_and_large_sizes(size: tuple[int, int]) -> None:
    app = make_app()
    async with app.run_test(size=size) as pilot:
        await feed(pilot, incident())
        for key in "12345":
            await pilot.press(key)
            await pilot.pause()
            assert app.screen.query_one("#summary", Static).region.width == size[0]


async def test_while_a_backlog_is_read_the_overview_says_the_analyses_are_pending() -> None:
    """No graph analysis yet (``computed_ms == 0``) is not "no incidents": the overview says the
    root causes and the graph follow once caught up, then shows them when they come."""
    from pipeconsole.model.snapshot import GraphView
    from pipeconsole.ui.screens.overview import bottlenecks_text
    from pipeconsole.ui.widgets.incidents import IncidentList

    app = make_app()
    analysed = incident()
    pending = replace(analysed, graph=GraphView(), incidents=(), bottlenecks=())
    async with app.run_test(size=(120, 36)) as pilot:
        await feed(pilot, pending)
        incidents = app.screen.query_one(IncidentList)
        first = str(incidents.get_option_at_index(0).prompt)
        assert "reading the backlog" in first and "no incidents" not in first
        assert "reading the backlog" in bottlenecks_text(pending).plain
        graph = app.screen.query_one(PipelineGraph)
        assert "reading the backlog" in "".join(s.text for s in graph.render_line(1))
        await feed(pilot, analysed)
        assert incidents.option_count == len(analysed.incidents)
        assert str(incidents.get_option_at_index(0).prompt) != first


async def test_an_incident_whose_reason_changes_shows_the_new_reason() -> None:
    """The list is rebuilt when what a row shows changes, not only the ranking: a device first
    seen silent ("no state event yet") whose actor then reports why it is unknown (demo
    ``--scenario telemetry-blackout``: the old line stayed on screen for good)."""
    from pipeconsole.ui.widgets.incidents import IncidentList

    app = make_app()
    snap = incident()
    top = replace(snap.incidents[0], failing_checks=(), reason="no state event yet")
    first = replace(snap, incidents=(top, *snap.incidents[1:]))
    later = replace(
        first,
        seq=first.seq + 1,
        incidents=(replace(top, reason="health: no answer within 2000 ms"), *snap.incidents[1:]),
    )
    async with app.run_test(size=(120, 36)) as pilot:
        await feed(pilot, first)
        incidents = app.screen.query_one(IncidentList)
        assert "no state event yet" in str(incidents.get_option_at_index(0).prompt)
        await feed(pilot, later)
        row = str(incidents.get_option_at_index(0).prompt)
        assert "no answer within 2000 ms" in row and "no state event yet" not in row


@pytest.mark.parametrize(
    ("key", "screen"), [("enter", DevicesScreen), ("5", LogScreen), ("6", ChaosScreen)]
)
async def test_a_snapshot_that_arrives_while_the_console_quits_is_dropped_not_a_crash(
    monkeypatch: pytest.MonkeyPatch, key: str, screen: type[object]
) -> None:
    """The source thread keeps posting while the app tears its screens down (CI caught this).

    The moment the screen's summary bar is removed, the screen is still on the stack but has
    lost its widgets; a snapshot, a connection change, a log line, a chaos step and the result
    of a request lookup arrive exactly then."""
    from pipeconsole.chaos.runner import Progress
    from pipeconsole.ui.messages import (
        ChaosProgressed,
        ConnectionChanged,
        LogRecorded,
        RequestFound,
        SnapshotReady,
    )
    from pipeconsole.ui.widgets.summary_bar import SummaryBar
    from pipeconsole.wire.gen.device_request_pb2 import DeviceRequest

    snap = incident()
    posted: list[str] = []

    def arrive_during_teardown(bar: SummaryBar) -> None:
        app = bar.app
        app.post_message(SnapshotReady(replace(snap, seq=snap.seq + 1)))
        app.post_message(ConnectionChanged(False, "broker went away"))
        app.post_message(LogRecorded(0, "INFO", "source", "late line"))
        app.post_message(ChaosProgressed(Progress("abort", 1.0, "aborted: the console quit")))
        # "edit and resend" found its original: the form would open on a closing app
        app.post_message(RequestFound("r-1", DeviceRequest(device_id="transcode-01")))
        posted.append(type(app.screen).__name__)

    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        await feed(pilot, snap)
        await pilot.press(key)  # a drill-down on top of the overview, or the log view
        await pilot.pause()
        assert isinstance(app.screen, screen)
        monkeypatch.setattr(SummaryBar, "on_unmount", arrive_during_teardown, raising=False)
    assert posted  # the messages really arrived during the teardown


@pytest.mark.parametrize("mode", ["log", "chaos", "devices"])
async def test_what_arrives_before_a_view_is_mounted_is_shown_once_it_is(mode: str) -> None:
    """A view switched to is the current screen before it has composed its widgets: a log
    line (librdkafka logs a lot while the broker is away), a snapshot or a chaos step arriving
    in that window waits for the mount, and is then on screen."""
    from pipeconsole.chaos.runner import Progress
    from pipeconsole.ui.messages import ChaosProgressed, SnapshotReady
    from pipeconsole.ui.widgets.lines import LineList

    snap = incident()
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        await feed(pilot, snap)
        switched = app.switch_mode(mode)
        assert not app.screen.children  # the current screen, not composed yet
        app.log_line("WARNING", "rdkafka", "a line before the view is mounted")
        app.on_snapshot_ready(SnapshotReady(replace(snap, seq=snap.seq + 1)))
        app.on_chaos_progressed(ChaosProgressed(Progress("before", 0.5, "steady state")))
        await switched
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, (LogScreen, ChaosScreen, DevicesScreen))
        assert "live" in static_text(screen.query_one("#summary", Static))
        if isinstance(screen, LogScreen):
            lines = screen.query_one("#log-console", LineList).items
            assert any("a line before the view is mounted" in x.text for x in lines)


def test_an_incident_that_feeds_a_worse_device_says_it_is_likely_back_pressure() -> None:
    from pipeconsole.model.snapshot import Incident
    from pipeconsole.ui.widgets.incidents import incident_text

    base = Incident(1, "enc-a", "ingest", Health.DEGRADED, ("tx-a",), 1, 1.0, (), "", T0)
    assert "↳" not in incident_text(base).plain
    text = incident_text(replace(base, behind=("tx-a", "tx-b", "tx-c"))).plain
    assert text.splitlines()[-1].strip() == "↳ symptom of tx-a +2?"


async def test_before_the_first_snapshot_the_console_says_where_it_is_connecting() -> None:
    import threading

    from pipeconsole.ui.factory import build_app
    from pipeconsole.ui.source import IngestSource
    from pipeconsole.ui.widgets.summary_bar import SummaryBar

    class NeverAnswers(IngestSource):
        """The first attempt to read an unreachable cluster: up to 10 s without a word."""

        def run(self, emit: object, stop: threading.Event) -> None:
            stop.wait()

    profile = Profile(bootstrap="kafka-9.example:9093")
    app = build_app(profile, NeverAnswers(profile), capture_logging=False)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        text = str(app.screen.query_one(SummaryBar).render())
        assert "connecting to kafka-9.example:9093… the first snapshot follows" in text
    other = make_app()  # a source that is not Kafka (tests, screenshots): no address
    async with other.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        assert "waiting for the first snapshot" in str(other.screen.query_one(SummaryBar).render())


async def test_help_lists_the_values_of_the_fields_that_have_a_fixed_set() -> None:
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        await feed(pilot, healthy())
        await pilot.press("2", "question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        text = "\n".join(static_text(s) for s in app.screen.query(Static))
        assert "health: healthy degraded failing unknown" in text
        assert "stale: true false" in text
