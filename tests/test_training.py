"""Model training: per-axis fits on usable rows, predictions, residuals, serialisation."""

from __future__ import annotations

import json
import logging
import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import NotFittedError

from ModelSelection import LinearTrend, ModelConfig
from ModelTraining import AxisModelSet, TrainingError

AXES = ["axis1", "Axis #2"]


def _frame() -> pd.DataFrame:
    """axis1 = 2t + 1 and 'Axis #2' = -0.5t + 3.25, with idle zeros and NaNs that are off-line."""
    t = np.arange(10, dtype=np.float64)
    axis1 = 2.0 * t + 1.0
    axis2 = -0.5 * t + 3.25
    axis1[[2, 5]] = 0.0
    axis1[7] = np.nan
    axis2[[0, 1, 9]] = np.nan
    axis2[4] = 0.0
    ts = pd.to_datetime(1_700_000_000 + t * 1.891, unit="s", utc=True)
    return pd.DataFrame({"ts": ts, "time_s": t, "axis1": axis1, "Axis #2": axis2})


def _fitted(**kwargs) -> AxisModelSet:
    return AxisModelSet(LinearTrend, AXES, **kwargs).fit(_frame())


def test_fit_recovers_lines_ignoring_idle_and_missing_rows():
    model_set = _fitted()
    assert list(model_set.models_) == AXES
    assert model_set.models_["axis1"].coef_ == pytest.approx(2.0)
    assert model_set.models_["axis1"].intercept_ == pytest.approx(1.0)
    assert model_set.models_["Axis #2"].coef_ == pytest.approx(-0.5)
    assert model_set.models_["Axis #2"].intercept_ == pytest.approx(3.25)
    assert model_set.skipped_axes_ == []


def test_fit_report_counts_excluded_rows():
    assert _fitted().fit_report_ == {
        "axis1": {"rows_fitted": 7, "rows_excluded_zero": 2, "rows_excluded_nan": 1},
        "Axis #2": {"rows_fitted": 6, "rows_excluded_zero": 1, "rows_excluded_nan": 3},
    }


def test_idle_and_missing_rows_change_nothing_about_the_fit():
    rng = np.random.default_rng(0)
    t = np.arange(50, dtype=np.float64)
    busy = pd.DataFrame({"time_s": t, "a": 0.3 * t + 7.0 + rng.normal(0, 0.1, t.size)})
    with_idle = busy.copy()
    with_idle.loc[[3, 10, 11, 40], "a"] = [0.0, 0.0, np.nan, np.nan]
    reference = AxisModelSet(LinearTrend, ["a"]).fit(busy.drop(index=[3, 10, 11, 40]))
    model_set = AxisModelSet(LinearTrend, ["a"]).fit(with_idle)
    fitted, expected = model_set.models_["a"], reference.models_["a"]
    assert (fitted.coef_, fitted.intercept_) == (expected.coef_, expected.intercept_)
    assert model_set.fit_report_["a"] == {
        "rows_fitted": 46,
        "rows_excluded_zero": 2,
        "rows_excluded_nan": 2,
    }


def test_fit_does_not_mutate_input_and_returns_self():
    frame = _frame()
    before = frame.copy()
    model_set = AxisModelSet(LinearTrend, AXES)
    assert model_set.fit(frame) is model_set
    pd.testing.assert_frame_equal(frame, before)


def test_predict_adds_pred_and_residual_columns_on_a_new_frame():
    frame = _frame()
    before = frame.copy()
    out = _fitted().predict(frame)
    pd.testing.assert_frame_equal(frame, before)
    assert list(out.columns) == [
        *frame.columns,
        "axis1_pred",
        "axis1_res",
        "Axis #2_pred",
        "Axis #2_res",
    ]
    t = frame["time_s"].to_numpy()
    np.testing.assert_allclose(out["axis1_pred"], 2.0 * t + 1.0)
    np.testing.assert_allclose(out["Axis #2_pred"], -0.5 * t + 3.25)
    residual = out["axis1_res"].to_numpy()
    assert np.isnan(residual[[2, 5, 7]]).all()
    np.testing.assert_allclose(np.delete(residual, [2, 5, 7]), 0.0, atol=1e-12)
    assert np.isnan(out["Axis #2_res"].to_numpy()[[0, 1, 4, 9]]).all()


def test_residual_is_value_minus_prediction():
    frame = pd.DataFrame({"time_s": [0.0, 1.0, 2.0, 3.0], "a": [1.0, 2.0, 3.0, 4.0]})
    model_set = AxisModelSet(LinearTrend, ["a"]).fit(frame)
    shifted = frame.assign(a=[1.5, 0.0, 2.0, np.nan])
    out = model_set.predict(shifted)
    np.testing.assert_allclose(out["a_res"], [0.5, np.nan, -1.0, np.nan])


def test_residual_alone_equals_predicts_residual_column():
    frame = _frame()
    model_set = _fitted()
    predicted = model_set.predict(frame)
    for axis in AXES:
        residual = model_set.residual(frame, axis)
        np.testing.assert_array_equal(residual, predicted[f"{axis}_res"].to_numpy())
    np.testing.assert_array_equal(frame["axis1"].to_numpy(), _frame()["axis1"].to_numpy())


