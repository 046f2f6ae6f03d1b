"""Model selection: the seed's line (``fit_line``, ``LinearTrend``), family table, ModelConfig."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LinearRegression

from ModelSelection import (
    DEFAULT_CANDIDATES,
    MODEL_FAMILIES,
    AxisModel,
    LinearTrend,
    ModelConfig,
    ModelError,
    UnknownModelError,
    fit_line,
    select_model,
)


def _frame(t, y) -> pd.DataFrame:
    return pd.DataFrame({"time_s": np.asarray(t, dtype=float), "a": np.asarray(y, dtype=float)})


@pytest.mark.parametrize(
    ("t", "y", "coef", "intercept"),
    [
        ([0.0, 1.0], [1.0, 3.0], 2.0, 1.0),
        ([0.0, 1.0, 2.0, 3.0], [5.0, 5.0, 5.0, 5.0], 0.0, 5.0),
        ([0.0, 2.0, 4.0, 6.0], [3.0, 2.0, 1.0, 0.0], -0.5, 3.0),
        ([10.0, 20.0, 30.0], [-1.0, 1.0, 3.0], 0.2, -3.0),
        ([1e9, 1e9 + 1, 1e9 + 2], [4.0, 7.0, 10.0], 3.0, 4.0 - 3e9),
    ],
)
def test_linear_trend_recovers_exact_line(t, y, coef, intercept):
    model = LinearTrend().fit(_frame(t, y), "a")
    assert model.coef_ == pytest.approx(coef, rel=1e-12, abs=1e-12)
    assert model.intercept_ == pytest.approx(intercept, rel=1e-12, abs=1e-9)
    np.testing.assert_allclose(model.predict(_frame(t, y), "a"), y, rtol=1e-12, atol=1e-6)


@pytest.mark.parametrize("offset", [0.0, 1.7e9])
def test_linear_trend_matches_sklearn(offset):
    rng = np.random.default_rng(7)
    t = offset + np.sort(rng.uniform(0, 5000, 500))
    y = 0.003 * (t - offset) + 12.0 + rng.normal(0, 2, t.size)
    coef, intercept = fit_line(t, y)
    reference = LinearRegression().fit(t.reshape(-1, 1), y)
    assert coef == pytest.approx(reference.coef_[0], rel=1e-9)
    assert intercept == pytest.approx(reference.intercept_, rel=1e-9)


def test_constant_time_gives_flat_line_like_sklearn():
    t = np.array([3.0, 3.0, 3.0])
    y = np.array([1.0, 2.0, 6.0])
    ours = LinearTrend().fit(_frame(t, y), "a")
    reference = LinearRegression().fit(t.reshape(-1, 1), y)
    assert ours.coef_ == 0.0
    assert ours.intercept_ == pytest.approx(3.0)
    np.testing.assert_allclose(ours.predict(_frame(t, y), "a"), reference.predict(t.reshape(-1, 1)))


def test_fit_returns_self_and_does_not_mutate_inputs():
    frame = _frame([0.0, 1.0, 2.0], [1.0, 2.0, 3.0])
    before = frame.copy()
    model = LinearTrend()
    assert model.fit(frame, "a") is model
    pd.testing.assert_frame_equal(frame, before)


@pytest.mark.parametrize(
    ("t", "y", "message"),
    [
        ([0.0, 1.0, 2.0], [1.0, 2.0], "same length, got 3 and 2"),
        ([0.0], [1.0], "at least 2 samples, got 1"),
        ([0.0, np.nan], [1.0, 2.0], "t contains 1 NaN or infinite"),
        ([0.0, 1.0], [np.inf, 2.0], "y contains 1 NaN or infinite"),
        ([0.0, 1.0], ["a", "b"], "y must be numeric"),
        ([[0.0, 1.0]], [[1.0, 2.0]], "t must be one-dimensional"),
    ],
)
def test_fit_rejects_bad_input(t, y, message):
    with pytest.raises(ModelError, match=message):
        fit_line(t, y)


def test_linear_trend_leaves_idle_and_missing_rows_out():
    frame = _frame([0.0, 1.0, 2.0, 3.0, 4.0], [1.0, 0.0, 5.0, np.nan, 9.0])
    model = LinearTrend().fit(frame, "a")
    assert (model.coef_, model.intercept_) == (2.0, 1.0)
    with pytest.raises(ModelError, match="column 'b' is missing from the frame"):
        LinearTrend().fit(frame, "b")


def test_fit_where_equals_fit_on_the_selected_rows():
    # Spans several blocks of the blocked sums, with whole blocks left out and NaN in
    # rows left out; a large time offset checks the centring.
    rng = np.random.default_rng(11)
    n = 100_000
    t = 1.7e9 + np.arange(n) * 0.5
    y = 4e-3 * (t - 1.7e9) + 12.0 + rng.normal(0, 2, n)
    where = rng.random(n) > 0.3
    where[40_000:75_000] = False
    y[~where] = np.where(rng.random(int((~where).sum())) > 0.5, np.nan, 0.0)
    coef, intercept = fit_line(t, y, where=where)
    reference = LinearRegression().fit(t[where].reshape(-1, 1), y[where])
    assert coef == pytest.approx(reference.coef_[0], rel=1e-11)
    assert intercept == pytest.approx(reference.intercept_, rel=1e-11)
    copied, _ = fit_line(t[where], y[where])
    assert coef == pytest.approx(copied, rel=1e-13)


def test_fit_where_exact_line_and_constant_time():
    t = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
    y = np.array([1.0, np.nan, 5.0, 100.0, 9.0])
    assert fit_line(t, y, where=np.array([True, False, True, False, True])) == (2.0, 1.0)
    flat = fit_line([3.0, 3.0, 5.0], [1.0, 5.0, 7.0], where=np.array([True, True, False]))
    assert flat == (0.0, 3.0)


@pytest.mark.parametrize("size", [40_000, 100_001])
def test_constant_time_over_many_blocks_gives_a_flat_line(size):
    # Blocks of different sizes round a constant's mean differently; the fit must not turn
    # that rounding into a slope.
    t = np.full(size, 0.1)
    y = np.arange(size, dtype=float)
    where = np.ones(size, dtype=bool)
    where[5] = False
    coef, intercept = fit_line(t, y, where=where)
    assert coef == 0.0
    assert intercept == pytest.approx(y[where].mean(), rel=1e-12)


def test_opposite_infinities_are_a_model_error_not_a_numpy_warning():
    # The suite turns warnings into errors: an "invalid value" warning would surface here.
    y = np.ones(1000)
    y[[10, 20]] = [np.inf, -np.inf]
    with pytest.raises(ModelError, match="y contains 2 NaN or infinite"):
        fit_line(np.arange(1000.0), y)
    huge = np.full(1000, 1e308)
    coef, _ = fit_line(np.arange(1000.0), huge)  # no overflow warning either
    assert coef == 0.0


@pytest.mark.parametrize(
    ("y", "where", "message"),
    [
        ([1.0, np.nan, np.inf], [True, True, True], "y contains 2 NaN or infinite"),
        ([1.0, np.nan, np.inf], [True, False, True], "y contains 1 NaN or infinite"),
        ([1.0, 2.0, 3.0], [True, False, False], "at least 2 samples, got 1"),
        ([1.0, 2.0, 3.0], [1, 0, 1], "where must be a boolean mask, got dtype int64"),
        ([1.0, 2.0, 3.0], [True, False], r"one flag per sample \(3\), got shape \(2,\)"),
    ],
)
def test_fit_where_rejects_bad_rows_and_masks(y, where, message):
    with pytest.raises(ModelError, match=message):
        fit_line([0.0, 1.0, 2.0], y, where=np.asarray(where))


@pytest.mark.parametrize("method", ["predict", "to_dict"])
def test_use_before_fit_raises_not_fitted(method):
    model = LinearTrend()
    call = getattr(model, method)
    args = (_frame([1.0], [1.0]), "a") if method == "predict" else ()
    with pytest.raises(NotFittedError, match="LinearTrend is not fitted yet; call fit"):
        call(*args)
    assert issubclass(NotFittedError, ValueError)
    assert issubclass(NotFittedError, AttributeError)


def test_to_dict_shape_and_json_round_trip():
    model = LinearTrend().fit(_frame([0.0, 1.0, 2.0], [1.0, 3.5, 6.0]), "a")
    data = model.to_dict()
    assert data == {"family": "linear", "coef": 2.5, "intercept": 1.0}
    assert all(type(v) is float for k, v in data.items() if k != "family")
    restored = LinearTrend.from_dict(json.loads(json.dumps(data)))
    later = _frame(np.linspace(-10, 10, 7), np.zeros(7))
    np.testing.assert_array_equal(restored.predict(later, "a"), model.predict(later, "a"))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"family": "other", "coef": 1.0, "intercept": 0.0}, "expected family 'linear'"),
        ({"family": "linear", "intercept": 0.0}, "key 'coef' must be a finite number, got None"),
        ({"family": "linear", "coef": "1", "intercept": 0.0}, "key 'coef' must be a finite"),
        ({"family": "linear", "coef": 1.0, "intercept": float("nan")}, "must be a finite"),
        ({"family": "linear", "coef": True, "intercept": 0.0}, "must be a finite number"),
        (["linear", 1.0, 0.0], "must be a mapping, got list"),
    ],
)
def test_from_dict_rejects_malformed(data, message):
    with pytest.raises(ModelError, match=message):
        LinearTrend.from_dict(data)


def test_family_table_and_selection():
    assert select_model("linear") is LinearTrend
    assert list(MODEL_FAMILIES) == list(DEFAULT_CANDIDATES)
    assert all(select_model(name).family == name for name in MODEL_FAMILIES)
    assert isinstance(LinearTrend(), AxisModel)
    with pytest.raises(TypeError, match="'mappingproxy' object does not support item assignment"):
        MODEL_FAMILIES["mine"] = LinearTrend  # type: ignore[index]


@pytest.mark.parametrize("name", ["foo", "Linear", "", None])
def test_unknown_family_lists_valid_names(name):
    with pytest.raises(
        UnknownModelError, match=r"unknown model family .*; valid families: ar, constant, cross"
    ):
        select_model(name)
    assert issubclass(UnknownModelError, ValueError)


def test_model_config_defaults():
    config = ModelConfig()
    assert (config.type, config.on_short_axis, config.min_rows) == ("auto", "error", 2)
    assert (config.validation_share, config.folds, config.machine) == (0.2, 5, "ssr")
    assert config.candidates == DEFAULT_CANDIDATES
    assert all(field.description for field in ModelConfig.model_fields.values())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"type": "foo"}, "unknown model family 'foo'; valid families: ar, constant, cross"),
        ({"candidates": ["cross", "nope"]}, "unknown model family 'nope'"),
        ({"candidates": ["cross", "cross"]}, "lists a family more than once"),
        ({"params": {"ar": {"lag": 3}}}, r"ar: invalid parameters \{'lag': 3\}"),
        ({"params": {"arima": {}}}, "params: unknown family 'arima'"),
        ({"machine": "svm"}, "machine"),
        ({"validation_share": 1.0}, "less than 1"),
        ({"on_short_axis": "ignore"}, "on_short_axis"),
        ({"min_rows": 1}, "greater than or equal to 2"),
        ({"colour": "red"}, "Extra inputs are not permitted"),
    ],
)
def test_model_config_rejects_bad_values(kwargs, message):
    with pytest.raises(ValidationError, match=message):
        ModelConfig(**kwargs)


def test_model_config_is_frozen():
    with pytest.raises(ValidationError, match="frozen"):
        ModelConfig().min_rows = 5
