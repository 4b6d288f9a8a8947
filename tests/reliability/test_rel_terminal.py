"""Terminal safety, proven on the bytes, and markup that does nothing when clicked.

The real console (``python -m pipeconsole console``) runs in a pty against the session broker,
after registry and state events whose device ids, names, stages, labels, check names, details
and reasons carry ESC/OSC/CSI/DCS/C1 sequences. The test reads what the console writes to the
terminal until the safe rendering of a hostile name shows up, presses ctrl+c, and asserts that
none of the payloads' control sequences is in the captured byte stream. (Textual's own control
sequences are fine, so the assertions are on the payloads: ``]0;PWNED``, ``]52;``,
``]8;;http``, the 8-bit CSI, a DCS introducer.)
"""

from __future__ import annotations

import fcntl
import os
import pty
import select
import signal
import struct
import sys
import termios
import time
from pathlib import Path

from relkit import ESCAPES, MARKUP, write_config

from pipeconsole.config import Profile
from pipeconsole.kafka.producer import ConfirmingProducer, wait_all
from pipeconsole.wire.gen import device_state_pb2 as ds
from pipeconsole.wire.gen.registry_pb2 import RegistryEvent, ServiceAdded

FORBIDDEN = (
    b"\x1b]0;PWNED",  # title change
    b"\x1b]52;",  # clipboard write
    b"\x1b]8;;http",  # hyperlink
    b"\xc2\x9b",  # U+009B, the 8-bit CSI, as UTF-8
    b"\x1bP>|",  # the payload's DCS
    b"PWNED\x07",  # a BEL-terminated OSC
    b"\x1b[2J\x1b[H",  # the payload's clear screen
    "\u202e".encode(),  # a raw RLO
)
"""Payload sequences as the terminal would receive them raw. The sanitized renderings
(``␛]0;PWNED␇``, ``<U+009B>``) are visible text and allowed."""


def _publish_hostile_fleet(profile: Profile, payloads: list[str]) -> list[str]:
    now = int(time.time() * 1000)
    ids = []
    futs = []
    with ConfirmingProducer(profile) as p:
        for i, evil in enumerate(payloads):
            device_id = f"evil-{i:02d}{evil}"
            ids.append(device_id)
            added = ServiceAdded(
                device_id=device_id,
                stage=f"encode{evil}",
                kind=evil,
                base_url="http://127.0.0.1:9",
                labels={evil: evil},
                time_unix_ms=now,
                name=evil,
            )
            futs.append(
                p.send(
                    profile.topics.registry,
                    RegistryEvent(added=added).SerializeToString(),
                    device_id,
                )
            )
            state = ds.DeviceState(
                device_id=device_id,
                time_unix_ms=now,
                state=ds.STATE_ERROR,
                health=ds.HEALTH_FAILING,
                reason=evil,
                stage=f"encode{evil}",
                actor_id=evil,
                seq=1,
            )
            state.checks.add(name=evil, status=ds.HEALTH_FAILING, detail=evil)
            state.links.add(peer_id=evil, direction=ds.Link.DOWNSTREAM, rate=1.0)
            ev = ds.StateEvent(changed=ds.ServiceStateChanged(state=state))
            futs.append(p.send(profile.topics.state, ev.SerializeToString(), device_id))
        wait_all(futs, 30)
    return ids


def _read_until(fd: int, want: bytes, timeout: float) -> bytes:
    data = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r, _, _ = select.select([fd], [], [], 0.2)
        if r:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            data += chunk
            if want in data:
                # a little more: the rest of the frame that shows it
                end = time.monotonic() + 1.5
                while time.monotonic() < end:
                    r, _, _ = select.select([fd], [], [], 0.2)
                    if r:
                        try:
                            more = os.read(fd, 65536)
                        except OSError:
                            break
                        if not more:
                            break
                        data += more
                break
    return data


