"""Each chaos fault does what docs/device-api.md says, and ends by itself."""

from __future__ import annotations

import time

import httpx
import pytest

from pipeconsole.sim import Fleet, RealClock


def chaos(http: httpx.Client, base: str, **body: object) -> dict[str, object]:
    r = http.post(f"{base}/chaos", json=body)
    assert r.status_code == 201, r.text
    out: dict[str, object] = r.json()
    return out


def test_latency_delays_answers_and_counts_against_the_deadline(
    fleet: Fleet, http: httpx.Client
) -> None:
    base = fleet.device("package-02").base_url
    chaos(http, base, fault="latency", duration_s=30, mean_ms=5000, jitter_ms=0)
    with pytest.raises(httpx.ReadTimeout):
        http.get(f"{base}/health", timeout=0.3)
    r = http.post(
        f"{base}/streams/s1/start",
        headers={"X-Request-Id": "lat-1", "X-Deadline-Remaining-Ms": "800"},
    )
    assert r.status_code == 504
    body = r.json()
    assert body["error"] == "deadline_exceeded"
    assert body["estimate_ms"] == 5000 and body["budget_ms"] <= 800
    fleet.advance(31.0)
    assert http.get(f"{base}/health", timeout=2.0).status_code == 200


def test_error_rate_fails_commands_but_not_health(fleet: Fleet, http: httpx.Client) -> None:
    base = fleet.device("transcode-02").base_url
    chaos(http, base, fault="error_rate", duration_s=5, rate=1.0, status=502)
    r = http.post(f"{base}/streams/s1/start", headers={"X-Request-Id": "err-1"})
    assert r.status_code == 502 and r.json()["error"] == "injected"
    assert http.get(f"{base}/health").status_code == 200
    fleet.advance(6.0)
    # The failed attempt was not remembered: a retry with the same id executes.
    r = http.post(f"{base}/streams/s1/start", headers={"X-Request-Id": "err-1"})
    assert r.status_code == 200 and "X-Duplicate" not in r.headers
    counters = fleet.device("transcode-02").counters()
    assert counters.injected_errors == 1 and counters.executed == 1


def test_hang_accepts_and_never_answers_until_it_ends(fleet: Fleet, http: httpx.Client) -> None:
    base = fleet.device("origin-02").base_url
    chaos(http, base, fault="hang", duration_s=10)
    with pytest.raises(httpx.ReadTimeout):
        http.get(f"{base}/health", timeout=0.3)
    with pytest.raises(httpx.ReadTimeout):
        http.post(f"{base}/streams/x/start", timeout=0.3)
    fleet.advance(10.0)
    assert http.get(f"{base}/health").json()["health"] == "HEALTHY"


def test_crash_refuses_connections_then_returns_with_one_more_restart(
    fleet: Fleet, http: httpx.Client
) -> None:
    device = fleet.device("package-05")
    port = device.port
    r = http.post(f"{device.base_url}/chaos", json={"fault": "crash", "duration_s": 4})
    assert r.status_code == 201  # the answer leaves before the socket closes

    def refused() -> bool:
        try:
            http.get(f"{device.base_url}/health", timeout=1.0)
        except httpx.ConnectError:
            return True
        except httpx.TransportError:
            return False  # a kept-alive connection reset by the crash: ask again
        return False

    deadline = time.monotonic() + 5.0
    while not refused():
        assert time.monotonic() < deadline, "the device never went down"
    fleet.advance(4.0)
    body = http.get(f"{device.base_url}/health").json()
    assert device.port == port
    assert body["metrics"]["restarts"] == 1
    assert body["metrics"]["queue_depth"] <= 5  # the queue was lost in the crash


def test_flap_alternates_health_and_stops(fleet: Fleet, http: httpx.Client) -> None:
    base = fleet.device("ingest-03").base_url
    chaos(http, base, fault="flap", duration_s=4, period_s=1.0)
    seen = []
    for _ in range(4):
        seen.append(http.get(f"{base}/health").json()["health"])
        fleet.advance(1.0)
    assert seen == ["FAILING", "HEALTHY", "FAILING", "HEALTHY"]
    assert http.get(f"{base}/health").json()["health"] == "HEALTHY"
    assert http.get(f"{base}/chaos").json() == {"faults": []}


