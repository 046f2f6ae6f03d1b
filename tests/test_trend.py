"""Time to threshold: the Theil-Sen projection against known lines, noise without a trend,
the lower side, and block means joined across windows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from Scoring.trend import LevelHistory, project_crossing

DAY = 86_400.0
HOURS = np.arange(0, 10 * DAY, 3600.0) + 1800.0  # 240 hourly block centres


def test_an_exact_line_crosses_when_the_arithmetic_says() -> None:
    levels = 0.01 + 0.02 * HOURS / DAY  # 0.02 per day
    found = project_crossing(HOURS, levels, maxc=0.5)
    assert found is not None
    assert found.slope_per_day == pytest.approx(0.02)
    assert found.level == pytest.approx(levels[-1])
    assert found.days == pytest.approx((0.5 - levels[-1]) / 0.02)
    assert found.days_early == pytest.approx(found.days) == pytest.approx(found.days_late)
    assert found.blocks == 240
    assert found.sentence("axis3") == (
        f"axis3 reaches its error threshold in about {found.days:.1f} days "
        f"({found.days_early:.1f} to {found.days_late:.1f}) at the current trend"
    )


def test_a_noisy_linear_degradation_within_ten_percent_of_the_true_crossing() -> None:
    rng = np.random.default_rng(13)
    true = 0.02 * HOURS / DAY
    found = project_crossing(HOURS, true + rng.normal(0, 0.02, HOURS.size), maxc=0.5)
    assert found is not None
    truth = (0.5 - true[-1]) / 0.02
    assert abs(found.days - truth) <= 0.1 * truth
    assert found.days_early < found.days < found.days_late


def test_stationary_noise_has_no_trend() -> None:
    rng = np.random.default_rng(13)
    assert project_crossing(HOURS, rng.normal(0, 0.05, HOURS.size), maxc=0.5) is None


def test_a_falling_level_goes_to_the_lower_threshold_or_nowhere() -> None:
    levels = -0.03 * HOURS / DAY
    found = project_crossing(HOURS, levels, maxc=0.5, maxc_low=-0.6)
    assert found is not None and found.threshold == -0.6
    assert found.days == pytest.approx((-0.6 - levels[-1]) / -0.03)
    assert project_crossing(HOURS, levels, maxc=0.5) is None  # no lower side


def test_too_few_blocks_and_already_beyond() -> None:
    assert project_crossing(HOURS[:11], HOURS[:11] / DAY, maxc=5.0, min_blocks=12) is None
    beyond = project_crossing(HOURS, 1.0 + HOURS / DAY, maxc=0.5)
    assert beyond is not None and beyond.days == 0.0


def test_history_joins_a_block_cut_by_window_edges_and_skips_idle_samples() -> None:
    seconds = np.arange(0.0, 7200.0, 600.0)  # 12 samples, two hour blocks
    residuals = np.arange(12.0)
    values = np.ones(12)
    values[0] = 0.0  # idle: left out
    history = LevelHistory(3600.0)
    history.add(seconds[:4], {"a": residuals[:4]}, {"a": values[:4]})
    history.add(seconds[4:], {"a": residuals[4:]}, {"a": values[4:]})
    centres, means = history.levels("a")
    assert centres.tolist() == [1800.0, 5400.0]
    assert means.tolist() == [3.0, 8.5]  # (1+2+3+4+5)/5 and (6+...+11)/6


def _pandas_levels(
    parts: list[tuple[np.ndarray, np.ndarray]], stored: tuple[np.ndarray, ...], block: float
) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """The block means as the pandas group-by of earlier releases computed them."""
    from Scoring.drift.stats import block_sums

    sums = [block_sums(s, {"a": r}, block) for s, r in parts]
    frame = pd.DataFrame(
        {
            "id": np.concatenate([p.ids for p in sums]),
            "sum": np.concatenate([p.sums["a"] for p in sums]),
            "count": np.concatenate([p.counts["a"] for p in sums]),
        }
    )
    added = frame.groupby("id", sort=True).sum()
    added = added[added["count"] > 0]
    ids, total, count = stored
    before = pd.DataFrame({"sum": total, "count": count}, index=pd.Index(ids, name="id"))
    joined = pd.concat([before, added]).groupby(level=0, sort=True).sum()
    joined = joined[joined["count"] > 0]
    centres = (joined.index.to_numpy(dtype=np.float64) + 0.5) * block
    return centres, (joined["sum"] / joined["count"]).to_numpy(dtype=np.float64), added


@pytest.mark.parametrize("window", [7200.0, 5000.0, 1300.0, 700.0])
def test_history_blocks_equal_the_pandas_group_by_bit_for_bit(window: float) -> None:
    """Windows longer and shorter than a block (a block cut by one edge or by many), idle
    samples, blocks stored by earlier runs: the same sums, counts and means, to the bit."""
    rng = np.random.default_rng(7)
    seconds = np.arange(0.0, 40_000.0, 2.0)
    residuals = rng.normal(0.3, 1.7, seconds.size) * 10.0 ** rng.integers(-3, 4, seconds.size)
    values = np.where(rng.random(seconds.size) < 0.1, 0.0, 1.0)
    values[4000:6000] = 0.0  # a whole idle block: no count, left out
    residuals[100] = -0.0
    block = 3600.0
    stored = (
        np.array([-3, 2, 5, 40], dtype=np.int64),
        rng.normal(0.0, 50.0, 4),
        np.array([10, 0, 7, 3], dtype=np.int64),
    )
    history = LevelHistory(block, {"a": stored})
    parts = []
    for lo in np.arange(0.0, seconds[-1] + 1.0, window):
        cut = (seconds >= lo) & (seconds < lo + window)
        history.add(seconds[cut], {"a": residuals[cut]}, {"a": values[cut]})
        active = np.where(values[cut] == 0.0, np.nan, residuals[cut])
        parts.append((seconds[cut], active))
    centres, means, added = _pandas_levels(parts, stored, block)
    ids, sums, counts = history.blocks("a")
    assert ids.tolist() == added.index.tolist()
    assert sums.tobytes() == added["sum"].to_numpy(dtype=np.float64).tobytes()
    assert counts.tolist() == added["count"].tolist()
    found_centres, found_means = history.levels("a")
    assert found_centres.tobytes() == centres.tobytes()
    assert found_means.tobytes() == means.tobytes()
    assert history.added("a")["sum"].tolist() == added["sum"].tolist()


def test_history_without_stored_blocks_or_samples() -> None:
    history = LevelHistory(3600.0)
    assert history.blocks("a")[0].size == 0
    centres, means = history.levels("a")
    assert centres.size == means.size == 0
    history.add(np.array([10.0, 20.0]), {"a": np.array([1.0, 2.0])})
    assert history.levels("a")[1].tolist() == [1.5]  # the cache follows each add
    history.add(np.array([30.0]), {"a": np.array([6.0])})
    assert history.levels("a")[1].tolist() == [3.0]


def test_echoes_of_a_degrading_axis_are_not_projected_with_isolate_ratio() -> None:
    """The culprit rises 1 σ a day; an axis predicted from it mirrors 0.4 σ a day (σ 2 there)
    and a third one 0.8 σ a day: with isolate_ratio 0.75 only the two steep ones are projected,
    without it all three; rules and thresholds as scoring passes them."""
    from types import SimpleNamespace

    seconds = np.arange(0.0, 2 * DAY, 60.0)
    scales = {"culprit": 0.1, "echo": 2.0, "close": 0.5}
    slopes = {"culprit": 1.0, "echo": -0.4, "close": 0.8}  # σ per day
    history = LevelHistory(3600.0)
    history.add(
        seconds,
        {a: slopes[a] * scales[a] * seconds / DAY for a in scales},
        {a: np.ones(seconds.size) for a in scales},
    )
    rules = {
        a: SimpleNamespace(upper=True, lower=True, max_c=10 * s, max_c_low=-10 * s)
        for a, s in scales.items()
    }
    common = {"window_seconds": 7 * DAY, "confidence": 0.95, "min_blocks": 24}
    everything = history.project(rules, **common)
    assert sorted(everything) == ["close", "culprit", "echo"]
    assert everything["echo"].slope_per_day == pytest.approx(-0.8)  # -0.4 σ of 2.0
    isolated = history.project(rules, **common, scales=scales, isolate_ratio=0.75)
    assert sorted(isolated) == ["close", "culprit"]
    assert isolated["culprit"] == everything["culprit"]
    assert history.project(rules, **common, scales=scales, isolate_ratio=None) == everything


def test_the_isolate_rule_never_hides_an_axis_that_fails_first_and_counts_every_trend() -> None:
    """(1) A slower axis with a tight threshold (0.5 σ/day, 5 σ of room) crosses before the
    steep one (1 σ/day, 47 σ of room): both are projected, though 0.5 < 0.75 of 1. (2) The
    steepest trend goes towards a side without a threshold: it is not projected, and its
    0.4-share echo is still left out."""
    from types import SimpleNamespace

    seconds = np.arange(0.0, 2 * DAY, 60.0)

    def history(slopes: dict[str, float]) -> LevelHistory:
        found = LevelHistory(3600.0)
        found.add(
            seconds,
            {a: slope * seconds / DAY for a, slope in slopes.items()},
            {a: np.ones(seconds.size) for a in slopes},
        )
        return found

    def rule(room: float, *, lower: bool = True) -> SimpleNamespace:
        return SimpleNamespace(upper=True, lower=lower, max_c=room, max_c_low=-room)

    common = {"window_seconds": 7 * DAY, "confidence": 0.95, "min_blocks": 24}
    scales = {"steep": 1.0, "tight": 1.0}
    both = history({"steep": 1.0, "tight": 0.5}).project(
        {"steep": rule(49.0), "tight": rule(6.0)}, **common, scales=scales, isolate_ratio=0.75
    )
    assert sorted(both) == ["steep", "tight"]
    # levels at the newest block (its mean: day 1.979): 0.989 and 1.979
    assert both["tight"].days == pytest.approx((6.0 - 0.5 * 1.979) / 0.5, rel=1e-3)  # 10.0
    assert both["steep"].days == pytest.approx(49.0 - 1.979, rel=1e-3)  # 47.0

    falling = history({"culprit": -1.0, "echo": 0.4}).project(
        {"culprit": rule(10.0, lower=False), "echo": rule(10.0)},
        **common,
        scales={"culprit": 1.0, "echo": 1.0},
        isolate_ratio=0.75,
    )
    assert falling == {}
    unisolated = history({"culprit": -1.0, "echo": 0.4}).project(
        {"culprit": rule(10.0, lower=False), "echo": rule(10.0)}, **common
    )
    assert sorted(unisolated) == ["echo"]
