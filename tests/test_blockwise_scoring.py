"""The block-by-block scans of scoring give exactly what the whole-array formulas give.

Scoring reads long windows in cache-sized blocks (drift block sums, levels, residuals, events'
runs, scored health). Each test builds data longer than a few blocks, with runs, NaN and idle
stretches across block edges, and compares the result with the plain formula bit for bit.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from DataExtractionAnalysis import count_out_of_range, epoch_seconds
from DataExtractionAnalysis.health import _BLOCK_ROWS, _run_length
from ModelTraining.trainer import _RESIDUAL_BLOCK, _residual
from Scoring import assign_levels
from Scoring.drift import block_sums, standardise
from Scoring.drift.stats import _CHUNK_ROWS
from Scoring.events import _changes, _level_runs
from Scoring.levels import active_mask
from Thresholding import run_bounds


def _noisy(rng: np.random.Generator, size: int) -> np.ndarray:
    values = rng.standard_normal(size)
    values[rng.random(size) < 0.1] = 0.0
    values[rng.random(size) < 0.05] = np.nan
    values[size // 3 : size // 3 + 5000] = np.nan  # a missing stretch across a block edge
    values[-3:] = -0.0
    return values


@pytest.mark.parametrize("block_seconds", [7.0, 3600.0, 1e9])
def test_block_sums_equal_one_reduceat_over_the_whole_array(block_seconds: float) -> None:
    rng = np.random.default_rng(0)
    size = 3 * _CHUNK_ROWS + 123
    seconds = 1.7e9 + np.cumsum(rng.exponential(0.5, size))
    z = {"a": _noisy(rng, size), "b": _noisy(rng, size).astype(np.float32)}
    got = block_sums(seconds, z, block_seconds)

    ids = np.floor(seconds / block_seconds).astype(np.int64)
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    ends = np.r_[starts[1:], size] - 1
    np.testing.assert_array_equal(got.ids, ids[starts])
    np.testing.assert_array_equal(got.first, seconds[starts])
    np.testing.assert_array_equal(got.last, seconds[ends])
    for axis, values in z.items():
        missing = np.isnan(values)
        sums = np.add.reduceat(np.where(missing, 0.0, values), starts)
        counts = (ends - starts + 1) - np.add.reduceat(missing, starts, dtype=np.int64)
        assert got.sums[axis].dtype == sums.dtype
        assert got.sums[axis].tobytes() == sums.tobytes()  # bit for bit, -0.0 included
        np.testing.assert_array_equal(got.counts[axis], counts)


def test_block_sums_read_a_function_of_rows_like_the_array_it_gives() -> None:
    rng = np.random.default_rng(1)
    size = 2 * _CHUNK_ROWS + 7
    seconds = np.arange(size) * 1.891
    residuals, values = rng.standard_normal(size) * 4, _noisy(rng, size)
    whole = standardise(residuals, 0.1, 0.7, 3.0, values)
    asked: list[tuple[int, int]] = []

    def rows(lo: int, hi: int) -> np.ndarray:
        asked.append((lo, hi))
        return standardise(residuals[lo:hi], 0.1, 0.7, 3.0, values[lo:hi])

    lazy = block_sums(seconds, {"a": rows}, 3600.0)
    eager = block_sums(seconds, {"a": whole}, 3600.0)
    assert lazy.sums["a"].tobytes() == eager.sums["a"].tobytes()
    np.testing.assert_array_equal(lazy.counts["a"], eager.counts["a"])
    assert asked[0][0] == 0 and asked[-1][1] == size and len(asked) > 1
    assert all(hi == lo for (_, hi), (lo, _) in itertools.pairwise(asked))


def test_block_sums_of_no_samples() -> None:
    got = block_sums(np.empty(0), {"a": np.empty(0)}, 60.0)
    assert len(got) == 0 and got.sums["a"].size == 0 and got.counts["a"].dtype == np.int64


def test_active_mask_is_neither_zero_nor_nan() -> None:
    values = _noisy(np.random.default_rng(2), 2 * _BLOCK_ROWS + 9)
    values[5] = np.inf
    np.testing.assert_array_equal(active_mask(values), (values > 0) | (values < 0))
    assert active_mask(values).dtype == bool


@pytest.mark.parametrize(
    ("maxc", "maxc_low"),
    [(1.5, -1.5), (0.8, -0.8)],  # error beyond the alert level, and (odd) inside it
)
def test_levels_over_many_blocks_equal_the_mask_formula(maxc: float, maxc_low: float) -> None:
    rng = np.random.default_rng(3)
    size = 3 * _BLOCK_ROWS + 11
    values = _noisy(rng, size)
    residuals = np.repeat(rng.standard_normal(size // 4 + 1), 4)[:size]
    residuals[_BLOCK_ROWS - 2 : _BLOCK_ROWS + 3] = 9.0  # a run across a block edge
    codes = assign_levels(
        values, residuals, minc=1.0, maxc=maxc, t_long=3, t_short=2, minc_low=-1.0,
        maxc_low=maxc_low,
    )  # fmt: skip
    active = (values > 0) | (values < 0)
    expected = active.astype(np.int8)
    for beyond, alert, error in ((np.greater, 1.0, maxc), (np.less, -1.0, maxc_low)):
        for mask, steps, level in (
            (beyond(residuals, alert), 3, 3),
            (beyond(residuals, error), 2, 4),
        ):
            starts, ends = run_bounds(mask & active)
            for start, end in zip(starts, ends, strict=True):
                if end - start >= steps:
                    expected[start:end] = np.maximum(expected[start:end], level)
    np.testing.assert_array_equal(codes, expected)
    assert (codes == 4).any()  # the run across the block edge, at least


def test_event_runs_from_level_changes_equal_run_bounds() -> None:
    rng = np.random.default_rng(4)
    for size in (0, 1, 2, 50, 1000):
        for _ in range(20):
            codes = np.repeat(rng.integers(0, 5, size), rng.integers(1, 4, size)).astype(np.int8)
            changes = _changes(codes)
            for flags in (lambda c: c >= 3, lambda c: c >= 4, lambda c: c == 2):
                got, want = _level_runs(codes, changes, flags), run_bounds(flags(codes))
                for part, reference in zip(got, want, strict=True):
                    assert part.dtype == reference.dtype
                    np.testing.assert_array_equal(part, reference)


def test_residuals_over_many_blocks() -> None:
    rng = np.random.default_rng(5)
    values = _noisy(rng, 2 * _RESIDUAL_BLOCK + 5)
    predicted = rng.standard_normal(values.size)
    expected = values - predicted
    expected[values == 0.0] = np.nan
    assert _residual(values, predicted).tobytes() == expected.tobytes()
    own = predicted.copy()
    assert _residual(values, own, out=True) is own
    assert own.tobytes() == expected.tobytes()


def test_run_length_and_out_of_range_over_many_blocks() -> None:
    size = 2 * _BLOCK_ROWS + 17
    values = np.full(size, 2.5)
    assert _run_length(values, 2.5) == size
    values[_BLOCK_ROWS + 3] = 1.0
    assert _run_length(values, 2.5) == _BLOCK_ROWS + 3
    assert _run_length(values[::-1], 2.5) == size - _BLOCK_ROWS - 4
    assert _run_length(values, 0.0) == 0

    noisy = _noisy(np.random.default_rng(6), size) * 3
    active = (noisy > 0) | (noisy < 0)
    outside = active & ((noisy < -2.0) | (noisy > 2.5))
    assert count_out_of_range({"a": noisy}, {"a": (-2.0, 2.5)}) == {
        "a": (int(outside.sum()), int(active.sum()))
    }


def test_epoch_seconds_of_nanosecond_columns() -> None:
    stamps = pd.date_range("2024-03-31 00:59:59", periods=5, freq="1.891s", unit="ns")
    naive = epoch_seconds(pd.Series(stamps))  # naive = UTC
    aware = epoch_seconds(pd.Series(stamps.tz_localize("Europe/Berlin")))  # CET, UTC + 1 h
    nanoseconds = [1_711_846_799_000_000_000 + 1_891_000_000 * k for k in range(5)]
    np.testing.assert_array_equal(naive, np.array(nanoseconds) / 1e9)
    np.testing.assert_array_equal(naive - aware, np.full(5, 3600.0))
