"""The model's analyses on hand-built event streams: the operator's questions, answered."""

from __future__ import annotations

import json

from pipeconsole.model import Health, Model, RequestState, Undecodable, pipeline
from pipeconsole.model.fixtures import (
    FIXED_NOW_MS,
    FakeClock,
    added,
    demo_model,
    demo_snapshot,
    downstream_of,
    response,
    rounds,
    state,
)
from pipeconsole.model.requests import DlqRecord


def _model(clock: FakeClock | None = None) -> Model:
    return Model(clock=clock or FakeClock(), check_interval_s=5.0)


def test_failed_encoder_is_the_top_root_cause_with_its_packagers_in_the_blast_radius() -> None:
    snap = demo_snapshot(incident=True)
    top = snap.incidents[0]
    assert top.device_id == "ingest-01"
    assert top.health == Health.FAILING
    assert "input: no frames for 12 s" in top.failing_checks
    packagers = {d for d in top.blast_radius if d.startswith("package-")}
    transcoders = {d for d in top.blast_radius if d.startswith("transcode-")}
    assert packagers and transcoders
    assert top.blast_size == len(top.blast_radius)
    # Downstream devices are not candidates of their own when their upstream is failing.
    assert not any(
        i.device_id in top.blast_radius for i in snap.incidents if i.health != Health.UNKNOWN
    )


def test_an_encoder_blocked_by_a_failed_transcoder_is_ranked_as_its_symptom() -> None:
    # enc-a -> tx-a (crashed); enc-a reports its output blocked. enc-b -> tx-b, both with a
    # smaller blast radius: enc-b is DEGRADED on its own account (tx-b is healthy).
    model = _model()
    t = FIXED_NOW_MS
    blocked = (("output", "DEGRADED", "tx-a unreachable"),)
    model.apply(
        [
            state("enc-a", t, health="DEGRADED", downstream=["tx-a"], checks=blocked),
            state("tx-a", t, health="FAILING", upstream=["enc-a"], downstream=["pk-1", "pk-2"],
                  checks=(("health", "FAILING", "connection refused"),)),
            state("pk-1", t, health="DEGRADED", upstream=["tx-a"]),
            state("pk-2", t, health="DEGRADED", upstream=["tx-a"]),
            state("enc-b", t, health="DEGRADED", downstream=["tx-b"],
                  checks=(("cpu", "DEGRADED", "98 %"),)),
            state("tx-b", t, upstream=["enc-b"]),
        ]
    )  # fmt: skip
    incidents = model.snapshot(analyse=True).incidents
    assert [(i.device_id, i.behind) for i in incidents] == [
        ("tx-a", ()),
        ("enc-b", ()),  # its own trouble: ranked before the bigger, blocked encoder
        ("enc-a", ("tx-a",)),
    ]
    assert incidents[2].blast_size > incidents[1].blast_size
    from pipeconsole.status import render_text

    text = render_text(model.snapshot(), [])
    assert "feeds tx-a, worse off: likely back-pressure, a symptom" in text
    assert text.count("likely back-pressure") == 1


def test_stalled_packager_is_the_bottleneck_and_upstream_queues_fill() -> None:
    snap = demo_snapshot(incident=True)
    b = snap.bottlenecks[0]
    assert b.device_id == "package-03"
    assert b.rate_in > b.rate_out
    assert b.fill_rate > 0 and b.time_to_full_s is not None and b.time_to_full_s > 0
    assert b.upstream_filling, "the transcoder feeding it feels the back-pressure"
    up = snap.device(b.upstream_filling[0])
    assert up is not None and up.history.queue_depth[-1] > up.history.queue_depth[0]


def test_silence_makes_a_device_unknown_not_healthy() -> None:
    clock = FakeClock()
    model = _model(clock)
    spec = pipeline(4)[0]
    model.apply([added(spec), state(spec.device_id, clock.now_ms)])
    assert model.snapshot().devices[0].health == Health.HEALTHY
    clock.advance(16)  # > 3 x 5 s without a state event
    view = model.snapshot().device(spec.device_id)
    assert view is not None
    assert view.health == Health.UNKNOWN and view.stale
    assert view.reported_health == Health.HEALTHY
    assert view.last_seen_age_s == 16.0
    assert model.snapshot().fleet.unknown == 1