def test_residual_names_unfitted_axes_and_missing_columns():
    model_set = _fitted()
    with pytest.raises(TrainingError, match=r"axis 'axis9': it was not fitted; fitted axes"):
        model_set.residual(_frame(), "axis9")
    with pytest.raises(TrainingError, match=r"residuals needs column\(s\) 'time_s'"):
        model_set.residual(_frame().drop(columns="time_s"), "axis1")


@pytest.mark.parametrize(
    ("values", "min_rows", "usable"),
    [
        ([1.0, 0.0, 0.0, np.nan], 2, 1),
        ([0.0, 0.0, 0.0, 0.0], 2, 0),
        ([1.0, 2.0, 3.0, 0.0], 4, 3),
    ],
)
def test_short_axis_raises_by_default(values, min_rows, usable):
    frame = pd.DataFrame({"time_s": [0.0, 1.0, 2.0, 3.0], "good": [1.0, 2.0, 3.0, 4.0]})
    frame["short"] = values
    model_set = AxisModelSet(LinearTrend, ["good", "short"], min_rows=min_rows)
    with pytest.raises(
        TrainingError,
        match=rf"axis 'short' has {usable} usable row\(s\).*fewer than min_rows={min_rows}"
        r".*model.on_short_axis: skip",
    ):
        model_set.fit(frame)


def test_short_axis_skipped_with_warning(caplog):
    frame = pd.DataFrame(
        {"time_s": [0.0, 1.0, 2.0], "good": [1.0, 2.0, 3.0], "short": [0.0, 5.0, np.nan]}
    )
    with caplog.at_level(logging.WARNING, logger="ModelTraining.trainer"):
        model_set = AxisModelSet(LinearTrend, ["good", "short"], on_short_axis="skip").fit(frame)
    assert list(model_set.models_) == ["good"]
    assert model_set.skipped_axes_ == ["short"]
    assert model_set.fit_report_["short"] == {
        "rows_fitted": 0,
        "rows_excluded_zero": 1,
        "rows_excluded_nan": 1,
    }
    assert "axis 'short' has 1 usable row(s)" in caplog.text
    out = model_set.predict(frame.drop(columns="short"))
    assert "short_pred" not in out.columns
    assert model_set.to_dict()["skipped_axes"] == ["short"]


def test_every_axis_short_is_an_error_even_when_skipping():
    frame = pd.DataFrame({"time_s": [0.0, 1.0], "a": [0.0, 0.0]})
    with pytest.raises(TrainingError, match=r"every axis was skipped.*\['a'\]"):
        AxisModelSet(LinearTrend, ["a"], on_short_axis="skip").fit(frame)


def test_predict_before_fit_raises_not_fitted():
    model_set = AxisModelSet(LinearTrend, AXES)
    with pytest.raises(NotFittedError, match="AxisModelSet is not fitted yet"):
        model_set.predict(_frame())
    with pytest.raises(NotFittedError, match="AxisModelSet is not fitted yet"):
        model_set.to_dict()


@pytest.mark.parametrize(
    ("drop", "message"),
    [
        (["axis1"], r"training needs column\(s\) 'axis1', missing from the frame"),
        (["time_s"], r"training needs column\(s\) 'time_s'"),
        (["axis1", "Axis #2"], r"'axis1', 'Axis #2', missing.*available columns: 'ts', 'time_s'"),
    ],
)
def test_fit_missing_columns_named(drop, message):
    with pytest.raises(TrainingError, match=message):
        AxisModelSet(LinearTrend, AXES).fit(_frame().drop(columns=drop))


def test_predict_missing_axis_named():
    with pytest.raises(TrainingError, match=r"prediction needs column\(s\) 'Axis #2'"):
        _fitted().predict(_frame().drop(columns="Axis #2"))


@pytest.mark.parametrize(
    ("kwargs", "axes", "message"),
    [
        ({"on_short_axis": "ignore"}, AXES, "on_short_axis must be one of"),
        ({"min_rows": 1}, AXES, "min_rows must be at least 2, got 1"),
        ({"min_rows": 2.5}, AXES, "min_rows must be an integer"),
        ({}, [], "axes is empty"),
        ({}, ["axis1", "axis1"], r"axes lists \['axis1'\] more than once"),
        ({}, "axis1", "axes must be a list of column names"),
        ({}, ["time_s"], "'time_s' is the time column and cannot be an axis"),
    ],
)
def test_fit_rejects_bad_parameters(kwargs, axes, message):
    with pytest.raises(TrainingError, match=message):
        AxisModelSet(LinearTrend, axes, **kwargs).fit(_frame())


@pytest.mark.parametrize(
    ("column", "values", "message"),
    [
        ("time_s", [0.0, np.nan, 2.0], r"'time_s' has 1 NaN or infinite"),
        ("a", ["x", "y", "z"], "column 'a' must be numeric"),
        ("a", [1.0, np.inf, 3.0], r"axis 'a' has 1 infinite value\(s\)"),
    ],
)
def test_fit_rejects_bad_data(column, values, message):
    frame = pd.DataFrame({"time_s": [0.0, 1.0, 2.0], "a": [1.0, 2.0, 3.0]})
    frame[column] = values
    with pytest.raises(TrainingError, match=message):
        AxisModelSet(LinearTrend, ["a"]).fit(frame)


