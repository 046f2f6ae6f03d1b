"""Profiles and insights with known answers: per-axis figures, level change, correlated axes,
sentences, and the fleet comparison."""

from __future__ import annotations

import numpy as np
import pytest

from ModelEvaluation import axis_insight, compare_assets, correlated_pairs, insight_sentences

DAY = 86_400.0


def test_axis_figures_on_a_tiny_window() -> None:
    seconds = np.arange(6.0)
    values = np.array([0.0, 1.0, 2.0, 3.0, 4.0, np.nan])
    residuals = np.array([np.nan, -1.0, 1.0, -1.0, 1.0, np.nan])
    item = axis_insight(seconds, values, residuals, maxc=3.0, alert_events_per_day=0.5)
    assert (item.p50, item.mean, item.idle_share) == (2.5, 2.5, pytest.approx(2 / 6))
    assert (item.residual_median, item.residual_std, item.residual_p95_abs) == (0.0, 1.0, 1.0)
    assert item.headroom_sigma == 3.0  # (MaxC - median) / sigma
    assert item.change_share is None  # under three days
    assert item.alert_events_per_day == 0.5


def test_the_level_change_is_the_daily_median_trend_over_the_window() -> None:
    seconds = np.arange(0, 10 * DAY, 600.0)
    values = 10.0 + 0.1 * np.floor(seconds / DAY)  # +0.1 a day for 9 days on a median of 10.4
    item = axis_insight(seconds, values, np.zeros_like(values), maxc=1.0)
    assert item.change_share == pytest.approx(0.9 / np.median(values))
    assert item.days == pytest.approx((seconds[-1] - seconds[0]) / DAY)


def test_correlated_pairs_strongest_first_and_idle_rows_left_out() -> None:
    rng = np.random.default_rng(1)
    a = rng.normal(5, 1, 500)
    columns = {
        "a": a,
        "b": 2 * a + 1,
        "c": -a + 0.3 * rng.normal(0, 1, 500),
        "d": rng.normal(5, 1, 500),
    }
    columns["b"][:50] = 0.0  # idle rows do not count
    pairs = correlated_pairs(columns)
    assert pairs[0][:2] == ("a", "b") and len(pairs) == 3  # d correlates with nothing
    assert {(x, y) for x, y, _ in pairs[1:]} == {("a", "c"), ("b", "c")}  # equally strong
    assert pairs[0][2] == pytest.approx(1.0)
    assert pairs[1][2] == pytest.approx(pairs[2][2]) and pairs[1][2] < -0.8


