"""``:`` command mode (k9s) and the ``ctrl+p`` palette's console commands.

``:`` opens a one-line prompt at the bottom. A command is a name or alias, optionally
followed by a filter for that view: ``:devices health=failing``, ``:dev transcode``,
``:lag``, ``:chaos``, ``:log``, ``:q``. Unknown names get a message listing the known ones.
:func:`parse_command` is pure and tested on its own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, ClassVar

from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from pipeconsole.ui.keymap import bind

if TYPE_CHECKING:
    from pipeconsole.ui.app import PipeConsoleApp

__all__ = ["ALIASES", "COMMANDS", "Command", "CommandScreen", "ConsoleCommands", "parse_command"]

COMMANDS: dict[str, tuple[tuple[str, ...], str]] = {
    "overview": (("overview", "ov", "home", "graph"), "the pipeline graph and incidents"),
    "devices": (("devices", "device", "dev", "d"), "the device table and detail pane"),
    "requests": (("requests", "request", "req", "r"), "request lifecycles, deadlines, DLQ"),
    "backpressure": (("lag", "backpressure", "bp"), "consumer lag and paused partitions"),
    "log": (("log", "logs", "audit", "timeline", "events"), "timeline, audit and console log"),
    "chaos": (("chaos", "ch"), "chaos experiments: plan, run, abort, report"),
    "help": (("help", "h", "?"), "this help"),
    "quit": (("quit", "q", "q!", "exit"), "leave the console"),
}
"""Command -> (names and aliases, what it shows)."""

ALIASES: dict[str, str] = {alias: cmd for cmd, (names, _) in COMMANDS.items() for alias in names}


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    """The canonical command (a key of :data:`COMMANDS`)."""
    argument: str = ""
    """The rest of the line: a filter for the view."""


class CommandError(ValueError):
    """The line is not a command; the message lists the known ones."""


def parse_command(line: str) -> Command:
    text = line.strip().removeprefix(":").strip()
    if not text:
        raise CommandError("empty command")
    name, _, rest = text.partition(" ")
    cmd = ALIASES.get(name.casefold())
    if cmd is None:
        known = ", ".join(sorted(COMMANDS))
        raise CommandError(f"unknown command {name[:40]!r}; known: {known}")
    return Command(cmd, rest.strip())


class CommandScreen(ModalScreen[Command | None]):
    """The ``:`` prompt: dismisses with a :class:`Command`, or None on ``esc``."""

    BINDINGS: ClassVar[list[BindingType]] = [
        bind("escape", "cancel", "Cancel", "command.cancel", key_display="esc")
    ]

    def compose(self) -> ComposeResult:
        yield Static(id="command-message")
        yield Input(
            placeholder=":devices, :requests, :lag, :chaos, :log … (tab completes)",
            id="command-input",
        )

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        name = event.value.strip().partition(" ")[0].casefold()
        matches = sorted({c for a, c in ALIASES.items() if a.startswith(name)}) if name else []
        hint = "  ".join(f":{m}" for m in matches) or "no such command"
        self.query_one("#command-message", Static).update(Text(hint, Style(dim=True)))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        try:
            cmd = parse_command(event.value)
        except CommandError as exc:
            self.query_one("#command-message", Static).update(Text(f"✖ {exc}", Style(color="red")))
            return
        self.dismiss(cmd)

    def action_cancel(self) -> None:
        self.dismiss(None)


class ConsoleCommands(Provider):
    """Palette entries: every view, and every device of the current snapshot."""

    @property
    def console(self) -> PipeConsoleApp:
        from pipeconsole.ui.app import PipeConsoleApp

        assert isinstance(self.app, PipeConsoleApp)
        return self.app

    def _entries(self) -> list[tuple[str, str, Command]]:
        out = [
            (f"Go to {name}", what, Command(name))
            for name, (_, what) in COMMANDS.items()
            if name not in ("quit", "help")
        ]
        snapshot = self.console.snapshot
        if snapshot is not None:
            from pipeconsole.text import sanitize

            for d in snapshot.devices[:5000]:
                out.append(
                    (
                        f"Open device {sanitize(d.device_id, max_len=64)}",
                        f"{d.health.value} · {sanitize(d.stage, max_len=32)}",
                        Command("open", d.device_id),
                    )
                )
        return out

    async def discover(self) -> Hits:
        for title, help_, cmd in self._entries()[:8]:
            yield DiscoveryHit(Text(title), partial(self.console.run_command, cmd), help=help_)

    async def search(self, query: str) -> AsyncIterator[Hit]:
        matcher = self.matcher(query)
        for title, help_, cmd in self._entries():
            score = matcher.match(title)
            if score > 0:
                yield Hit(
                    score,
                    matcher.highlight(title),
                    partial(self.console.run_command, cmd),
                    help=help_,
                )
