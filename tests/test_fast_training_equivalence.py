"""The fast training paths give what the straightforward formulas give, to the last bit.

Medians and percentiles of long residual series are taken from the few values a sample
brackets (``Thresholding.selection``) instead of partitioning copies of everything; run
lengths and alarms are counted on the positions beyond a threshold instead of on masks; the
moments of the linear families skip a row check NumPy did slowly. Each test runs one of those
against plain NumPy on random data with ties, NaNs and infinities, above the size where the
fast path starts. Below it, the statistics are read off sorted copies (faster than NumPy's
partition there); those tests compare the bits of the results with NumPy's.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import Thresholding.selection as selection
from ModelSelection import ConstantLevel
from Thresholding import (
    SEED_POLICY,
    ThresholdCalibrator,
    ThresholdPolicy,
    alarm_mask,
    domain_median,
    domain_percentiles,
    median_of,
    percentiles_of,
    quantiles_of,
    robust_scale,
    run_lengths,
    sustained,
)
from Thresholding.calibrator import TAIL_SCALE, trim_count

LARGE = selection.SMALL + 12_345  # above the size handed to NumPy as it is
PERCENTILES = [0.0, 0.1, 12.5, 50.0, 75.0, 95.0, 99.0, 99.9, 100.0]
# Many more, so that both branches of NumPy's interpolation (from below, from above) are met
# on values where they differ in the last bit.
MANY = [*PERCENTILES, *np.random.default_rng(1).uniform(0, 100, 300).round(3).tolist()]


def _values(seed: int, size: int = LARGE) -> np.ndarray:
    """Normal values, a quarter of them rounded (ties), some NaN and infinite, a few huge."""
    rng = np.random.default_rng(seed)
    values = rng.normal(0.3, 2.0, size)
    ties = rng.random(size) < 0.25
    values[ties] = np.round(values[ties], 1)
    values[rng.random(size) < 0.03] = np.nan
    values[rng.random(size) < 0.001] = np.inf
    values[rng.random(size) < 0.001] = -np.inf
    values[rng.random(size) < 0.001] *= 1e12
    return values


def _finite(values: np.ndarray):
    def domain(rows):
        block = values[rows]
        return block[np.isfinite(block)]

    return domain


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("extra", [0, 1])  # an even and an odd number of values
def test_medians_and_percentiles_equal_numpys(seed, extra):
    values = _values(seed, LARGE + extra)
    finite = values[np.isfinite(values)]
    count = finite.size
    assert count > selection.SMALL
    assert domain_median(_finite(values), values.size, count) == np.median(finite)
    got = domain_percentiles(_finite(values), values.size, count, MANY)
    assert got == np.percentile(finite, MANY).tolist()
    keep = count - 977
    trimmed = np.partition(finite, keep - 1)[:keep]
    got = domain_percentiles(_finite(values), values.size, count, PERCENTILES, smallest=keep)
    assert got == np.percentile(trimmed, PERCENTILES).tolist()


@pytest.mark.parametrize("size", [3, 50, 500])
def test_percentiles_interpolate_as_numpy_on_either_side(monkeypatch, size):
    # Few values spread over many magnitudes: NumPy's interpolation from below (a + d * g) and
    # from above (b - d * (1 - g)) differ in the last bit on a good share of these.
    monkeypatch.setattr(selection, "SMALL", 2)
    rng = np.random.default_rng(size)
    values = rng.normal(0.3, 2.0, size) * np.exp(rng.normal(0, 3, size))
    quantiles = rng.uniform(0, 100, 2000).tolist()
    got = domain_percentiles(_finite(values), size, size, quantiles)
    assert got == np.percentile(values, quantiles).tolist()


def test_a_bracket_that_misses_falls_back_to_partitioning_everything(monkeypatch):
    values = _values(9)
    finite = values[np.isfinite(values)]
    monkeypatch.setattr(selection, "MARGIN", -0.5)  # every bracket is empty
    assert domain_median(_finite(values), values.size, finite.size) == np.median(finite)
    got = domain_percentiles(_finite(values), values.size, finite.size, [75.0, 95.0])
    assert got == np.percentile(finite, [75.0, 95.0]).tolist()


def test_small_and_empty_domains():
    values = np.array([3.0, np.nan, 1.0, 2.0])
    assert domain_median(_finite(values), 4, 3) == 2.0
    assert domain_percentiles(_finite(values), 4, 3, [50.0, 100.0]) == [2.0, 3.0]
    assert np.isnan(domain_median(_finite(values), 4, 0))
    assert np.isnan(domain_percentiles(_finite(values), 4, 0, [50.0])[0])


def _plain_robust_scale(values: np.ndarray) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    center = float(np.median(finite))
    return center, float(np.percentile(np.abs(finite - center), 95.0)) / TAIL_SCALE


@pytest.mark.parametrize("seed", range(3))
def test_robust_scale_equals_the_plain_formula(seed):
    values = _values(100 + seed)
    assert robust_scale(values) == _plain_robust_scale(values)


def _plain_levels(residuals: np.ndarray, policy: ThresholdPolicy) -> tuple[float, float]:
    """The seed's MinC/MaxC: percentiles of the positives after trimming the largest."""
    positives = residuals[(residuals > 0) & np.isfinite(residuals)]
    keep = positives.size - trim_count(positives.size, policy)
    kept = np.sort(positives)[:keep]
    minc, maxc = np.percentile(kept, [policy.minc_percentile, policy.maxc_percentile])
    return float(minc), float(maxc)


