"""Status codes of a run, their exit codes, and which errors map to which code."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from Database import DatabaseError, IngestError, UnsafeIdentifierError
from DataExtractionAnalysis import ExtractionError, ProfileError, UnhealthySensorError
from DataPreparation import PreparationError
from Fleet import AssetNameError, ExecutorError
from Labels import LabelsError
from ModelEvaluation import EvaluationError
from ModelRegistry import InvalidTagError, RegistryError, VersionExistsError, VersionNotFoundError
from ModelSelection import ModelError, UnknownModelError
from ModelTraining import TrainingError
from Scoring import ScoringInputError
from Thresholding import CalibrationError

from .config import ConfigError, UsageError
from .destinations import DestinationError

__all__ = ["ExitCode", "Status", "status_for"]


class ExitCode(IntEnum):
    """Process exit codes; each status code has its own (documented in the README and --help)."""

    OK = 0
    ERROR = 1
    INVALID_CONFIG = 2
    INVALID_INPUT = 3
    MISSING_MODEL = 4
    DB_ERROR = 5
    ALERT_EVENTS = 6
    ERROR_EVENTS = 7
    REGISTRY_ERROR = 8
    FLEET_PARTIAL = 9
    STALE = 10
    UNHEALTHY = 11
    MISSING_ML_EXTRAS = 13
    MISSING_ML_MODELS = 14
    INVALID_ML_INPUT = 15


_CODES = {
    "ok": ExitCode.OK,
    "error": ExitCode.ERROR,
    "invalid-config": ExitCode.INVALID_CONFIG,
    "invalid-input": ExitCode.INVALID_INPUT,
    "missing-model": ExitCode.MISSING_MODEL,
    "db-error": ExitCode.DB_ERROR,
    "registry-error": ExitCode.REGISTRY_ERROR,
    "fleet-partial": ExitCode.FLEET_PARTIAL,
    "stale": ExitCode.STALE,
    "missing-ml-extras": ExitCode.MISSING_ML_EXTRAS,
    "missing-ml-models": ExitCode.MISSING_ML_MODELS,
    "invalid-ml-input": ExitCode.INVALID_ML_INPUT,
    "ml-error": ExitCode.ERROR,
    "unhealthy": ExitCode.UNHEALTHY,
}

_INPUT_ERRORS = (
    ExtractionError,
    ProfileError,
    PreparationError,
    TrainingError,
    CalibrationError,
    EvaluationError,
    ScoringInputError,
    UnsafeIdentifierError,
    IngestError,
    ModelError,
    LabelsError,
    AssetNameError,
)


@dataclass(frozen=True)
class Status:
    """``code`` (ok, invalid-config, invalid-input, missing-model, db-error, registry-error,
    fleet-partial, stale, unhealthy, error; the predictor's missing-ml-extras,
    missing-ml-models, invalid-ml-input, ml-error) + detail."""

    code: str
    detail: str

    @property
    def exit_code(self) -> ExitCode:
        """The process exit code of this status."""
        return _CODES[self.code]

    def to_dict(self) -> dict[str, str]:
        """``{"code": ..., "detail": ...}`` for JSON output."""
        return {"code": self.code, "detail": self.detail}


def status_for(exc: BaseException) -> Status:
    """Classify an exception raised by a run into a status."""
    if isinstance(
        exc,
        ConfigError
        | UsageError
        | UnknownModelError
        | VersionExistsError
        | InvalidTagError
        | ExecutorError,
    ):
        return Status("invalid-config", str(exc))
    if isinstance(exc, DatabaseError):
        return Status("db-error", str(exc))
    if isinstance(exc, VersionNotFoundError):
        return Status("missing-model", str(exc))
    if isinstance(exc, UnhealthySensorError):
        return Status("unhealthy", str(exc))
    if isinstance(exc, _INPUT_ERRORS):
        return Status("invalid-input", str(exc))
    if isinstance(exc, RegistryError | DestinationError):
        # A version that fails verification, a busy lock, or a destination that cannot be
        # written: the message names the path and the fix, so no traceback.
        return Status("registry-error", str(exc))
    return Status("error", f"{type(exc).__name__}: {exc}")