def test_falling_silent_goes_on_the_timeline_once_and_flapping_does_not_repeat_it() -> None:
    """Silence after a HEALTHY report is a transition (on the timeline). A device whose actor
    reports UNKNOWN (its health check timing out) less often than every 3 intervals flaps
    between silent and reported: UNKNOWN all along, so its transition is noted once, not at
    every flap (the demo's telemetry-blackout put a line on the timeline every 2-4 s)."""
    clock = FakeClock()
    model = _model(clock)
    spec, other = pipeline(4)[:2]
    model.apply([added(spec), added(other), state(spec.device_id, clock.now_ms)])
    model.apply([state(other.device_id, clock.now_ms)])
    model.snapshot()
    clock.advance(16)  # > 3 x 5 s
    model.apply([state(other.device_id, clock.now_ms, health="UNKNOWN")])
    model.snapshot()
    for _ in range(3):  # silent, then reported UNKNOWN again, three times
        clock.advance(16)
        model.snapshot()
        model.apply([state(other.device_id, clock.now_ms, health="UNKNOWN")])
        model.snapshot()
    texts = [(e.subject, e.text) for e in model.snapshot().timeline]
    silent = [t for d, t in texts if d == spec.device_id and t.startswith("UNKNOWN")]
    assert len(silent) == 1 and "no state event for 16 s" in silent[0]
    flapping = [t for d, t in texts if d == other.device_id and t.startswith("UNKNOWN")]
    assert len(flapping) == 1  # the reported transition, not one per silence


def test_registered_device_without_telemetry_is_unknown() -> None:
    model = _model()
    model.apply([added(pipeline(4)[0])])
    snap = model.snapshot()
    assert snap.devices[0].health == Health.UNKNOWN
    assert snap.devices[0].reason == "no state event yet"
    assert snap.fleet.healthy == 0 and snap.fleet.unhealthy_fraction == 1.0


def test_a_removed_device_stays_removed_whatever_order_its_last_heartbeat_is_read_in() -> None:
    """The registry and the state topic are different partitions: the heartbeat a device sent
    just before its removal may be read after the removal. It made the device reappear,
    unregistered, soon UNKNOWN, for good. A state event after the removal, or a new
    registration, brings it back."""
    from pipeconsole.wire.gen import registry_pb2

    spec = pipeline(4)[0]
    t = FIXED_NOW_MS - 10_000

    def removed(at: int) -> registry_pb2.RegistryEvent:
        gone = registry_pb2.ServiceRemoved(device_id=spec.device_id, time_unix_ms=at)
        return registry_pb2.RegistryEvent(removed=gone)

    for order in ("beat first", "removal first"):
        model = _model()
        beat, removal = state(spec.device_id, t), removed(t + 1)
        model.apply([added(spec, time_ms=t - 1)])
        model.apply([beat, removal] if order == "beat first" else [removal, beat])
        snap = model.snapshot()
        assert snap.devices == (), order
        if order == "removal first":
            assert dict(snap.dropped)["state-before-removal-sampled"] == 1
    model.apply([state(spec.device_id, t + 2)])  # reported after it: there again
    assert [d.device_id for d in model.snapshot().devices] == [spec.device_id]
    model.apply([removed(t + 3), added(spec, time_ms=t + 4), state(spec.device_id, t)])
    assert [d.registered for d in model.snapshot().devices] == [True]  # registered again


def test_edge_reported_by_one_side_only_is_a_ghost() -> None:
    clock = FakeClock()
    model = _model(clock)
    t = clock.now_ms
    model.apply(
        [
            state("a", t, downstream=["b"]),
            state("b", t),  # does not report a as its upstream
            state("c", t, downstream=["d"]),
            state("d", t, upstream=["c"]),
        ]
    )
    edges = {(e.src, e.dst): e for e in model.snapshot().graph.edges}
    assert edges[("a", "b")].ghost and "reported by a only" in edges[("a", "b")].ghost_reason
    assert not edges[("c", "d")].ghost


def test_edge_to_a_device_not_in_the_fleet_is_a_ghost() -> None:
    model = _model()
    model.apply([state("a", FIXED_NOW_MS, downstream=["nowhere"])])
    (edge,) = model.snapshot().graph.edges
    assert edge.ghost and "not in the fleet" in edge.ghost_reason


def test_disconnected_device_is_an_island() -> None:
    model = _model()
    t = FIXED_NOW_MS
    model.apply(
        [
            state("a", t, downstream=["b"]),
            state("b", t, upstream=["a"]),
            state("lonely", t),
        ]
    )
    islands = model.snapshot().graph.islands
    assert islands == (("a", "b"), ("lonely",))