def _plain_steps(residuals: np.ndarray, level: float, quantile: float, default: int) -> int:
    runs = run_lengths(residuals > level)
    if runs.size == 0:
        return default
    return max(default, int(np.ceil(np.quantile(runs, quantile) - 1e-9)))


@pytest.mark.parametrize("side", ["upper", "both"])
def test_seed_calibration_equals_the_plain_formulas(side):
    rng = np.random.default_rng(5)
    size = 3 * selection.SMALL  # the positives alone are above the size handed to NumPy
    residuals = np.convolve(rng.normal(0, 1, size), np.ones(4) / 2, mode="same")  # runs
    residuals[rng.random(size) < 0.02] = np.nan
    policy = ThresholdPolicy(**{**SEED_POLICY, "side": side})
    record = ThresholdCalibrator(policy).fit({"a": residuals}, 1.0).thresholds_["a"]
    assert (record.minc, record.maxc) == _plain_levels(residuals, policy)
    assert (record.center, record.scale) == _plain_robust_scale(residuals)
    if side == "both":
        low = _plain_levels(-residuals, policy)
        assert (record.minc_low, record.maxc_low) == (-low[0], -low[1])
    else:
        # The seed's defaults at dt 1 s: alerts 5 s = 5 samples, errors 3 s = 3 samples.
        assert record.t_long_steps == _plain_steps(residuals, record.minc, 0.8, 5)
        assert record.t_short_steps == _plain_steps(residuals, record.maxc, 0.5, 3)
        plain_alarm = sustained(residuals > record.minc, record.t_long_steps) | sustained(
            residuals > record.maxc, record.t_short_steps
        )
        np.testing.assert_array_equal(alarm_mask(residuals, record), plain_alarm)
        episodes = run_lengths(plain_alarm).size
        days = np.count_nonzero(np.isfinite(residuals)) / 86_400.0
        assert record.expected_events_per_day == pytest.approx(episodes / days, rel=1e-12)


def test_the_constant_family_is_numpys_median_of_the_usable_rows():
    import pandas as pd

    values = _values(7)
    values[::50] = 0.0  # idle
    values[~np.isfinite(values)] = np.nan
    where = np.random.default_rng(8).random(values.size) < 0.9
    frame = pd.DataFrame({"time_s": np.arange(values.size, dtype=float), "a": values})
    usable = np.isfinite(values) & (values != 0) & where
    assert ConstantLevel().fit(frame, "a", where=where).level_ == np.median(values[usable])


def _bits(values) -> list[str]:
    return [float(value).hex() for value in values]


def _spread(size: int, seed: int) -> np.ndarray:
    """Values over many magnitudes, a quarter rounded (ties): NumPy's interpolation from below
    and from above differ in the last bit on a good share of their percentiles."""
    rng = np.random.default_rng(seed)
    values = rng.normal(0.3, 2.0, size) * np.exp(rng.normal(0, 3, size))
    ties = rng.random(size) < 0.25
    values[ties] = np.round(values[ties], 1)
    return values


