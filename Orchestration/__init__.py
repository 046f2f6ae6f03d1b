"""Orchestration: config loading, the ordered training steps, scoring runs and the CLI.

The only package that imports every stage; ``main.py``, ``orchestrate.py`` and the notebook
call this public API.
"""

from .cli import main, main_train
from .config import AppConfig, ConfigError, LoadedConfig, load_config
from .context import DatabaseSession, load_environment, open_database
from .orchestrator import (
    STEPS,
    OrchestrationResult,
    RunState,
    Step,
    TrainingRun,
    run_profile,
    run_training,
)
from .status import ExitCode, Status, status_for

__all__ = [
    "STEPS",
    "AppConfig",
    "ConfigError",
    "DatabaseSession",
    "ExitCode",
    "LoadedConfig",
    "OrchestrationResult",
    "RunState",
    "Status",
    "Step",
    "TrainingRun",
    "load_config",
    "load_environment",
    "main",
    "main_train",
    "open_database",
    "run_profile",
    "run_training",
    "status_for",
]
