"""Failure prediction per asset: window features, the horizon label, a random forest validated
in time order, and its ``ml_status`` codes."""

from .config import PredictorConfig, PredictorTuning
from .errors import (
    ML_STATUS_CODES,
    MissingExtrasError,
    MissingPredictorError,
    PredictionError,
    PredictionInputError,
)
from .features import bucket_starts, window_features
from .labels import horizon_labels
from .model import (
    FailurePredictor,
    PredictorMetrics,
    cross_validated,
    out_of_fold_metrics,
    time_splits,
    tune,
    tuning_splits,
)
from .store import RiskStore

__all__ = [
    "ML_STATUS_CODES",
    "FailurePredictor",
    "MissingExtrasError",
    "MissingPredictorError",
    "PredictionError",
    "PredictionInputError",
    "PredictorConfig",
    "PredictorMetrics",
    "PredictorTuning",
    "RiskStore",
    "bucket_starts",
    "cross_validated",
    "horizon_labels",
    "out_of_fold_metrics",
    "time_splits",
    "tune",
    "tuning_splits",
    "window_features",
]
