"""Labels: windows of known anomalies (ground truth), operator verdicts on events, masks for
training, detection metrics."""

from .config import LabelsConfig
from .errors import LabelsError
from .feedback import VERDICTS, FeedbackStore, feedback_table_name, match_verdicts
from .importer import ImportedLabels, import_label_csv
from .masking import TrainingMask, training_mask
from .metrics import DetectionReport, evaluate_detection
from .store import LABEL_COLUMNS, label_mask, read_labels

__all__ = [
    "LABEL_COLUMNS",
    "VERDICTS",
    "DetectionReport",
    "FeedbackStore",
    "ImportedLabels",
    "LabelsConfig",
    "LabelsError",
    "TrainingMask",
    "evaluate_detection",
    "feedback_table_name",
    "import_label_csv",
    "label_mask",
    "match_verdicts",
    "read_labels",
    "training_mask",
]