def test_stall_stops_output_and_fills_the_queue(fleet: Fleet, http: httpx.Client) -> None:
    base = fleet.device("origin-01").base_url
    chaos(http, base, fault="stall", duration_s=30)
    fleet.advance(10.0)
    body = http.get(f"{base}/health").json()
    assert body["metrics"]["rate_out"] < 1.0
    assert body["metrics"]["queue_depth"] == body["metrics"]["queue_capacity"]
    assert body["health"] == "FAILING"


def test_blackout_hides_telemetry_while_commands_work(fleet: Fleet, http: httpx.Client) -> None:
    base = fleet.device("transcode-07").base_url
    chaos(http, base, fault="blackout", duration_s=5)
    with pytest.raises(httpx.ReadTimeout):
        http.get(f"{base}/health", timeout=0.3)
    with pytest.raises(httpx.ReadTimeout):
        http.get(f"{base}/topology", timeout=0.3)
    assert http.post(f"{base}/streams/s/start").status_code == 200
    fleet.advance(5.0)
    assert http.get(f"{base}/health").status_code == 200


def test_chaos_can_be_listed_and_ended_early(fleet: Fleet, http: httpx.Client) -> None:
    base = fleet.device("package-01").base_url
    a = chaos(http, base, fault="latency", duration_s=60, mean_ms=1)
    chaos(http, base, fault="flap", duration_s=60)
    listed = http.get(f"{base}/chaos").json()["faults"]
    assert {f["fault"] for f in listed} == {"latency", "flap"}
    assert http.delete(f"{base}/chaos/{a['id']}").status_code == 204
    assert http.delete(f"{base}/chaos/{a['id']}").status_code == 404
    assert [f["fault"] for f in http.get(f"{base}/chaos").json()["faults"]] == ["flap"]
    assert len(http.delete(f"{base}/chaos").json()["ended"]) == 1
    assert fleet.device("package-01").counters().faults_active == ()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"fault": "meteor", "duration_s": 1}, "fault"),
        ({"fault": "hang"}, "duration_s"),
        ({"fault": "hang", "duration_s": -1}, "duration_s"),
        ({"fault": "hang", "duration_s": True}, "duration_s"),
        ({"fault": "error_rate", "duration_s": 1, "rate": 2}, "rate"),
        ({"fault": "error_rate", "duration_s": 1, "status": 200}, "status"),
        ({"fault": "latency", "duration_s": 1, "distribution": "cauchy"}, "distribution"),
        ({"fault": "crash", "duration_s": 1, "mean_ms": 5}, "mean_ms"),
    ],
)
def test_bad_chaos_requests_name_the_field(
    fleet: Fleet, http: httpx.Client, body: dict[str, object], field: str
) -> None:
    r = http.post(f"{fleet.devices[0].base_url}/chaos", json=body)
    assert r.status_code == 422
    assert r.json()["field"] == field
    assert fleet.devices[0].counters().faults_active == ()


def test_faults_expire_by_themselves_on_the_real_clock(http: httpx.Client) -> None:
    with Fleet.start(devices=4, clock=RealClock(), tick_s=0.02) as fleet:
        device = fleet.devices[1]
        chaos(http, device.base_url, fault="crash", duration_s=0.3)
        chaos(http, fleet.devices[2].base_url, fault="flap", duration_s=0.3)
        deadline = time.monotonic() + 10.0
        while True:
            try:
                body = http.get(f"{device.base_url}/health", timeout=1.0).json()
                if body["metrics"]["restarts"] == 1:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the crash never ended"
            time.sleep(0.02)
        while fleet.devices[2].counters().faults_active:
            assert time.monotonic() < deadline, "the flap never ended"
            time.sleep(0.02)