@pytest.mark.parametrize("size", [1, 2, 3, 4, 50, 501, 10_000])
def test_statistics_of_sorted_copies_have_numpys_bits(size):
    values = _spread(size, size)
    original = values.copy()
    quantiles = [*PERCENTILES, *np.random.default_rng(size).uniform(0, 100, 500).tolist()]
    assert _bits(percentiles_of(values, quantiles)) == _bits(np.percentile(values, quantiles))
    assert _bits(percentiles_of(values, [95])) == _bits([np.percentile(values, 95)])
    shares = [q / 100 for q in quantiles]
    assert _bits(quantiles_of(values, shares)) == _bits(np.quantile(values, shares))
    assert _bits([median_of(values)]) == _bits([np.median(values)])
    np.testing.assert_array_equal(values, original)  # not modified


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("size", [7, 64, 399, 10_000])
def test_zeros_of_both_signs_on_a_rank_are_numpys(seed, size):
    # 0.0 and -0.0 compare equal: which one NumPy's partition leaves on a rank is not the sort's
    # (its vectorised sort may even turn one into the other).
    rng = np.random.default_rng(seed)
    values = rng.choice([-1.5, -0.0, 0.0, 2.5], size=size)
    assert _bits([median_of(values)]) == _bits([np.median(values)])
    assert _bits(percentiles_of(values, MANY)) == _bits(np.percentile(values, MANY))
    finite = _finite(values)
    keep = values.size - 3
    trimmed = np.partition(values, keep - 1)[:keep]
    got = domain_percentiles(finite, values.size, values.size, MANY, smallest=keep)
    assert _bits(got) == _bits(np.percentile(trimmed, MANY))


def test_quantiles_of_run_lengths_are_numpys():
    runs = np.random.default_rng(3).integers(1, 40, 333)
    for quantile in (0.5, 0.8, 0.95, 0.999):
        assert quantiles_of(runs, [quantile]) == [np.quantile(runs, quantile)]


def test_statistics_beyond_the_sorted_size_are_numpys():
    values = _values(11)
    finite = values[np.isfinite(values)]
    assert finite.size > selection.SMALL
    assert median_of(finite) == np.median(finite)
    assert percentiles_of(finite, PERCENTILES) == np.percentile(finite, PERCENTILES).tolist()
    assert quantiles_of(finite, [0.5, 0.9]) == np.quantile(finite, [0.5, 0.9]).tolist()


def test_empty_values_give_nan():
    empty = np.empty(0)
    assert np.isnan(median_of(empty))
    assert np.isnan(percentiles_of(empty, [50.0])[0])


@pytest.mark.parametrize("seed", range(3))
def test_small_domains_and_robust_scale_have_numpys_bits(seed):
    values = _values(200 + seed, 9_999 + seed)
    finite = values[np.isfinite(values)]
    assert _bits([domain_median(_finite(values), values.size, finite.size)]) == _bits(
        [np.median(finite)]
    )
    got = domain_percentiles(_finite(values), values.size, finite.size, MANY)
    assert _bits(got) == _bits(np.percentile(finite, MANY))
    keep = finite.size - 97
    trimmed = np.partition(finite, keep - 1)[:keep]
    got = domain_percentiles(_finite(values), values.size, finite.size, MANY, smallest=keep)
    assert _bits(got) == _bits(np.percentile(trimmed, MANY))
    assert _bits(robust_scale(values)) == _bits(_plain_robust_scale(values))


def test_constant_folds_are_numpys_median_of_the_other_blocks():
    import pandas as pd

    values = _values(12, 10_000)
    values[::50] = 0.0  # idle
    values[~np.isfinite(values)] = np.nan
    where = np.random.default_rng(13).random(values.size) < 0.9
    frame = pd.DataFrame({"time_s": np.arange(values.size, dtype=float), "a": values})
    usable = np.isfinite(values) & (values != 0) & where
    edges = [0, 2_000, 4_000, 6_000, 8_000, 10_000]
    folds = ConstantLevel().fit_folds(frame, "a", where, edges)
    for (lo, hi), model in zip(itertools.pairwise(edges), folds, strict=True):
        kept = usable.copy()
        kept[lo:hi] = False
        assert _bits([model.level_]) == _bits([np.median(values[kept])])
