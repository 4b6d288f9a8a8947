"""The schedule form: a modal generated from the DeviceRequest descriptor (``actions.form``).

One input per :func:`~pipeconsole.actions.form.form_fields` entry, by kind: ``Input`` for text,
times and numbers, ``Select`` for choices and booleans, ``TextArea`` for headers and the entity.
A template picker fills the form with one of the device's known commands
(:data:`~pipeconsole.actions.form.TEMPLATES`); "edit and resend" opens it with a past request's
values (:func:`~pipeconsole.actions.form.spec_from_request`).

``ctrl+s`` (or the Send button) checks the form: its own parsing (:func:`spec_from_form`), then
the device actors' validator (``Operator.prepare`` → ``ActionLayer.prepare``). Every field
error is shown under its input (:func:`form_field_of`) and nothing is sent; only a clean form
dismisses, with the :class:`~pipeconsole.actions.layer.ScheduleSpec`. Sending (and the typed
confirmation for destructive commands) is the caller's job.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import ClassVar

from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Select, Static, TextArea

from pipeconsole.actions.form import (
    TEMPLATES,
    FormField,
    form_field_of,
    form_fields,
    render,
    spec_from_form,
)
from pipeconsole.actions.layer import ScheduleSpec
from pipeconsole.ui.keymap import bind
from pipeconsole.ui.render import plain
from pipeconsole.wire.validate import FieldError

__all__ = ["ScheduleScreen", "is_destructive", "slug"]

Prepare = Callable[[ScheduleSpec], list[FieldError]]
"""Build and validate a spec without sending; returns the field errors."""

_BOOL = ("false", "true")
_DESTRUCTIVE_SUFFIXES = ("/stop", "/restart")


def slug(name: str) -> str:
    """A widget id for a descriptor field name (``qos.priority`` -> ``qos-priority``)."""
    return name.replace(".", "-").replace("_", "-")


def is_destructive(spec: ScheduleSpec) -> bool:
    """Commands that stop work on a device ask for a typed confirmation first."""
    uri = spec.uri.split("?", 1)[0].rstrip("/")
    return spec.method.upper() == "DELETE" or uri.endswith(_DESTRUCTIVE_SUFFIXES)


class ScheduleScreen(ModalScreen[ScheduleSpec | None]):
    """New request / edit and resend; dismisses with a spec that passed the validator."""

    BINDINGS: ClassVar[list[BindingType]] = [
        bind("ctrl+s", "send", "Check and send", "schedule.send"),
        bind("escape", "cancel", "Cancel", "schedule.cancel", key_display="esc"),
    ]

    def __init__(
        self,
        prepare: Prepare,
        *,
        device_id: str = "",
        values: Mapping[str, str] | None = None,
        title: str = "New request",
        refusal: str = "",
    ) -> None:
        super().__init__()
        self.prepare = prepare
        # Descriptor order, except the target first: it is what the operator checks first.
        self.fields: list[FormField] = sorted(form_fields(), key=lambda f: f.name != "device_id")
        self.initial: dict[str, str] = {f.name: f.default for f in self.fields}
        self.initial["device_id"] = device_id
        self.initial.update(values or {})
        self.form_title = f"{title} on {device_id}" if device_id else title
        self.refusal = refusal
        """Shown as a banner when the profile may not schedule (sending will be refused)."""
        self.errors: list[FieldError] = []
        """The errors of the last check (empty after a clean one)."""

    # ------------------------------------------------------------------ building

    def compose(self) -> ComposeResult:
        with Vertical(id="schedule-box"):
            yield Static(plain(self.form_title, style=Style(bold=True)), id="schedule-title")
            if self.refusal:
                yield Static(plain(self.refusal, style=Style(color="red")), id="schedule-refusal")
            with Horizontal(classes="form-row", id="row-template"):
                yield Static("Template", classes="form-label")
                yield Select(
                    [(t.title, t.id) for t in TEMPLATES],
                    prompt="(none: type the request)",
                    id="f-template",
                    compact=True,
                )
            with VerticalScroll(id="schedule-fields"):
                for f in self.fields:
                    with Vertical(classes="form-field", id=f"row-{slug(f.name)}"):
                        with Horizontal(classes="form-row"):
                            label = f.label + (" *" if f.required else "")
                            yield Static(label, classes="form-label")
                            yield self._input(f)
                        yield Static(Text(f.help, Style(dim=True)), classes="form-help")
                        yield Static("", classes="form-error", id=f"e-{slug(f.name)}")
            yield Static("", id="schedule-summary")
            with Horizontal(id="schedule-buttons"):
                yield Button("Send (ctrl+s)", variant="primary", id="schedule-send")
                yield Button("Cancel (esc)", id="schedule-cancel")

    def _input(self, f: FormField) -> Input | Select[str] | TextArea:
        value = self.initial.get(f.name, f.default)
        wid = f"f-{slug(f.name)}"
        if f.kind == "choice" or f.kind == "bool":
            choices = _BOOL if f.kind == "bool" else f.choices
            options = [(c, c) for c in choices]
            if value and value not in choices:  # edit-and-resend of an unusual method
                options.append((value, value))
            return Select(
                options, allow_blank=False, value=value or choices[0], id=wid, compact=True
            )
        if f.kind in ("headers", "entity"):
            return TextArea(value, id=wid, soft_wrap=True, classes="form-text", compact=True)
        return Input(value, placeholder=f.placeholder, id=wid, compact=True)

    def on_mount(self) -> None:
        first = "f-uri" if self.initial.get("device_id") else "f-device-id"
        self.query_one(f"#{first}").focus()

    # ------------------------------------------------------------------ values

    def values(self) -> dict[str, str]:
        """The form's current text, by descriptor field name."""
        out: dict[str, str] = {}
        for f in self.fields:
            w = self.query_one(f"#f-{slug(f.name)}")
            if isinstance(w, Input):
                out[f.name] = w.value
            elif isinstance(w, TextArea):
                out[f.name] = w.text
            elif isinstance(w, Select):
                v = w.value
                out[f.name] = v if isinstance(v, str) else ""
        return out

    def set_values(self, values: Mapping[str, str]) -> None:
        for f in self.fields:
            if f.name not in values:
                continue
            w = self.query_one(f"#f-{slug(f.name)}")
            v = values[f.name]
            if isinstance(w, Input):
                w.value = v
            elif isinstance(w, TextArea):
                w.text = v
            elif isinstance(w, Select):
                w.value = v

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id != "f-template" or not isinstance(event.value, str):
            return
        template = next((t for t in TEMPLATES if t.id == event.value), None)
        if template is None:
            return
        values, errors = render(template, self.values().get("device_id", ""))
        if errors:
            self.show_errors(errors)
            return
        self.set_values(values)
        self.show_errors([])

    # ------------------------------------------------------------------ checking

    def check(self) -> ScheduleSpec | None:
        """Parse and validate; show every error inline. The spec only when it is clean."""
        spec, errors = spec_from_form(self.values())
        if not errors:
            errors = self.prepare(spec)
        self.show_errors(errors)
        return None if errors else spec

    def show_errors(self, errors: list[FieldError]) -> None:
        self.errors = list(errors)
        by_field: dict[str, list[FieldError]] = {}
        known = {f.name for f in self.fields}
        stray: list[FieldError] = []
        for e in errors:
            name = form_field_of(e.field)
            if name in known:
                by_field.setdefault(name, []).append(e)
            else:
                stray.append(e)
        for f in self.fields:
            got = by_field.get(f.name, [])
            text = Text(end="")
            for n, e in enumerate(got):
                if n:
                    text.append("\n")
                text.append("✖ ", Style(color="red", bold=True))
                text.append_text(plain(f"{e.field}: {e.message}", style=Style(color="red")))
            self.query_one(f"#e-{slug(f.name)}", Static).update(text)
            self.query_one(f"#row-{slug(f.name)}").set_class(bool(got), "-error")
        summary = Text(end="")
        if errors:
            summary.append(
                f"✖ {len(errors)} field error(s): nothing sent", Style(color="red", bold=True)
            )
            for e in stray:
                summary.append("\n  ")
                summary.append_text(plain(f"{e.field}: {e.message}"))
        self.query_one("#schedule-summary", Static).update(summary)
        if by_field:
            first = next(f.name for f in self.fields if f.name in by_field)
            self.query_one(f"#row-{slug(first)}").scroll_visible(animate=False)

    # ------------------------------------------------------------------ actions

    def action_send(self) -> None:
        spec = self.check()
        if spec is not None:
            self.dismiss(spec)

    def action_cancel(self) -> None:
        self.dismiss(None)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "schedule-send":
            self.action_send()
        else:
            self.action_cancel()