def test_cycle_is_found_and_layers_still_work() -> None:
    model = _model()
    t = FIXED_NOW_MS
    model.apply(
        [
            state("src", t, downstream=["x"]),
            state("x", t, upstream=["src", "y"], downstream=["y"]),
            state("y", t, upstream=["x"], downstream=["x"]),
        ]
    )
    g = model.snapshot().graph
    assert len(g.cycles) == 1 and set(g.cycles[0]) == {"x", "y"}
    layer = {n.device_id: n.layer for n in g.nodes}
    assert layer["src"] == 0 and layer["x"] == layer["y"] == 1
    assert {n.device_id for n in g.nodes if n.in_cycle} == {"x", "y"}


def test_layers_follow_the_pipeline_stages_and_collapse_by_stage() -> None:
    snap = demo_snapshot()
    stages_by_layer = [{snap.device(d).stage for d in layer} for layer in snap.graph.layers]  # type: ignore[union-attr]
    assert stages_by_layer == [{"ingest"}, {"transcode"}, {"package"}, {"origin"}]
    stage_names = [n.stage for n in snap.graph.stages.nodes]
    assert stage_names == ["ingest", "transcode", "package", "origin"]
    assert sum(n.devices for n in snap.graph.stages.nodes) == 24
    assert {(e.src, e.dst) for e in snap.graph.stages.edges} == {
        ("ingest", "transcode"),
        ("transcode", "package"),
        ("package", "origin"),
    }
    assert not snap.incidents and not snap.bottlenecks


def test_degraded_upstream_does_not_hide_a_failed_device_downstream() -> None:
    model = _model()
    t = FIXED_NOW_MS
    model.apply(
        [
            state("up", t, health="DEGRADED", downstream=["mid"]),
            state("mid", t, health="FAILING", upstream=["up"], downstream=["end"]),
            state("end", t, health="FAILING", upstream=["mid"]),
        ]
    )
    ranked = [i.device_id for i in model.snapshot().incidents]
    assert ranked[0] == "mid"
    assert "end" not in ranked


def test_request_lifecycle_remaining_budget_and_at_risk_order() -> None:
    clock = FakeClock()
    model = _model(clock)
    t = clock.now_ms
    model.apply(
        [
            response(
                "r1", "d1", "SCHEDULED", t, deadline_unix_ms=t + 9000, method="POST", uri="/restart"
            ),
            response("r2", "d1", "DISPATCHED", t, deadline_unix_ms=t + 2000),
            response("r1", "d1", "DISPATCHED", t + 1),
            response("r3", "d2", "OK", t, attempts=1, status_code=200),
            response("r3", "d2", "DISPATCHED", t + 5),  # late lifecycle event: final stays
        ]
    )
    clock.advance(1)
    snap = model.snapshot()
    assert [r.request_id for r in snap.at_risk] == ["r2", "r1"]
    assert snap.at_risk[0].remaining_ms == 1000
    r3 = snap.request("r3")
    assert r3 is not None and r3.state == RequestState.OK and r3.remaining_ms is None
    assert dict(snap.outcomes) == {"OK": 1}


def test_a_late_cancel_explains_a_request_in_flight_but_never_rewrites_a_final_one() -> None:
    model = _model()
    t = FIXED_NOW_MS
    model.apply(
        [
            response("c1", "d1", "CANCELLED", t, reason="cancelled by os:ops"),
            response("c1", "d1", "CANCEL_TOO_LATE", t + 5, reason="already finished"),
            response("f1", "d1", "DISPATCHED", t),
            response("f1", "d1", "CANCEL_TOO_LATE", t + 5, reason="already fired"),
        ]
    )
    snap = model.snapshot()
    c1, f1 = snap.request("c1"), snap.request("f1")
    assert c1 is not None and (c1.state, c1.reason) == (
        RequestState.CANCELLED,
        "cancelled by os:ops",
    )
    assert f1 is not None and (f1.state, f1.reason) == (RequestState.DISPATCHED, "already fired")
    model.apply([response("f1", "d1", "OK", t + 9, status_code=200)])
    f1 = model.snapshot().request("f1")
    assert f1 is not None and f1.state == RequestState.OK


