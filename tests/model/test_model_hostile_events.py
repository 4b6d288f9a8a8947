"""Every kind of event the console folds, generated from the message descriptors with any
value of each field's wire type (tests/hostile_events.py): the model folds them, analyses the
graph and prints the snapshot as ``status`` does (text and strict JSON), and never raises.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeconsole.model import Model
from pipeconsole.model.fixtures import FakeClock
from pipeconsole.status import render_text


def _helper() -> Any:
    path = Path(__file__).resolve().parents[1] / "hostile_events.py"
    spec = importlib.util.spec_from_file_location("hostile_events", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_ANY_EVENT = _helper().ANY_EVENT


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(_ANY_EVENT, min_size=1, max_size=10), min_size=1, max_size=4))
def test_any_events_fold_analyse_and_print(batches: list[list[Any]]) -> None:
    clock = FakeClock()
    model = Model(clock=clock, check_interval_s=5.0)
    for batch in batches:
        model.apply(batch)
        clock.advance(2)
        snap = model.snapshot(analyse=True)
        text = json.dumps(snap.to_json(), allow_nan=False)  # `status --json`
        assert "\x1b" not in text and "\x07" not in text
        printed = render_text(snap, [])  # `status`
        assert "\x1b" not in printed and "\x07" not in printed
