"""Fleet execution: many assets of one table trained and scored in parallel.

A fleet is a table whose ``data.asset_col`` names the machine of every row. This package holds
what is not specific to training or scoring: the ``fleet`` config, asset ids as folder names,
the fleet state table, the executors (a local process pool or an existing Dask cluster) and
progress reporting. ``Orchestration.fleet`` runs the per-asset tasks on them.
"""

from .config import DEFAULT_MIN_SAMPLES, FleetConfig
from .executor import (
    ExecutorError,
    TaskPool,
    batches_of,
    in_local_pool,
    pool_size,
    run_tasks,
    runs_in_process,
)
from .naming import MAX_FOLDER_CHARS, AssetNameError, asset_folder, asset_from_folder
from .outcome import STATUSES, AssetOutcome, peak_rss_mib, worker_name
from .progress import Progress
from .state import PREDICTOR_ONLY, FleetStateStore, PredictorState

__all__ = [
    "DEFAULT_MIN_SAMPLES",
    "MAX_FOLDER_CHARS",
    "PREDICTOR_ONLY",
    "STATUSES",
    "AssetNameError",
    "AssetOutcome",
    "ExecutorError",
    "FleetConfig",
    "FleetStateStore",
    "PredictorState",
    "Progress",
    "TaskPool",
    "asset_folder",
    "asset_from_folder",
    "batches_of",
    "in_local_pool",
    "peak_rss_mib",
    "pool_size",
    "run_tasks",
    "runs_in_process",
    "worker_name",
]
