"""Generated state events, hostile ones included: the model folds them, analyses the graph and
prints the snapshot as `status` does (text and strict JSON), and never raises.

Every numeric field takes any value of its wire type (doubles: NaN, infinities, negatives,
1e308; enums: undeclared numbers), strings take anything (control characters, naughty strings),
and links name made-up peers. Before session 12 a NaN rate made `status --json` fail.
"""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeconsole.model import Model
from pipeconsole.model.fixtures import FIXED_NOW_MS, FakeClock
from pipeconsole.status import render_text
from pipeconsole.wire.gen import device_state_pb2 as ds

_IDS = st.sampled_from(["enc-1", "tx-1", "tx-2", "pk-1", "", "\x1b[31mred", "a" * 200])
_TEXT = st.text(max_size=40)
_U32 = st.integers(0, 2**32 - 1)
_ENUM = st.integers(-(2**31), 2**31 - 1)
_DOUBLE = st.floats(allow_nan=True, allow_infinity=True)

_links = st.lists(
    st.builds(
        ds.Link,
        peer_id=st.one_of(_IDS, _TEXT),
        direction=st.integers(0, 3),
        rate=_DOUBLE,
        queue_depth=_U32,
        queue_capacity=_U32,
    ),
    max_size=6,
)
_checks = st.lists(st.builds(ds.Check, name=_TEXT, status=_ENUM, detail=_TEXT), max_size=4)
_states = st.builds(
    ds.DeviceState,
    device_id=_IDS,
    time_unix_ms=st.integers(FIXED_NOW_MS - 60_000, FIXED_NOW_MS + 60_000),
    state=_ENUM,
    health=_ENUM,
    checks=_checks,
    links=_links,
    in_flight=_U32,
    queue_depth=_U32,
    queue_capacity=_U32,
    rate_in=_DOUBLE,
    rate_out=_DOUBLE,
    latency_p50_ms=_DOUBLE,
    latency_p99_ms=_DOUBLE,
    restarts=_U32,
    reason=_TEXT,
    stage=st.one_of(st.sampled_from(["ingest", "transcode", ""]), _TEXT),
)
_events = st.one_of(
    _states.map(lambda s: ds.StateEvent(unchanged=ds.ServiceStateUnchanged(state=s))),
    _states.map(lambda s: ds.StateEvent(changed=ds.ServiceStateChanged(state=s))),
    st.builds(
        ds.ActorStatus,
        actor_id=_TEXT,
        time_unix_ms=st.integers(FIXED_NOW_MS - 60_000, FIXED_NOW_MS),
        retry_budget_left=_DOUBLE,
        in_flight=_U32,
        in_flight_limit=_U32,
    ).map(lambda a: ds.StateEvent(actor=a)),
)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(_events, min_size=1, max_size=12), min_size=1, max_size=4))
def test_any_state_events_fold_analyse_and_print(batches: list[list[ds.StateEvent]]) -> None:
    clock = FakeClock()
    model = Model(clock=clock, check_interval_s=5.0)
    for batch in batches:
        model.apply(batch)
        clock.advance(2)
        snap = model.snapshot(analyse=True)
        text = json.dumps(snap.to_json(), allow_nan=False)  # `status --json`
        assert "\x1b" not in text
        assert "\x1b" not in render_text(snap, [])  # `status`
        for d in snap.devices:
            assert 0.0 <= d.rate_in < float("inf") and 0.0 <= d.rate_out < float("inf")
        for e in snap.graph.edges:
            assert 0.0 <= e.rate < float("inf")
