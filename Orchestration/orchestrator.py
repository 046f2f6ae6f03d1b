"""The training pipeline as an explicit, ordered list of named steps, each timed.

extract → analyze → prepare → select → train → evaluate → threshold → plot → register.

``select`` chooses a family per axis on the held-out tail of the window (``model.type:
auto``), ``train`` refits the choice on the whole window, and ``threshold`` calibrates on
out-of-fold residuals (``thresholds.calibration: holdout``) or in-sample ones (the seed).
Labelled anomaly windows (``labels.table``) are left out of fits and calibration.
Every step reads what earlier steps produced from one run state; nothing is registered
unless every step before ``register`` succeeded.
"""

from __future__ import annotations

import datetime as dt
import functools
import io
import json
import logging
import os
import pickle
import platform
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from DataExtractionAnalysis import (
    DataConfig,
    Extraction,
    Profile,
    extract_window,
    newest_time,
    profile,
    resolve_bound,
)
from DataPreparation import PreparedData, prepare
from Labels import label_mask, read_labels
from ModelEvaluation import (
    AxisPlotData,
    MetricsRow,
    axis_metrics,
    axis_plot_data,
    metrics_frame,
    write_plots,
)
from ModelRegistry import ModelRegistry, VersionExistsError, VersionNotFoundError
from ModelSelection import GRIDS, Selection, select_families
from ModelTraining import AxisModelSet, FamilySpec, machine_rows, out_of_fold
from Thresholding import ThresholdCalibrator

from .config import LoadedConfig
from .context import DatabaseSession, open_database
from .destinations import check_folder

__all__ = [
    "STEPS",
    "OrchestrationResult",
    "RunState",
    "Step",
    "TrainingRun",
    "run_profile",
    "run_training",
    "training_window",
]

logger = logging.getLogger(__name__)

_AXIS_THREADS = min(2, os.cpu_count() or 1)
"""Axes fitted and calibrated at the same time. Two use both cores of a small machine; more
would only add memory (each axis in flight holds a few full-length scratch arrays)."""

_LIBRARIES = (
    "numpy",
    "pandas",
    "scikit-learn",
    "SQLAlchemy",
    "matplotlib",
    "pydantic",
    "pyarrow",
    "adbc-driver-postgresql",
    "psycopg2-binary",
    "PyYAML",
)


@dataclass
class RunState:
    """What the steps of one run have produced so far."""

    loaded: LoadedConfig
    session: DatabaseSession
    run_id: str
    asset: Any = None
    """With ``data.asset_col``: the asset trained (its value as the database returns it)."""
    registry_root: Path | None = None
    """Where ``register`` publishes (default ``registry.root_dir``; a fleet: the asset's)."""
    plots_dir: Path | None = None
    """Where ``plot`` draws (default ``plots.dir``)."""
    draw_plots: Callable[[RunState], bool] | None = None
    """Asked after ``threshold`` whether to draw this run's plots (default: always, when
    ``plots.enabled``); a fleet draws only the assets that need attention."""
    threads: int = _AXIS_THREADS
    """Axes fitted and calibrated at the same time (1 in a fleet's worker processes)."""
    chosen_by: str | None = None
    """Set with ``families`` before ``select`` (a fleet choosing once for all its assets):
    ``select`` keeps them, and ``selection.json`` records this as the criterion."""
    extraction: Extraction | None = None
    profile: Profile | None = None
    prepared: PreparedData | None = None
    labels: pd.DataFrame | None = None
    masks: dict[str, np.ndarray] = field(default_factory=dict)
    selection: Selection | None = None
    families: dict[str, FamilySpec] = field(default_factory=dict)
    models: AxisModelSet | None = None
    metrics: pd.DataFrame | None = None
    thresholds: dict[str, dict[str, Any]] = field(default_factory=dict)
    alarm_budget: dict[str, Any] = field(default_factory=dict)
    plot_data: list[AxisPlotData] = field(default_factory=list)
    kept_residuals: dict[str, np.ndarray] = field(default_factory=dict)
    """In-sample residuals from ``evaluate`` for ``threshold`` (``calibration: in_sample``)."""
    plot_paths: list[Path] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    version: str | None = None
    artifact_dir: Path | None = None
    published_at: dt.datetime | None = None
    _predicted: pd.DataFrame | None = field(default=None, init=False, repr=False)

    @property
    def axes(self) -> list[str]:
        return self.loaded.config.data.axis_columns

    @property
    def predicted(self) -> pd.DataFrame | None:
        """The prepared frame plus ``_pred`` and ``_res`` of every fitted axis, for inspection.

        Built on first access once ``train`` has run (None before). The steps never build it:
        they take one axis at a time from :func:`_axis_residuals`, which on a 10M-row window
        spares 16 float64 columns (1.3 GB) and the time to allocate them.
        """
        if self._predicted is None and self.models is not None and self.prepared is not None:
            self._predicted = self.models.predict(self.prepared.frame)
        return self._predicted


