"""The Textual app: lifecycle and routing, nothing else.

Map:
  - the snapshot source runs in one fully declared thread worker and posts
    :class:`~pipeconsole.ui.messages.SnapshotReady` (coalesced); :meth:`on_snapshot_ready`
    stores the snapshot and redraws the *visible* view only;
  - views are Textual modes (``1``–``6``; ``:`` commands; ``ctrl+p``); ``enter`` drills down by
    pushing a devices view on the current mode's stack, ``esc`` pops it (or clears a filter);
  - failures (worker errors, bad keymap entries, probes) go to the status bar and the log view
    through :meth:`log_line`, never to the terminal, never a crash;
  - one ``httpx.AsyncClient`` for *probe now*, opened on mount and closed on unmount; its
    transport is injectable for tests;
  - operator actions and chaos runs are delegated: :class:`~pipeconsole.ui.actions.ActionController`
    and :class:`~pipeconsole.ui.chaos.ChaosController` own the flows, an
    :class:`~pipeconsole.ui.operator.Operator` owns the action layer; their workers post
    messages that the handlers here route back to them. Leaving the console aborts a running
    experiment and waits for its rollback.

Build it with :func:`pipeconsole.ui.factory.build_app` (the CLI, tests and headless mode do).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

import httpx
from textual.app import App
from textual.binding import BindingType
from textual.screen import Screen
from textual.worker import Worker, WorkerState, get_current_worker

from pipeconsole.config import Profile
from pipeconsole.model.snapshot import Snapshot
from pipeconsole.text import sanitize
from pipeconsole.ui.actions import ActionController
from pipeconsole.ui.chaos import ChaosController
from pipeconsole.ui.keymap import bind, keymap_for
from pipeconsole.ui.logbridge import UiLogHandler
from pipeconsole.ui.messages import (
    ActionDone,
    ChaosFinished,
    ChaosProgressed,
    ConnectionChanged,
    LogRecorded,
    ReplayDone,
    ReplayPlanned,
    RequestFound,
    SnapshotReady,
)
from pipeconsole.ui.operator import LayerFactory, Operator
from pipeconsole.ui.screens.backpressure import BackpressureScreen
from pipeconsole.ui.screens.base import ConsoleScreen
from pipeconsole.ui.screens.chaos import ChaosScreen
from pipeconsole.ui.screens.command import Command, CommandScreen, ConsoleCommands
from pipeconsole.ui.screens.detail import DetailScreen
from pipeconsole.ui.screens.devices import DevicesScreen
from pipeconsole.ui.screens.help import HelpScreen, help_text, rows_from_bindings
from pipeconsole.ui.screens.log import LogLine, LogScreen
from pipeconsole.ui.screens.overview import OverviewScreen
from pipeconsole.ui.screens.requests import RequestsScreen
from pipeconsole.ui.source import IngestSource, SnapshotSource

__all__ = ["LOG_LINES", "PipeConsoleApp"]

LOG_LINES = 2_000
"""Console log lines kept; older ones are dropped and counted (``log_dropped``)."""

VIEWS = ("overview", "devices", "requests", "backpressure", "log", "chaos")


class PipeConsoleApp(App[None]):
    """pipeconsole's operator console."""

    TITLE = "pipeconsole"
    CSS_PATH = "pipeconsole.tcss"
    COMMANDS = App.COMMANDS | {ConsoleCommands}
    MODES: ClassVar[dict[str, str | Callable[[], ConsoleScreen]]] = {  # type: ignore[assignment]
        "overview": OverviewScreen,
        "devices": DevicesScreen,
        "requests": RequestsScreen,
        "backpressure": BackpressureScreen,
        "log": LogScreen,
        "chaos": ChaosScreen,
    }
    BINDINGS: ClassVar[list[BindingType]] = [
        bind("ctrl+c", "quit", "Quit", "app.quit", priority=True),
        bind("q", "quit", "Quit", "app.quit.q", show=False),
        bind("question_mark", "help", "Help", "app.help", key_display="?"),
        bind("colon", "command", "Command", "app.command", key_display=":"),
        bind("1", "view('overview')", "Overview", "app.view.overview", show=False),
        bind("2", "view('devices')", "Devices", "app.view.devices", show=False),
        bind("3", "view('requests')", "Requests", "app.view.requests", show=False),
        bind("4", "view('backpressure')", "Lag", "app.view.backpressure", show=False),
        bind("5", "view('log')", "Log", "app.view.log", show=False),
        bind("6", "view('chaos')", "Chaos", "app.view.chaos", show=False),
    ]

    def __init__(
        self,
        profile: Profile,
        source: SnapshotSource | None,
        *,
        http_transport: httpx.AsyncBaseTransport | None = None,
        capture_logging: bool = True,
        make_layer: LayerFactory | None = None,
    ) -> None:
        super().__init__()
        self.profile = profile
        """The profile this console was started with (SLOs, keymap, read-only)."""
        self.source = source
        """Where snapshots come from; None for an app driven only by posted messages."""
        self.snapshot: Snapshot | None = None
        """The newest snapshot received."""
        self.source_ok = True
        """False once the source worker failed or stopped (shown as a banner)."""
        self.log_lines: deque[LogLine] = deque(maxlen=LOG_LINES)
        """The console's own log, newest last (bounded)."""
        self.log_dropped = 0
        self.http: httpx.AsyncClient = httpx.AsyncClient(
            transport=http_transport, follow_redirects=False, timeout=3.0
        )
        """The client *probe now* uses (loopback devices; no redirects followed)."""
        self._capture_logging = capture_logging
        self._log_handler: UiLogHandler | None = None
        self.status_line = ""
        """What runs where (the demo's broker address and processes); shown under the summary."""
        self.problems: tuple[str, ...] = ()
        """Parts of the system this console started that died (shown as a banner, logged)."""
        self._supervisor: Callable[[], list[str]] | None = None
        self.operator = Operator(profile, make_layer)
        """The action layer, used from worker threads one action at a time."""
        self.actions = ActionController(self, self.operator)
        """Schedule, edit and resend, cancel, replay."""
        self.chaos = ChaosController(self, self.operator)
        """The chaos screen's state and its runner (survives switching views)."""
        self.example_experiments: Path | None = None
        """Listed by the Chaos view when the working directory has no ``experiments/`` (the
        demo sets it to the examples shipped with pipeconsole)."""

    # ------------------------------------------------------------------ lifecycle

    def on_mount(self) -> None:
        keymap, warnings = keymap_for(self.profile.keymap)
        self.set_keymap(keymap)
        for w in warnings:
            self.log_line("WARNING", "keymap", w)
        if self._capture_logging:
            self._log_handler = UiLogHandler(self)
            logging.getLogger().addHandler(self._log_handler)
        self.switch_mode("overview")
        if self.source is not None:
            self.run_source(self.source)
        if isinstance(self.source, IngestSource):
            self.run_worker(
                self._reconcile_outbox,
                thread=True,
                exit_on_error=False,
                group="outbox",
                name="outbox-reconcile",
                description="Settling actions an earlier console left in flight",
            )
        if self._supervisor is not None:
            self.set_interval(1.0, self._check_supervisor, name="supervisor")

    def _reconcile_outbox(self) -> None:
        """An earlier console died with actions in flight: say what became of each."""
        try:
            settled = self.operator.reconcile_earlier()
        except Exception as exc:  # the console works without it; the next start tries again
            self.call_from_thread(
                self.log_line, "WARNING", "outbox", f"not reconciled: {sanitize(str(exc))}"
            )
            return
        for r in settled:
            e = r.entry
            what = "was delivered" if r.state == "present" else "never reached the broker"
            self.call_from_thread(
                self.log_line,
                "WARNING" if r.state == "present" else "ERROR",
                "outbox",
                f"{e.kind} {e.request_id} to {e.device_id} from an earlier console {what}",
            )
        if settled:
            lost = sum(r.state != "present" for r in settled)
            self.call_from_thread(
                self.notify,
                f"{len(settled)} action(s) an earlier console left in flight: "
                f"{len(settled) - lost} delivered, {lost} never sent (see the log).",
                title="Outbox reconciled",
                severity="warning" if lost else "information",
                markup=False,
                timeout=20,
            )

    def supervise(self, problems: Callable[[], list[str]], status_line: str) -> None:
        """Watch the parts this console started (the demo's): ``problems()`` lists dead ones.

        Call before ``run()``. A part that dies is shown in a banner and the log, never hidden
        and never restarted behind the operator's back.
        """
        self._supervisor = problems
        self.status_line = status_line

    def _check_supervisor(self) -> None:
        assert self._supervisor is not None
        found = tuple(self._supervisor())
        for problem in found:
            if problem not in self.problems:
                self.log_line("ERROR", "demo", problem)
                self.notify(
                    problem,
                    title="A part of the demo died",
                    severity="error",
                    markup=False,
                    timeout=30,
                )
        if found != self.problems:
            self.problems = found
            self._redraw()

    async def on_unmount(self) -> None:
        if self._log_handler is not None:
            logging.getLogger().removeHandler(self._log_handler)
        await self.http.aclose()
        # A running experiment is aborted and rolled back before the console goes away.
        self.chaos.shutdown()
        self.operator.close()

    def run_source(self, source: SnapshotSource) -> Worker[None]:
        return self.run_worker(
            lambda: self._source_loop(source),
            thread=True,
            exclusive=True,
            exit_on_error=False,
            group="source",
            name="snapshot-source",
            description="Reading snapshots from the pipeline",
        )

    def _source_loop(self, source: SnapshotSource) -> None:
        """Runs in the worker thread: only posts messages, never touches widgets."""
        stop: threading.Event = get_current_worker().cancelled_event
        self.post_message(ConnectionChanged(True, "source started"))

        def emit(snapshot: Snapshot) -> None:
            self.post_message(SnapshotReady(snapshot))

        source.run(emit, stop)
        if not stop.is_set():
            self.post_message(ConnectionChanged(False, "the snapshot source returned"))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The one place worker failures land: the log view and a notification."""
        worker = event.worker
        if event.state == WorkerState.ERROR:
            error = worker.error
            text = f"{worker.description or worker.name}: {type(error).__name__}: {error}"
            self.log_line("ERROR", worker.group, text)
            if worker.group == "source":
                self.source_ok = False
                self._redraw()
            self.notify(
                "A background task failed; see the log view (5).", severity="error", markup=False
            )

    # ------------------------------------------------------------------ messages

    def on_snapshot_ready(self, message: SnapshotReady) -> None:
        self.snapshot = message.snapshot
        self._redraw()

    def on_connection_changed(self, message: ConnectionChanged) -> None:
        self.source_ok = message.connected
        self.log_line("INFO" if message.connected else "ERROR", "source", message.detail)
        self._redraw()

    def on_log_recorded(self, message: LogRecorded) -> None:
        self._append_log(LogLine(message.time_ms, message.level, message.name, message.text))

    def on_action_done(self, message: ActionDone) -> None:
        self.actions.action_done(message)

    def on_request_found(self, message: RequestFound) -> None:
        self.actions.request_found(message)

    def on_replay_planned(self, message: ReplayPlanned) -> None:
        self.actions.replay_planned(message)

    def on_replay_done(self, message: ReplayDone) -> None:
        self.actions.replay_done(message)

    def on_chaos_progressed(self, message: ChaosProgressed) -> None:
        self.chaos.progressed(message)

    def on_chaos_finished(self, message: ChaosFinished) -> None:
        self.chaos.finished(message)

    def log_line(self, level: str, name: str, text: str) -> None:
        """Add a line to the console log (call from the UI thread; threads use logging)."""
        self._append_log(LogLine(int(time.time() * 1000), level, name, text))

    def _append_log(self, line: LogLine) -> None:
        if len(self.log_lines) == self.log_lines.maxlen:
            self.log_dropped += 1
        self.log_lines.append(line)
        screen = self.drawable_screen()
        if isinstance(screen, LogScreen):
            screen.show_log()

    def drawable_screen(self) -> Screen[object] | None:
        """The current screen, or None once quitting has emptied the stack (the threads keep
        posting until the app has closed). Whether its widgets are there to draw on is the
        screen's to say: :attr:`ConsoleScreen.drawable`."""
        return self.screen if self.screen_stack else None

    def _redraw(self) -> None:
        screen = self.drawable_screen()
        if isinstance(screen, ConsoleScreen | DetailScreen) and self.snapshot is not None:
            with self.batch_update():
                screen.show_snapshot(self.snapshot)

    # ------------------------------------------------------------------ routing

    def go_back(self) -> None:
        """``esc`` with nothing else to undo: pop a drill-down, else return to the overview."""
        if len(self.screen_stack) > 1:
            self.pop_screen()
        elif self.current_mode != "overview":
            self.switch_mode("overview")

    def action_view(self, name: str) -> None:
        if name in VIEWS:
            self.switch_mode(name)

    def open_device(self, device_id: str) -> None:
        """Drill down into one device (``enter`` on an incident or a graph node)."""
        self.push_screen(DevicesScreen(device_id=device_id))

    def action_command(self) -> None:
        self.push_screen(CommandScreen(), self._command_done)

    def _command_done(self, command: Command | None) -> None:
        if command is not None:
            self.run_command(command)

    def run_command(self, command: Command) -> None:
        """Carry out a ``:`` or palette command."""
        name, arg = command.name, command.argument
        if name == "quit":
            self.exit()
        elif name == "help":
            self.action_help()
        elif name == "open":
            self.open_device(arg)
        elif name in VIEWS:
            self.switch_mode(name)
            if arg and isinstance(self.screen, ConsoleScreen):
                self.screen.set_filter(arg)

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            return
        screen = self.screen
        bindings = [
            (self.get_key_display(ab.binding), ab.binding) for ab in screen.active_bindings.values()
        ]
        from pipeconsole.ui.screens.command import COMMANDS

        commands = [(" ".join(":" + n for n in names), what) for names, what in COMMANDS.values()]
        fields = screen.FILTER_FIELDS if isinstance(screen, ConsoleScreen) else ()
        choices = screen.FILTER_CHOICES if isinstance(screen, ConsoleScreen) else {}
        self.push_screen(
            HelpScreen(help_text(rows_from_bindings(bindings), commands, fields, choices))
        )
