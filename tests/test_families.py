"""Model families with exactly known answers, and choosing one per axis by validation."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import IsolationForest
from sklearn.exceptions import NotFittedError

from ModelSelection import (
    DEFAULT_CANDIDATES,
    MODEL_FAMILIES,
    ARModel,
    ConstantLevel,
    CrossAxis,
    IsolationForestMachine,
    ModelError,
    PCAMachine,
    PCAReconstruction,
    PiecewiseLinear,
    SharedMoments,
    build_model,
    robust_spread,
    select_families,
)
from ModelTraining import machine_rows, out_of_fold


def _frame(**columns) -> pd.DataFrame:
    n = len(next(iter(columns.values())))
    return pd.DataFrame({"time_s": np.arange(n, dtype=float), **columns})


def _oscillation(n: int, seed: int = 0) -> np.ndarray:
    """A vibration: y_t = 1.6 y_{t-1} - 0.9 y_{t-2} + e_t around 50 (only ``ar`` explains it)."""
    rng = np.random.default_rng(seed)
    y = np.zeros(n)
    noise = rng.normal(0, 1.0, n)
    for t in range(2, n):
        y[t] = 1.6 * y[t - 1] - 0.9 * y[t - 2] + noise[t]
    return 50.0 + y


def _combinations(n: int, seed: int = 0) -> pd.DataFrame:
    """b = 2a + 3c + 1 (+ tiny noise): every axis is a linear function of the other two."""
    rng = np.random.default_rng(seed)
    a = 10 + rng.normal(0, 1, n)
    c = 4 + rng.normal(0, 1, n)
    b = 2 * a + 3 * c + 1 + rng.normal(0, 0.01, n)
    return _frame(a=a, b=b, c=c)


# --- each family ------------------------------------------------------------------------


def test_constant_is_the_median_of_usable_rows():
    frame = _frame(a=[1.0, 0.0, 3.0, np.nan, 100.0, 2.0])
    model = ConstantLevel().fit(frame, "a")
    assert model.level_ == 2.5  # median of 1, 3, 100, 2
    np.testing.assert_array_equal(model.predict(frame, "a"), np.full(6, 2.5))
    assert (model.shift_gain(), model.lookback_, model.inputs_) == (1.0, 0, ())


def test_spline_recovers_a_piecewise_line_and_holds_its_ends():
    t = np.arange(0.0, 101.0)
    y = np.where(t < 50, 2.0 * t, 100.0 - (t - 50))  # knot at 50: rises, then falls
    frame = pd.DataFrame({"time_s": t, "a": 5.0 + y})
    model = PiecewiseLinear(knots=1, alpha=0.0).fit(frame, "a")
    np.testing.assert_allclose(model.knot_times_, [0.0, 50.0, 100.0])
    np.testing.assert_allclose(model.coef_, [5.0, 105.0, 55.0], atol=1e-9)
    later = pd.DataFrame({"time_s": [-10.0, 25.0, 150.0, 1e6], "a": 0.0})
    np.testing.assert_allclose(model.predict(later, "a"), [5.0, 55.0, 55.0, 55.0], atol=1e-9)


def test_ar_recovers_its_coefficients_and_gain():
    y = _oscillation(20_000)
    model = ARModel(lags=2, alpha=0.0).fit(_frame(a=y), "a")
    np.testing.assert_allclose(model.coef_, [1.6, -0.9], atol=0.01)
    assert model.shift_gain() == pytest.approx(1 - 1.6 + 0.9, abs=0.01)
    assert (model.lookback_, model.inputs_) == (2, ())


def test_ar_predictions_need_only_its_look_back_rows():
    frame = _frame(a=_oscillation(500))
    model = ARModel(lags=4).fit(frame, "a")
    whole = model.predict(frame, "a")
    tail = model.predict(frame.iloc[300 - 4 :], "a")[4:]
    np.testing.assert_array_equal(tail, whole[300:])


def test_ar_fills_idle_lags_with_the_training_mean():
    frame = _frame(a=[4.0, 6.0, 4.0, 6.0, 4.0, 6.0, 4.0, 6.0])
    model = ARModel(lags=1, alpha=0.0).fit(frame, "a")
    assert model.coef_[0] == pytest.approx(-1.0)  # a_t = 10 - a_{t-1}
    assert model.fill_[0] == pytest.approx(34 / 7)  # mean of the lags of rows 1..7
    after_stop = _frame(a=[0.0, 4.0])
    # The first row has no lag (NaN) and the second's lag is idle (0): both use the mean.
    np.testing.assert_allclose(model.predict(after_stop, "a"), [10 - 34 / 7, 10 - 34 / 7])


def test_cross_recovers_exact_linear_relations():
    frame = _combinations(2_000)
    model = CrossAxis(alpha=0.0).fit(frame, "b")
    assert model.others_ == ("a", "c")
    np.testing.assert_allclose(model.coef_, [2.0, 3.0], atol=1e-3)
    assert model.intercept_ == pytest.approx(1.0, abs=0.02)
    assert model.inputs_ == ("a", "c") and model.shift_gain() == 1.0


def test_cross_fills_a_missing_input_with_its_mean():
    frame = _combinations(2_000)
    model = CrossAxis(alpha=0.0).fit(frame, "b")
    probe = pd.DataFrame({"time_s": [0.0], "a": [np.nan], "b": [0.0], "c": [4.0]})
    expected = model.coef_ @ [model.fill_[0], 4.0] + model.intercept_
    assert model.predict(probe, "b")[0] == pytest.approx(expected)
    assert model.fill_[0] == pytest.approx(frame["a"].mean())


def test_shared_moments_give_the_same_cross_model():
    frame = _combinations(70_000)  # several blocks
    where = np.arange(70_000) % 3 != 0
    alone = CrossAxis(alpha=0.01).fit(frame, "a", where=where)
    shared = SharedMoments(frame, ["a", "b", "c"], where)
    together = CrossAxis(alpha=0.01).fit(frame, "a", where=where, shared=shared)
    np.testing.assert_allclose(together.coef_, alone.coef_, rtol=1e-10)
    assert together.intercept_ == pytest.approx(alone.intercept_, rel=1e-10)
    assert where.sum() == 46_666  # the caller's mask is not edited by the fit


def test_pca_reconstructs_a_rank_one_set_of_axes():
    rng = np.random.default_rng(1)
    s = rng.normal(size=3_000)
    frame = _frame(a=5 + s, b=2 - 3 * s, c=1 + 0.5 * s + rng.normal(0, 1e-6, 3_000))
    model = PCAReconstruction(components=1).fit(frame, "c")
    np.testing.assert_allclose(model.predict(frame, "c"), frame["c"], atol=1e-4)
    # Three axes of one component: each carries a third of it, so a shift keeps 2/3.
    assert model.shift_gain() == pytest.approx(2 / 3, abs=1e-3)
    with pytest.raises(ModelError, match="components must be below the number of axes"):
        PCAReconstruction(components=3).fit(frame, "a")


@pytest.mark.parametrize(
    ("family", "params", "axis"),
    [
        ("constant", {}, "a"),
        ("linear", {}, "a"),
        ("spline", {"knots": 3}, "a"),
        ("ar", {"lags": 3, "exog": True}, "a"),
        ("cross", {"alpha": 0.1}, "b"),
        ("pca", {"components": 2}, "b"),
    ],
)
def test_every_family_round_trips_through_json(family, params, axis):
    frame = _combinations(300)
    model = build_model(family, params).fit(frame, axis)
    data = json.loads(json.dumps(model.to_dict()))
    assert data["family"] == family
    restored = MODEL_FAMILIES[family].from_dict(data)
    np.testing.assert_array_equal(restored.predict(frame, axis), model.predict(frame, axis))
    assert restored.to_dict() == data
    assert restored.params() == model.params()


@pytest.mark.parametrize("family", sorted(MODEL_FAMILIES))
def test_predict_before_fit_is_not_fitted(family):
    with pytest.raises(NotFittedError, match="is not fitted yet"):
        MODEL_FAMILIES[family]().predict(_combinations(10), "a")


@pytest.mark.parametrize(
    ("family", "data", "message"),
    [
        ("constant", {"family": "constant"}, "key 'level' must be a finite number"),
        ("spline", {"family": "spline", "knots": 1, "knot_times": [0, 1]}, "of length 3"),
        ("ar", {"family": "ar", "lags": 2, "others": [], "coef": [1.0]}, "of length 2"),
        ("cross", {"family": "cross", "others": "a"}, "list of column names"),
        ("pca", {"family": "pca", "columns": ["a", "b"], "axis": "z"}, "one of its columns"),
        ("cross", {"family": "ar"}, "expected family 'cross'"),
    ],
)
def test_from_dict_rejects_malformed(family, data, message):
    with pytest.raises(ModelError, match=message):
        MODEL_FAMILIES[family].from_dict(data)


@pytest.mark.parametrize(
    ("family", "params", "message"),
    [
        ("spline", {"knots": -1}, "knots must be an integer >= 0"),
        ("ar", {"lags": 0}, "lags must be an integer >= 1"),
        ("cross", {"alpha": -1.0}, "alpha must be a number >= 0"),
    ],
)
def test_bad_parameters_are_named(family, params, message):
    with pytest.raises(ModelError, match=message):
        build_model(family, params).fit(_combinations(50), "a")


# --- machine models -----------------------------------------------------------------------


def test_pca_machine_t2_of_standardised_points():
    rng = np.random.default_rng(2)
    frame = _frame(a=rng.normal(0, 1, 5_000), b=rng.normal(0, 2, 5_000))
    model = PCAMachine(components=2).fit(frame, ["a", "b"])
    probe = pd.DataFrame({"a": [frame["a"].mean() + frame["a"].std()], "b": [frame["b"].mean()]})
    # One standard deviation on one of two independent axes: T² = 1.
    assert model.score(probe)[0] == pytest.approx(1.0, rel=0.02)


def test_isolation_forest_scores_like_scikit_learn_and_round_trips():
    rng = np.random.default_rng(3)
    frame = _frame(a=rng.normal(size=2_000), b=rng.normal(size=2_000))
    model = IsolationForestMachine(trees=20, seed=7).fit(frame, ["a", "b"])
    standardised = (frame[["a", "b"]].to_numpy() - model.mean_) / model.scale_
    reference = IsolationForest(n_estimators=20, max_samples=256, random_state=7).fit(standardised)
    np.testing.assert_allclose(model.score(frame), -reference.score_samples(standardised))
    restored = IsolationForestMachine.from_dict(json.loads(json.dumps(model.to_dict())))
    np.testing.assert_array_equal(restored.score(frame), model.score(frame))


# --- selection ------------------------------------------------------------------------------


def test_selection_chooses_ar_for_a_vibration():
    frame = _frame(a=_oscillation(5_000))
    selection = select_families(frame, ["a"], DEFAULT_CANDIDATES)
    assert selection.chosen["a"][0] == "ar"
    rows = {row.family: row for row in selection.table}
    assert rows["ar"].chosen and not rows["constant"].chosen
    assert rows["ar"].shift < rows["constant"].shift
    assert selection.criterion == "detectable-shift"


def test_selection_chooses_a_multivariate_family_for_linear_combinations():
    frame = _combinations(3_000)
    selection = select_families(frame, ["a", "b", "c"], DEFAULT_CANDIDATES)
    assert {family for family, _ in selection.chosen.values()} <= {"cross", "pca"}
    without_pca = select_families(frame, ["a", "b", "c"], ["constant", "linear", "ar", "cross"])
    assert {family for family, _ in without_pca.chosen.values()} == {"cross"}


def test_selection_keeps_the_simplest_family_on_pure_noise():
    rng = np.random.default_rng(4)
    frame = _frame(a=20 + rng.normal(0, 1, 4_000), b=5 + rng.normal(0, 1, 4_000))
    selection = select_families(frame, ["a", "b"], DEFAULT_CANDIDATES)
    assert selection.chosen == {"a": ("constant", {}), "b": ("constant", {})}


def test_selection_follows_a_trend_with_the_line_not_the_flat_spline():
    rng = np.random.default_rng(5)
    t = np.arange(4_000.0)
    frame = pd.DataFrame({"time_s": t, "a": 3 + 0.01 * t + rng.normal(0, 0.5, t.size)})
    assert select_families(frame, ["a"], DEFAULT_CANDIDATES).chosen["a"][0] == "linear"


def test_selection_validates_on_running_rows_when_the_window_ends_in_a_stop():
    # The trend of the previous test, then a stop of 30 % of the window (every axis 0): the
    # tail is the last 20 % of the running rows, so the line still wins (a tail of zeros
    # compares nothing and would keep the first candidate, constant).
    rng = np.random.default_rng(5)
    t = np.arange(4_000.0)
    a = 3 + 0.01 * t + rng.normal(0, 0.5, t.size)
    a[2_800:] = 0.0
    selection = select_families(pd.DataFrame({"time_s": t, "a": a}), ["a"], DEFAULT_CANDIDATES)
    assert selection.chosen["a"][0] == "linear"
    assert selection.tail_rows == 4_000 - 2_240  # the tail starts at 80 % of 2,800 running rows


def test_selection_with_labels_in_the_tail_uses_the_auc():
    rng = np.random.default_rng(6)
    n = 4_000
    frame = _frame(a=10 + rng.normal(0, 1, n))
    labelled = np.zeros(n, dtype=bool)
    labelled[3_800:3_850] = True
    frame.loc[labelled, "a"] += 6.0
    selection = select_families(
        frame, ["a"], ["constant", "linear"], where=~labelled, labelled={"a": labelled}
    )
    assert selection.criterion == "label-auc"
    assert all(row.auc is not None and row.auc > 0.99 for row in selection.table)


def test_tuning_with_optuna_is_repeatable():
    frame = _frame(a=_oscillation(3_000))
    first = select_families(frame, ["a"], ["constant", "ar"], trials=6, seed=3)
    second = select_families(frame, ["a"], ["constant", "ar"], trials=6, seed=3)
    assert first.chosen == second.chosen
    assert first.chosen["a"][0] == "ar"
    assert first.to_dict()["trials"] == 6


@pytest.mark.parametrize("trials", [0, 12], ids=["grid", "optuna"])  # TPE after 10 trials
def test_selection_on_threads_equals_one_axis_after_another(trials: int):
    """Axes compared at once give the very same table (every figure, in axis order)."""
    frame = _combinations(3_000)
    frame["d"] = _oscillation(3_000, seed=2)
    axes = ["a", "b", "c", "d"]
    serial = select_families(frame, axes, DEFAULT_CANDIDATES, trials=trials, seed=1)
    threaded = select_families(frame, axes, DEFAULT_CANDIDATES, trials=trials, seed=1, n_jobs=2)
    assert threaded.to_dict() == serial.to_dict()
    assert [row.axis for row in threaded.table] == [a for a in axes for _ in DEFAULT_CANDIDATES]
    assert threaded.chosen["d"][0] == "ar"


def test_selection_table_is_stored_as_plain_json():
    selection = select_families(_combinations(500), ["a", "b"], ["constant", "cross"])
    data = json.loads(json.dumps(selection.to_dict()))
    assert data["chosen"]["a"]["family"] in {"constant", "cross"}
    assert len(data["table"]) == 4
    assert {row["axis"] for row in data["table"]} == {"a", "b"}
    assert sum(row["chosen"] for row in data["table"]) == 2


def test_robust_spread_is_the_normal_sd_and_sees_jumps():
    rng = np.random.default_rng(7)
    assert robust_spread(rng.normal(0, 2, 200_000)) == pytest.approx(2.0, rel=0.01)
    # Sample-and-hold: zero most of the time, jumps 10 % of the time; the MAD would say 0.
    held = np.where(np.arange(1_000) % 10 == 0, 5.0, 0.0)
    assert robust_spread(held) == pytest.approx(5.0 / 1.959964)


# --- out-of-fold residuals ------------------------------------------------------------------


def test_out_of_fold_residuals_come_from_the_other_folds():
    frame = _frame(a=np.arange(1.0, 11.0))
    held = out_of_fold(frame, {"a": ("constant", {})}, folds=2)
    # Rows 0-4 are predicted by the median of 6..10 (8), rows 5-9 by that of 1..5 (3).
    np.testing.assert_array_equal(held.residuals["a"], [-7, -6, -5, -4, -3, 3, 4, 5, 6, 7])
    assert (held.start, held.rows, held.folds, held.machine) == (0, 10, 2, None)


def test_out_of_fold_uses_the_most_recent_rows_and_skips_masked_ones():
    frame = _frame(a=np.arange(1.0, 21.0))
    where = np.ones(20, dtype=bool)
    where[15] = False
    held = out_of_fold(frame, {"a": ("constant", {})}, folds=2, max_rows=10, where=where)
    assert held.start == 10
    # Last 10 rows (11..20): fold 1 = 11..15 predicted by median(16, 17, 18, 19, 20) with 16
    # masked -> median of 17..20 = 18.5; row 15 (value 16) itself stays NaN.
    np.testing.assert_array_equal(held.residuals["a"][:5], np.arange(11.0, 16.0) - 18.5)
    assert np.isnan(held.residuals["a"][5])


@pytest.mark.parametrize("machine", ["pca", "iforest"])
def test_out_of_fold_machine_scores_skip_idle_and_masked_rows(machine):
    # Scoring gives a row where every axis is idle (0) no machine level, and a masked row
    # (a labelled incident) is not normal: neither may widen the machine threshold.
    frame = _combinations(200)
    frame.loc[[20, 21, 150], ["a", "b", "c"]] = 0.0  # the machine stands still
    frame.loc[60, "a"] = 0.0  # one axis idle, the others run: still scored
    where = np.ones(200, dtype=bool)
    where[100:105] = False
    specs = {axis: ("constant", {}) for axis in "abc"}
    held = out_of_fold(frame, specs, folds=2, where=where, machine=machine)
    expected_nan = np.zeros(200, dtype=bool)
    expected_nan[[20, 21, 150, *range(100, 105)]] = True
    np.testing.assert_array_equal(np.isnan(held.machine), expected_nan)
    np.testing.assert_array_equal(machine_rows(frame, ["a", "b", "c"], where), ~expected_nan)


def test_the_validation_tail_keeps_at_least_the_last_running_row() -> None:
    from ModelSelection.selector import _tail_start

    frame = pd.DataFrame({"a": [1.0, 2.0, 0.0, 0.0]})  # two running rows, then a stop
    assert _tail_start(frame, ["a"], np.ones(4, dtype=bool), 0.0001) == 1
    assert _tail_start(frame, ["a"], np.ones(4, dtype=bool), 0.5) == 1
    assert _tail_start(frame, ["a"], np.array([True, False, True, True]), 0.5) == 2  # fallback


def test_shift_into_writes_the_lagged_rows_with_nan_before_the_first():
    from ModelSelection.families import _shift_into

    array = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    cases = [
        (0, 1, 3, [2.0, 3.0, 4.0]),  # no lag: the rows themselves
        (2, 1, 3, [np.nan, 1.0, 2.0]),  # reaches one row before the first
        (1, 3, 2, [3.0, 4.0]),  # all inside
        (4, 0, 3, [np.nan, np.nan, np.nan]),  # every row before the first
        (9, 2, 3, [np.nan, np.nan, np.nan]),  # a lag longer than the array
    ]
    for lag, start, size, expected in cases:
        block = np.full((size, 2), -1.0)
        _shift_into(block[:, 0], array, lag, start)
        np.testing.assert_array_equal(block[:, 0], expected)
        np.testing.assert_array_equal(block[:, 1], -1.0)  # the other column untouched


def test_usable_lagged_shifts_the_flags_and_is_false_before_the_first_row():
    from ModelSelection.families import _usable_lagged

    flags = np.array([True, False, True, True])
    assert _usable_lagged(flags, 0) is flags
    np.testing.assert_array_equal(_usable_lagged(flags, 1), [False, True, False, True])
    np.testing.assert_array_equal(_usable_lagged(flags, 3), [False, False, False, True])
    np.testing.assert_array_equal(_usable_lagged(flags, 6), [False] * 4)


def test_blocked_moments_of_finite_rows_skip_no_row_the_check_would_keep():
    from ModelSelection._base import blocked_moments, stacker

    rng = np.random.default_rng(3)
    arrays = [rng.normal(size=50), rng.normal(size=50)]
    arrays[0][[4, 9]] = np.nan
    rows = np.isfinite(arrays[0]) & (np.arange(50) % 7 != 0)
    checked = blocked_moments(stacker(arrays), rows, 2)
    trusted = blocked_moments(stacker(arrays), rows, 2, finite=True)
    assert checked.n == trusted.n == int(np.count_nonzero(rows))
    np.testing.assert_array_equal(checked.mean, trusted.mean)
    np.testing.assert_array_equal(checked.comoment, trusted.comoment)
