"""Sensor health: each check triggered by a tiny frame built for it and not by clean data, the
grade, and what training does with a low axis (refuse, skip, warn)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from DataExtractionAnalysis import (
    HealthPolicy,
    ScoredHealth,
    count_out_of_range,
    grade_axes,
    out_of_range,
    profile,
)
from DataExtractionAnalysis.health import ticks

POLICY = HealthPolicy(flat_steps=10)


def frame(values: np.ndarray, seconds: np.ndarray | None = None) -> pd.DataFrame:
    seconds = np.arange(float(len(values))) if seconds is None else seconds
    return pd.DataFrame({"ts": pd.to_datetime(seconds, unit="s", utc=True), "a": values})


def clean(n: int = 200, seed: int = 0) -> np.ndarray:
    """A moving, noisy reading: no check fires."""
    rng = np.random.default_rng(seed)
    return 5.0 + np.sin(np.arange(n) / 7.0) + rng.normal(0, 0.1, n)


def checks(data: pd.DataFrame, policy: HealthPolicy = POLICY) -> dict[str, str]:
    found = grade_axes(data, ["a"], 1.0, policy)["a"]
    return {f.check: f.grade for f in found.findings}


def test_clean_data_is_graded_high() -> None:
    graded = grade_axes(frame(clean()), ["a"], 1.0, POLICY)["a"]
    assert (graded.grade, graded.findings) == ("high", ())


def test_idle_zeros_are_not_flat() -> None:
    values = clean()
    values[50:120] = 0.0  # the machine at rest
    assert checks(frame(values)) == {}


@pytest.mark.parametrize(
    ("missing", "grade"), [(10, None), (11, "medium"), (100, "medium"), (101, "low")]
)
def test_missing_share(missing: int, grade: str | None) -> None:
    values = clean()
    values[::2][: min(missing, 100)] = np.nan
    values[1::2][: max(0, missing - 100)] = np.nan
    # 200 samples: medium above 5 % (10), low above 50 % (100)
    assert checks(frame(values)).get("missing") == grade


def test_flat_run_longer_than_flat_steps_is_low() -> None:
    values = clean()
    values[40:50] = 7.25  # 10 equal samples: not more than flat_steps
    assert "flat" not in checks(frame(values))
    values[40:51] = 7.25  # 11 equal samples
    graded = grade_axes(frame(values), ["a"], 1.0, POLICY)["a"]
    assert graded.grade == "low"
    assert graded.reasons == [
        "flat: the value 7.25 repeats for 11 samples (~0 min, more than health.flat_steps 10): "
        "a stuck or frozen sensor"
    ]


def test_gaps_longer_than_k_dt_covering_more_than_the_share() -> None:
    seconds = np.arange(200.0)
    seconds[100:] += 5.0  # a gap of 6 s (more than 5 dt) but 2.9 % of the 204 s
    assert checks(frame(clean(), seconds)).get("gaps") is None
    seconds[100:] += 10.0  # 16 s of 214 s: 7.5 %
    assert checks(frame(clean(), seconds)) == {"gaps": "medium"}


def test_nan_stretches_count_as_gaps() -> None:
    values = clean()
    values[100:112] = np.nan  # 13 s without a reading: 6.5 % of 199 s, missing only 6 %
    assert checks(frame(values)) == {"gaps": "medium", "missing": "medium"}


def test_a_change_of_the_sampling_interval() -> None:
    seconds = np.r_[np.arange(100.0), 100.0 + 1.5 * np.arange(100.0)]
    assert checks(frame(clean(), seconds)) == {"dt change": "medium"}
    seconds = np.r_[np.arange(100.0), 100.0 + 1.2 * np.arange(100.0)]  # 20 %: not more
    assert checks(frame(clean(), seconds)) == {}


def test_a_counter_is_low() -> None:
    counter = np.cumsum(np.random.default_rng(1).integers(1, 5, 200)).astype(float)
    assert checks(frame(counter)) == {"monotonic": "low"}
    counter[::50] -= 1000  # four resets among 199 changes: 98 % rise, below 99 %
    assert "monotonic" not in checks(frame(counter))


def test_two_separate_operating_modes() -> None:
    rng = np.random.default_rng(2)
    values = np.r_[rng.normal(10, 0.2, 100), rng.normal(20, 0.2, 100)]
    assert checks(frame(values)) == {"several modes": "medium"}
    values = np.r_[rng.normal(10, 0.2, 190), rng.normal(20, 0.2, 10)]  # 5 %: a mode
    assert checks(frame(values)) == {"several modes": "medium"}
    values = np.r_[rng.normal(10, 0.2, 195), rng.normal(20, 0.2, 5)]  # 2.5 %: an excursion
    assert checks(frame(values)) == {}


def test_quantised_levels_are_not_modes() -> None:
    values = np.tile([1.0, 1.5, 2.0, 2.5], 50)  # an analyser's few levels
    assert "several modes" not in checks(frame(values))


def test_out_of_range_at_scoring() -> None:
    scored = {"a": np.r_[np.linspace(1, 2, 98), 2.5, 0.0, np.nan, 3.0]}  # 2 of 100 active outside
    counts = count_out_of_range(scored, {"a": (1.0, 2.0), "gone": (0.0, 1.0)})
    assert counts == {"a": (2, 100)}
    found = out_of_range(counts, {"a": (1.0, 2.0)}, HealthPolicy())
    assert found["a"].grade == "medium"
    assert found["a"].reason == ("2.0% of the scored samples lie outside the training range [1, 2]")
    assert out_of_range({"a": (1, 100)}, {"a": (1.0, 2.0)}, HealthPolicy()) == {}


def test_the_profile_carries_the_health_and_its_json() -> None:
    values = clean()
    values[10:30] = 4.0
    result = profile(frame(values), ["a"], POLICY)
    record = result.to_dict()["health"]["a"]
    assert record["grade"] == "low"
    assert [f["check"] for f in record["findings"]] == ["flat"]
    assert profile(frame(values), ["a"]).health == {}


def test_the_demo_robot_stuck_axes_are_low_flat_and_its_training_window_is_clean() -> None:
    from Database.demo_signals import DEMO_AXES, TRAIN_SHARE, demo_data

    samples = demo_data().samples
    cut = int(TRAIN_SHARE * len(samples))
    train = grade_axes(samples.iloc[:cut], list(DEMO_AXES), 1.891, HealthPolicy())
    assert {axis: h.grade for axis, h in train.items()} == dict.fromkeys(DEMO_AXES, "high")
    scored = grade_axes(
        samples.iloc[cut:].reset_index(drop=True), list(DEMO_AXES), 1.891, HealthPolicy()
    )
    low = {axis: [f.check for f in h.findings] for axis, h in scored.items() if h.grade == "low"}
    assert low == {"axis2": ["flat"], "axis5": ["flat"]}


def test_scored_windows_flat_out_of_range_and_dt_change() -> None:
    health = ScoredHealth(HealthPolicy(flat_steps=10), {"a": (0.0, 10.0), "b": (0.0, 10.0)}, 1.0)
    stuck = np.r_[np.linspace(1, 2, 20), np.full(12, 3.5), np.linspace(2, 1, 20)]
    health.add(np.arange(52.0), {"a": stuck, "b": np.linspace(1, 9, 52)})
    health.add(np.arange(52.0, 60.0), {"a": np.full(8, 3.5), "b": np.full(8, 20.0)})
    graded = health.findings()
    assert {axis: [f.check for f in h.findings] for axis, h in graded.items()} == {
        "a": ["flat"],  # 12 equal samples in one window (the 8 of the next are judged alone)
        "b": ["out of range"],  # 8 of 60
    }
    assert graded["a"].findings[0].reason.startswith("the value 3.5 repeats for 12 samples")
    slow = ScoredHealth(HealthPolicy(), {}, 1.0)
    slow.add(np.arange(0.0, 100.0, 1.5), {})
    assert slow.findings() == {}  # no axis to report on
    slow = ScoredHealth(HealthPolicy(), {"a": (0.0, 1.0)}, 1.0)
    slow.add(np.arange(0.0, 150.0, 1.5), {"a": np.full(100, 0.5) + np.arange(100) * 1e-3})
    assert [f.check for f in slow.findings()["a"].findings] == ["dt change"]


def test_a_flat_run_across_scored_windows_is_joined() -> None:
    """7 equal samples at the end of one window, 20 in the whole next, 5 at the start of the
    third: one run of 32 (> 30) though no window holds more than 20; a different value, a 0
    or a NaN at the seam breaks it."""
    policy = HealthPolicy(flat_steps=30)

    def run(*windows: np.ndarray) -> dict[str, str]:
        health = ScoredHealth(policy, {"a": (0.0, 10.0)}, 1.0)
        start = 0.0
        for window in windows:
            health.add(np.arange(start, start + window.size), {"a": window})
            start += window.size
        return {a: h.findings[0].reason for a, h in health.findings().items()}

    before = np.r_[np.linspace(1, 2, 10), np.full(7, 3.5)]
    after = np.r_[np.full(5, 3.5), np.linspace(2, 1, 10)]
    found = run(before, np.full(20, 3.5), after)
    assert found["a"].startswith("the value 3.5 repeats for 32 samples")
    assert run(before, np.full(20, 3.5), after[5:]) == {}  # 27 samples: not more than 30
    assert run(before, np.full(20, 3.6), after) == {}
    for breaker in (0.0, np.nan):
        assert run(before, np.r_[breaker, np.full(19, 3.5)], after) == {}
    zeros = run(np.zeros(17), np.zeros(20), np.zeros(15))
    assert zeros == {}  # the machine at rest
    # A short window that ends the run: its last value 1.0 stands alone (a run of 1), so the
    # next window's five 1.0 make a run of 6, not the 29 + 5 of the run that ended.
    assert run(before, np.full(20, 3.5), np.r_[3.5, 3.5, 1.0], np.r_[np.full(5, 1.0), 2.0]) == {}


def test_a_flat_run_is_not_joined_across_a_time_gap() -> None:
    """The same 32 samples of 3.5, but the third window starts an hour after the second ends."""
    health = ScoredHealth(HealthPolicy(flat_steps=30), {"a": (0.0, 10.0)}, 1.0)
    before = np.r_[np.linspace(1, 2, 10), np.full(7, 3.5)]
    health.add(np.arange(17.0), {"a": before})
    health.add(np.arange(17.0, 37.0), {"a": np.full(20, 3.5)})
    health.add(np.arange(3637.0, 3642.0), {"a": np.full(5, 3.5)})
    assert health.findings() == {}
    joined = ScoredHealth(HealthPolicy(flat_steps=30), {"a": (0.0, 10.0)}, 1.0)
    joined.add(np.arange(17.0), {"a": before})
    joined.add(np.arange(17.0, 37.0), {"a": np.full(20, 3.5)})
    joined.add(np.arange(38.0, 43.0), {"a": np.full(5, 3.5)})  # one sample missing: 2 s
    assert joined.findings()["a"].findings[0].reason.startswith("the value 3.5 repeats for 32")


@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin", None])
def test_ticks_are_the_utc_instants_in_nanoseconds_read_only(zone):
    stamps = pd.Series(["2026-01-01T00:00:00Z", "2026-01-01T00:00:01.500Z"])
    stamps = pd.to_datetime(stamps, format="ISO8601").astype("datetime64[ns, UTC]")
    stamps = stamps.dt.tz_convert(zone)  # None: naive UTC

    got, per_second = ticks(stamps)

    assert per_second == 1e9
    assert got.dtype == np.int64 and not got.flags.writeable
    assert got.tolist() == [1_767_225_600 * 10**9, 1_767_225_601 * 10**9 + 500_000_000]


def test_mode_histogram_matches_numpy_bin_for_bin() -> None:
    """The modes check's histogram is np.histogram's, values on the edges included."""
    from DataExtractionAnalysis.health import _histogram

    rng = np.random.default_rng(3)
    samples = [
        rng.normal(size=5000) * 1e-7 + 3.0,
        np.linspace(-2.2, 7.7, 4097),  # many values exactly on or next to the edges
        rng.choice(np.linspace(-3.3, 7.7, 65), 3000),
        np.round(rng.normal(size=3000) * 50) / 7,
        np.concatenate([rng.normal(0, 1, 2000), rng.normal(40, 1, 2000)]) * 1e300,
    ]
    for values in samples:
        low, high = float(values.min()), float(values.max())
        counts, edges = _histogram(values, low, high)
        want_counts, want_edges = np.histogram(values, bins=64, range=(low, high))
        assert counts.dtype == want_counts.dtype
        assert counts.tolist() == want_counts.tolist()
        assert edges.tobytes() == want_edges.tobytes()
