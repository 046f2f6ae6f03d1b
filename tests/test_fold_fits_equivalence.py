"""Out-of-fold fits from one pass over the window equal the fits refitted on each fold's rows.

``out_of_fold`` fits the closed-form families (``ar``, ``cross``, and ``pca`` through the
shared moments) of every fold from the moments of each block, merged over the blocks a fold
keeps (``ModelSelection.fold_moments``), and ``constant`` from the usable values gathered
once. Here the residuals and the thresholds calibrated on them are compared with the
straightforward way, each fold's model fitted anew on its rows (the previous implementation,
kept below as the reference), on data with NaNs, idle zeros, masked rows and windows longer
than one block of rows.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from ModelSelection import ModelError, SharedMoments, build_model, fit_family, fold_moments
from ModelSelection._base import BLOCK_ROWS, Moments, blocked_moments, stacker
from ModelTraining import TrainingError, out_of_fold
from Thresholding import ThresholdCalibrator, ThresholdPolicy
from Thresholding.selection import SMALL

TOLERANCE = 1e-9


def _refit_reference(
    frame: pd.DataFrame,
    specs: dict[str, tuple[str, dict]],
    folds: int,
    max_rows: int | None = None,
    where: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """The out-of-fold residuals as computed before: every fold's models fitted on its rows."""
    start = 0 if max_rows is None else max(0, len(frame) - max_rows)
    window = frame.iloc[start:]
    allowed = np.ones(len(frame), dtype=bool) if where is None else where.copy()
    allowed = allowed[start:]
    n = len(window)
    axes = list(specs)
    view = window[["time_s", *axes]]
    edges = np.linspace(0, n, folds + 1).round().astype(int)
    residuals = {axis: np.full(n, np.nan) for axis in axes}
    for lo, hi in itertools.pairwise(edges.tolist()):
        fit_rows = allowed.copy()
        fit_rows[lo:hi] = False
        shared = SharedMoments(view, axes, fit_rows)
        for axis in axes:
            family, params = specs[axis]
            try:
                model = fit_family(build_model(family, params), view, axis, fit_rows, shared)
            except ModelError as exc:
                raise TrainingError(f"rows {lo}-{hi}: {exc}") from exc
            context = max(lo - model.lookback_, 0)
            part = view.iloc[context:hi]
            predicted = model.predict(part, axis)[lo - context :]
            actual = part[axis].to_numpy(dtype=np.float64)[lo - context :]
            ok = np.isfinite(actual) & (actual != 0.0) & allowed[lo:hi]
            residuals[axis][lo:hi] = np.where(ok, actual - predicted, np.nan)
    return residuals


def _telemetry(n: int, seed: int = 0) -> pd.DataFrame:
    """Three related axes: an oscillation ``a``, ``b = 2a + c``, noise ``c``; with missing
    readings, idle stretches (0) and a few infinite values."""
    rng = np.random.default_rng(seed)
    a = np.zeros(n)
    noise = rng.normal(0, 1.0, n)
    for t in range(2, n):
        a[t] = 1.6 * a[t - 1] - 0.9 * a[t - 2] + noise[t]
    a += 50.0
    c = 4.0 + rng.normal(0, 1.0, n)
    b = 2 * a + c + rng.normal(0, 0.3, n)
    frame = pd.DataFrame({"time_s": np.arange(n, dtype=float) * 0.5, "a": a, "b": b, "c": c})
    for axis in "abc":
        values = frame[axis].to_numpy(copy=True)
        values[rng.random(n) < 0.02] = np.nan
        idle = rng.integers(0, n - 40, 3)
        for begin in idle:
            values[begin : begin + 40] = 0.0
        values[rng.integers(0, n, 2)] = np.inf
        frame[axis] = values
    return frame


SPECS = {
    "constant": {axis: ("constant", {}) for axis in "abc"},
    "ar": {axis: ("ar", {"lags": 2}) for axis in "abc"},
    "ar-long": {"a": ("ar", {"lags": 8}), "b": ("ar", {"lags": 1}), "c": ("ar", {"lags": 4})},
    "ar-exog": {axis: ("ar", {"lags": 2, "exog": True, "alpha": 0.01}) for axis in "abc"},
    "cross": {axis: ("cross", {"alpha": 0.01}) for axis in "abc"},
    "pca": {"a": ("pca", {"components": 1}), "b": ("pca", {"components": 2}), "c": ("pca", {})},
    "mixed": {"a": ("ar", {"lags": 2}), "b": ("cross", {"alpha": 0.1}), "c": ("constant", {})},
    "others": {"a": ("linear", {}), "b": ("spline", {"knots": 4}), "c": ("constant", {})},
}