def test_sentences() -> None:
    seconds = np.arange(0, 10 * DAY, 600.0)
    rising = axis_insight(
        seconds,
        10.0 + 0.1 * np.floor(seconds / DAY),
        np.tile([0.0, 2.0], seconds.size // 2),
        maxc=4.0,
    )
    flat = axis_insight(
        seconds,
        np.full(seconds.size, 3.0),
        np.tile([0.0, 2.0], seconds.size // 2),
        maxc=8.0,
    )
    sentences = insight_sentences({"axis3": rising, "axis1": flat}, [("axis1", "axis3", 0.93)])
    assert sentences == [
        "axis3 rose 9% over 10 days (trend of its daily median)",
        "axis3 has the tightest headroom: MaxC is 3.0 residual sigma above its typical "
        "residual (median of all axes 5.0)",
        "axis1 and axis3 move together (correlation 0.93)",
    ]


def test_compare_assets_scores_difficulty_against_the_fleet() -> None:
    compared = compare_assets(
        {"r1": {"a": 4.0, "b": 6.0}, "r2": {"a": 2.0, "b": None}, "r3": {"a": None}}
    )
    # tightest: r1 4, r2 2; mean 3, std 1: r2 one std below the mean
    assert compared["assets"] == {
        "r1": {"tightest_headroom_sigma": 4.0, "difficulty": -1.0},
        "r2": {"tightest_headroom_sigma": 2.0, "difficulty": 1.0},
        "r3": {"tightest_headroom_sigma": None, "difficulty": None},
    }
    assert compared["insights"] == [
        "asset r2 has the tightest headroom of the fleet (2.0 sigma; fleet mean 3.0)"
    ]


def test_coinciding_alarms_counts_episodes_that_overlap_the_other_axis() -> None:
    from ModelEvaluation.insights import coinciding_alarms

    # a: [0,2] [10,12] [20,22]; b: [1,1.5] [21,25] [40,41] plus an error [22,24] inside its
    # alert [21,25] (one episode); c: four episodes far from both.
    axes = ["a"] * 3 + ["b"] * 4 + ["c"] * 4
    starts = [0, 10, 20, 1, 21, 22, 40, 100, 110, 120, 130]
    ends = [2, 12, 22, 1.5, 25, 24, 41, 101, 111, 121, 131]
    (pair,) = coinciding_alarms(axes, starts, ends)
    assert pair["axes"] == ["a", "b"]
    assert (pair["coinciding"], pair["episodes"]) == (4, 6)  # a: 2 of 3, b: 2 of 3
    assert pair["share"] == pytest.approx(4 / 6)
    assert pair["sentence"] == (
        "a and b alarms coincide: 4 of their 6 alarm episodes (67%) overlap one of the other"
    )
    assert coinciding_alarms(axes, starts, ends, min_share=0.7) == []
    assert coinciding_alarms(axes, starts, ends, min_episodes=4) == []  # a and b have 3 each
    # [0,2] and [2,3] share the instant 2: they overlap (ends inclusive), 2 of 6 episodes.
    ends_touching = (["a"] * 3 + ["b"] * 3, [0, 5, 9, 2, 12, 30], [2, 6, 10, 3, 13, 31])
    (touching,) = coinciding_alarms(*ends_touching, min_share=0.3)
    assert (touching["coinciding"], touching["episodes"]) == (2, 6)
    assert coinciding_alarms(*ends_touching) == []  # 33 % < 50 %


def test_coinciding_alarms_take_timestamps() -> None:
    import pandas as pd

    from ModelEvaluation.insights import coinciding_alarms

    t = pd.Timestamp("2026-01-01", tz="UTC")
    minutes = [pd.Timedelta(minutes=m) for m in (0, 10, 20, 0, 10, 20)]
    starts = [t + m for m in minutes]
    ends = [s + pd.Timedelta(minutes=1) for s in starts]
    (pair,) = coinciding_alarms(["x"] * 3 + ["y"] * 3, starts, ends)
    assert (pair["axes"], pair["share"]) == (["x", "y"], 1.0)


@pytest.mark.parametrize("size", [5_001, 250_001])
def test_a_drift_baselines_centre_is_the_insights_residual_median(size: int) -> None:
    # The orchestrator hands the baseline's centre to axis_insight instead of a second median:
    # both take the same (evenly spaced, finite) residuals.
    from Scoring.drift import DriftParameters, fit_drift_baselines

    rng = np.random.default_rng(11)
    residuals = rng.standard_t(3, size)
    residuals[rng.random(size) < 0.1] = np.nan
    seconds = np.arange(size, dtype=float)
    values = rng.normal(5.0, 1.0, size)
    centre = fit_drift_baselines({"x": residuals}, DriftParameters()).axes["x"].center
    plain = axis_insight(seconds, values, residuals, maxc=4.0)
    given = axis_insight(seconds, values, residuals, maxc=4.0, residual_median=centre)
    assert plain.residual_median == centre
    assert given == plain


@pytest.mark.parametrize("size", [5_001, 250_001])
def test_drift_baselines_take_a_known_median_only_over_every_residual(size: int) -> None:
    from Scoring.drift import DriftParameters, fit_drift_baselines

    rng = np.random.default_rng(12)
    residuals = rng.normal(0.2, 1.0, size)
    residuals[rng.random(size) < 0.1] = np.nan
    plain = fit_drift_baselines({"x": residuals}, DriftParameters())
    median = float(np.median(residuals[np.isfinite(residuals)]))
    known = fit_drift_baselines({"x": residuals}, DriftParameters(), {"x": median})
    assert known.axes == plain.axes
    # Beyond 200,000 residuals the baseline takes evenly spaced ones: a given median is unused.
    marked = fit_drift_baselines({"x": residuals}, DriftParameters(), {"x": 1e9})
    assert (marked.axes["x"].center == 1e9) == (size <= 200_000)


def test_insight_to_dict_is_dataclasses_asdict() -> None:
    from dataclasses import asdict

    seconds = np.arange(6.0)
    values = np.array([0.0, 1.0, 2.0, 3.0, 4.0, np.nan])
    residuals = np.array([np.nan, -1.0, 1.0, -1.0, 1.0, np.nan])
    item = axis_insight(seconds, values, residuals, maxc=3.0, alert_events_per_day=None)
    assert list(item.to_dict().items()) == list(asdict(item).items())
    assert item.to_dict()["change_share"] is None
