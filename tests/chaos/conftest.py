"""A small real fleet for the chaos tests: the session's Tansu broker, a simulated fleet of 12
devices registered on this module's topics, and ``pipeconsole dispatch`` as a real subprocess.

One stack per test module (it takes a few seconds to join the group), shared by its tests;
each experiment gets its own Ingest (a fresh state model) and its own producer.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from pipeconsole.broker import EmbeddedBroker
from pipeconsole.config import Profile


@dataclass
class Stack:
    profile: Profile
    group: str
    fleet: object
    actors: subprocess.Popen[bytes]
    config: Path
    log: Path

    def alive(self) -> bool:
        return self.actors.poll() is None


def _config_text(profile: Profile, group: str) -> str:
    t = profile.topics
    topics = "\n".join(
        f'{k} = "{getattr(t, k)}"'
        for k in ("registry", "state", "request", "control", "response", "dlq", "chaos", "audit")
    )
    return (
        'default_profile = "chaos"\n[profiles.chaos]\n'
        f'bootstrap = "{profile.bootstrap}"\nrole = "chaos"\n'
        f"check_interval_s = {profile.check_interval_s}\n"
        f"[profiles.chaos.topics]\n{topics}\n"
        f"request_partitions = {t.request_partitions}\npartitions = {t.partitions}\n"
    )


@pytest.fixture(scope="module")
def stack(broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    from pipeconsole.kafka.admin import ensure_topics
    from pipeconsole.sim import Fleet
    from tests.conftest import make_topics

    tmp = tmp_path_factory.mktemp("chaos-stack")
    profile = Profile(
        name="chaos",
        bootstrap=broker.bootstrap,
        topics=make_topics(request_partitions=2),
        role="chaos",
        check_interval_s=0.5,
    )
    ensure_topics(profile, profile.topics)
    group = f"chaos-actors-{uuid.uuid4().hex[:6]}"
    config = tmp / "config.toml"
    config.write_text(_config_text(profile, group), encoding="utf-8")
    fleet = Fleet.start(devices=12, seed=7, profile=profile)
    log = tmp / "actors.log"
    env = {**os.environ, "PIPECONSOLE_CONFIG": str(config), "PYTHONUNBUFFERED": "1"}
    with log.open("wb") as out:
        actors = subprocess.Popen(
            [
                sys.executable, "-m", "pipeconsole", "dispatch",
                "--group", group, "--check-interval", "0.5", "--status-interval", "1",
                "--session-timeout-ms", "6000",
            ],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
        )  # fmt: skip
    try:
        yield Stack(replace(profile), group, fleet, actors, config, log)
    finally:
        actors.terminate()
        try:
            actors.wait(10)
        except subprocess.TimeoutExpired:
            actors.kill()
            actors.wait(5)
        fleet.stop()  # type: ignore[attr-defined]


def wait_for(cond: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
