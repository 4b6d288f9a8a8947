"""The snapshot types the model builds by the thousand come from fast builders: what they build
must be indistinguishable from the frozen type built the ordinary way."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pytest

from pipeconsole.model import Model
from pipeconsole.model.fixtures import added, pipeline, state
from pipeconsole.model.snapshot import (
    CheckView,
    DeviceView,
    GraphEdge,
    GraphNode,
    Health,
    TimelineEvent,
    builder,
)

_T0 = 1_700_000_000_000


def test_a_built_node_is_a_frozen_graph_node_like_any_other() -> None:
    built = builder(GraphNode)("enc-1", "transcode", 1, 0, Health.FAILING, stale=False, island=0)
    plain = GraphNode("enc-1", "transcode", 1, 0, Health.FAILING, stale=False, island=0)
    assert type(built) is GraphNode
    assert built == plain
    assert hash(built) == hash(plain)
    assert repr(built) == repr(plain)
    assert built.in_cycle is False  # defaults come along
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.health = Health.HEALTHY  # type: ignore[misc]
    assert dataclasses.replace(built, layer=2).layer == 2


def test_a_builder_checks_its_arguments_like_the_type() -> None:
    with pytest.raises(TypeError):
        builder(TimelineEvent)(1, "registry")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        builder(CheckView)(name="x", status=Health.HEALTHY, detail="", extra=1)  # type: ignore[call-arg]


def test_only_plain_frozen_slots_dataclasses_get_a_builder() -> None:
    @dataclass(frozen=True)
    class NoSlots:
        a: int

    @dataclass(frozen=True, slots=True)
    class Checked:
        a: int

        def __post_init__(self) -> None:
            if self.a < 0:
                raise ValueError("a")

    for cls in (NoSlots, Checked):
        with pytest.raises(TypeError, match=cls.__name__):
            builder(cls)


def test_the_model_hands_out_the_real_types() -> None:
    model = Model(clock=lambda: _T0 / 1000)
    specs = pipeline(8)
    model.apply(added(s, "http://127.0.0.1:1", _T0) for s in specs)
    model.apply(state(s.device_id, _T0, upstream=s.upstream, stage=s.stage) for s in specs)
    snap = model.snapshot(analyse=True)
    assert {type(d) for d in snap.devices} == {DeviceView}
    assert {type(c) for d in snap.devices for c in d.checks} == {CheckView}
    assert {type(n) for n in snap.graph.nodes} == {GraphNode}
    assert {type(e) for e in snap.graph.edges} == {GraphEdge}
    assert {type(t) for t in snap.timeline} == {TimelineEvent}
    assert snap.graph.edges and snap.timeline
    # Equal to the same view built the ordinary way, field for field.
    view = snap.devices[0]
    fields = {f.name: getattr(view, f.name) for f in dataclasses.fields(view)}
    assert DeviceView(**fields) == view
