"""Fleet training: every asset of a fleet table (``data.asset_col``) trained as its own run.

Each asset goes through the same steps as a single machine (:data:`STEPS`), reading its own
window with ``WHERE asset_col = :asset``, and publishes into its own registry folder
``<registry.root_dir>/<asset>/`` (a :class:`ModelRegistry` each: same atomicity, lock and
checksums). Assets are cut into batches; each batch is one task on the local process pool or
the Dask cluster (:func:`Fleet.run_tasks`) that opens its own database connection, so no data
goes through the scheduler, only the config, the asset ids and small summaries.

- Gating: an asset with fewer usable samples (rows where some axis is neither 0 nor missing)
  than ``fleet.min_samples`` is not trained: ``needs-data``, with how many more it needs. It
  keeps its last good version, which scoring goes on using.
- One asset's failure (bad data, a fit error, a registry problem) is its own ``failed``
  outcome with the reason; the others go on.
- Plots are drawn only for assets needing attention (a MinC or MaxC that moved by more than
  ``fleet.attention_change`` since the asset's previous version) and those ``plots.assets``
  names; every version keeps what its plots are drawn from (models, thresholds, window).
- At the end the outcomes go to the fleet state table (``fleet.table``) in one transaction.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import multiprocessing.util
import os
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from Database import DatabaseError
from DataExtractionAnalysis import (
    DataConfig,
    EmptyWindowError,
    ExtractionError,
    KeptConnections,
    expect_windows,
    list_assets,
    newest_times,
    reusing_connections,
)
from Fleet import (
    AssetNameError,
    AssetOutcome,
    FleetStateStore,
    Progress,
    TaskPool,
    asset_folder,
    batches_of,
    in_local_pool,
    pool_size,
    runs_in_process,
)
from frames import float_column
from Labels import FeedbackStore
from ModelRegistry import ModelRegistry, RegistryError, VersionNotFoundError

from .config import LoadedConfig
from .context import (
    DatabaseSession,
    database_secrets,
    env_file_names,
    mask_in_logs,
    open_database,
    task_environment,
)
from .orchestrator import STEPS, RunState, Step, _check_destinations, asset_window
from .status import Status, status_for
from .tracking import track_fleet

__all__ = [
    "FleetTrainingReport",
    "asset_registry",
    "prepare_process",
    "read_fleet_state",
    "run_fleet_training",
    "train_assets",
    "worker_environment",
]

logger = logging.getLogger(__name__)


def asset_registry(loaded: LoadedConfig, asset: object) -> ModelRegistry:
    """The registry of one asset: ``<registry.root_dir>/<asset folder>/``."""
    config = loaded.config.registry
    root = loaded.path(config.root_dir) / asset_folder(asset)
    return ModelRegistry(root, lock_timeout=config.lock_timeout_s)


def read_fleet_state(loaded: LoadedConfig) -> pd.DataFrame:
    """The fleet state table's rows of ``data.table`` (empty before the first fleet run).

    Raises:
        DatabaseError: the database cannot be reached or read.
    """
    config = loaded.config
    session = open_database(loaded, access="read")
    try:
        store = FleetStateStore(
            session.engine, session.target, config.fleet.table, config.data.table
        )
        return store.read()
    finally:
        session.close()


@dataclass(frozen=True)
class FleetTrainingReport:
    """Outcome of a fleet training run: one :class:`AssetOutcome` per asset, in asset order."""

    run_id: str
    table: str
    outcomes: list[AssetOutcome]
    seconds: float
    workers: int
    data_source: str = "database"
    tracking: dict[str, Any] | None = None
    """The MLflow tracking outcome (``tracking.mlflow_uri``): status, detail, parent run id."""

    @property
    def counts(self) -> dict[str, int]:
        """Assets per status: trained, needs-data, failed."""
        found = Counter(outcome.status for outcome in self.outcomes)
        return {status: found.get(status, 0) for status in ("trained", "needs-data", "failed")}

    @property
    def status(self) -> Status:
        """``ok`` unless an asset failed: ``fleet-partial`` (exit 9), or, when every asset
        failed for the same kind of reason, that reason's status (e.g. ``db-error``)."""
        counts = self.counts
        detail = (
            f"{len(self.outcomes)} assets of {self.table}: {counts['trained']} trained, "
            f"{counts['needs-data']} need more data, {counts['failed']} failed"
        )
        failed = [outcome for outcome in self.outcomes if outcome.status == "failed"]
        if not failed:
            return Status("ok", detail)
        codes = {outcome.code for outcome in failed}
        if len(failed) == len(self.outcomes) and len(codes) == 1 and None not in codes:
            first = failed[0]
            return Status(str(first.code), f"{detail}; e.g. {first.asset}: {first.reason}")
        return Status("fleet-partial", detail)

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` payload of a fleet ``train`` (without ``status``)."""
        return {
            "run_id": self.run_id,
            "table": self.table,
            "data_source": self.data_source,
            "counts": self.counts,
            "seconds": round(self.seconds, 3),
            "workers": self.workers,
            "assets": [outcome.to_dict() for outcome in self.outcomes],
            "tracking": self.tracking,
        }


@dataclass(frozen=True)
class _TrainTask:
    """What every training task gets: the config and this run's choices (small, picklable)."""

    loaded: LoadedConfig
    run_id: str
    plots: str | tuple[str, ...]
    threads: int
    families: dict[str, tuple[str, dict[str, Any]]] | None = None
    """Chosen once for the fleet (``fleet.selection: shared``); None: each asset chooses."""
    chosen_by: str | None = None


def _usable_samples(frame: pd.DataFrame, axes: list[str]) -> int:
    """Rows where some axis is neither 0 (idle) nor missing: what a fit can learn from."""
    running = np.zeros(len(frame), dtype=bool)
    for axis in axes:  # column by column: no copy of the window
        values = float_column(frame, axis)
        running |= (values != 0) & ~np.isnan(values)
    return int(np.count_nonzero(running))


@dataclass
class _PlotChoice:
    """Decides, after ``threshold``, whether an asset's plots are drawn, and records why."""

    asset: str
    wanted: str | tuple[str, ...]
    previous: dict[str, dict[str, Any]] | None
    change: float
    attention: list[str] = field(default_factory=list)

    def __call__(self, state: RunState) -> bool:
        for channel, record in state.thresholds.items():
            old = (self.previous or {}).get(channel)
            if old is None:
                continue
            for key in ("MinC", "MaxC"):
                before, after = old.get(key), record.get(key)
                if not isinstance(before, (int, float)) or not isinstance(after, (int, float)):
                    continue
                if abs(after - before) > self.change * abs(before):
                    self.attention.append(
                        f"{channel} {key} {before:.4g} -> {after:.4g} "
                        f"({(after - before) / abs(before) if before else np.inf:+.0%})"
                    )
        return bool(self.attention) or self.wanted == "all" or self.asset in self.wanted


def _last_good(registry: ModelRegistry) -> tuple[str, str | None, dict[str, Any]] | None:
    """The asset's latest version: its tag, publication time and thresholds (None: none)."""
    try:
        found = registry.load("latest", verify=False)
        thresholds = found.read_json("thresholds.json")
    except VersionNotFoundError:
        return None
    except (RegistryError, OSError, ValueError) as exc:
        logger.warning("the latest version in %s cannot be read: %s", registry.root_dir, exc)
        return None
    created = found.meta.get("created_at")
    return found.version, None if created is None else str(created), thresholds


def _threshold_summary(thresholds: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        channel: {key: record.get(key) for key in ("MinC", "MaxC", "MinC_low", "MaxC_low")}
        for channel, record in thresholds.items()
    }


@dataclass
class _Trained:
    """An asset whose steps ran up to (not including) ``register``: what publishing it
    needs."""

    state: RunState
    choice: _PlotChoice
    previous: tuple[str, str | None, dict[str, Any]] | None
    started: float


def _train_one(
    task: _TrainTask,
    session: DatabaseSession,
    asset: Any,
    feedback: pd.DataFrame | None = None,
) -> AssetOutcome | _Trained:
    """Run one asset's steps before ``register`` (:func:`_publish` runs that one and
    ``promote``); every failure becomes its ``failed`` outcome, too few samples its
    ``needs-data`` one.
    ``feedback``: the verdicts of every asset, read once for the task (None: the asset reads
    its own)."""
    started = time.perf_counter()
    asset_id = str(asset)
    loaded = task.loaded
    fleet = loaded.config.fleet
    previous = None
    try:
        registry = asset_registry(loaded, asset_id)
        previous = _last_good(registry)
        choice = _PlotChoice(
            asset_id, task.plots, None if previous is None else previous[2], fleet.attention_change
        )
        state = RunState(
            loaded=loaded,
            session=session,
            run_id=task.run_id,
            asset=asset,
            registry_root=registry.root_dir,
            plots_dir=loaded.path(loaded.config.plots.dir) / asset_folder(asset_id),
            draw_plots=choice,
            threads=task.threads,
            previous=None if previous is None else (previous[0], previous[2]),
            feedback=feedback,
        )
        if task.families is not None:
            state.families = {axis: (f, dict(p)) for axis, (f, p) in task.families.items()}
            state.chosen_by = task.chosen_by
        for step in _COMPUTE_STEPS:
            _run_step(step, state)
            if step.name == "extract":
                assert state.extraction is not None
                usable = _usable_samples(state.extraction.frame, state.axes)
                if usable < fleet.min_samples:
                    return _needs_data(asset_id, usable, fleet.min_samples, previous, started)
    except EmptyWindowError:
        return _needs_data(asset_id, 0, fleet.min_samples, previous, started)
    except Exception as exc:  # one asset's failure never stops the others
        return _failed(asset_id, exc, previous, started)
    return _Trained(state, choice, previous, started)


_PUBLISH_STEPS = STEPS[-2:]
"""``register`` and ``promote``: writing the version's files (mostly waiting for the disk's
syncs) and its aliases, on the publishing thread while the next asset computes."""
_COMPUTE_STEPS = STEPS[:-2]
assert [step.name for step in _PUBLISH_STEPS] == ["register", "promote"]


def _run_step(step: Step, state: RunState) -> None:
    begun = time.perf_counter()
    step.run(state)
    state.timings[step.name] = round(time.perf_counter() - begun, 4)


def _publish(trained: _Trained) -> AssetOutcome:
    """Run an asset's last steps, ``register`` and ``promote`` (:data:`_PUBLISH_STEPS`), and
    give its ``trained`` outcome (or its ``failed`` one)."""
    state, choice = trained.state, trained.choice
    asset_id = str(state.asset)
    try:
        for step in _PUBLISH_STEPS:
            _run_step(step, state)
    except Exception as exc:  # one asset's failure never stops the others
        return _failed(asset_id, exc, trained.previous, trained.started)
    assert state.models is not None and state.profile is not None
    return AssetOutcome(
        asset=asset_id,
        status="trained",
        samples=_usable_samples(state.prepared.frame, state.axes) if state.prepared else None,
        version=state.version,
        trained_at=None if state.published_at is None else state.published_at.isoformat(),
        families=state.models.families_(),
        thresholds=_threshold_summary(state.thresholds),
        expected_events_per_day=state.alarm_budget.get("expected_events_per_day"),
        attention=[*choice.attention, *_not_promoted(state.promotion)],
        promotion=state.promotion,
        plots=len(state.plot_paths),
        seconds=round(time.perf_counter() - trained.started, 4),
    )


def _failed(
    asset: str,
    exc: Exception,
    previous: tuple[str, str | None, dict[str, Any]] | None,
    started: float,
) -> AssetOutcome:
    status = status_for(exc)
    if status.code == "error":
        logger.error("asset %s: unexpected failure", asset, exc_info=exc)
    else:
        logger.warning("asset %s failed: %s", asset, status.detail)
    return AssetOutcome(
        asset=asset,
        status="failed",
        reason=status.detail,
        code=status.code,
        version=None if previous is None else previous[0],
        trained_at=None if previous is None else previous[1],
        seconds=round(time.perf_counter() - started, 4),
    )


def _not_promoted(promotion: dict[str, Any] | None) -> list[str]:
    """The fleet table's note when the new version did not become the champion."""
    if promotion is None or promotion["promoted"]:
        return []
    return [f"not promoted, scoring keeps {promotion['champion']}: {promotion['reason']}"]


def _needs_data(
    asset: str,
    usable: int,
    needed: int,
    previous: tuple[str, str | None, dict[str, Any]] | None,
    started: float,
) -> AssetOutcome:
    missing = needed - usable
    reason = f"{usable} usable samples in the training window, needs {missing} more"
    keeps = "" if previous is None else f"; keeps scoring with {previous[0]}"
    logger.info("asset %s not trained: %s%s", asset, reason, keeps)
    return AssetOutcome(
        asset=asset,
        status="needs-data",
        samples=usable,
        missing=missing,
        reason=reason,
        version=None if previous is None else previous[0],
        trained_at=None if previous is None else previous[1],
        seconds=round(time.perf_counter() - started, 4),
    )


@dataclass
class _WorkerDatabase:
    """A local pool worker's database for the tasks of one run: the engine, the fast-path
    connections and the table's column plan, opened by its first task."""

    run_id: str
    session: DatabaseSession
    kept: KeptConnections

    def close(self) -> None:
        self.kept.close()
        self.session.close()


_WORKER_DATABASE: list[_WorkerDatabase] = []
"""The worker's database (at most one: a new run's first task closes the previous one's)."""


def _close_worker_database() -> None:
    while _WORKER_DATABASE:
        _WORKER_DATABASE.pop().close()


@contextmanager
def _task_database(task: _TrainTask) -> Iterator[tuple[DatabaseSession, KeptConnections | None]]:
    """A training task's database (read access) and the connections it may keep.

    In a local pool worker (:func:`in_local_pool`: it lives for one run's tasks) the first
    task of a run opens them and the next ones take them over: no new engine, ADBC connection
    (~40 ms of CPU each, and a server process) or catalogue lookup per task; they are closed
    when the worker exits, or when a task raises. Elsewhere (this process, a Dask worker that
    outlives the run) each task opens its own and closes it at its end.
    """
    environ = prepare_process(task.loaded)
    if not in_local_pool():
        session = open_database(task.loaded, access="read", environ=environ)
        try:
            yield session, None
        finally:
            session.close()
        return
    if not _WORKER_DATABASE or _WORKER_DATABASE[0].run_id != task.run_id:
        _close_worker_database()
        session = open_database(task.loaded, access="read", environ=environ)
        _WORKER_DATABASE.append(_WorkerDatabase(task.run_id, session, KeptConnections()))
        multiprocessing.util.Finalize(None, _close_worker_database, exitpriority=0)
    held = _WORKER_DATABASE[0]
    try:
        yield held.session, held.kept
    except BaseException:
        _close_worker_database()
        raise


def train_assets(task: _TrainTask, batch: list[Any]) -> list[AssetOutcome]:
    """One task: train the assets of ``batch`` one after the other on one connection, their
    windows read several at a time (:func:`read_windows_ahead`), each version published while
    the next asset computes."""
    outcomes: list[AssetOutcome] = []
    # An asset's version is published (files written and synced: mostly waiting for the
    # disk) on a thread while the next asset computes; one at a time, in asset order.
    with (
        _task_database(task) as (session, kept),
        reusing_connections(kept),
        ThreadPoolExecutor(1, "publish") as publisher,
    ):
        read_windows_ahead(task.loaded.config.data, session, batch)
        feedback = _stored_feedback(task.loaded, session)
        publishing: Future[AssetOutcome] | None = None
        for asset in batch:
            result = _train_one(task, session, asset, feedback)
            if publishing is not None:
                outcomes.append(publishing.result())
                publishing = None
            if isinstance(result, _Trained):
                publishing = publisher.submit(_publish, result)
            else:
                outcomes.append(result)
        if publishing is not None:
            outcomes.append(publishing.result())
    return outcomes


def read_windows_ahead(data: DataConfig, session: DatabaseSession, batch: list[Any]) -> None:
    """Announce the training windows of ``batch`` (:func:`expect_windows`): they are then read
    several assets at a time, not one query each; the newest sample times that relative
    bounds need are read in one query. An asset whose window cannot be told here reads (and
    reports) it on its own; so do all when the newest times cannot be read."""
    try:
        newest_times(session.engine, session.target, data, batch)
    except (DatabaseError, ExtractionError) as exc:
        logger.warning(
            "the newest samples of %d assets could not be read at once: %s", len(batch), exc
        )
        return
    windows = []
    for asset in batch:
        try:
            windows.append((asset, *asset_window(data, session, asset)))
        except (DatabaseError, ValueError) as exc:  # ExtractionError is a ValueError
            logger.debug("asset %s reads its window on its own: %s", asset, exc)
    expect_windows(session.engine, data, windows)


def _stored_feedback(loaded: LoadedConfig, session: DatabaseSession) -> pd.DataFrame | None:
    """The operators' verdicts on ``data.table``'s events, every asset's, read once for a
    task (each asset takes its own from them) instead of once per asset. None when they
    cannot be read here: each asset then reads (and reports) its own."""
    config = loaded.config
    try:
        store = FeedbackStore(session.engine, session.target, config.events.table)
        return store.read(config.data.table)
    except (DatabaseError, ValueError) as exc:
        logger.debug("each asset reads its own verdicts: %s", exc)
        return None


def prepare_process(loaded: LoadedConfig) -> dict[str, str]:
    """Set up a task: its environment (``.env`` and the process's own, see
    :func:`task_environment`), and in a worker process without logging of its own, warnings to
    stderr with the database secrets masked.

    Returns:
        The environment to open the database with.
    """
    environ = task_environment(loaded)
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(
            level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
        # The run already warned once about the embedded demo database; not once per task.
        logging.getLogger("Orchestration.context").setLevel(logging.ERROR)
        mask_in_logs(database_secrets(loaded, environ))
    return environ


def worker_environment(loaded: LoadedConfig) -> dict[str, str | None]:
    """What local pool workers take over from this process: the database URL variable,
    libpq's password and every variable ``.env`` names, as they are now (None: unset). Their
    fork server may have started before this process loaded ``.env`` (``fork_server``)."""
    names = {loaded.config.database.url_env, "PGPASSWORD", *env_file_names(loaded)}
    return {name: os.environ.get(name) for name in sorted(names)}


def select_assets(task: _TrainTask, batch: list[Any]) -> list[tuple[str, Any]]:
    """One task of a shared selection: each asset's choice of families (None: it has too
    few usable samples, or failed; its own training run will say why)."""
    chosen: list[tuple[str, Any]] = []
    with _task_database(task) as (session, kept), reusing_connections(kept):
        # As a training task: the windows a few at a time, the verdicts once.
        read_windows_ahead(task.loaded.config.data, session, batch)
        feedback = _stored_feedback(task.loaded, session)
        for asset in batch:
            state = RunState(
                task.loaded,
                session,
                task.run_id,
                asset=asset,
                threads=task.threads,
                feedback=feedback,
            )
            try:
                for step in STEPS[:4]:  # extract, analyze, prepare, select
                    step.run(state)
                    if step.name == "extract":
                        assert state.extraction is not None
                        usable = _usable_samples(state.extraction.frame, state.axes)
                        if usable < task.loaded.config.fleet.min_samples:
                            break
                else:
                    chosen.append((str(asset), dict(state.families)))
                    continue
            except Exception as exc:  # the asset's own run reports it
                logger.info("asset %s gives no vote on the families: %s", asset, exc)
            chosen.append((str(asset), None))
    return chosen


def _shared_families(
    loaded: LoadedConfig, assets: list[Any], task: _TrainTask, pool: TaskPool
) -> tuple[dict[str, tuple[str, dict[str, Any]]], str] | None:
    """Each axis's family chosen once for the fleet: the choice most of a sample make.

    The sample is ``fleet.selection_assets`` assets evenly spread over the sorted ids; ties
    go to the choice met first. None when no asset of the sample could choose.
    """
    config = loaded.config
    count = min(config.fleet.selection_assets, len(assets))
    picks = sorted({round(i * (len(assets) - 1) / max(count - 1, 1)) for i in range(count)})
    sample = [assets[i] for i in picks]
    # One task per worker: the sample's assets take about the same time, and a task's set-up
    # (its database connections, ~0.1 s) costs half an asset's choice.
    batches = batches_of(sample, config.fleet, pool_size(config.fleet), tasks_per_worker=1)
    with Progress(len(sample), "choosing families") as progress:
        votes = pool.run(
            select_assets,
            task,
            batches,
            progress=progress,
            on_error=lambda batch, exc: [(str(a), None) for a in batch],
        )
    voters = [(asset, families) for asset, families in votes if families]
    if not voters:
        logger.warning("no asset of the sample could choose families; each asset chooses its own")
        return None
    chosen: dict[str, tuple[str, dict[str, Any]]] = {}
    for axis in config.data.axis_columns:
        tally = Counter(
            json.dumps(families[axis], sort_keys=True) for _, families in voters if axis in families
        )
        family, params = json.loads(tally.most_common(1)[0][0])
        chosen[axis] = (family, params)
    note = (
        f"shared by the fleet: the choice of most of {len(voters)} assets "
        f"({', '.join(asset for asset, _ in voters)}) in run {task.run_id}"
    )
    logger.info("families for the fleet: %s (%s)", {a: f for a, (f, _) in chosen.items()}, note)
    return chosen, note


def _failed_batch(batch: list[Any], exc: BaseException) -> list[AssetOutcome]:
    """Every asset of a task that raised (it could not open the database, its worker died)."""
    status = status_for(exc)
    reason = f"its task did not finish: {status.detail}"
    return [
        AssetOutcome(asset=str(a), status="failed", reason=reason, code=status.code) for a in batch
    ]


def _selected(loaded: LoadedConfig, session: DatabaseSession) -> tuple[list[Any], list[str]]:
    """The assets to run (values as the database returns them) and configured ids not found."""
    data = loaded.config.data
    found = list_assets(session.engine, session.target, data)
    if data.assets == "all":
        return found, []
    by_id = {str(value): value for value in found}
    return [by_id[a] for a in data.assets if a in by_id], [a for a in data.assets if a not in by_id]


def _check_folders(assets: list[Any]) -> None:
    """Refuse ids whose folders would coincide on a case-insensitive file system."""
    seen: dict[str, str] = {}
    for asset in assets:
        folder = asset_folder(asset)
        other = seen.setdefault(folder.casefold(), str(asset))
        if other != str(asset):
            raise AssetNameError(
                f"asset ids {other!r} and {asset!r} differ only in letter case; their registry "
                "folders would be one on case-insensitive disks. Give them distinct ids"
            )


def run_fleet_training(
    loaded: LoadedConfig, *, plots: str | list[str] | None = None
) -> FleetTrainingReport:
    """Train every selected asset of the fleet table and record the outcomes.

    Args:
        loaded: the validated config, with ``data.asset_col`` set.
        plots: ``--plots``: ``all`` or asset ids (default ``plots.assets``).

    Raises:
        DestinationError: the registry root or plots folder cannot be written (checked first).
        ExtractionError: the table or the asset column is missing, or it holds no asset.
        DatabaseError: the database cannot be reached, or the state cannot be written.
    """
    started = time.perf_counter()
    run_id = f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{uuid.uuid4().hex[:8]}"
    _check_destinations(loaded, [step.name for step in STEPS])
    config = loaded.config
    session = open_database(loaded, access="read")
    try:
        assets, unknown = _selected(loaded, session)
        data_source = "demo" if session.target.embedded else "database"
    finally:
        session.close()
    if not assets and not unknown:
        raise ExtractionError(
            f"table {config.data.table!r} holds no asset ids in data.asset_col "
            f"{config.data.asset_col!r} (only NULL, or no rows); load data or fix data.asset_col"
        )
    _check_folders(assets)
    wanted = plots if plots is not None else config.plots.assets
    workers = pool_size(config.fleet)
    batches = batches_of(assets, config.fleet, workers)
    in_process = runs_in_process(config.fleet, len(batches))
    task = _TrainTask(
        loaded,
        run_id,
        wanted if isinstance(wanted, str) else tuple(wanted),
        threads=RunState.threads if in_process else 1,
    )
    # The family vote and the training share the pool: its workers and their connections.
    with TaskPool(config.fleet, worker_environment(loaded)) as pool:
        if config.model.type == "auto" and config.fleet.selection == "shared" and assets:
            shared = _shared_families(loaded, assets, task, pool)
            if shared is not None:
                task = dataclasses.replace(task, families=shared[0], chosen_by=shared[1])
        logger.info(
            "fleet training run %s: %d assets of %s in %d tasks (%s)",
            run_id,
            len(assets),
            config.data.table,
            len(batches),
            "this process" if in_process else config.fleet.executor,
        )
        with Progress(len(assets), "training") as progress:
            outcomes = pool.run(
                train_assets, task, batches, progress=progress, on_error=_failed_batch
            )
    missing = config.fleet.min_samples
    outcomes += [
        AssetOutcome(
            asset=a,
            status="needs-data",
            samples=0,
            missing=missing,
            reason=f"no rows in {config.data.table} for this asset, needs {missing} more",
        )
        for a in unknown
    ]
    outcomes.sort(key=lambda outcome: outcome.asset)
    writer = open_database(loaded)
    try:
        FleetStateStore(writer.engine, writer.target, config.fleet.table, config.data.table).write(
            outcomes, run_id
        )
    finally:
        writer.close()
    report = FleetTrainingReport(
        run_id=run_id,
        table=config.data.table,
        outcomes=outcomes,
        seconds=time.perf_counter() - started,
        workers=1 if in_process else workers,
        data_source=data_source,
    )
    logger.info("%s in %.1f s", report.status.detail, report.seconds)
    return dataclasses.replace(report, tracking=track_fleet(loaded, report).to_dict())