def test_deadline_miss_rate_per_device_and_stage() -> None:
    model = _model()
    t = FIXED_NOW_MS
    model.apply([state("d1", t, stage="transcode"), state("d2", t, stage="package")])
    model.apply(
        [response(f"ok{i}", "d2", "OK", t) for i in range(3)]
        + [response("late", "d1", "DEADLINE_EXCEEDED", t, reason="budget spent")]
    )
    snap = model.snapshot()
    assert snap.fleet.deadline_miss_rate == 0.25
    rows = {r.key: r for r in snap.deadline_misses}
    assert rows["d1"].rate == 1.0 and rows["stage:transcode"].misses == 1
    assert "d2" not in rows
    assert any("DEADLINE_EXCEEDED" in e.text for e in snap.timeline)


def test_dlq_entry_reads_the_device_actors_own_headers_before_the_source_records() -> None:
    """The console reads back what the device actors write (``pipeconsole.dlq.reason``, before
    session 9 shown as no reason at all), and a source record's own ``reason``/``x-code``
    headers (kept on the dead letter, ahead of the actors') do not pass for the actors' word."""
    from pipeconsole.actors.dlq import dead_letter
    from pipeconsole.kafka.records import Record

    source = Record(
        "device-request-v1",
        2,
        41,
        FIXED_NOW_MS,
        b"d1",
        b"\x0a\xff",
        (("reason", b"all good, nothing to see"), ("x-code", b"ok"), ("topic", b"elsewhere")),
    )
    letter = dead_letter(
        source,
        code="malformed",
        reason="DeviceRequest: truncated",
        attempts=1,
        actor_id="a1",
        time_unix_ms=FIXED_NOW_MS,
    )
    model = _model()
    model.apply([DlqRecord("dlq", 0, 7, FIXED_NOW_MS, letter.key, letter.value, letter.headers)])
    entry = model.snapshot().dlq[0]
    assert entry.reason == "DeviceRequest: truncated"
    assert entry.code == "malformed"
    assert (entry.topic, entry.partition, entry.offset) == ("dlq", 0, 7)  # the letter's own


def test_dlq_entry_keeps_its_reason_and_finalizes_the_request() -> None:
    from pipeconsole.wire.gen.device_request_pb2 import DeviceRequest

    model = _model()
    raw = DeviceRequest(request_id="r9", device_id="d1", method="GET", uri="/x").SerializeToString()
    model.apply(
        [
            DlqRecord(
                "dlq",
                0,
                7,
                FIXED_NOW_MS,
                b"d1",
                raw,
                (("reason", b"bad schedule_time"), ("error.code", b"bad_time")),
            ),
            DlqRecord("dlq", 0, 8, FIXED_NOW_MS, None, b"\xff\xff", ()),
        ]
    )
    snap = model.snapshot()
    assert snap.dlq_total == 2
    entry = snap.dlq[1]
    assert (
        entry.reason == "bad schedule_time"
        and entry.code == "bad_time"
        and entry.request_id == "r9"
    )
    r = snap.request("r9")
    assert r is not None and r.state == RequestState.DEAD_LETTERED


def test_an_actors_answer_to_an_undecodable_record_is_not_a_drop() -> None:
    """A poison record has no request id to read: the actor dead-letters it, then answers
    REJECTED with no id. The DLQ entry is the record of it; the answer was counted as a drop,
    and the summary bar warned "dropped 20" for the demo's 20 undecodable records. A response
    without an id from anyone else is still counted."""
    from pipeconsole.wire.gen.device_response_pb2 import DeviceResponse

    model = _model()
    model.apply(
        [
            DlqRecord("dlq", 0, 8, FIXED_NOW_MS, b"d1", b"\xff\xff", (("reason", b"malformed"),)),
            DeviceResponse(
                device_id="d1",
                outcome=DeviceResponse.REJECTED,
                reason="malformed: truncated",
                actor_id="a1",
                source_partition=0,
                source_offset=0,
            ),
        ]
    )
    snap = model.snapshot()
    assert snap.dlq_total == 1 and snap.dlq[0].reason == "malformed"
    assert dict(snap.dropped).get("response-without-id", 0) == 0
    model.apply([DeviceResponse(device_id="d1", outcome=DeviceResponse.OK)])
    assert dict(model.snapshot().dropped)["response-without-id"] == 1


