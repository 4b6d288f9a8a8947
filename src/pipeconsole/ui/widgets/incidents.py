"""The incidents panel: root-cause candidates ranked, each with its blast radius.

The top incident is highlighted as soon as there is one and the highlight follows the top
rank until the operator moves it, so ``enter`` on the overview drills into the most likely
root cause in one keystroke. The list is rebuilt only when the incidents change.
"""

from __future__ import annotations

from rich.style import Style
from rich.text import Text
from textual.message import Message
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from pipeconsole.model.snapshot import Incident
from pipeconsole.ui.render import HEALTH_MARK, HEALTH_STYLE, plain

__all__ = ["IncidentList", "incident_text"]


def _why(i: Incident) -> str:
    """The incident's second line: its first failing check, or else its reason."""
    return i.failing_checks[0] if i.failing_checks else i.reason


def _rows(incidents: tuple[Incident, ...]) -> tuple[tuple[object, ...], ...]:
    """What the list shows of ``incidents``: it is rebuilt when this changes."""
    return tuple(
        (i.device_id, i.rank, i.health, i.blast_size, _why(i), i.behind) for i in incidents
    )


def incident_text(i: Incident) -> Text:
    check = _why(i)
    return Text.assemble(
        (f"{i.rank:>2} {HEALTH_MARK[i.health]} ", HEALTH_STYLE[i.health]),
        plain(i.device_id, max_len=32, style=Style(bold=True)),
        (f"  blast radius {i.blast_size}", Style(color="cyan")),
        "\n     ",
        plain(check or "—", max_len=120, style=Style(dim=True)),
        *_behind(i),
        end="",
    )


def _behind(i: Incident) -> tuple[str | Text | tuple[str, Style], ...]:
    """A third line when the device feeds a worse one: its trouble is likely back-pressure
    from it, a symptom rather than the cause (short: the panel is ~36 columns wide)."""
    if not i.behind:
        return ()
    more = f" +{len(i.behind) - 1}" if len(i.behind) > 1 else ""
    return (
        "\n     ",
        ("↳ symptom of ", Style(color="yellow")),
        plain(i.behind[0], max_len=32, style=Style(color="yellow", bold=True)),
        (f"{more}?", Style(color="yellow")),
    )


class IncidentList(OptionList):
    """Ranked root-cause candidates; ``enter`` posts :class:`IncidentList.IncidentOpened`."""

    class IncidentOpened(Message):
        def __init__(self, device_id: str) -> None:
            super().__init__()
            self.device_id = device_id

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.incidents: tuple[Incident, ...] = ()
        self.pending = False
        """The last :meth:`show` had no analysis yet (a backlog was being read)."""
        self.pinned = False
        """True once the operator moved the highlight: it then stays on that device; until
        then it follows the top-ranked incident (so ``enter`` opens the root cause)."""

    def show(self, incidents: tuple[Incident, ...], *, pending: bool = False) -> None:
        """``pending``: the graph has not been analysed yet (a backlog is being read)."""
        # What the rows show: a device's reason changes while its failing checks do not (a
        # silent device's "silent for N s", the reason its actor reported once it answered).
        key, old = _rows(incidents), _rows(self.incidents)
        current = self.highlighted_device
        self.incidents = incidents
        was_pending, self.pending = self.pending, pending
        if key == old and pending == was_pending and self.option_count:
            return
        self.clear_options()
        if not incidents:
            why = (
                "… reading the backlog: root causes follow once caught up"
                if pending
                else "✔ no incidents: no unhealthy device with a healthy upstream"
            )
            self.add_option(Option(Text(why, style="dim"), disabled=True))
            return
        self.add_options(
            Option(incident_text(i), id=f"incident:{n}") for n, i in enumerate(incidents)
        )
        ids = [i.device_id for i in incidents]
        self.highlighted = ids.index(current) if self.pinned and current in ids else 0

    def action_cursor_up(self) -> None:
        self.pinned = True
        super().action_cursor_up()

    def action_cursor_down(self) -> None:
        self.pinned = True
        super().action_cursor_down()

    @property
    def highlighted_device(self) -> str | None:
        if (
            self.highlighted is None
            or not self.incidents
            or self.highlighted >= len(self.incidents)
        ):
            return None
        return self.incidents[self.highlighted].device_id

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option_index < len(self.incidents):
            self.post_message(self.IncidentOpened(self.incidents[event.option_index].device_id))
