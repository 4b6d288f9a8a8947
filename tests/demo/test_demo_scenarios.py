"""The demo's scenarios find their device in every fleet the demo can start, and its checks
fit its one actor process (pure logic)."""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from pipeconsole.demostack import SCENARIOS
from pipeconsole.sim.topology import default_layout

_DEVICE_SCENARIOS = [s for s in SCENARIOS.values() if s.stage]


def _stages(devices: int) -> dict[str, str]:
    """Device id -> stage of the demo's fleet (ids and stages do not depend on the seed)."""
    return {d.device_id: d.stage for d in default_layout(devices).devices}


def test_the_default_fleet_gets_the_documented_targets() -> None:
    stages = _stages(24)
    picked = {s.name: s.pick(stages) for s in _DEVICE_SCENARIOS}
    assert picked == {
        "encoder-crash": "transcode-03",
        "slow-packager": "package-02",
        "retry-storm": "origin-01",
        "telemetry-blackout": "transcode-05",
    }


def test_wider_ids_and_small_stages_still_name_a_device() -> None:
    """From 297 devices the ids are three digits wide (``package-002``): the fixed id
    ``package-02`` named no device there, and the scenario did nothing. A 4-device fleet has
    one transcoder: the third is its last."""
    wide = _stages(400)
    assert SCENARIOS["slow-packager"].pick(wide) == "package-002"
    assert SCENARIOS["encoder-crash"].pick(wide) == "transcode-003"
    assert SCENARIOS["encoder-crash"].pick(_stages(4)) == "transcode-01"
    assert SCENARIOS["encoder-crash"].pick({"ingest-01": "ingest"}) is None


@settings(max_examples=8, deadline=None)  # a 2,000-device layout takes ~1 s to build
@given(devices=st.integers(4, 2000))
@example(devices=4)
@example(devices=296)  # ids two digits wide
@example(devices=297)  # three digits wide in the largest stages
@example(devices=2000)
def test_every_scenario_picks_a_device_of_its_stage_in_every_demo_fleet(devices: int) -> None:
    """The demo's whole range of fleet sizes."""
    stages = _stages(devices)
    for s in _DEVICE_SCENARIOS:
        ids = sorted(d for d, stage in stages.items() if stage == s.stage)
        target = s.pick(stages)
        assert target is not None and stages[target] == s.stage
        # The ordinal-th of the stage when it has that many, else its last.
        assert target == ids[min(s.ordinal, len(ids)) - 1]


def test_big_demo_fleets_are_checked_less_often_than_every_second() -> None:
    """One actor process checks the whole demo fleet: at 1,000 devices a check a second each
    saturated it, and a crashed device flapped FAILING / UNKNOWN as its checks timed out."""
    from pipeconsole.demo import CHECKS_PER_S, default_check_interval

    assert default_check_interval(24) == default_check_interval(CHECKS_PER_S) == 1.0
    assert default_check_interval(1000) == 1000 / CHECKS_PER_S
    assert all(n / default_check_interval(n) <= CHECKS_PER_S * (1 + 1e-9) for n in range(4, 2001))
