"""The device API's shape: health and topology as docs/device-api.md describes them."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from pipeconsole.sim import Fleet
from pipeconsole.sim.topology import TopologyError, default_layout, load_topology

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "topology.toml"


def test_default_fleet_is_a_layered_pipeline_with_fan_in_and_fan_out(fleet: Fleet) -> None:
    stages = [d.stage for d in fleet.devices]
    assert [stages.count(s) for s in ("ingest", "transcode", "package", "origin")] == [4, 8, 8, 4]
    assert {d.kind for d in fleet.devices} == {"encoder", "transcoder", "packager", "origin"}
    assert any(len(d.downstream) > 1 for d in fleet.devices)
    assert any(len(d.upstream) > 1 for d in fleet.devices)
    assert fleet.device("transcode-03").stage == "transcode"
    for d in fleet.devices:
        for up in d.upstream:
            assert d.device_id in fleet.device(up).downstream


def test_same_seed_same_pipeline_other_seed_other_links() -> None:
    def links(seed: int) -> list[tuple[str, tuple[str, ...]]]:
        return [(d.device_id, d.downstream) for d in default_layout(24, seed=seed).devices]

    assert links(7) == links(7)
    assert links(7) != links(8)


def test_health_has_state_checks_and_metrics(fleet: Fleet, http: httpx.Client) -> None:
    for device in fleet.devices:
        body = http.get(f"{device.base_url}/health").json()
        assert body["device_id"] == device.device_id
        assert body["state"] == "BUSY"
        assert body["health"] == "HEALTHY", body
        names = [c["name"] for c in body["checks"]]
        assert names == ["input", "output", "queue", "cpu", "process"]
        assert all(c["status"] == "HEALTHY" and c["detail"] for c in body["checks"])
        m = body["metrics"]
        for key in ("in_flight", "queue_depth", "queue_capacity", "restarts", "deadline_misses"):
            assert isinstance(m[key], int)
        for key in ("rate_in", "rate_out", "latency_p50_ms", "latency_p99_ms"):
            assert isinstance(m[key], float | int)
        assert m["rate_out"] > 0
        assert 0 <= m["queue_depth"] <= m["queue_capacity"] == 100


def test_topology_lists_peers_with_rate_and_queue(fleet: Fleet, http: httpx.Client) -> None:
    device = fleet.device("transcode-04")
    body = http.get(f"{device.base_url}/topology").json()
    assert body["device_id"] == "transcode-04"
    assert [link["peer_id"] for link in body["upstream"]] == list(device.upstream)
    assert [link["peer_id"] for link in body["downstream"]] == list(device.downstream)
    for link in body["upstream"] + body["downstream"]:
        assert link["rate"] > 0
        assert 0 <= link["queue_depth"] <= link["queue_capacity"]


def test_unknown_route_and_method_get_json_errors(fleet: Fleet, http: httpx.Client) -> None:
    base = fleet.devices[0].base_url
    r = http.get(f"{base}/nope")
    assert r.status_code == 404 and r.json()["error"] == "not_found"
    r = http.delete(f"{base}/health")
    assert r.status_code == 405 and r.json()["error"] == "method_not_allowed"


def test_example_topology_file_loads_and_serves(http: httpx.Client) -> None:
    layout = load_topology(EXAMPLE)
    with Fleet.start(topology=layout) as fleet:
        assert [d.device_id for d in fleet.devices] == layout.ids
        source = fleet.devices[0]
        assert not source.upstream
        assert http.get(f"{source.base_url}/health").json()["device_id"] == source.device_id


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("[[devices]]\nid='a'\nstage='s'\nfeeds=['b']\n", "no device named 'b'"),
        (
            "[[devices]]\nid='a'\nstage='s'\nfeeds=['b']\n[[devices]]\nid='b'\nstage='s'\n"
            "feeds=['a']\n",
            "cycle",
        ),
        ("[[devices]]\nid='a b'\nstage='s'\n", "id"),
        ("[[devices]]\nid='a'\nstage='s'\nqueue_capacity=0\n", "queue_capacity"),
        ("[[devices]]\nid='a'\nstage='s'\ncolour='red'\n", "unknown key"),
        ("devices = 3", "at least one"),
        ("not toml [", "not valid TOML"),
    ],
)
def test_bad_topology_files_say_why(tmp_path: Path, text: str, reason: str) -> None:
    path = tmp_path / "t.toml"
    path.write_text(text)
    with pytest.raises(TopologyError, match=reason):
        load_topology(path)