@dataclass(frozen=True)
class Step:
    """A named pipeline step: a function of the run state."""

    name: str
    run: Callable[[RunState], None]


@dataclass(frozen=True)
class OrchestrationResult:
    """Outcome of a training run."""

    version: str
    run_id: str
    artifact_dir: Path
    rows: int
    axes: list[str]
    metrics: pd.DataFrame
    thresholds: dict[str, dict[str, Any]]
    timings: dict[str, float]
    profile: Profile
    fit_report: dict[str, dict[str, int]]
    data_source: str = "database"
    """``demo``: trained on the embedded synthetic demo database, not on real data."""
    families: dict[str, str] = field(default_factory=dict)
    """Axis → the family fitted to it."""
    alarm_budget: dict[str, Any] = field(default_factory=dict)
    """The expected false events per day (all channels), the budget and what it changed."""
    masked_rows: int = 0
    """Training rows left out because they lie in a labelled anomaly window."""

    @property
    def expected_events_per_day(self) -> float | None:
        """False alert events per day the thresholds raise on the calibration residuals."""
        return self.alarm_budget.get("expected_events_per_day")

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` payload of ``train`` (without ``status``)."""
        return {
            "version": self.version,
            "data_source": self.data_source,
            "run_id": self.run_id,
            "artifact_dir": str(self.artifact_dir),
            "rows": self.rows,
            "masked_rows": self.masked_rows,
            "axes": self.axes,
            "families": self.families,
            "metrics": self.metrics.to_dict(orient="records"),
            "thresholds": self.thresholds,
            "expected_events_per_day": self.expected_events_per_day,
            "alarm_budget": self.alarm_budget,
            "timings": self.timings,
        }


def training_window(
    state: RunState,
) -> tuple[dt.datetime | None, dt.datetime | None]:
    """``[data.train_start, data.train_end)`` as absolute bounds for this run's asset.

    Relative bounds (``-30d``) count from the newest sample of the asset (or table).
    """
    return asset_window(state.loaded.config.data, state.session, state.asset)


def asset_window(
    data: DataConfig, session: DatabaseSession, asset: Any
) -> tuple[dt.datetime | None, dt.datetime | None]:
    """``[data.train_start, data.train_end)`` of ``asset`` (None: the table's), absolute."""
    newest: Any = None
    if isinstance(data.train_start, dt.timedelta) or isinstance(data.train_end, dt.timedelta):
        newest = newest_time(session.engine, session.target, data, asset=asset)
        if isinstance(newest, float):
            newest = dt.datetime.fromtimestamp(newest, dt.timezone.utc)
    return resolve_bound(data.train_start, newest), resolve_bound(data.train_end, newest)


def _extract(state: RunState) -> None:
    config = state.loaded.config
    start, end = training_window(state)
    state.extraction = extract_window(
        state.session.engine,
        state.session.target,
        config.data,
        start=start,
        end=end,
        fast_path=config.database.fast_path,
        asset=state.asset,
    )


def _analyze(state: RunState) -> None:
    assert state.extraction is not None
    state.profile = profile(state.extraction.frame, state.axes)
    logger.info(
        "window: %d rows from %s to %s, dt_seconds %.6g, %d gaps",
        state.profile.rows,
        state.profile.start,
        state.profile.end,
        state.profile.dt_seconds,
        state.profile.gaps,
    )


def _prepare(state: RunState) -> None:
    assert state.extraction is not None and state.profile is not None
    state.prepared = prepare(
        state.extraction.frame,
        state.axes,
        state.loaded.config.prep,
        dt_seconds=state.profile.dt_seconds,
    )
    labels = state.loaded.config.labels
    if labels.table is not None:
        state.labels = read_labels(state.session.engine, state.session.target, labels.table)
        state.masks = label_mask(state.prepared.frame["ts"], state.labels, state.axes)
        logger.info(
            "labels: %d window(s) in %s cover %d of %d training rows%s",
            len(state.labels),
            labels.table,
            int(np.count_nonzero(state.masks["*"])),
            len(state.prepared.frame),
            "; they are left out of fits and calibration" if labels.mask_training else "",
        )


def _allowed(state: RunState) -> np.ndarray | None:
    """Rows fits and calibration may use: all but labelled anomalies (when masking)."""
    if not state.masks or not state.loaded.config.labels.mask_training:
        return None
    return ~state.masks["*"]


def _select(state: RunState) -> None:
    """The family (and parameters) of every axis: chosen on the tail, or as configured."""
    assert state.prepared is not None
    if state.chosen_by is not None:
        return
    model = state.loaded.config.model
    candidates = list(model.candidates) if model.type == "auto" else [model.type]
    grid_size = len(GRIDS[model.type]) if model.type != "auto" else 0
    if model.type != "auto" and (model.type in model.params or grid_size == 1):
        params = dict(model.params.get(model.type, {}))
        state.families = {axis: (model.type, params) for axis in state.axes}
        return
    frame = state.prepared.frame
    start = max(0, len(frame) - model.max_rows)
    allowed = _allowed(state)
    state.selection = select_families(
        frame.iloc[start:][["time_s", *state.axes]],
        state.axes,
        candidates,
        validation_share=model.validation_share,
        where=None if allowed is None else allowed[start:],
        labelled={axis: mask[start:] for axis, mask in state.masks.items()} or None,
        fixed=model.params,
        trials=model.tuning.trials,
        seed=model.tuning.seed,
    )
    state.families = dict(state.selection.chosen)


def _train(state: RunState) -> None:
    assert state.prepared is not None
    model_config = state.loaded.config.model
    state.models = AxisModelSet(
        state.families,
        state.axes,
        on_short_axis=model_config.on_short_axis,
        min_rows=model_config.min_rows,
        n_jobs=state.threads,
        machine=model_config.machine,
    ).fit(state.prepared.frame, where=_allowed(state))


def _fitted_axes(state: RunState) -> list[str]:
    """Configured axes that have a model, in order (the machine channel is not an axis)."""
    assert state.models is not None
    return [axis for axis in state.axes if axis in state.models.models_]


class _Computed(Mapping[str, Any]):
    """A read-only mapping whose values are computed on each access, one key at a time."""

    def __init__(self, keys: list[str], compute: Callable[[str], Any]) -> None:
        self._keys = keys
        self._compute = compute

    def __getitem__(self, key: str) -> Any:
        if key not in self._keys:
            raise KeyError(key)
        return self._compute(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)


def _axis_residuals(state: RunState) -> Mapping[str, np.ndarray]:
    """Fitted axis → its residuals (value − model, NaN where idle or missing), on access.

    Evaluation and plotting take the axes one by one, so only the axes in flight have a
    residual array. Recomputing a fitted curve is cheaper than keeping (and first allocating)
    all of them: 8 axes of a 10M-row window would hold 640 MB more. In-sample calibration is
    the exception: it holds every axis at once, so ``evaluate`` keeps them for it.
    """
    assert state.models is not None and state.prepared is not None
    models, frame = state.models, state.prepared.frame
    return _Computed(_fitted_axes(state), lambda axis: models.residual(frame, axis))


def _plot_data(state: RunState, axis: str, residual: np.ndarray) -> AxisPlotData:
    """The subsampled data of one axis's plots."""
    assert state.prepared is not None
    frame = state.prepared.frame
    shared = [column for column in ("ts", "time_s") if column in frame.columns]
    # The axis, its residuals and the time columns, joined without copying any of them.
    added = pd.DataFrame({f"{axis}_res": residual}, index=frame.index, copy=False)
    plotted = pd.concat([frame[[*shared, axis]], added], axis=1)
    return axis_plot_data(plotted, axis, max_points=state.loaded.config.plots.max_points)


def _evaluate(state: RunState) -> None:
    """Metrics per axis, and the subsampled data of its plots while its residuals exist.

    With ``draw_plots`` set (a fleet), the plot data waits for the decision in ``plot``.
    """
    assert state.prepared is not None
    frame = state.prepared.frame
    plots_now = state.loaded.config.plots.enabled and state.draw_plots is None
    residuals = _axis_residuals(state)
    # In-sample calibration needs these very residuals, all of them at once (it holds every
    # axis's series): keeping them spares computing them again and costs no extra peak memory.
    keep = state.loaded.config.thresholds.calibration == "in_sample"
    kept: dict[str, np.ndarray] = {}

    def evaluate_axis(axis: str) -> tuple[MetricsRow, AxisPlotData | None]:
        residual = residuals[axis]
        if keep:
            kept[axis] = residual
        metrics = axis_metrics(axis, frame[axis].to_numpy(dtype=np.float64), residual)
        return metrics, _plot_data(state, axis, residual) if plots_now else None

    if state.threads > 1:
        with ThreadPoolExecutor(max_workers=state.threads) as pool:
            results = list(pool.map(evaluate_axis, list(residuals)))
    else:
        results = [evaluate_axis(axis) for axis in residuals]
    state.metrics = metrics_frame([metrics for metrics, _ in results])
    state.plot_data = [data for _, data in results if data is not None]
    state.kept_residuals = {axis: kept[axis] for axis in residuals if axis in kept}


def _threshold(state: RunState) -> None:
    """Calibrate on out-of-fold residuals (holdout) or the final model's own (in_sample)."""
    assert state.profile is not None and state.prepared is not None and state.models is not None
    config = state.loaded.config
    machine = config.model.machine
    allowed = _allowed(state)
    fitted = {axis: state.families[axis] for axis in _fitted_axes(state)}
    if config.thresholds.calibration == "holdout":
        held = out_of_fold(
            state.prepared.frame,
            fitted,
            folds=config.model.folds,
            max_rows=config.model.max_rows,
            where=allowed,
            machine=machine,
        )
        residuals: Mapping[str, np.ndarray] = held.residuals
        scores = held.machine
    else:
        residuals = state.kept_residuals or _axis_residuals(state)
        state.kept_residuals = {}  # the calibrator holds them as long as it needs them
        if allowed is not None:
            plain = residuals
            residuals = _Computed(list(plain), lambda axis: np.where(allowed, plain[axis], np.nan))
        scores = state.models.machine_score(state.prepared.frame)
        if scores is not None:
            rows = machine_rows(state.prepared.frame, list(fitted), allowed)
            scores = np.where(rows, scores, np.nan)
    calibrator = ThresholdCalibrator(config.thresholds, n_jobs=state.threads).fit(
        residuals,
        state.profile.dt_seconds,
        machine=machine,
        machine_scores=scores,
        merge_gap_seconds=config.events.merge_gap_seconds,
    )
    state.thresholds = calibrator.to_dict()
    state.alarm_budget = {
        **calibrator.budget_,
        "expected_events_per_day": round(calibrator.expected_events_per_day_, 6),
        "calibration": config.thresholds.calibration,
    }
    for change in calibrator.budget_.get("changes", []):
        logger.info("alarm budget: %s", change)
    logger.info(
        "expected false alert events per day (calibration residuals): %.3g in total; %s",
        calibrator.expected_events_per_day_,
        ", ".join(
            f"{name} {record['expected_events_per_day']:.3g}"
            for name, record in state.thresholds.items()
        ),
    )


def _plot(state: RunState) -> None:
    plots = state.loaded.config.plots
    if not plots.enabled:
        return
    if state.draw_plots is not None:
        if not state.draw_plots(state):
            return
        residuals = _axis_residuals(state)
        state.plot_data = [_plot_data(state, axis, residuals[axis]) for axis in residuals]
    state.plot_paths = write_plots(
        state.plot_data,
        state.thresholds,
        state.plots_dir or state.loaded.path(plots.dir),
    )


@functools.cache  # one git call per process, not one per asset of a fleet
def _code_revision() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).resolve().parent,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


@functools.cache
def _library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in _LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def _data_source(state: RunState) -> str:
    """``demo`` for the embedded synthetic database, else ``database`` (never the URL)."""
    return "demo" if state.session.target.embedded else "database"


def _requested(bound: dt.datetime | dt.timedelta | None) -> Any:
    """A configured window bound for ``meta.yaml``: a datetime, or the relative text."""
    if isinstance(bound, dt.timedelta):
        return f"-{(-bound).total_seconds():g}s"
    return bound


def _meta(state: RunState) -> dict[str, Any]:
    assert state.extraction is not None and state.profile is not None
    config = state.loaded.config
    asset = {} if state.asset is None else {"asset": str(state.asset)}
    return {
        **asset,
        "config": config.model_dump(mode="json"),
        "database": {
            "source": _data_source(state),
            "dialect": state.session.target.dialect,
            "embedded": state.session.target.embedded,
            "table": config.data.table,
            "layout": state.extraction.source.layout,
            "reader": state.extraction.source.reader,
        },
        "data": {
            "rows": state.profile.rows,
            "start": state.profile.start,
            "end": state.profile.end,
            "requested_start": _requested(config.data.train_start),
            "requested_end": _requested(config.data.train_end),
            "duplicates_resolved": state.extraction.duplicates_resolved,
        },
        "axes": _fitted_axes(state),
        "families": {axis: family for axis, (family, _) in state.families.items()},
        "machine_channel": config.model.machine,
        "labels": {
            "table": config.labels.table,
            "windows": 0 if state.labels is None else len(state.labels),
            "masked_rows": int(np.count_nonzero(state.masks["*"])) if state.masks else 0,
            "masked": bool(state.masks) and config.labels.mask_training,
        },
        "alarm_budget": dict(state.alarm_budget),
        "dt_seconds": state.profile.dt_seconds,
        "libraries": dict(_library_versions()),
        "code_revision": _code_revision(),
        "timings_s": dict(state.timings),
    }


def _selection_record(state: RunState) -> dict[str, Any]:
    """``selection.json``: the comparison table, or the configured family when none was run."""
    if state.selection is not None:
        return state.selection.to_dict()
    return {
        "criterion": state.chosen_by or "configured",
        "chosen": {a: {"family": f, "params": p} for a, (f, p) in state.families.items()},
        "table": [],
    }


def _register(state: RunState) -> None:
    assert state.models is not None and state.prepared is not None
    assert state.metrics is not None
    metrics_csv = io.StringIO()
    state.metrics.to_csv(metrics_csv, index=False)
    files: dict[str, bytes | Path] = {
        "models.json": json.dumps(state.models.to_dict(), indent=2).encode(),
        "models.pkl": pickle.dumps(state.models),
        "prep_stats.json": json.dumps(state.prepared.stats(), indent=2).encode(),
        "thresholds.json": json.dumps(state.thresholds, indent=2).encode(),
        "selection.json": json.dumps(_selection_record(state), indent=2).encode(),
        "metrics.csv": metrics_csv.getvalue().encode(),
    }
    files.update({f"plots/{path.name}": path for path in state.plot_paths})
    config = state.loaded.config.registry
    root = state.registry_root or state.loaded.path(config.root_dir)
    registry = ModelRegistry(root, lock_timeout=config.lock_timeout_s)
    published = registry.publish(
        files,
        meta=_meta(state),
        version_tag=state.loaded.config.registry.version_tag,
        run_id=state.run_id,
    )
    state.version, state.artifact_dir = published.version, published.path
    state.published_at = published.created_at


STEPS: tuple[Step, ...] = (
    Step("extract", _extract),
    Step("analyze", _analyze),
    Step("prepare", _prepare),
    Step("select", _select),
    Step("train", _train),
    Step("evaluate", _evaluate),
    Step("threshold", _threshold),
    Step("plot", _plot),
    Step("register", _register),
)


def _refuse_existing_tag(loaded: LoadedConfig) -> None:
    """Refuse an explicit ``registry.version_tag`` that exists before any work is done.

    The registry refuses it again at publish time (another run may take it meanwhile).
    """
    tag = loaded.config.registry.version_tag
    root = loaded.path(loaded.config.registry.root_dir)
    if tag == "auto":
        return
    try:
        ModelRegistry(root).resolve(tag)
    except VersionNotFoundError:
        return
    raise VersionExistsError(
        f"registry.version_tag {tag!r} already exists in {root}; versions are never "
        "overwritten: choose a new tag, or use version_tag: auto"
    )


def _check_destinations(loaded: LoadedConfig, step_names: list[str]) -> None:
    """Refuse an unusable registry root or plots folder before any data is read.

    Raises:
        DestinationError: status ``registry-error``; the message names the path and the fix.
    """
    config = loaded.config
    if "register" in step_names:
        check_folder(loaded.path(config.registry.root_dir), "registry.root_dir")
    if "plot" in step_names and config.plots.enabled:
        check_folder(loaded.path(config.plots.dir), "plots.dir")


class TrainingRun:
    """One training run, step by step: what ``run_training`` does, open for inspection.

    ``main.py`` runs all steps at once; the notebook calls :meth:`run_step` for each name in
    :attr:`step_names` and looks at :attr:`state` in between (``state.profile``,
    ``state.predicted``, ``state.metrics``, ``state.thresholds``, ...).

    Args:
        loaded: the validated config.
        steps: the ordered steps (default :data:`STEPS`).
        asset: with ``data.asset_col``, the asset whose window the steps read (profile one
            machine of a fleet; a fleet's training runs its assets through ``Orchestration.fleet``).

    Raises:
        DestinationError: the registry root or plots folder cannot be written (checked first).
        VersionExistsError: an explicit ``registry.version_tag`` is already published.
        DatabaseError: the database cannot be opened.
    """

    def __init__(
        self, loaded: LoadedConfig, steps: tuple[Step, ...] = STEPS, *, asset: Any = None
    ) -> None:
        run_id = f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{uuid.uuid4().hex[:8]}"
        _check_destinations(loaded, [step.name for step in steps])
        if any(step.name == "register" for step in steps):
            _refuse_existing_tag(loaded)
        self.steps = steps
        # Training only reads: a SQLite file is opened read-only, and a mistyped one is an
        # error rather than a new empty file.
        session = open_database(loaded, access="read")
        self.state = RunState(loaded=loaded, session=session, run_id=run_id, asset=asset)
        self._next = 0

    @property
    def step_names(self) -> list[str]:
        """Names of the steps, in order."""
        return [step.name for step in self.steps]

    def run_step(self, name: str) -> RunState:
        """Run the next step, which must be ``name`` (steps run in order, each once).

        Raises:
            ValueError: ``name`` is not the next step.
        """
        if self._next >= len(self.steps) or self.steps[self._next].name != name:
            expected = self.steps[self._next].name if self._next < len(self.steps) else "none"
            raise ValueError(f"step {name!r} cannot run now; the next step is {expected!r}")
        step = self.steps[self._next]
        logger.info("step %s: start", step.name)
        started = time.perf_counter()
        try:
            step.run(self.state)
        except BaseException:
            self.close()
            raise
        self.state.timings[step.name] = round(time.perf_counter() - started, 4)
        logger.info("step %s: done in %.3f s", step.name, self.state.timings[step.name])
        self._next += 1
        if self._next == len(self.steps):
            self.close()
        return self.state

    def run_all(self) -> RunState:
        """Run every remaining step."""
        for step in self.steps[self._next :]:
            self.run_step(step.name)
        return self.state

    def close(self) -> None:
        """Release the database connections."""
        self.state.session.close()

    def result(self) -> OrchestrationResult:
        """The outcome once the ``register`` step has run.

        Raises:
            ValueError: the run has not registered a version yet.
        """
        state = self.state
        if state.version is None or state.artifact_dir is None or state.models is None:
            raise ValueError("the run has not registered a version yet; call run_all()")
        assert state.metrics is not None and state.profile is not None
        return OrchestrationResult(
            version=state.version,
            run_id=state.run_id,
            artifact_dir=state.artifact_dir,
            rows=state.profile.rows,
            axes=_fitted_axes(state),
            metrics=state.metrics,
            thresholds=state.thresholds,
            timings=dict(state.timings),
            profile=state.profile,
            fit_report=state.models.fit_report_,
            data_source=_data_source(state),
            families=state.models.families_(),
            alarm_budget=dict(state.alarm_budget),
            masked_rows=int(np.count_nonzero(state.masks["*"])) if state.masks else 0,
        )


def run_training(loaded: LoadedConfig) -> OrchestrationResult:
    """Run every step of :data:`STEPS` and register a new version.

    Raises:
        ConfigError, ExtractionError, PreparationError, TrainingError, CalibrationError,
        DatabaseError, RegistryError: from the failing step; nothing is registered then.
    """
    run = TrainingRun(loaded)
    logger.info("training run %s with config %s", run.state.run_id, loaded.source)
    run.run_all()
    result = run.result()
    logger.info("registered %s at %s", result.version, result.artifact_dir)
    return result


def run_profile(loaded: LoadedConfig, *, asset: Any = None) -> Profile:
    """Extract the configured training window (of ``asset`` in a fleet table), validate it
    and profile it."""
    run = TrainingRun(loaded, steps=STEPS[:3], asset=asset)
    state = run.run_all()
    assert state.profile is not None
    return state.profile
