"""The failure predictor: a random forest over window features, time-ordered validation.

Validation never trains on the future: folds are contiguous in time (scikit-learn's
``TimeSeriesSplit``), each tested on data after all of its training rows, with a gap of
``horizon + longest window`` buckets between them, since a training label looks ``horizon``
ahead and a test feature looks a window back. The out-of-fold probabilities give the metrics
(accuracy, precision, recall, F1, ROC AUC, confusion matrix at ``threshold``) and the
forewarning: for each incident whose preceding horizon was tested, the time from the first
warning bucket (probability ≥ threshold) within the horizon to the incident's start.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .errors import MissingExtrasError, PredictionInputError

__all__ = [
    "FailurePredictor",
    "PredictorMetrics",
    "cross_validated",
    "out_of_fold_metrics",
    "time_splits",
    "tune",
    "tuning_splits",
]

logger = logging.getLogger(__name__)


def _sklearn() -> Any:
    try:
        import sklearn.ensemble
        import sklearn.metrics
        import sklearn.model_selection
    except ImportError as exc:  # pragma: no cover - scikit-learn is a requirement
        raise MissingExtrasError(
            f"the failure predictor needs scikit-learn ({exc}); pip install -r requirements.txt"
        ) from exc
    return sklearn


@dataclass(frozen=True)
class PredictorMetrics:
    """Out-of-fold figures of a predictor (None where undefined, e.g. AUC of one class)."""

    buckets: int
    positives: int
    accuracy: float | None
    precision: float | None
    recall: float | None
    f1: float | None
    auc: float | None
    confusion: list[list[int]]
    incidents: int
    warned: int
    mean_forewarning_s: float | None
    folds: int
    params: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class FailurePredictor:
    """A random forest giving the probability that an incident starts within the horizon.

    Args:
        n_estimators, max_depth, min_samples_leaf: the forest's.
        seed: random state of the forest.
    """

    def __init__(
        self,
        n_estimators: int = 200,
        max_depth: int | None = 8,
        min_samples_leaf: int = 5,
        seed: int = 0,
    ) -> None:
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.min_samples_leaf = min_samples_leaf
        self.seed = seed

    def params(self) -> dict[str, Any]:
        return {
            "n_estimators": self.n_estimators,
            "max_depth": self.max_depth,
            "min_samples_leaf": self.min_samples_leaf,
            "seed": self.seed,
        }

    def fit(
        self, features: pd.DataFrame, label: np.ndarray, weight: np.ndarray
    ) -> FailurePredictor:
        """Fit on the rows with a label (NaN labels are left out).

        Raises:
            PredictionInputError: no labelled row, or one class only.
        """
        labelled = np.isfinite(label)
        classes = np.unique(label[labelled])
        if classes.size < 2:
            raise PredictionInputError(
                f"the predictor needs buckets of both classes, got {int(labelled.sum())} "
                f"labelled bucket(s) of class(es) {classes.tolist()}; widen the window or label "
                "more incidents"
            )
        forest = _sklearn().ensemble.RandomForestClassifier(
            n_estimators=self.n_estimators,
            max_depth=self.max_depth,
            min_samples_leaf=self.min_samples_leaf,
            class_weight="balanced",
            random_state=self.seed,
            n_jobs=1,
        )
        forest.fit(features.to_numpy()[labelled], label[labelled], sample_weight=weight[labelled])
        self.features_ = list(features.columns)
        self.model_ = forest
        return self

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        """Probability of an incident within the horizon, per row.

        Raises:
            PredictionInputError: the predictor is not fitted, or a feature it was fitted on is
                missing.
        """
        if not hasattr(self, "model_"):
            raise PredictionInputError("the predictor is not fitted; call fit first")
        missing = [c for c in self.features_ if c not in features.columns]
        if missing:
            raise PredictionInputError(
                f"{len(missing)} feature(s) the predictor was trained on are missing, e.g. "
                f"{missing[:3]}; the axes or predictor.windows changed since: retrain it"
            )
        if len(features) == 0:
            return np.zeros(0)
        return self.model_.predict_proba(features[self.features_].to_numpy())[:, 1]

    def importances(self) -> pd.Series:
        """Feature importances (mean decrease in impurity), largest first."""
        values = pd.Series(self.model_.feature_importances_, index=self.features_)
        return values.sort_values(ascending=False)


def time_splits(n_rows: int, folds: int, gap: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Contiguous time folds: each tests on rows after all its training rows, ``gap`` apart.

    Raises:
        PredictionInputError: too few rows for the folds and the gap.
    """
    splitter = _sklearn().model_selection.TimeSeriesSplit(n_splits=folds, gap=gap)
    try:
        return list(splitter.split(np.zeros(n_rows)))
    except ValueError as exc:
        raise PredictionInputError(
            f"{n_rows} buckets are too few for {folds} time folds {gap} buckets apart ({exc}); "
            "widen the window, or lower predictor.folds, the horizon or the windows"
        ) from exc


