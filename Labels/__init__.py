"""Labels: windows of known anomalies (ground truth), masks for training, detection metrics."""

from .config import LabelsConfig
from .errors import LabelsError
from .metrics import DetectionReport, evaluate_detection
from .store import LABEL_COLUMNS, label_mask, read_labels

__all__ = [
    "LABEL_COLUMNS",
    "DetectionReport",
    "LabelsConfig",
    "LabelsError",
    "evaluate_detection",
    "label_mask",
    "read_labels",
]
