"""``?`` help, generated from the live bindings of the screen below (so remapped keys and
per-view keys are always right), plus the ``:`` commands and the filter language.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from pipeconsole.ui.keymap import bind

__all__ = ["HelpScreen", "help_text"]

FILTER_HELP = """\
  word                 any text field contains it (case-insensitive)
  field=value  !=      equal / not equal (numbers as numbers, text ignoring case)
  field<n  <=  >  >=   compare
  field~'regex'  !~    regular-expression search (guarded: size-capped, no (a+)+)
  field in (a, b)      one of
  and  or  not  !  ( ) combine; words side by side mean "and"
  e.g.  health=failing   stage in (transcode, package) and queue>0.8   !healthy"""


def help_text(
    rows: list[tuple[str, str, str]],
    commands: list[tuple[str, str]],
    fields: tuple[str, ...],
    choices: Mapping[str, tuple[str, ...]] | None = None,
) -> Text:
    """``rows``: (keys, description, binding id); ``commands``: (names, what); ``choices``: the
    values of the fields that hold one of a fixed set."""
    out = Text(end="")
    out.append("Keys on this view\n", Style(bold=True, underline=True))
    width = max((len(k) for k, _, _ in rows), default=4)
    for keys, description, binding_id in rows:
        out.append(f"  {keys:<{width}}  ", Style(bold=True, color="cyan"))
        out.append(f"{description:<26}")
        out.append(f" {binding_id}\n", Style(dim=True))
    out.append("\nCommands (: then enter)\n", Style(bold=True, underline=True))
    for names, what in commands:
        out.append(f"  {names:<34}", Style(bold=True, color="cyan"))
        out.append(f"{what}\n")
    out.append("\nFilter (/ then a query; esc clears)\n", Style(bold=True, underline=True))
    out.append(FILTER_HELP + "\n")
    if fields:
        out.append("  fields here: " + ", ".join(fields) + "\n", Style(dim=True))
    for name, values in (choices or {}).items():
        out.append(f"  {name}: " + " ".join(v.lower() for v in values) + "\n", Style(dim=True))
    out.append(
        '\nRemap any key in the profile: [profiles.NAME.keymap] "binding.id" = "keys"',
        Style(dim=True),
    )
    return out


def rows_from_bindings(bindings: list[tuple[str, Binding]]) -> list[tuple[str, str, str]]:
    """Group keys by binding id; skip bindings without a description."""
    grouped: dict[str, tuple[list[str], str]] = {}
    for key_display, b in bindings:
        if not b.description:
            continue
        ident = b.id or b.action
        keys, _ = grouped.setdefault(ident, ([], b.description))
        if key_display not in keys:
            keys.append(key_display)
    return [(" ".join(keys), desc, ident) for ident, (keys, desc) in grouped.items()]


class HelpScreen(ModalScreen[None]):
    """A scrollable page of help; ``esc``, ``?`` or ``q`` closes it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        bind("escape", "dismiss", "Close", "help.close", key_display="esc"),
        bind("question_mark", "dismiss", "Close", "help.close_q", show=False),
        bind("q", "dismiss", "Close", "help.close_quit", show=False),
    ]

    def __init__(self, text: Text) -> None:
        super().__init__()
        self.text = text

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-body"):
            yield Static(self.text, id="help-text")

    def on_mount(self) -> None:
        self.query_one("#help-body").focus()

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(result)
