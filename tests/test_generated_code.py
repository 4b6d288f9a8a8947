"""The committed generated code is exactly what proto/ produces."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GEN = ROOT / "src" / "pipeconsole" / "wire" / "gen"


def test_generated_code_matches_proto(tmp_path: Path) -> None:
    subprocess.run([str(ROOT / "scripts" / "gen-proto"), str(tmp_path)], check=True, cwd=ROOT)
    fresh = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    committed = {p.name: p.read_bytes() for p in GEN.iterdir() if p.is_file()}
    assert sorted(fresh) == sorted(committed), "files differ: run scripts/gen-proto"
    drifted = [name for name in fresh if fresh[name] != committed[name]]
    assert not drifted, f"generated code drifted from proto/: {drifted}; run scripts/gen-proto"


def test_device_request_keeps_the_seed_field_numbers() -> None:
    from pipeconsole.wire.gen.device_request_pb2 import DeviceRequest

    numbers = {f.name: f.number for f in DeviceRequest.DESCRIPTOR.fields}
    assert {
        k: numbers[k]
        for k in (
            "method",
            "uri",
            "headers",
            "entity_content_type",
            "entity",
            "schedule_time",
            "misfire_strategy",
        )
    } == {
        "method": 1,
        "uri": 2,
        "headers": 3,
        "entity_content_type": 4,
        "entity": 5,
        "schedule_time": 10,
        "misfire_strategy": 11,
    }
    assert all(n >= 20 for name, n in numbers.items() if n not in (1, 2, 3, 4, 5, 10, 11))
    ms = DeviceRequest.MisfireStrategy
    assert (ms.Value("BEST_EFFORT"), ms.Value("FORGET")) == (0, 1)
