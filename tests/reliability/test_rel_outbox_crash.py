"""kill -9 the console with actions in flight: the next console settles them from its outbox.

An operator process (the action layer with its outbox journal, as the console runs it) has
sent a few schedules; then the broker freezes, it issues eight more from eight threads (each
journalled as pending before it is produced, none acknowledged) and is killed with SIGKILL. The
broker resumes. A new console (the real app, connected to Kafka, headless) reads the outbox at
start, reads the request topic and says of each of the eight whether it was delivered; what it
says matches the topic record for record, and the outbox has nothing open afterwards.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from ledger import wait_for
from relkit import fresh_topics, write_config

from pipeconsole.actions.audit import LocalAuditLog
from pipeconsole.actions.layer import ActionLayer
from pipeconsole.actions.outbox import Outbox
from pipeconsole.broker import EmbeddedBroker
from pipeconsole.config import Profile
from pipeconsole.kafka.admin import ensure_topics
from pipeconsole.kafka.reader import AssignReader
from pipeconsole.ui.factory import build_app
from pipeconsole.wire.gen.device_request_pb2 import DeviceRequest

WARM = 5
IN_FLIGHT = 8

OPERATOR = textwrap.dedent(
    """
    import sys, threading
    from pathlib import Path
    from pipeconsole.config import load_config
    from pipeconsole.actions.audit import LocalAuditLog
    from pipeconsole.actions.layer import ActionLayer, ScheduleSpec
    from pipeconsole.actions.outbox import Outbox

    box = Path(sys.argv[1])
    layer = ActionLayer(
        load_config().profile(), send_timeout_s=120, outbox=Outbox(box),
        audit_log=LocalAuditLog(box.with_suffix(".audit")),
    )

    def one(i):
        spec = ScheduleSpec(f"enc-{i % 3}", "POST", f"/streams/s{i}/start", deadline="60s")
        print(type(layer.schedule(spec)).__name__, i, flush=True)

    for i in range(int(sys.argv[2])):
        one(i)
    print("warm", flush=True)
    sys.stdin.readline()  # the broker is frozen now
    for i in range(100, 100 + int(sys.argv[3])):
        threading.Thread(target=one, args=(i,), daemon=True).start()
    threading.Event().wait()
    """
)


@pytest.fixture
def own_broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker() as b:
        yield b


def _journalled(box: Path) -> set[str]:
    if not box.exists():
        return set()
    ids = set()
    for line in box.read_text().splitlines():
        try:
            ids.add(json.loads(line).get("request_id", ""))
        except ValueError:
            continue  # a torn last line
    return ids - {""}


def test_a_killed_console_leaves_nothing_unsettled(
    own_broker: EmbeddedBroker, tmp_path: Path
) -> None:
    profile = Profile(name="t", bootstrap=own_broker.bootstrap, topics=fresh_topics())
    ensure_topics(profile, profile.topics)
    config = write_config(profile, tmp_path / "c.toml")
    box = tmp_path / "outbox.jsonl"
    env = dict(os.environ, PIPECONSOLE_CONFIG=str(config))
    proc = subprocess.Popen(
        [sys.executable, "-c", OPERATOR, str(box), str(WARM), str(IN_FLIGHT)],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdin is not None
        warm = [proc.stdout.readline().split() for _ in range(WARM)]
        assert all(kind == "Sent" for kind, _ in warm), warm
        assert proc.stdout.readline().strip() == "warm"
        journalled_warm = _journalled(box)
        own_broker.pause()
        try:
            proc.stdin.write("go\n")
            proc.stdin.flush()
            wait_for(
                lambda: len(_journalled(box) - journalled_warm) == IN_FLIGHT,
                30,
                "the in-flight actions journalled",
            )
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
        finally:
            own_broker.resume()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    in_flight = _journalled(box) - journalled_warm
    assert {e.request_id for e in Outbox(box).open_entries(profile.bootstrap)} == in_flight

    said = asyncio.run(_next_console(profile, box, tmp_path))
    with AssignReader(profile, [profile.topics.request]) as reader:
        on_topic = {
            DeviceRequest.FromString(r.value or b"").request_id for r in reader.read_to_end()
        }
    assert journalled_warm <= on_topic
    assert set(said) == in_flight
    for request_id, delivered in said.items():
        assert delivered == (request_id in on_topic), (request_id, delivered)
    assert Outbox(box).open_entries(profile.bootstrap) == []
    print(f"outbox: {sum(said.values())} of {IN_FLIGHT} in-flight actions were delivered")


async def _next_console(profile: Profile, box: Path, tmp_path: Path) -> dict[str, bool]:
    """Start the real console on the same outbox; what its log says of each request id."""

    def layer(p: Profile) -> ActionLayer:
        return ActionLayer(
            p, outbox=Outbox(box), audit_log=LocalAuditLog(tmp_path / "console-audit.jsonl")
        )

    app = build_app(profile, connect=True, capture_logging=False, make_layer=layer)
    said: dict[str, bool] = {}
    async with app.run_test(size=(120, 40)):
        for _ in range(1200):  # up to ~60 s
            said = {
                line.text.split()[1]: "was delivered" in line.text
                for line in app.log_lines
                if line.name == "outbox" and "earlier console" in line.text
            }
            if len(said) >= IN_FLIGHT:
                break
            await asyncio.sleep(0.05)
    return said
