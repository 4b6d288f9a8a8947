"""The flow over HTTP: starvation below a crashed device, back-pressure above a stalled one."""

from __future__ import annotations

import httpx

from pipeconsole.sim import Fleet, ManualClock
from pipeconsole.sim.topology import parse_topology


def check(http: httpx.Client, fleet: Fleet, device_id: str, name: str) -> dict[str, str]:
    body = http.get(f"{fleet.device(device_id).base_url}/health").json()
    return next(c for c in body["checks"] if c["name"] == name)


def health(http: httpx.Client, fleet: Fleet, device_id: str) -> dict[str, object]:
    body: dict[str, object] = http.get(f"{fleet.device(device_id).base_url}/health").json()
    return body


def test_dependents_degrade_while_upstream_is_crashed_and_recover_after(
    fleet: Fleet, http: httpx.Client
) -> None:
    ingest = fleet.device("ingest-01")
    fleet.device("ingest-01").inject("crash", duration_s=5.0)
    try:
        httpx.get(f"{ingest.base_url}/health")  # a new connection, not a pooled one
        raise AssertionError("a crashed device must refuse connections")
    except httpx.ConnectError:
        pass
    fleet.advance(2.5)
    for dependent in ingest.downstream:
        body = health(http, fleet, dependent)
        assert body["health"] == "DEGRADED", body
        detail = check(http, fleet, dependent, "input")["detail"]
        assert detail.startswith("no input from ingest-01 for "), detail
    unrelated = next(d for d in fleet.devices if d.upstream == ("ingest-02",))
    assert health(http, fleet, unrelated.device_id)["health"] == "HEALTHY"

    fleet.advance(3.0)  # the crash lease ends: the device listens again, restarts + 1
    back = health(http, fleet, "ingest-01")
    assert back["metrics"]["restarts"] == 1  # type: ignore[index]
    fleet.advance(1.0)
    for dependent in ingest.downstream:
        assert health(http, fleet, dependent)["health"] == "HEALTHY"


def test_back_pressure_travels_up_from_a_stalled_device(http: httpx.Client) -> None:
    chain = parse_topology(
        {
            "devices": [
                {"id": "in", "stage": "ingest", "feeds": ["tx"]},
                {"id": "tx", "stage": "transcode", "feeds": ["pkg"]},
                {"id": "pkg", "stage": "package", "feeds": ["origin"]},
                {"id": "origin", "stage": "origin"},
            ]
        }
    )
    with Fleet.start(topology=chain, clock=ManualClock()) as fleet:
        fleet.advance(2.0)
        assert all(health(http, fleet, d)["health"] == "HEALTHY" for d in chain.ids)
        fleet.device("pkg").inject("stall", duration_s=60.0)
        fleet.advance(20.0)
        assert check(http, fleet, "pkg", "output")["status"] == "FAILING"
        assert health(http, fleet, "pkg")["health"] == "FAILING"
        for upstream in ("tx", "in"):
            out = check(http, fleet, upstream, "output")
            assert out["status"] == "DEGRADED", out
            assert out["detail"].startswith("back-pressure: "), out
            metrics = health(http, fleet, upstream)["metrics"]
            assert metrics["queue_depth"] == metrics["queue_capacity"]  # type: ignore[index]
        topo = http.get(f"{fleet.device('tx').base_url}/topology").json()
        assert topo["downstream"][0]["queue_depth"] == 100
        assert topo["downstream"][0]["rate"] < 1.0
        # Below the stall, the origin starves.
        assert check(http, fleet, "origin", "input")["status"] == "DEGRADED"

        fleet.device("pkg").clear()
        fleet.advance(15.0)
        for d in chain.ids:
            assert health(http, fleet, d)["health"] == "HEALTHY", d