def _drain(fd: int, pid: int, timeout: float) -> tuple[bytes, int | None]:
    data = b""
    deadline = time.monotonic() + timeout
    status = None
    while time.monotonic() < deadline:
        r, _, _ = select.select([fd], [], [], 0.2)
        if r:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                chunk = b""
            data += chunk
        done, st = os.waitpid(pid, os.WNOHANG)
        if done:
            status = st
            break
    return data, status


def test_hostile_telemetry_never_reaches_the_terminal_raw(profile: Profile, tmp_path: Path) -> None:
    _publish_hostile_fleet(profile, list(ESCAPES) + list(MARKUP))
    config = write_config(profile, tmp_path / "c.toml")
    env = dict(
        os.environ,
        PIPECONSOLE_CONFIG=str(config),
        PIPECONSOLE_STATE_DIR=str(tmp_path / "state"),
        TERM="xterm-256color",
        COLUMNS="160",
        LINES="48",
    )
    env.pop("NO_COLOR", None)
    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - the child
        os.execve(sys.executable, [sys.executable, "-m", "pipeconsole", "console"], env)
    try:
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 48, 160, 0, 0))
        # The first hostile name, as sanitize() renders it: ESC -> U+241B, BEL -> U+2407.
        marker = "evil-00␛]0;PWNED␇".encode()
        data = _read_until(fd, marker, timeout=60)
        assert marker in data, data[-3000:]
        for key in (b"\x1b[B", b"\r"):  # move through the incident list and open a device
            os.write(fd, key)
            data += _read_until(fd, b"evil-", timeout=3)
        os.write(fd, b"\x03")  # ctrl+c
        more, status = _drain(fd, pid, timeout=15)
        data += more
        for bad in FORBIDDEN:
            assert bad not in data, (bad, data[max(0, data.find(bad) - 200) : data.find(bad) + 50])
        assert b"<U+009B>" in data or "␛[2J".encode() in data
        assert status is not None, "the console did not exit on ctrl+c"
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        os.close(fd)


async def test_markup_in_device_names_fires_nothing_when_clicked(profile: Profile) -> None:
    from pipeconsole.ui.factory import build_app

    payloads = [
        "[@click=app.pwned]x[/]",
        "[@click=app.quit]x[/]",
        "[link='https://evil.example']x[/]",
        "[b]bold[/b]",
        "foo[/bar]",
        "[type=x, v={'a[0]'}]",
    ]
    ids = _publish_hostile_fleet(profile, payloads)
    app = build_app(profile, connect=True, capture_logging=False)
    fired: list[str] = []
    app.action_pwned = lambda: fired.append("pwned")  # type: ignore[attr-defined]
    app.open_url = lambda url, **kw: fired.append(f"url {url}")  # type: ignore[method-assign]
    async with app.run_test(size=(160, 48)) as pilot:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            svg = app.export_screenshot()
            if "evil-00" in svg:
                break
            await pilot.pause(0.2)
        svg = app.export_screenshot().replace("&#160;", " ")
        screen = app.screen
        assert "evil-00" in svg
        assert "[@click=app.pwned]x[/]" in svg or "[@click=app.pwned]" in svg
        clicks = 0
        strips = app.screen._compositor.render_strips()
        rows = [y for y, strip in enumerate(strips) if "evil-" in strip.text]
        assert rows, "no line shows a hostile device"
        for y in rows[:3]:
            line = strips[y].text
            start = line.find("evil-")
            # where a parsed "[@click=...]x[/]" would put its clickable "x" (right after the
            # "evil-NN" prefix), and a spread over the rest of the line
            spots = [start + 7, start + 8, start + 9, *range(start, len(line.rstrip()), 24)]
            for x in spots:
                await pilot.click(offset=(x, y))
                clicks += 1
                if not app.is_running:
                    break
            if app.screen is not screen:
                await pilot.press("escape")
                await pilot.pause()
        assert clicks >= 12
        assert app.is_running
        assert not fired, fired
    assert ids
