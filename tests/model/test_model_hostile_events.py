"""Every kind of event the console folds, generated from the message descriptors with any
value of each field's wire type (tests/hostile_events.py): the model folds them, analyses the
graph and prints the snapshot as ``status`` does (text and strict JSON), and never raises.

Before session 12 a NaN rate in a state event made `status --json` fail (JSON has no NaN), and
stage sums and bottlenecks NaN; rates and latencies that are not finite numbers >= 0 are read
as 0 now, and counted.
"""

from __future__ import annotations

import json
from typing import Any

from hostile_events import ANY_EVENT  # tests/: on the path as the root conftest's folder
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeconsole.model import Model
from pipeconsole.model.fixtures import FakeClock
from pipeconsole.status import render_text

_INF = float("inf")


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(ANY_EVENT, min_size=1, max_size=10), min_size=1, max_size=4))
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
        for d in snap.devices:
            assert 0.0 <= d.rate_in < _INF and 0.0 <= d.rate_out < _INF
            assert 0.0 <= d.latency_p99_ms < _INF
        for e in snap.graph.edges:
            assert 0.0 <= e.rate < _INF
        for a in snap.actors:
            assert 0.0 <= a.retry_budget_left < _INF
