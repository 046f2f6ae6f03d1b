"""Drift charts with known answers: CUSUM and EWMA against hand-computed sequences, the delay
of a 1 sigma shift, stationary noise, isolation, idle blocks and window cuts."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from Scoring.drift import (
    AxisBaseline,
    DriftBaselines,
    DriftParameters,
    DriftTracker,
    block_sums,
    cusum_path,
    ewma_limit,
    ewma_path,
    fit_drift_baselines,
)


def loop_cusum(z, k, pos=0.0, neg=0.0):
    out_pos, out_neg = [], []
    for value in z:
        pos, neg = max(0.0, pos + value - k), max(0.0, neg - value - k)
        out_pos.append(pos)
        out_neg.append(neg)
    return out_pos, out_neg


def tracker(axes=("a",), **params) -> DriftTracker:
    settings = {"block_seconds": 1.0, "isolate_ratio": None, **params}
    baselines = {axis: AxisBaseline(center=0.0, scale=1.0, samples=100) for axis in axes}
    return DriftTracker(DriftBaselines(DriftParameters(**settings), baselines))


def test_cusum_of_a_hand_computed_sequence() -> None:
    pos, neg = cusum_path(np.array([1.0, 2.0, -1.0, 0.5, 3.0, -4.0]), 0.5)
    assert pos.tolist() == [0.5, 2.0, 0.5, 0.5, 3.0, 0.0]
    assert neg.tolist() == [0.0, 0.0, 0.5, 0.0, 0.0, 3.5]


def test_cusum_continues_from_a_stored_start() -> None:
    pos, neg = cusum_path(np.array([-1.0, 0.25]), 0.5, start_pos=2.0, start_neg=1.0)
    assert pos.tolist() == [0.5, 0.25]
    assert neg.tolist() == [1.5, 0.75]


def test_cusum_matches_the_recursion_on_noise() -> None:
    z = np.random.default_rng(3).normal(0.3, 1.5, 2000)
    pos, neg = cusum_path(z, 0.4, 1.0, 2.0)
    want_pos, want_neg = loop_cusum(z, 0.4, 1.0, 2.0)
    np.testing.assert_allclose(pos, want_pos, rtol=0, atol=1e-9)
    np.testing.assert_allclose(neg, want_neg, rtol=0, atol=1e-9)


def test_ewma_of_a_hand_computed_sequence() -> None:
    out = ewma_path(np.array([1.0, 2.0, -1.0, 0.5]), 0.5, start=1.0)
    assert out.tolist() == [1.0, 1.5, 0.25, 0.375]


def test_ewma_limit() -> None:
    assert ewma_limit(0.2, 3.0) == pytest.approx(1.0)
    assert ewma_limit(1.0, 3.0) == pytest.approx(3.0)


def test_a_one_sigma_shift_is_flagged_after_eleven_samples_with_k_half_h_five() -> None:
    # S+ grows by 1 - 0.5 per sample: 5.5 > 5 after 11 shifted samples (5.0 after 10 is not).
    chart = tracker()
    residuals = np.r_[np.zeros(20), np.ones(30)]
    chart.fold(np.arange(50.0), {"a": residuals})
    (episode,) = chart.episodes
    assert episode.start == 30.0  # the 11th shifted sample (shift starts at 20)
    assert episode.direction == "up"
    assert chart.axes["a"].cusum_pos == pytest.approx(0.5 * 29)  # block 49 is still open
    assert chart.axes["a"].is_drifting and chart.axes["a"].drifting_since == 30.0


def test_a_downward_shift_gives_a_down_drift() -> None:
    chart = tracker()
    chart.fold(np.arange(30.0), {"a": np.r_[np.zeros(5), -np.ones(25)]})
    assert chart.episodes[0].start == 15.0
    assert chart.axes["a"].drift_direction == "down"


def test_the_ewma_signals_a_two_sigma_shift_after_four_samples() -> None:
    # E_n = 2 (1 - 0.8^n) exceeds the limit 1.0 first at n = 4: 2 (1 - 0.512) = 0.976 <= 1,
    # 2 (1 - 0.4096) = 1.18 > 1. The shift starts at sample 5, so sample 8 is its 4th.
    chart = tracker(cusum_h=1e9)
    chart.fold(np.arange(20.0), {"a": np.r_[np.zeros(5), 2 * np.ones(15)]})
    assert chart.episodes[0].start == 8.0


def test_no_drift_on_stationary_noise_of_a_known_seed() -> None:
    # 300 hour-blocks of 100 samples of N(0, 1): block means have sigma 0.1.
    chart = tracker(block_seconds=100.0)
    noise = np.random.default_rng(20260105).normal(0.0, 1.0, 30_000)
    chart.fold(np.arange(30_000.0), {"a": noise})
    assert chart.episodes == []
    assert not chart.axes["a"].is_drifting
    assert chart.axes["a"].cusum_pos < 1.0 and chart.axes["a"].cusum_neg < 1.0


def test_clipping_bounds_what_one_spike_adds() -> None:
    chart = tracker()
    chart.fold(np.arange(3.0), {"a": np.array([100.0, 0.0, 0.0])})
    assert chart.axes["a"].cusum_pos == pytest.approx(2.0)  # clip 3 - k 0.5, then 0 - 0.5


def test_blocks_average_and_skip_missing_samples() -> None:
    sums = block_sums(
        np.array([0.0, 1.0, 10.0, 11.0, 25.0]),
        {"a": np.array([1.0, np.nan, 2.0, 4.0, np.nan])},
        10.0,
    )
    assert sums.ids.tolist() == [0, 1, 2]
    assert sums.sums["a"].tolist() == [1.0, 6.0, 0.0]
    assert sums.counts["a"].tolist() == [1, 2, 0]
    assert sums.first.tolist() == [0.0, 10.0, 25.0]
    assert sums.last.tolist() == [1.0, 11.0, 25.0]


def test_a_block_without_samples_keeps_the_statistics() -> None:
    chart = tracker()
    chart.fold(np.arange(6.0), {"a": np.array([2.0, np.nan, np.nan, 2.0, np.nan, 0.0])})
    assert chart.axes["a"].cusum_pos == pytest.approx(3.0)  # 1.5 per block with data


def test_isolation_keeps_the_drift_on_the_axis_that_moved() -> None:
    seconds = np.arange(40.0)
    shift = np.r_[np.zeros(5), np.ones(35)]
    residuals = {"a": 2.0 * shift, "b": 0.8 * shift}  # b follows a at 40 %
    alone = tracker(("a", "b"))
    alone.fold(seconds, residuals)
    assert {e.axis for e in alone.episodes} == {"a", "b"}
    isolated = tracker(("a", "b"), isolate_ratio=0.75)
    isolated.fold(seconds, residuals)
    assert {e.axis for e in isolated.episodes} == {"a"}


def test_a_drift_ends_when_the_statistics_fall_back() -> None:
    chart = tracker(cusum_h=2.0)
    residuals = np.r_[np.ones(6), np.zeros(10)]
    chart.fold(np.arange(16.0), {"a": residuals})
    (episode,) = chart.episodes
    # S+ = 0.5, 1, 1.5, 2, 2.5, 3, then 2.5, 2: above 2 (strictly) in blocks 4, 5 and 6.
    assert (episode.start, episode.end, episode.samples) == (4.0, 6.0, 3)
    assert not episode.open and not chart.axes["a"].is_drifting


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_window_cuts_anywhere_give_the_state_and_episodes_of_the_union(seed: int) -> None:
    rng = np.random.default_rng(seed)
    seconds = np.cumsum(rng.uniform(0.5, 1.5, 3000))
    level = np.where((seconds > 600) & (seconds < 1400), 1.2, 0.0)
    residuals = {
        "a": level + rng.normal(0, 0.5, 3000),
        "b": -level + rng.normal(0, 0.5, 3000),
    }
    residuals["a"][rng.random(3000) < 0.1] = np.nan
    params = {"block_seconds": 37.0}
    whole = tracker(("a", "b"), **params)
    whole.fold(seconds, residuals)
    pieces = tracker(("a", "b"), **params)
    cuts = np.r_[0, np.sort(rng.choice(np.arange(1, 3000), 7, replace=False)), 3000]
    for lo, hi in itertools.pairwise(cuts):
        # each window overlaps the previous one: already folded samples are skipped
        back = max(0, lo - 5)
        pieces.fold(seconds[back:hi], {a: r[back:hi] for a, r in residuals.items()})
    assert whole.episodes, "the shift must be flagged"
    for axis in ("a", "b"):
        mine, theirs = pieces.axes[axis], whole.axes[axis]
        for name in ("cusum_pos", "cusum_neg", "ewma_value", "open_sum"):
            assert getattr(mine, name) == pytest.approx(getattr(theirs, name), abs=1e-9)
        assert (mine.is_drifting, mine.drifting_since) == (
            theirs.is_drifting,
            theirs.drifting_since,
        )
    key = [(e.axis, e.start, e.end, e.samples, e.direction) for e in whole.episodes]
    assert [(e.axis, e.start, e.end, e.samples, e.direction) for e in pieces.episodes] == key


def test_baselines_are_the_median_and_mad_sigma() -> None:
    baselines = fit_drift_baselines(
        {"a": np.array([1.0, 2.0, 3.0, 4.0, 100.0, np.nan]), "flat": np.ones(5)},
        DriftParameters(),
    )
    assert baselines.axes["a"].center == 3.0
    assert baselines.axes["a"].scale == pytest.approx(1.482602218505602)
    assert "flat" not in baselines.axes


def test_baselines_round_trip_and_refuse_a_broken_record() -> None:
    baselines = fit_drift_baselines({"a": np.arange(10.0)}, DriftParameters(cusum_h=4.0))
    assert DriftBaselines.from_dict(baselines.to_dict()) == baselines
    with pytest.raises(ValueError, match=r"drift\.json is not a drift baseline record"):
        DriftBaselines.from_dict({"axes": {}})
    broken = {**baselines.to_dict(), "axes": {"a": {"center": 0, "scale": 0, "samples": 3}}}
    with pytest.raises(ValueError, match=r"axes \['a'\] have no positive finite scale"):
        DriftBaselines.from_dict(broken)
