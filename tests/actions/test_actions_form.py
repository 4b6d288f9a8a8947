"""The schedule form's plain data: every descriptor field described, templates render valid."""

from __future__ import annotations

from datetime import UTC, datetime

from pipeconsole.actions.form import (
    LAYER_FIELDS,
    TEMPLATES,
    form_field_of,
    form_fields,
    render,
    spec_from_form,
    spec_from_request,
)
from pipeconsole.actions.layer import build_request
from pipeconsole.wire.gen.device_request_pb2 import DeviceRequest

NOW = datetime(2026, 11, 26, 11, 0, tzinfo=UTC)


def test_form_covers_every_operator_field_of_the_descriptor() -> None:
    names = [f.name for f in form_fields()]  # raises if the proto gained an undescribed field
    described = set(names) | LAYER_FIELDS | {"qos"}
    assert {fd.name for fd in DeviceRequest.DESCRIPTOR.fields} <= described
    assert names[:3] == ["method", "uri", "headers"]  # descriptor order
    assert not set(names) & LAYER_FIELDS


def test_every_template_renders_to_a_valid_request() -> None:
    for t in TEMPLATES:
        values, errors = render(t, "transcode-03")
        assert not errors, t.id
        spec, form_errors = spec_from_form(values)
        assert not form_errors
        _req, field_errors = build_request(spec, now=NOW, issued_by="ops")
        assert field_errors == [], (t.id, field_errors)


def test_template_parameters_cannot_smuggle_paths_or_json() -> None:
    start = next(t for t in TEMPLATES if t.id == "stream.start")
    _values, errors = render(start, "d1", {"stream_id": "../admin", "profile": 'x", "y": "z'})
    assert {e.field for e in errors} == {"stream_id", "profile"}


def test_form_errors_land_on_their_inputs_and_edit_resend_keeps_content() -> None:
    spec, errors = spec_from_form(
        {
            "device_id": "d1",
            "method": "POST",
            "uri": "/restart",
            "headers": "X-A: 1\nbroken",
            "schedule_time": "soon",
        }
    )
    assert [e.field for e in errors] == ["headers"]
    _req, field_errors = build_request(spec, now=NOW, issued_by="ops")
    assert "schedule_time" in {form_field_of(e.field) for e in field_errors}
    assert form_field_of("headers[X-Foo]") == "headers"
    past = DeviceRequest(
        method="PUT",
        uri="/config/bitrate",
        device_id="d1",
        entity=b'{"kbps": 4000}',
        schedule_time="2020-01-01T00:00:00Z",
        request_id="old",
    )
    past.headers["X-A"] = "1"
    values = spec_from_request(past)
    assert values["schedule_time"] == "" and values["headers"] == "X-A: 1"
    spec2, errs = spec_from_form(values)
    assert not errs and spec2.request_id == "" and spec2.entity == past.entity