def test_fit_rejects_non_frame():
    with pytest.raises(TrainingError, match="expects a pandas DataFrame, got dict"):
        AxisModelSet(LinearTrend, ["a"]).fit({"time_s": [0.0], "a": [1.0]})


def test_json_round_trip_gives_identical_predictions():
    model_set = _fitted()
    data = json.loads(json.dumps(model_set.to_dict()))
    assert (data["format_version"], data["machine"]) == (2, {"kind": "none", "model": None})
    assert data["families"] == {"axis1": "linear", "Axis #2": "linear"}
    assert data["axes"] == AXES
    assert data["models"]["axis1"] == {
        "family": "linear",
        "coef": pytest.approx(2.0),
        "intercept": pytest.approx(1.0),
    }
    assert data["fit_report"]["axis1"]["rows_excluded_zero"] == 2
    restored = AxisModelSet.from_dict(data)
    pd.testing.assert_frame_equal(restored.predict(_frame()), model_set.predict(_frame()))
    assert restored.to_dict() == data


def test_pickle_round_trip_gives_identical_predictions():
    model_set = _fitted()
    restored = pickle.loads(pickle.dumps(model_set))
    pd.testing.assert_frame_equal(restored.predict(_frame()), model_set.predict(_frame()))
    assert restored.fit_report_ == model_set.fit_report_


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"format": "other"}, "models data has format 'other'"),
        ({"families": {"axis1": "foo", "Axis #2": "linear"}}, "unknown model family .foo."),
        ({"machine": {"kind": "svm", "model": None}}, "unknown machine channel 'svm'"),
        ({"axes": ["axis1", "nope"]}, "models data is malformed .*KeyError.*'nope'"),
        ({"models": {"axis1": {"family": "linear"}, "Axis #2": {}}}, "models data is malformed"),
        ({"on_short_axis": "maybe"}, "on_short_axis must be one of"),
    ],
)
def test_from_dict_rejects_malformed(change, message):
    data = {**_fitted().to_dict(), **change}
    with pytest.raises(TrainingError, match=message):
        AxisModelSet.from_dict(data)


def test_from_config_uses_model_section():
    config = ModelConfig(type="linear", on_short_axis="skip", min_rows=3, machine="none")
    model_set = AxisModelSet.from_config(config, AXES)
    assert model_set.families == {"axis1": ("linear", {}), "Axis #2": ("linear", {})}
    assert (model_set.on_short_axis, model_set.min_rows) == ("skip", 3)
    assert model_set.fit(_frame()).skipped_axes_ == []
    with pytest.raises(TrainingError, match=r"model\.type auto needs the selected families"):
        AxisModelSet.from_config(ModelConfig(), AXES)


def test_reads_a_version_1_models_json():
    # models.json of the first versions: one family for every axis, no machine channel.
    data = {
        "format": "ml-box/axis-model-set",
        "format_version": 1,
        "family": "linear",
        "axes": ["a"],
        "skipped_axes": [],
        "on_short_axis": "error",
        "min_rows": 2,
        "models": {"a": {"family": "linear", "coef": 2.0, "intercept": 1.0}},
        "fit_report": {"a": {"rows_fitted": 3, "rows_excluded_zero": 0, "rows_excluded_nan": 0}},
    }
    model_set = AxisModelSet.from_dict(data)
    frame = pd.DataFrame({"time_s": [0.0, 10.0], "a": [1.0, 30.0]})
    np.testing.assert_array_equal(model_set.residual(frame, "a"), [0.0, 9.0])
    assert (model_set.families_(), model_set.machine_model_) == ({"a": "linear"}, None)


def test_families_per_axis_and_a_machine_model_round_trip_through_json():
    rng = np.random.default_rng(5)
    n = 400
    base = rng.normal(size=n)
    frame = pd.DataFrame(
        {
            "time_s": np.arange(n, dtype=float),
            "a": 10 + base + rng.normal(0, 0.1, n),
            "b": 5 + 2 * base + rng.normal(0, 0.1, n),
            "c": 3 + rng.normal(0, 1.0, n),
        }
    )
    families = {"a": ("cross", {"alpha": 0.01}), "b": ("ar", {"lags": 2}), "c": ("constant", {})}
    model_set = AxisModelSet(families, ["a", "b", "c"], machine="pca").fit(frame)
    assert model_set.families_() == {"a": "cross", "b": "ar", "c": "constant"}
    assert model_set.lookback_ == 2
    data = json.loads(json.dumps(model_set.to_dict()))
    restored = AxisModelSet.from_dict(data)
    for axis in "abc":
        np.testing.assert_array_equal(
            restored.residual(frame, axis), model_set.residual(frame, axis)
        )
    np.testing.assert_array_equal(restored.machine_score(frame), model_set.machine_score(frame))
    assert restored.to_dict() == data