def tuning_splits(
    splits: list[tuple[np.ndarray, np.ndarray]], folds: int, gap: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Inner time folds for tuning, on the first fold's training rows only (nested validation).

    Those rows precede every test row of ``splits`` (by at least ``gap``), so the tuner never
    scores a bucket whose out-of-fold probability is reported: the reported metrics stay an
    estimate, not the best of many draws on the same test rows.

    Raises:
        PredictionInputError: the rows before the first reported fold are too few to split.
    """
    earliest = splits[0][0]
    try:
        inner = time_splits(len(earliest), folds, gap)
    except PredictionInputError as exc:
        raise PredictionInputError(
            f"tuning uses only the {len(earliest)} buckets before the first reported fold, "
            f"too few for {folds} inner time folds {gap} buckets apart; widen the window, lower "
            "predictor.folds, or set predictor.tuning.trials: 0"
        ) from exc
    return [(earliest[train], earliest[test]) for train, test in inner]


def cross_validated(
    make: FailurePredictor,
    features: pd.DataFrame,
    label: np.ndarray,
    weight: np.ndarray,
    splits: list[tuple[np.ndarray, np.ndarray]],
) -> np.ndarray:
    """Out-of-fold probabilities (NaN where a row was never tested, or a fold's training part
    holds one class only)."""
    probability = np.full(len(features), np.nan)
    for train, test in splits:
        part = label[train]
        if np.unique(part[np.isfinite(part)]).size < 2:
            continue
        model = FailurePredictor(**make.params()).fit(
            features.iloc[train], label[train], weight[train]
        )
        probability[test] = model.predict_proba(features.iloc[test])
    return probability


def _ratio(a: float, b: float) -> float | None:
    return None if b == 0 else a / b


def out_of_fold_metrics(
    buckets: pd.DatetimeIndex,
    label: np.ndarray,
    probability: np.ndarray,
    incidents: pd.DataFrame,
    horizon: pd.Timedelta,
    bucket: pd.Timedelta,
    threshold: float,
    folds: int,
) -> PredictorMetrics:
    """The figures of the module docstring from out-of-fold probabilities."""
    metrics = _sklearn().metrics
    tested = np.isfinite(probability) & np.isfinite(label)
    y, p = label[tested].astype(int), probability[tested]
    warn = (p >= threshold).astype(int)
    counts = metrics.confusion_matrix(y, warn, labels=[0, 1]).ravel() if y.size else [0] * 4
    tn, fp, fn, tp = (int(c) for c in counts)
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    f1 = None
    if precision is not None and recall is not None and precision + recall > 0:
        f1 = 2 * precision * recall / (precision + recall)
    auc = float(metrics.roc_auc_score(y, p)) if np.unique(y).size == 2 else None
    ends = buckets + bucket
    warned, lead = 0, []
    counted = 0
    for start in pd.to_datetime(incidents.get("start_ts", pd.Series(dtype=object)), utc=True):
        before = (ends <= start) & (ends > start - horizon) & np.isfinite(probability)
        if not before.any():
            continue
        counted += 1
        warning = before & (np.nan_to_num(probability, nan=0.0) >= threshold)
        if warning.any():
            warned += 1
            lead.append((start - buckets[warning][0]).total_seconds())
    return PredictorMetrics(
        buckets=int(y.size),
        positives=int(y.sum()),
        accuracy=_ratio(tp + tn, int(y.size)),
        precision=precision,
        recall=recall,
        f1=f1,
        auc=auc,
        confusion=[[tn, fp], [fn, tp]],
        incidents=counted,
        warned=warned,
        mean_forewarning_s=float(np.mean(lead)) if lead else None,
        folds=folds,
    )


def tune(
    base: FailurePredictor,
    features: pd.DataFrame,
    label: np.ndarray,
    weight: np.ndarray,
    splits: list[tuple[np.ndarray, np.ndarray]],
    trials: int,
    threshold: float,
) -> FailurePredictor:
    """The forest's hyperparameters that maximise the out-of-fold F1 (Optuna, TPE, seeded).

    Pass it :func:`tuning_splits`, not the folds whose metrics are reported.

    Raises:
        MissingExtrasError: Optuna is not installed.
    """
    try:
        import optuna
    except ImportError as exc:
        raise MissingExtrasError(
            f"predictor.tuning.trials > 0 needs Optuna ({exc}); pip install optuna, or set "
            "predictor.tuning.trials: 0"
        ) from exc
    metrics = _sklearn().metrics
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def objective(trial: Any) -> float:
        candidate = FailurePredictor(
            n_estimators=trial.suggest_int("n_estimators", 50, 400, log=True),
            max_depth=trial.suggest_int("max_depth", 2, 16),
            min_samples_leaf=trial.suggest_int("min_samples_leaf", 1, 50, log=True),
            seed=base.seed,
        )
        probability = cross_validated(candidate, features, label, weight, splits)
        tested = np.isfinite(probability) & np.isfinite(label)
        if not tested.any():
            return 0.0
        return float(
            metrics.f1_score(label[tested], probability[tested] >= threshold, zero_division=0)
        )

    study = optuna.create_study(
        direction="maximize", sampler=optuna.samplers.TPESampler(seed=base.seed)
    )
    study.optimize(objective, n_trials=trials)
    logger.info(
        "predictor tuning: best out-of-fold F1 %.3f with %s", study.best_value, study.best_params
    )
    return FailurePredictor(**study.best_params, seed=base.seed)
