"""Plain data for a schedule form: fields from the DeviceRequest descriptor, command templates.

The TUI renders this; it holds no widgets. The map:

- :func:`form_fields` — one :class:`FormField` per operator-editable field of ``DeviceRequest``
  (``qos`` flattened into ``qos.priority`` / ``qos.max_attempts`` / ``qos.idempotent``), in
  descriptor order, with kind, choices, default and help. Fields the action layer sets itself
  (request_id, nonce, replay_of, issued_by, issued_at, token) are listed by
  :data:`LAYER_FIELDS` and never shown as inputs. A test fails when the proto gains a field
  that this module does not describe, so the form cannot silently fall behind.
- :func:`spec_from_form` — the form's text values -> :class:`~.layer.ScheduleSpec` plus the
  errors of the form's own parsing (headers lines, numbers); then ``ActionLayer.prepare``
  gives the validator's field errors. :func:`form_field_of` maps an error's field
  (``headers[X-Foo]``, ``schedule_time``) to the input that shows it.
- :data:`TEMPLATES` — the known device commands of docs/device-api.md, and :func:`render`
  to fill one in; :func:`spec_from_request` — "edit and resend" of a past request.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from pipeconsole.actions.layer import MISFIRE, QOS_CLASSES, ScheduleSpec
from pipeconsole.wire.gen.device_request_pb2 import DeviceRequest, QoS
from pipeconsole.wire.validate import FieldError

__all__ = [
    "LAYER_FIELDS",
    "TEMPLATES",
    "CommandTemplate",
    "FormField",
    "TemplateParam",
    "form_field_of",
    "form_fields",
    "render",
    "spec_from_form",
    "spec_from_request",
]

Kind = Literal["text", "choice", "headers", "entity", "time", "deadline", "number", "bool"]

LAYER_FIELDS: Final = frozenset(
    {"request_id", "nonce", "replay_of", "issued_by", "issued_at", "token"}
)
"""Set by the action layer on every issue; never typed by the operator."""


@dataclass(frozen=True, slots=True)
class FormField:
    """One input of the schedule form."""

    name: str
    """Descriptor name (``qos.priority`` for the sub-message): validator errors use it."""
    label: str
    kind: Kind
    required: bool = False
    choices: tuple[str, ...] = ()
    default: str = ""
    help: str = ""
    placeholder: str = ""


_FIELDS: Final[dict[str, FormField]] = {
    "device_id": FormField(
        "device_id",
        "Device",
        "text",
        True,
        help="Target device (the Kafka key).",
        placeholder="transcode-03",
    ),
    "method": FormField(
        "method",
        "Method",
        "choice",
        True,
        ("GET", "POST", "PUT", "PATCH", "DELETE"),
        "POST",
        "HTTP method (a token).",
    ),
    "uri": FormField(
        "uri",
        "URI",
        "text",
        True,
        help="Relative path on the device; the address comes from the registry.",
        placeholder="/streams/s1/start",
    ),
    "headers": FormField(
        "headers",
        "Headers",
        "headers",
        help="One 'Name: value' per line; no CR/LF inside a value.",
    ),
    "entity_content_type": FormField(
        "entity_content_type",
        "Content type",
        "text",
        help="Media type of the entity, e.g. application/json.",
        placeholder="application/json",
    ),
    "entity": FormField("entity", "Entity", "entity", help="Request body (UTF-8 text)."),
    "schedule_time": FormField(
        "schedule_time",
        "At",
        "time",
        help="Empty = now; RFC 3339 (2026-11-26T11:00:00Z) or relative (+5m).",
        placeholder="+5m",
    ),
    "misfire_strategy": FormField(
        "misfire_strategy",
        "Misfire",
        "choice",
        False,
        tuple(MISFIRE),
        "best-effort",
        "If it fires late: best-effort fires now, forget records MISFIRED.",
    ),
    "deadline": FormField(
        "deadline",
        "Deadline",
        "deadline",
        help="Empty = the QoS default; relative to the fire time (2s) or RFC 3339.",
        placeholder="2s",
    ),
    "qos.priority": FormField(
        "qos.priority",
        "QoS",
        "choice",
        False,
        tuple(QOS_CLASSES),
        "normal",
        "interactive: an operator waits; bulk: shed first.",
    ),
    "qos.max_attempts": FormField(
        "qos.max_attempts",
        "Max attempts",
        "number",
        default="0",
        help="0 = the class default; capped by the actor.",
    ),
    "qos.idempotent": FormField(
        "qos.idempotent",
        "Idempotent",
        "bool",
        default="false",
        help="May be retried after a timeout.",
    ),
}


def _descriptor_names() -> list[str]:
    names: list[str] = []
    for fd in DeviceRequest.DESCRIPTOR.fields:
        if fd.name == "qos":
            names.extend(f"qos.{sub.name}" for sub in QoS.DESCRIPTOR.fields)
        else:
            names.append(fd.name)
    return names


def form_fields() -> list[FormField]:
    """The editable fields in descriptor order. Raises LookupError for an undescribed field
    (a proto change that this module must follow)."""
    out: list[FormField] = []
    for name in _descriptor_names():
        if name in LAYER_FIELDS:
            continue
        spec = _FIELDS.get(name)
        if spec is None:
            raise LookupError(f"DeviceRequest field {name!r} has no form description")
        out.append(spec)
    return out


def form_field_of(error_field: str) -> str:
    """The form input that shows a validator error: ``headers[X-Foo]`` -> ``headers``."""
    base = error_field.split("[", 1)[0]
    return base if base in _FIELDS else "device_id" if base == "device" else base


def spec_from_form(values: Mapping[str, str]) -> tuple[ScheduleSpec, list[FieldError]]:
    """Form text -> spec, plus errors of the form's own parsing (not yet the validator's)."""
    errors: list[FieldError] = []
    headers: list[tuple[str, str]] = []
    for n, line in enumerate(values.get("headers", "").splitlines(), 1):
        if not line.strip():
            continue
        name, sep, value = line.partition(":")
        if not sep:
            errors.append(FieldError("headers", "grammar", f"line {n}: expected 'Name: value'"))
            continue
        headers.append((name.strip(), value.strip()))
    attempts_text = values.get("qos.max_attempts", "0").strip() or "0"
    attempts = 0
    if not attempts_text.isdigit() or int(attempts_text) > 100:
        errors.append(FieldError("qos.max_attempts", "grammar", "a whole number from 0 to 100"))
    else:
        attempts = int(attempts_text)
    idem = values.get("qos.idempotent", "false").strip().lower()
    if idem not in ("true", "false", "yes", "no", "1", "0", ""):
        errors.append(FieldError("qos.idempotent", "grammar", "true or false"))
    spec = ScheduleSpec(
        device_id=values.get("device_id", "").strip(),
        method=values.get("method", "").strip(),
        uri=values.get("uri", "").strip(),
        headers=tuple(headers),
        entity=values.get("entity", "").encode("utf-8"),
        content_type=values.get("entity_content_type", "").strip(),
        at=values.get("schedule_time", "").strip(),
        misfire=values.get("misfire_strategy", "best-effort").strip() or "best-effort",
        deadline=values.get("deadline", "").strip(),
        qos=values.get("qos.priority", "normal").strip() or "normal",
        max_attempts=attempts,
        idempotent=idem in ("true", "yes", "1"),
    )
    return spec, errors


def spec_from_request(req: DeviceRequest) -> dict[str, str]:
    """Form values for "edit and resend": the past request's content, fresh identity.

    Schedule time is dropped (a past time would misfire) and so is the absolute deadline.
    """
    prio = {v: k for k, v in QOS_CLASSES.items()}.get(req.qos.priority, "normal")
    misfire = {v: k for k, v in MISFIRE.items()}.get(req.misfire_strategy, "best-effort")
    return {
        "device_id": req.device_id,
        "method": req.method,
        "uri": req.uri,
        "headers": "\n".join(f"{k}: {v}" for k, v in sorted(req.headers.items())),
        "entity_content_type": req.entity_content_type,
        "entity": req.entity.decode("utf-8", errors="replace"),
        "schedule_time": "",
        "misfire_strategy": misfire,
        "deadline": "",
        "qos.priority": prio,
        "qos.max_attempts": str(req.qos.max_attempts),
        "qos.idempotent": "true" if req.qos.idempotent else "false",
    }


@dataclass(frozen=True, slots=True)
class TemplateParam:
    name: str
    help: str
    pattern: str
    """Full-match regular expression the value must satisfy (keeps URIs and bodies clean)."""
    default: str = ""


@dataclass(frozen=True, slots=True)
class CommandTemplate:
    """A known device command (docs/device-api.md)."""

    id: str
    title: str
    method: str
    uri: str
    """With ``{param}`` placeholders."""
    params: tuple[TemplateParam, ...] = ()
    entity: str = ""
    """JSON body with ``{param}`` placeholders; empty for none."""
    content_type: str = ""
    destructive: bool = False
    """Asks for a typed confirmation in the TUI."""
    qos: str = "interactive"


_STREAM = TemplateParam("stream_id", "Stream id", r"[A-Za-z0-9_-]{1,64}", "s1")

TEMPLATES: Final[tuple[CommandTemplate, ...]] = (
    CommandTemplate(
        "stream.start",
        "Start a stream",
        "POST",
        "/streams/{stream_id}/start",
        (_STREAM, TemplateParam("profile", "Encoding profile", r"[A-Za-z0-9_.-]{1,32}", "hd")),
        '{{"profile": "{profile}"}}',
        "application/json",
    ),
    CommandTemplate(
        "stream.stop",
        "Stop a stream",
        "POST",
        "/streams/{stream_id}/stop",
        (_STREAM,),
        destructive=True,
    ),
    CommandTemplate(
        "config.bitrate",
        "Set the bitrate",
        "PUT",
        "/config/bitrate",
        (TemplateParam("kbps", "Bitrate, 100..100000 kbit/s", r"[1-9][0-9]{2,5}", "4000"),),
        '{{"kbps": {kbps}}}',
        "application/json",
    ),
    CommandTemplate("device.restart", "Restart the device", "POST", "/restart", destructive=True),
)
"""The commands every device serves."""


def render(
    template: CommandTemplate, device_id: str, values: Mapping[str, str] | None = None
) -> tuple[dict[str, str], list[FieldError]]:
    """Form values for ``template`` on ``device_id`` (defaults for missing params)."""
    values = values or {}
    filled: dict[str, Any] = {}
    errors: list[FieldError] = []
    for p in template.params:
        v = values.get(p.name, p.default)
        if not re.fullmatch(p.pattern, v):
            errors.append(FieldError(p.name, "grammar", f"{p.help}: {v!r} is not allowed"))
        filled[p.name] = v
    if errors:
        return {}, errors
    return (
        {
            "device_id": device_id,
            "method": template.method,
            "uri": template.uri.format(**filled),
            "headers": "",
            "entity_content_type": template.content_type,
            "entity": template.entity.format(**filled) if template.entity else "",
            "schedule_time": "",
            "misfire_strategy": "best-effort",
            "deadline": "",
            "qos.priority": template.qos,
            "qos.max_attempts": "0",
            "qos.idempotent": "false",
        },
        [],
    )