def test_undecodable_records_are_counted_with_a_sample() -> None:
    model = _model()
    model.consumed("device-state-v1", 3)
    model.apply(
        [Undecodable("device-state-v1", 1, 42, "malformed", "truncated varint", b"\x08\xff")]
    )
    (topic,) = model.snapshot().fleet.topics
    assert topic.consumed == 3 and topic.undecodable == 1
    assert "1@42 malformed" in topic.undecodable_sample and "08 ff" in topic.undecodable_sample


def test_bounded_buffers_count_what_they_drop() -> None:
    from pipeconsole.model import Limits

    model = Model(clock=FakeClock(), limits=Limits(max_requests=10, max_timeline=5))
    model.apply(response(f"r{i}", "d", "OK", FIXED_NOW_MS + i) for i in range(25))
    snap = model.snapshot()
    dropped = dict(snap.dropped)
    assert len(snap.requests) == 10 and snap.requests_total == 25
    assert dropped["requests"] == 15


def test_history_ring_is_bounded_and_oldest_first() -> None:
    from pipeconsole.model import Limits

    clock = FakeClock()
    model = Model(clock=clock, limits=Limits(history=4))
    for k in range(10):
        model.apply([state("d", FIXED_NOW_MS + 1000 * k, queue_depth=k)])
    clock.now_ms = FIXED_NOW_MS + 9000
    view = model.snapshot().devices[0]
    assert view.history.queue_depth == (6, 7, 8, 9)


def test_health_transitions_and_restarts_go_on_the_timeline() -> None:
    model = _model()
    t = FIXED_NOW_MS
    model.apply(
        [
            state("d", t),
            state("d", t + 5000, health="FAILING", checks=[("input", "FAILING", "no frames")]),
            state("d", t + 10000, restarts=1),
        ]
    )
    texts = [e.text for e in model.snapshot().timeline]
    assert "FAILING because input: no frames" in texts
    assert "HEALTHY" in texts
    assert any("restarted" in x for x in texts)


def test_snapshot_is_immutable_and_json_is_sanitized() -> None:
    import dataclasses

    model = demo_model()
    model.apply([added(pipeline(4)[0], name="evil\x1b]0;pwned\x07[@click=app.quit]x[/]")])
    snap = model.snapshot()
    try:
        snap.seq = 99  # type: ignore[misc]
        raise AssertionError("snapshot is mutable")
    except dataclasses.FrozenInstanceError:
        pass
    doc = json.dumps(snap.to_json())
    assert "\\u001b" not in doc and "\x1b" not in doc
    assert isinstance(snap.devices, tuple) and isinstance(snap.graph.edges, tuple)


def test_rounds_of_the_whole_pipeline_keep_everyone_healthy() -> None:
    clock = FakeClock()
    model = _model(clock)
    specs = pipeline(24)
    model.apply(added(s) for s in specs)
    model.apply(rounds(specs, clock.now_ms - 20000, 5))
    snap = model.snapshot()
    assert snap.fleet.healthy == 24 and snap.fleet.unhealthy_fraction == 0.0
    assert not any(e.ghost for e in snap.graph.edges)
    assert len(snap.graph.islands) == 1


def test_a_failing_encoder_outranks_a_bigger_upstream_whose_telemetry_went_silent() -> None:
    # The demo's encoder-crash race: an ingest whose telemetry is late is UNKNOWN with a bigger
    # blast radius; the transcoder that *reports* failing is still the likelier root cause.
    clock = FakeClock()
    model = _model(clock)
    model.apply([state("ingest-01", clock.now_ms, downstream=["transcode-03", "transcode-04"])])
    clock.advance(20)  # > 3 check intervals: ingest-01 is stale, so UNKNOWN
    t = clock.now_ms
    model.apply(
        [
            state(
                "transcode-03",
                t,
                health="FAILING",
                upstream=["ingest-01"],
                downstream=["package-03"],
                checks=(("health", "FAILING", "unreachable"),),
            ),
            state("transcode-04", t, upstream=["ingest-01"], downstream=["package-04"]),
            state("package-03", t, upstream=["transcode-03"]),
            state("package-04", t, upstream=["transcode-04"]),
        ]
    )
    snap = model.snapshot(analyse=True)
    ingest = snap.device("ingest-01")
    assert ingest is not None and ingest.health == Health.UNKNOWN
    ranked = [i.device_id for i in snap.incidents]
    assert ranked[0] == "transcode-03"
    assert "ingest-01" in ranked  # still listed: silence is not health


