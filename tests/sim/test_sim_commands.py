"""Commands: realistic answers, executed once per request id, refused past their deadline."""

from __future__ import annotations

import asyncio
import time

import httpx

from pipeconsole.sim import Fleet


def test_stream_and_bitrate_commands_answer_like_a_device(fleet: Fleet, http: httpx.Client) -> None:
    base = fleet.device("transcode-01").base_url
    r = http.post(f"{base}/streams/news-1/start", json={"profile": "hd-1080"})
    assert (r.status_code, r.json()) == (
        200,
        {"stream_id": "news-1", "state": "running", "profile": "hd-1080"},
    )
    r = http.post(f"{base}/streams/news-1/start")
    assert r.status_code == 409 and r.json()["error"] == "already_running"
    assert http.post(f"{base}/streams/news-1/stop").json()["state"] == "stopped"
    r = http.post(f"{base}/streams/nope/stop")
    assert r.status_code == 404 and r.json()["error"] == "unknown_stream"
    assert http.put(f"{base}/config/bitrate", json={"kbps": 4500}).json() == {"kbps": 4500}
    r = http.put(f"{base}/config/bitrate", json={"kbps": 99})
    assert r.status_code == 422 and r.json()["field"] == "kbps"
    health = http.get(f"{base}/health").json()
    assert health["metrics"]["bitrate_kbps"] == 4500
    assert fleet.device("transcode-01").counters().executed == 3


def test_a_repeated_request_id_is_executed_once(fleet: Fleet, http: httpx.Client) -> None:
    device = fleet.device("package-03")
    headers = {"X-Request-Id": "7f0c5a9e-1b7e-4d7e-9a51-3c1f0a2b4c5d", "X-Attempt": "1"}
    first = http.post(f"{device.base_url}/streams/s9/start", headers=headers)
    headers["X-Attempt"] = "2"
    again = http.post(f"{device.base_url}/streams/s9/start", headers=headers)
    assert first.status_code == again.status_code == 200  # not 409: it was not run again
    assert again.json() == first.json()
    assert again.headers["X-Duplicate"] == "1" and "X-Duplicate" not in first.headers
    counters = device.counters()
    assert (counters.executed, counters.duplicates) == (1, 1)
    assert [a.attempt for a in counters.attempts] == [1, 2]


def test_concurrent_repeats_wait_for_the_first_attempt(fleet: Fleet, http: httpx.Client) -> None:
    device = fleet.device("origin-03")
    device.inject("latency", duration_s=60, mean_ms=150)

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=10) as client:
            return await asyncio.gather(
                *(
                    client.put(
                        f"{device.base_url}/config/bitrate",
                        json={"kbps": 1000 + i},
                        headers={"X-Request-Id": "same-id"},
                    )
                    for i in range(5)
                )
            )

    answers = asyncio.run(burst())
    assert len({r.json()["kbps"] for r in answers}) == 1
    assert sum(1 for r in answers if r.headers.get("X-Duplicate") == "1") == 4
    assert device.counters().executed == 1


def test_a_request_past_its_deadline_is_refused_with_a_clear_body(
    fleet: Fleet, http: httpx.Client
) -> None:
    device = fleet.device("ingest-02")
    before = int(time.time() * 1000)
    for budget in ("0", "-250"):
        r = http.post(
            f"{device.base_url}/streams/late/start",
            headers={"X-Request-Id": f"late-{budget}", "X-Deadline-Remaining-Ms": budget},
        )
        assert r.status_code == 504
        body = r.json()
        assert body["error"] == "deadline_exceeded"
        assert "nothing was done" in body["detail"]
        assert body["budget_ms"] <= 0
    counters = device.counters()
    assert counters.executed == 0 and counters.deadline_refused == 2
    assert [a.deadline_remaining_ms for a in counters.attempts] == [0, -250]
    assert all(a.started_unix_ms >= before for a in counters.attempts)
    # A refused attempt is not remembered: the retry with budget left executes.
    r = http.post(
        f"{device.base_url}/streams/late/start",
        headers={"X-Request-Id": "late-0", "X-Deadline-Remaining-Ms": "5000"},
    )
    assert r.status_code == 200 and "X-Duplicate" not in r.headers
    assert http.get(f"{device.base_url}/health").json()["metrics"]["deadline_misses"] == 2


def test_restart_answers_202_then_comes_back_with_one_more_restart(
    fleet: Fleet, http: httpx.Client
) -> None:
    device = fleet.device("package-07")
    r = http.post(f"{device.base_url}/restart", headers={"X-Request-Id": "r1"})
    assert r.status_code == 202 and r.json()["restarts"] == 1
    deadline = time.monotonic() + 5.0
    while device.counters().faults_active != ("crash",) or _listening(http, device.base_url):
        assert time.monotonic() < deadline, "the device never went down"
    fleet.advance(1.0)
    assert http.get(f"{device.base_url}/health").json()["metrics"]["restarts"] == 1


def _listening(http: httpx.Client, base: str) -> bool:
    try:
        http.get(f"{base}/_sim/counters", timeout=1.0)
    except httpx.ConnectError:
        return False
    except httpx.TransportError:
        return True  # a kept-alive connection reset by the crash: ask again
    return True


def test_counters_are_readable_over_http(fleet: Fleet, http: httpx.Client) -> None:
    base = fleet.device("origin-04").base_url
    http.post(f"{base}/streams/a/start", headers={"X-Request-Id": "c1", "X-Attempt": "3"})
    http.post(f"{base}/streams/a/start", headers={"X-Request-Id": "c1"})
    body = http.get(f"{base}/_sim/counters").json()
    assert body["executed"] == 1 and body["duplicates"] == 1
    assert body["attempts"][0]["request_id"] == "c1" and body["attempts"][0]["attempt"] == 3
    assert body["faults_active"] == []
