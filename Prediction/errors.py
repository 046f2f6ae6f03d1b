"""The predictor's errors, one per ``ml_status`` code (the seed's status codes of ML answers)."""

from __future__ import annotations

__all__ = [
    "ML_STATUS_CODES",
    "MissingExtrasError",
    "MissingPredictorError",
    "PredictionError",
    "PredictionInputError",
]

ML_STATUS_CODES = ("ok", "missing-ml-extras", "missing-ml-models", "invalid-ml-input", "ml-error")
"""Every ``ml_status`` an answer of ``predictor train`` or ``apply`` can carry."""


class PredictionError(Exception):
    """A predictor run failed; ``ml_status`` says how (``ml-error``: unexpectedly)."""

    ml_status = "ml-error"


class MissingExtrasError(PredictionError, ImportError):
    """A library the predictor needs (scikit-learn, Optuna, pyarrow) is not installed."""

    ml_status = "missing-ml-extras"


class MissingPredictorError(PredictionError, LookupError):
    """An asset has no trained predictor."""

    ml_status = "missing-ml-models"


class PredictionInputError(PredictionError, ValueError):
    """The features cannot be used (no rows, no finite value, one class only, ...)."""

    ml_status = "invalid-ml-input"