def _mask(n: int, seed: int = 1) -> np.ndarray:
    where = np.ones(n, dtype=bool)
    where[n // 3 : n // 3 + 57] = False  # a labelled incident
    where[np.random.default_rng(seed).integers(0, n, 25)] = False
    return where


@pytest.mark.parametrize("name", list(SPECS))
@pytest.mark.parametrize(
    ("n", "folds", "max_rows", "masked"),
    [(3_000, 5, None, True), (3_001, 2, 2_500, False), (2 * BLOCK_ROWS + 1_234, 5, None, True)],
)
def test_fold_fits_give_the_refitted_residuals(name, n, folds, max_rows, masked):
    frame = _telemetry(n, seed=n)
    where = _mask(n) if masked else None
    held = out_of_fold(frame, SPECS[name], folds=folds, max_rows=max_rows, where=where)
    expected = _refit_reference(frame, SPECS[name], folds, max_rows, where)
    for axis, residuals in expected.items():
        np.testing.assert_array_equal(np.isnan(held.residuals[axis]), np.isnan(residuals))
        np.testing.assert_allclose(
            held.residuals[axis], residuals, rtol=TOLERANCE, atol=TOLERANCE, equal_nan=True
        )
        assert np.count_nonzero(np.isfinite(residuals)) > n // 3  # the test compares something


@pytest.mark.parametrize("name", ["ar", "cross", "pca", "mixed"])
def test_fold_fits_give_the_same_thresholds(name):
    frame = _telemetry(6_000, seed=7)
    held = out_of_fold(frame, SPECS[name], folds=5)
    expected = _refit_reference(frame, SPECS[name], 5)
    config = ThresholdPolicy()
    ours = ThresholdCalibrator(config).fit(held.residuals, 0.5).to_dict()
    theirs = ThresholdCalibrator(config).fit(expected, 0.5).to_dict()
    assert ours.keys() == theirs.keys() == set("abc")
    for channel, record in theirs.items():
        for key in ("MinC", "MaxC", "MinC_low", "MaxC_low"):
            if record.get(key) is None:
                assert ours[channel].get(key) is None
            else:
                assert ours[channel][key] == pytest.approx(record[key], rel=TOLERANCE, abs=1e-12)
        assert isinstance(record["MaxC"], float)


def test_fold_moments_are_the_moments_of_the_rows_outside_each_block():
    rng = np.random.default_rng(3)
    n = BLOCK_ROWS + 5_000
    arrays = [rng.normal(10.0 * k, 1.0 + k, n) for k in range(3)]
    arrays[1][rng.random(n) < 0.05] = np.nan
    rows = rng.random(n) < 0.9
    edges = [0, 700, BLOCK_ROWS - 3, BLOCK_ROWS + 100, n]
    folds = fold_moments(stacker(arrays), rows, 3, edges)
    assert len(folds) == 4
    for (lo, hi), moments in zip(itertools.pairwise(edges), folds, strict=True):
        outside = rows.copy()
        outside[lo:hi] = False
        outside &= np.isfinite(arrays[1])
        data = np.column_stack([array[outside] for array in arrays])
        assert moments.n == data.shape[0]
        np.testing.assert_allclose(moments.mean, data.mean(axis=0), rtol=1e-13)
        centred = data - data.mean(axis=0)
        np.testing.assert_allclose(moments.comoment, centred.T @ centred, rtol=1e-11)
        direct = blocked_moments(stacker(arrays), outside, 3)
        np.testing.assert_allclose(moments.comoment, direct.comoment, rtol=1e-11)


def test_merging_no_rows_changes_nothing():
    moments = Moments(2)
    moments.add(np.array([[1.0, 2.0], [3.0, 5.0]]))
    moments.merge(Moments(2))
    assert moments.n == 2
    np.testing.assert_array_equal(moments.mean, [2.0, 3.5])
    np.testing.assert_array_equal(moments.comoment, [[2.0, 3.0], [3.0, 4.5]])
    empty = Moments(2)
    empty.merge(moments)
    assert empty.n == 2
    np.testing.assert_array_equal(empty.comoment, moments.comoment)


def test_constant_folds_beyond_the_gathered_size_give_the_refitted_residuals():
    n = SMALL + 20_001  # more usable values than are gathered for NumPy: each fold refitted
    frame = _telemetry(n, seed=5)
    specs = {"a": ("constant", {}), "c": ("constant", {})}
    held = out_of_fold(frame, specs, folds=3, max_rows=None, where=_mask(n))
    expected = _refit_reference(frame, specs, 3, None, _mask(n))
    for axis, residuals in expected.items():
        np.testing.assert_array_equal(held.residuals[axis], residuals)


@pytest.mark.parametrize("family", ["ar", "cross", "pca", "constant"])
def test_a_fold_without_enough_rows_fails_as_the_refit_did(family):
    frame = _telemetry(400, seed=2)
    for axis in "abc":
        frame.loc[200:, axis] = 0.0  # only the first half runs: fold 0's complement is idle
    specs = {axis: (family, {}) for axis in "abc"}
    with pytest.raises(TrainingError) as reference:
        _refit_reference(frame, specs, 2)
    with pytest.raises(TrainingError, match="without rows 0-200") as ours:
        out_of_fold(frame, specs, folds=2)
    assert str(ours.value.__cause__) == str(reference.value.__cause__)
