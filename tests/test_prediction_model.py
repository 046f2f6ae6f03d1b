"""The failure predictor: horizon labels, time-ordered validation that never trains on the
future (and a leakage test that only leakage would pass), metrics and forewarning."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from Prediction import (
    FailurePredictor,
    PredictionInputError,
    cross_validated,
    horizon_labels,
    out_of_fold_metrics,
    time_splits,
    tuning_splits,
)

T0 = pd.Timestamp("2026-01-05", tz="UTC")
M = pd.Timedelta(minutes=1)


def _buckets(n: int) -> pd.DatetimeIndex:
    return pd.DatetimeIndex([T0 + i * M for i in range(n)], name="bucket_start")


def test_a_bucket_is_positive_when_an_incident_starts_within_the_horizon_after_it() -> None:
    incidents = pd.DataFrame(
        {
            "start_ts": [T0 + 5 * M, T0 + 7 * M + pd.Timedelta(seconds=30)],
            "end_ts": [T0 + 5 * M + pd.Timedelta(seconds=30), T0 + 8 * M],
            "severity": ["alert", "error"],
        }
    )

    labels = horizon_labels(_buckets(10), M, incidents, 3 * M, {"error": 2.0})

    # Incident at 5:00-5:30 (bucket 5 inside): buckets 2, 3, 4 end within 3 min before it.
    # Incident at 7:30-8:00 (buckets 7 and 8 inside, ends inclusive): buckets 4, 5, 6 end
    # within 3 min before it; 5 is inside the first, 4 takes the heavier weight of the two.
    expected = [0, 0, 1, 1, 1, np.nan, 1, np.nan, np.nan, 0]
    np.testing.assert_array_equal(labels["label"].to_numpy(), expected)
    np.testing.assert_array_equal(
        labels["weight"].to_numpy(), [1, 1, 1, 1, 2, np.nan, 2, np.nan, np.nan, 1]
    )


def test_time_splits_test_only_on_rows_after_every_training_row_and_the_gap() -> None:
    for train, test in time_splits(100, folds=4, gap=7):
        assert train.max() + 7 < test.min()
    with pytest.raises(PredictionInputError, match=r"10 buckets are too few for 4 time folds"):
        time_splits(10, folds=4, gap=7)


def _regimes(seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """1,200 buckets in 40 regimes of 30; each regime's label is a coin flip. The feature
    names the regime (its id): it carries no information about unseen regimes, but a model
    that has seen a regime's other buckets knows its label."""
    rng = np.random.default_rng(seed)
    regime = np.repeat(np.arange(40), 30)
    label = rng.integers(0, 2, 40)[regime].astype(np.float64)
    features = pd.DataFrame({"regime": regime.astype(np.float64), "noise": rng.random(1200)})
    return features, label


def test_tuning_splits_lie_before_every_reported_test_row() -> None:
    # 100 rows, 4 folds, gap 2: reported tests are rows 20-39, 40-59, 60-79, 80-99; the tuner
    # gets the first fold's training rows 0-17 only, split again in time order.
    reported = time_splits(100, 4, 2)
    inner = tuning_splits(reported, 2, 2)

    assert [(t[0], t[-1], u[0], u[-1]) for t, u in inner] == [(0, 3, 6, 11), (0, 9, 12, 17)]
    with pytest.raises(PredictionInputError, match=r"only the 18 buckets before the first"):
        tuning_splits(reported, 4, 10)


def test_time_ordered_validation_cannot_profit_from_leakage() -> None:
    features, label = _regimes(0)
    weight = np.ones(label.size)
    model = FailurePredictor(n_estimators=50, max_depth=None, min_samples_leaf=1)

    ordered = cross_validated(model, features, label, weight, time_splits(1200, 4, gap=30))
    rng = np.random.default_rng(1)
    shuffled_rows = rng.permutation(1200)
    folds = np.array_split(shuffled_rows, 5)
    shuffled = [
        (np.setdiff1d(shuffled_rows, fold), np.sort(fold)) for fold in folds
    ]  # what a leaky split does: neighbours of every test row are in training
    leaky = cross_validated(model, features, label, weight, shuffled)

    def auc(probability: np.ndarray) -> float:
        from sklearn.metrics import roc_auc_score

        tested = np.isfinite(probability)
        return roc_auc_score(label[tested], probability[tested])

    # The leaky split "predicts" the future almost perfectly; the time-ordered one cannot.
    assert auc(leaky) > 0.95
    assert auc(ordered) < 0.7


def test_metrics_and_forewarning_on_known_probabilities() -> None:
    buckets = _buckets(10)
    label = np.array([0, 0, 1, 1, 1, np.nan, 0, 0, 0, 0], dtype=np.float64)
    probability = np.array([0.1, 0.6, 0.2, 0.7, 0.9, np.nan, 0.1, 0.2, 0.3, np.nan])
    incidents = pd.DataFrame({"start_ts": [T0 + 5 * M], "end_ts": [T0 + 5 * M]})

    metrics = out_of_fold_metrics(buckets, label, probability, incidents, 3 * M, M, 0.5, 4)

    # 8 tested buckets: TP = buckets 3, 4; FP = bucket 1; FN = bucket 2; TN = 0, 6, 7, 8.
    assert metrics.confusion == [[4, 1], [1, 2]]
    assert (metrics.buckets, metrics.positives) == (8, 3)
    assert metrics.accuracy == pytest.approx(6 / 8)
    assert metrics.precision == pytest.approx(2 / 3) and metrics.recall == pytest.approx(2 / 3)
    assert metrics.f1 == pytest.approx(2 / 3)
    # AUC: of the 3 x 5 positive/negative pairs, 0.7 and 0.9 beat all; 0.2 beats 0.1 twice and
    # ties 0.2 once (a tie counts half).
    assert metrics.auc == pytest.approx((5 + 5 + 2.5) / 15)
    # The horizon before 5:00 holds buckets 2, 3, 4; the first warning is bucket 3: 2 minutes.
    assert (metrics.incidents, metrics.warned, metrics.mean_forewarning_s) == (1, 1, 120.0)


def test_one_class_and_missing_features_are_invalid_input() -> None:
    features = pd.DataFrame({"x": np.arange(5.0)})
    with pytest.raises(PredictionInputError, match=r"needs buckets of both classes"):
        FailurePredictor().fit(features, np.zeros(5), np.ones(5))
    model = FailurePredictor(n_estimators=5).fit(features, np.array([0, 1, 0, 1, 0.0]), np.ones(5))
    with pytest.raises(PredictionInputError, match=r"1 feature\(s\) the predictor was trained"):
        model.predict_proba(pd.DataFrame({"y": [1.0]}))
    with pytest.raises(PredictionInputError, match="not fitted"):
        FailurePredictor().predict_proba(features)
