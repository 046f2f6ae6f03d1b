"""Optional MLflow tracking of training runs: parameters, metrics, artifacts, aliases.

The package is optional: without ``mlflow`` (or ``mlflow-skinny``) installed, tracking reports
``missing-ml-extras`` and the training run goes on.
"""

from .config import TrackingConfig
from .mlflow_log import MISSING_EXTRAS, RunRecord, TrackingOutcome, log_training, safe_uri

__all__ = [
    "MISSING_EXTRAS",
    "RunRecord",
    "TrackingConfig",
    "TrackingOutcome",
    "log_training",
    "safe_uri",
]