def test_the_ingest_rate_is_averaged_over_five_seconds_not_the_last_one() -> None:
    """A fleet's telemetry comes in waves: 1,000 records in one second of every five read
    as 1,000/s and then 0/s by turns; the rate says 200/s."""
    clock = FakeClock()
    model = _model(clock)
    rates = []
    for second in range(20):
        for _ in range(4):  # snapshots at 4 Hz
            if second % 5 == 0:
                model.consumed("device-state-v1", 250)
            clock.advance(0.25)
            rates.append(model.snapshot(analyse=False).fleet.ingest_rate)
    steady = rates[24:]  # once 5 s of history is there
    assert min(steady) >= 150 and max(steady) <= 260, (min(steady), max(steady))


def test_made_up_links_cannot_grow_the_graph_without_bound() -> None:
    # One state event of ~570 kB (under the 1 MiB codec limit) named 20,000 peers: every
    # analysis of a 24-device fleet then took 0.3 s, and the graph view had a layer of 20k.
    model = _model()
    t = FIXED_NOW_MS
    specs = pipeline(24)
    down = downstream_of(specs)
    model.apply([added(s) for s in specs])
    model.apply(
        [state(s.device_id, t, upstream=s.upstream, downstream=down[s.device_id]) for s in specs]
    )
    model.apply([state("evil-0", t, downstream=[f"peer-{i}" for i in range(20_000)])])
    snap = model.snapshot(analyse=True)
    dropped = dict(snap.dropped)
    assert dropped["links"] == 20_000 - 256
    assert len(snap.graph.nodes) == 25 + 256
    assert not snap.incidents  # the real fleet is still read right
    # Made-up peers across devices: at most 1,000 outside the fleet in the graph, the rest
    # left out and counted (the edges between real devices always stay).
    model.apply(
        [
            state(f"evil-{d}", t, downstream=[f"peer-{d}-{i}" for i in range(256)])
            for d in range(1, 5)
        ]
    )
    snap = model.snapshot(analyse=True)
    foreign = [n for n in snap.graph.nodes if snap.device(n.device_id) is None]
    assert len(foreign) == 1000
    assert dict(snap.dropped)["foreign-peers"] == 5 * 256 - 1000
    real = {(s.upstream[0], s.device_id) for s in specs if s.upstream}
    assert real <= {(e.src, e.dst) for e in snap.graph.edges}


def test_nan_infinite_and_negative_rates_are_read_as_zero_and_status_json_prints() -> None:
    # A hostile or broken producer's NaN made stage sums NaN, a bottleneck of NaN rates, and
    # `status --json` fail (JSON has no NaN): json.dumps(allow_nan=False) raised.
    import math
    from dataclasses import replace

    from pipeconsole.wire.gen import device_state_pb2 as ds

    model = _model()
    t = FIXED_NOW_MS
    specs = pipeline(8)
    down = downstream_of(specs)
    bad = [math.nan, math.inf, -math.inf, -5.0]
    model.apply([added(s) for s in specs])
    events = [
        state(s.device_id, t, upstream=s.upstream, downstream=down[s.device_id], stage=s.stage,
              rate_in=bad[i % 4], rate_out=bad[(i + 1) % 4])
        for i, s in enumerate(specs)
    ]  # fmt: skip
    events[0].unchanged.state.latency_p99_ms = math.nan
    events.append(
        ds.StateEvent(
            actor=ds.ActorStatus(actor_id="a1", time_unix_ms=t, retry_budget_left=math.nan)
        )
    )
    model.apply(events)
    snap = model.snapshot(analyse=True)
    assert all(d.rate_in == 0.0 and d.rate_out == 0.0 for d in snap.devices)
    assert all(e.rate == 0.0 for e in snap.graph.edges)
    assert all(math.isfinite(n.rate_in) for n in snap.graph.stages.nodes)
    assert snap.actors[0].retry_budget_left == 0.0
    dropped = dict(snap.dropped)
    assert dropped["bad-numbers"] == 2 * 8 + 1 + 1  # rates in and out, a latency, the actor's
    assert dropped["bad-link-rates"] > 0
    json.dumps(snap.to_json(), allow_nan=False)  # what `status --json` does
    overflow = replace(snap.fleet, ingest_rate=math.inf)
    assert replace(snap, fleet=overflow).to_json()["fleet"]["ingest_rate"] is None
