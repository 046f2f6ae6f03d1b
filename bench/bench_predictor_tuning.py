"""Failure predictor tuning: the reported F1 when Optuna tunes on the reported folds (leaky, the
old way) versus nested in time order (``tuning_splits``, what training does), and untuned.

The synthetic machine of ``tests/test_prediction_run.py`` (8 days at 30 s, a 40-minute drift
before each of 14 incidents), 5-minute buckets, 15- and 60-minute windows, 3 time folds.

    python bench/bench_predictor_tuning.py [--trials 20]

Figures are printed; nothing is asserted.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from Prediction import (
    FailurePredictor,
    cross_validated,
    horizon_labels,
    out_of_fold_metrics,
    time_splits,
    tune,
    tuning_splits,
    window_features,
)

T0 = pd.Timestamp("2026-01-05", tz="UTC")
STEP = pd.Timedelta(seconds=30)
ROWS = 8 * 24 * 120
BUCKET, HORIZON, FOLDS = pd.Timedelta("5m"), pd.Timedelta("1h"), 3
GAP = 12 + 12  # horizon + longest window, in buckets


def _machine() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Window features and incidents of the synthetic machine."""
    incidents = [int(i) for i in np.linspace(600, ROWS - 600, 14)]
    rng = np.random.default_rng(4)
    a = 5.0 + rng.normal(0, 0.05, ROWS)
    for first in incidents:
        a[first - 80 : first] += np.linspace(0.0, 1.0, 80)
        a[first : first + 20] += 3.0
    ts = pd.Series([T0 + i * STEP for i in range(ROWS)])
    columns = {"a": a, "b": 7 + rng.normal(0, 0.05, ROWS)}
    features = window_features(ts, columns, BUCKET, [pd.Timedelta("15m"), pd.Timedelta("60m")])
    windows = pd.DataFrame(
        {
            "start_ts": [T0 + i * STEP for i in incidents],
            "end_ts": [T0 + (i + 19) * STEP for i in incidents],
            "severity": "error",
        }
    )
    return features, windows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    trials = parser.parse_args().trials
    features, incidents = _machine()
    labels = horizon_labels(features.index, BUCKET, incidents, HORIZON)
    label, weight = labels["label"].to_numpy(), labels["weight"].to_numpy()
    splits = time_splits(len(features), FOLDS, GAP)
    base = FailurePredictor(30, 8, 5, 0)
    candidates = {
        "untuned": base,
        f"tuned on the reported folds ({trials} trials, leaky)": tune(
            base, features, label, weight, splits, trials, 0.5
        ),
        f"tuned nested ({trials} trials)": tune(
            base, features, label, weight, tuning_splits(splits, FOLDS, GAP), trials, 0.5
        ),
    }
    for name, model in candidates.items():
        probability = cross_validated(model, features, label, weight, splits)
        m = out_of_fold_metrics(
            features.index, label, probability, incidents, HORIZON, BUCKET, 0.5, FOLDS
        )
        print(
            f"{name}: reported AUC {m.auc:.3f}, F1 {m.f1:.3f}, precision {m.precision:.3f}, "
            f"recall {m.recall:.3f}, warned {m.warned}/{m.incidents}; {model.params()}"
        )


if __name__ == "__main__":
    main()
