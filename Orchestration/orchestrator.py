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

import contextlib
import dataclasses
import datetime as dt
import functools
import importlib
import logging
import os
import pickle
import platform
import subprocess
import threading
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
    UnhealthySensorError,
    extract_window,
    newest_time,
    profile,
    resolve_bound,
)
from DataPreparation import PreparedData, prepare
from frames import float_column
from Labels import VERDICTS, FeedbackStore, TrainingMask, read_labels, training_mask
from ModelEvaluation import (
    AxisPlotData,
    MetricsRow,
    axis_insight,
    axis_metrics,
    axis_plot_data,
    correlated_pairs,
    insight_sentences,
    metrics_csv,
    metrics_frame,
    write_plots,
)
from ModelRegistry import (
    ModelRegistry,
    PublishedVersion,
    RegistryError,
    VersionExistsError,
    VersionNotFoundError,
    json_text,
)
from ModelSelection import GRIDS, Selection, select_families
from ModelTraining import AxisModelSet, FamilySpec, HeldOut, machine_rows, out_of_fold
from Reports import DigestSection, VersionReport, render_version_report
from Scoring.drift import DriftBaselines, fit_drift_baselines
from Thresholding import ThresholdCalibrator, apply_learned, outcome_rows, smooth
from Tracking import safe_uri

from .config import LoadedConfig
from .context import DatabaseSession, open_database
from .destinations import check_folder
from .promotion import decide_promotion
from .tracking import track_training

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
    previous: tuple[str, dict[str, Any]] | None = None
    """The version that was latest before this run and its thresholds, when the caller has
    read them already (a fleet has); None: ``register`` reads them for ``report.html``."""
    chosen_by: str | None = None
    """Set with ``families`` before ``select`` (a fleet choosing once for all its assets):
    ``select`` keeps them, and ``selection.json`` records this as the criterion."""
    extraction: Extraction | None = None
    profile: Profile | None = None
    skipped_axes: list[str] = field(default_factory=list)
    """Axes left out because their sensor health is ``low`` (``health.on_low: skip``)."""
    prepared: PreparedData | None = None
    labels: pd.DataFrame | None = None
    masks: dict[str, np.ndarray] = field(default_factory=dict)
    """Per axis (and ``*``), the training rows inside a known incident."""
    mask: TrainingMask | None = None
    """Known incidents and maintenance windows of the training rows (None: none known)."""
    verdicts: pd.DataFrame | None = None
    """Operators' verdicts on this asset's events (``start_ts``, ``end_ts``, ``axis``,
    ``severity``, ``verdict``)."""
    feedback: pd.DataFrame | None = None
    """The feedback table's verdicts on ``data.table`` (every asset), when the caller read
    them once for many assets (a fleet task); None: ``prepare`` reads this asset's."""
    selection: Selection | None = None
    families: dict[str, FamilySpec] = field(default_factory=dict)
    models: AxisModelSet | None = None
    metrics: pd.DataFrame | None = None
    thresholds: dict[str, dict[str, Any]] = field(default_factory=dict)
    drift: DriftBaselines | None = None
    """Drift baselines from the calibration residuals (``drift.enabled``), for ``drift.json``."""
    insights: dict[str, Any] = field(default_factory=dict)
    """Per-axis profiles, correlated axes and sentences (``ModelEvaluation.insights``)."""
    alarm_budget: dict[str, Any] = field(default_factory=dict)
    plot_data: list[AxisPlotData] = field(default_factory=list)
    kept_residuals: dict[str, np.ndarray] = field(default_factory=dict)
    """In-sample residuals from ``evaluate`` for ``threshold`` (``calibration: in_sample``)."""
    plot_paths: list[Path] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    version: str | None = None
    artifact_dir: Path | None = None
    published_at: dt.datetime | None = None
    published: PublishedVersion | None = None
    """What ``register`` published (``version``, ``artifact_dir``, ``published_at``)."""
    live_before: str | None = None
    """The version scoring used before this run published (None: the lineage's first)."""
    promotion: dict[str, Any] | None = None
    """The ``promote`` step's decision (see :mod:`Orchestration.promotion`)."""
    _predicted: pd.DataFrame | None = field(default=None, init=False, repr=False)

    @property
    def axes(self) -> list[str]:
        """The configured axes, without those skipped for their sensor health."""
        return [a for a in self.loaded.config.data.axis_columns if a not in self.skipped_axes]

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
    promotion: dict[str, Any] | None = None
    """Whether the version became the champion, and why (``registry.promote``)."""
    tracking: dict[str, Any] | None = None
    """The MLflow tracking outcome (``tracking.mlflow_uri``): status, detail, run id."""
    insights: dict[str, Any] = field(default_factory=dict)
    """Per-axis profiles, correlated axes and ``sentences`` (see ``ModelEvaluation.insights``)."""

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
            "promotion": self.promotion,
            "tracking": self.tracking,
            "insights": self.insights,
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
    health = state.loaded.config.health
    state.profile = profile(state.extraction.frame, state.axes, health if health.enabled else None)
    for axis, graded in state.profile.health.items():
        if graded.findings:
            logger.log(
                logging.WARNING if graded.grade == "low" else logging.INFO,
                "sensor health of %s: %s (%s)",
                axis,
                graded.grade,
                "; ".join(graded.reasons),
            )
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
    _mask_known_windows(state)


def _mask_known_windows(state: RunState) -> None:
    """Incidents (labels, confirmed events, with the margin) and maintenance windows of this
    asset's training rows (see :mod:`Labels.masking`)."""
    assert state.prepared is not None
    config = state.loaded.config
    labels = config.labels
    engine, target = state.session.engine, state.session.target
    by_asset = {"asset_col": config.data.asset_col, "asset": state.asset}
    if labels.table is not None:
        state.labels = read_labels(engine, target, labels.table, **by_asset)
    state.verdicts = FeedbackStore(engine, target, config.events.table).verdict_windows(
        config.data.table,
        "" if state.asset is None else str(state.asset),
        VERDICTS,
        stored=state.feedback,
    )
    verdicts = state.verdicts
    confirmed = verdicts if verdicts.empty else verdicts[verdicts["verdict"] == "confirmed"]
    calendar = None
    if labels.calendar_table is not None:
        calendar = read_labels(
            engine, target, labels.calendar_table, key="labels.calendar_table", **by_asset
        )
    if state.labels is None and confirmed.empty and calendar is None:
        return
    state.mask = training_mask(
        state.prepared.frame["ts"],
        state.axes,
        labels=state.labels,
        confirmed=confirmed,
        maintenance=calendar,
        margin=pd.Timedelta(labels.mask_margin),
    )
    state.masks = state.mask.incidents
    summary = state.mask.summary()
    logger.info(
        "known windows: %d labelled, %d confirmed event(s) (margin %gs), %d maintenance; they "
        "cover %d of %d training rows (%d in incidents, %d in maintenance)%s",
        summary["windows"]["labels"],
        summary["windows"]["confirmed"],
        summary["margin_s"],
        summary["windows"]["maintenance"],
        summary["masked_rows"],
        summary["rows"],
        summary["masked_incident_rows"],
        summary["masked_maintenance_rows"],
        "; they are left out of fits and calibration" if labels.mask_training else "",
    )


def _apply_health(state: RunState) -> None:
    """Refuse, skip or keep the axes graded ``low`` (``health.on_low``), once the window's
    own checks (missing columns, NaN-only axes) have spoken."""
    assert state.profile is not None
    policy = state.loaded.config.health
    low = {axis: h for axis, h in state.profile.health.items() if h.grade == "low"}
    if not low or policy.on_low == "warn":
        return
    why = "; ".join(f"{axis}: {', '.join(h.reasons)}" for axis, h in low.items())
    if policy.on_low == "refuse" or len(low) == len(state.axes):
        actions = sorted({f.action for h in low.values() for f in h.findings if f.grade == "low"})
        raise UnhealthySensorError(
            f"sensor health graded low, training refused: {why}. To fix: "
            + "; ".join(actions)
            + "; or set health.on_low: skip (train without these axes) or warn"
        )
    state.skipped_axes = sorted(low)
    logger.warning("sensor health: %s left out of this version (%s)", state.skipped_axes, why)


def _allowed(state: RunState) -> np.ndarray | None:
    """Rows fits and calibration may use: all but known incidents and maintenance windows
    (when masking)."""
    if state.mask is None or not state.loaded.config.labels.mask_training:
        return None
    return ~state.mask.excluded


def _select(state: RunState) -> None:
    """The family (and parameters) of every axis: chosen on the tail, or as configured."""
    assert state.prepared is not None
    _apply_health(state)  # here, not in prepare: `profile` (extract..prepare) only reports
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
        n_jobs=state.threads,
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
        metrics = axis_metrics(axis, float_column(frame, axis), residual)
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
        held = None
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
    if config.thresholds.mode == "learned":
        state.thresholds = _learned_thresholds(state, held)
    _drift_and_insights(state, residuals, calibrator.residual_medians_)
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


def _outcome_windows(state: RunState) -> pd.DataFrame:
    """Labelled windows (incidents) and verdicts on events, as ``start_ts``, ``end_ts``,
    ``axis``, ``kind`` (confirmed, false-positive, ignore) and ``severity``."""
    columns = ["start_ts", "end_ts", "axis", "kind", "severity"]
    parts = []
    if state.labels is not None and len(state.labels):
        parts.append(state.labels.assign(kind="confirmed")[columns])
    if state.verdicts is not None and len(state.verdicts):
        parts.append(state.verdicts.rename(columns={"verdict": "kind"})[columns])
    if not parts:
        return pd.DataFrame(columns=columns)
    return pd.concat(parts, ignore_index=True)


def _learned_residuals(state: RunState, held: HeldOut | None) -> Mapping[str, np.ndarray]:
    """Axis → the residuals the learned rule is searched on, on access.

    With ``calibration: holdout`` (``held`` given): the out-of-fold residuals the percentile
    thresholds were calibrated on, so the false-alarm count sees what scoring will see; on the
    rows no fit used (known incidents), which have none, the final model's (it never fitted
    them either); elsewhere nothing (rows before the calibration rows are in-sample).
    With ``calibration: in_sample``: the final model's residuals of every row.
    """
    plain = _axis_residuals(state)
    if held is None:
        return plain
    allowed = _allowed(state)

    def out_of_sample(axis: str) -> np.ndarray:
        final = plain[axis]
        residual = np.full(len(final), np.nan)
        residual[held.start :] = held.residuals[axis]
        if allowed is None:
            return residual
        return np.where(allowed, residual, final)

    return _Computed(list(plain), out_of_sample)


def _learned_thresholds(state: RunState, held: HeldOut | None) -> dict[str, dict[str, Any]]:
    """The percentile thresholds with the learned rule where the outcomes give confidence
    (``thresholds.mode: learned``, see :mod:`Thresholding.learned`).

    Learned on the residuals of :func:`_learned_residuals` (smoothed as scoring smooths them);
    rows the model never fitted (known incidents) are what it must find. Maintenance rows give
    no judgement.
    """
    assert state.prepared is not None
    policy = state.loaded.config.thresholds
    frame = state.prepared.frame
    windows = _outcome_windows(state)
    plain = _learned_residuals(state, held)
    service = None if state.mask is None else state.mask.maintenance

    def compared(axis: str) -> np.ndarray:
        residual = smooth(plain[axis], policy.smoothing)
        return residual if service is None else np.where(service, np.nan, residual)

    learned = policy.learned
    records = apply_learned(
        state.thresholds,
        _Computed(list(plain), compared),
        {
            axis: outcome_rows(frame["ts"], windows, axis, learned.severity_weights)
            for axis in plain
        },
        multipliers=learned.multipliers,
        sustains=learned.sustains,
        false_alarm_cost=learned.false_alarm_cost,
        min_labels=learned.min_labels,
        min_confidence=learned.min_confidence,
    )
    for axis, record in records.items():
        report = record["learned"]
        logger.info(
            "thresholds of %s: %s (%s%s)",
            axis,
            record["threshold_source"],
            report["reason"],
            f", confidence {report['confidence']:.2f}, x{report['multiplier']:g}, sustain "
            f"{report['sustain']}, {report['found']}/{report['incidents']} incidents found, "
            f"{report['false_alarms']} false alarms"
            if "confidence" in report
            else "",
        )
    return records


def _drift_and_insights(
    state: RunState,
    residuals: Mapping[str, np.ndarray],
    medians: Mapping[str, float] | None = None,
) -> None:
    """Drift baselines and insights from the calibration residuals, in one pass over the axes
    (two at a time): a computed mapping (``in_sample``) computes each axis's residuals once,
    and holds only the axes in flight. ``medians``: the median of an axis's finite residuals
    where the calibrator found it already."""
    assert state.prepared is not None
    config = state.loaded.config
    frame = state.prepared.frame
    # Seconds since the first training sample: the insights use differences of times only.
    seconds = float_column(frame, "time_s")
    params = config.drift.parameters()

    axes = list(residuals)
    # Each axis's values, taken from the frame once for its profile and the correlations.
    columns = {axis: float_column(frame, axis) for axis in axes}

    def axis_figures(axis: str) -> tuple[dict[str, Any], Any]:
        values = residuals[axis]
        baseline = (
            fit_drift_baselines({axis: values}, params, medians).axes
            if config.drift.enabled
            else {}
        )
        rule = state.thresholds.get(axis, {})
        # A baseline's centre is the median of the same finite residuals the insight takes.
        followed = baseline.get(axis)
        insight = axis_insight(
            seconds,
            columns[axis],
            values,
            maxc=float(rule.get("MaxC", np.nan)),
            alert_events_per_day=rule.get("expected_events_per_day"),
            residual_median=None if followed is None else followed.center,
        )
        return baseline, insight

    if state.threads > 1 and len(axes) > 1:
        with ThreadPoolExecutor(max_workers=state.threads) as pool:
            results = list(pool.map(axis_figures, axes))
    else:
        results = [axis_figures(axis) for axis in axes]
    baselines: dict[str, Any] = {}
    per_axis = {}
    for axis, (baseline, insight) in zip(axes, results, strict=True):
        baselines.update(baseline)
        per_axis[axis] = insight
    if config.drift.enabled:
        state.drift = DriftBaselines(params, baselines)
    state.insights = _insight_summary(per_axis, columns)


def _insight_summary(per_axis: dict[str, Any], columns: dict[str, np.ndarray]) -> dict[str, Any]:
    """Correlated axes (from each axis's ``columns`` values) and the sentences about the axes'
    profiles."""
    pairs = correlated_pairs({axis: columns[axis] for axis in per_axis})
    sentences = insight_sentences(per_axis, pairs)
    for sentence in sentences:
        logger.info("insight: %s", sentence)
    return {
        "axes": {axis: item.to_dict() for axis, item in per_axis.items()},
        "correlated": [list(pair) for pair in pairs],
        "sentences": sentences,
    }


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
        units=state.loaded.config.data.units,
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


def _effective_config(config: Any) -> dict[str, Any]:
    """The config as recorded in ``meta.yaml``: a tracking URI's credentials masked."""
    dumped = config.model_dump(mode="json")
    uri = dumped["tracking"]["mlflow_uri"]
    if uri is not None:
        dumped["tracking"]["mlflow_uri"] = safe_uri(uri)
    return dumped


def _meta(state: RunState) -> dict[str, Any]:
    assert state.extraction is not None and state.profile is not None
    config = state.loaded.config
    asset = {} if state.asset is None else {"asset": str(state.asset)}
    return {
        **asset,
        "config": _effective_config(config),
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
            "calendar_table": config.labels.calendar_table,
            "masked": state.mask is not None and config.labels.mask_training,
            **_mask_summary(state),
        },
        "alarm_budget": dict(state.alarm_budget),
        "health": {axis: h.to_dict() for axis, h in state.profile.health.items()},
        "health_skipped": list(state.skipped_axes),
        "insights": state.insights,
        "ranges": {
            axis: [p.min, p.max]
            for axis, p in state.profile.axes.items()
            if axis in _fitted_axes(state) and p.min is not None and p.max is not None
        },
        "dt_seconds": state.profile.dt_seconds,
        "libraries": dict(_library_versions()),
        "code_revision": _code_revision(),
        "timings_s": dict(state.timings),
    }


def _mask_summary(state: RunState) -> dict[str, Any]:
    """What masking saw and left out (``meta.yaml`` ``labels``); zeros when nothing is known."""
    if state.mask is not None:
        return state.mask.summary()
    rows = 0 if state.prepared is None else len(state.prepared.frame)
    return {
        "windows": {"labels": 0, "confirmed": 0, "maintenance": 0},
        "margin_s": state.loaded.config.labels.mask_margin.total_seconds(),
        "rows": rows,
        "masked_incident_rows": 0,
        "masked_maintenance_rows": 0,
        "masked_rows": 0,
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


def _previous_thresholds(registry: ModelRegistry) -> tuple[str, dict[str, Any]] | None:
    """The latest version's tag and thresholds, to compare with (None: no usable one)."""
    try:
        found = registry.load("latest")
        return found.version, found.read_json("thresholds.json")
    except VersionNotFoundError:
        return None
    except RegistryError as exc:  # a broken older version must not stop this one
        logger.warning("report.html compares with no version: %s", exc)
        return None


VERSION_REPORT_SECTIONS: list[Callable[[RunState], DigestSection | None]] = []
"""Sources of extra tables in ``report.html`` (drift baselines, sensor-health grades, ...):
each is called with the run state before registration and returns its table, or None (then
nothing is shown). Empty here: each stage appends its own."""


def _report_sections(state: RunState) -> list[DigestSection]:
    """The tables of :data:`VERSION_REPORT_SECTIONS` that have something to show; a source that
    fails is logged and left out (another stage's table must not cost the version)."""
    found = []
    for source in VERSION_REPORT_SECTIONS:
        try:
            section = source(state)
        except Exception:
            logger.exception("report.html section %r left out", getattr(source, "__name__", source))
            continue
        if section is not None:
            found.append(section)
    return found


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """``frame.to_dict(orient="records")`` (the same Python values) from one ``tolist`` per
    column: pandas builds records row by row, ~4x slower on a metrics table."""
    columns = list(frame.columns)
    return [
        dict(zip(columns, row, strict=True))
        for row in zip(*(frame[column].tolist() for column in columns), strict=True)
    ]


def _version_report(state: RunState, registry: ModelRegistry, meta: dict[str, Any]) -> bytes:
    """``report.html`` of the version being registered (see :mod:`Reports.version`)."""
    assert state.profile is not None and state.metrics is not None
    config = state.loaded.config
    title = config.data.table + ("" if state.asset is None else f" · asset {state.asset}")
    provenance = {key: meta[key] for key in ("database", "data", "labels") if key in meta}
    provenance |= {
        "machine_channel": meta.get("machine_channel"),
        "code_revision": meta.get("code_revision"),
        "libraries": meta.get("libraries"),
    }
    report = VersionReport(
        title=f"Model report: {title}",
        run_id=state.run_id,
        profile=state.profile.to_dict(),
        selection=_selection_record(state),
        metrics=_records(state.metrics),
        families={axis: family for axis, (family, _) in state.families.items()},
        thresholds=state.thresholds,
        previous=state.previous or _previous_thresholds(registry),
        alarm_budget=state.alarm_budget,
        plots={path.name: path.read_bytes() for path in state.plot_paths},
        timings=dict(state.timings),
        provenance=provenance,
        units=config.data.units,
        sections=_report_sections(state),
    )
    return render_version_report(report).encode("utf-8")


def _register(state: RunState) -> None:
    assert state.models is not None and state.prepared is not None
    assert state.metrics is not None
    files: dict[str, bytes | Path] = {
        "models.json": json_text(state.models.to_dict()).encode(),
        "models.pkl": pickle.dumps(state.models),
        "prep_stats.json": json_text(state.prepared.stats()).encode(),
        "thresholds.json": json_text(state.thresholds).encode(),
        "selection.json": json_text(_selection_record(state)).encode(),
        "metrics.csv": metrics_csv(state.metrics).encode(),
    }
    if state.drift is not None:
        files["drift.json"] = json_text(state.drift.to_dict()).encode()
    files.update({f"plots/{path.name}": path for path in state.plot_paths})
    config = state.loaded.config.registry
    root = state.registry_root or state.loaded.path(config.root_dir)
    registry = ModelRegistry(root, lock_timeout=config.lock_timeout_s)
    state.live_before = _live_version(registry)
    if state.live_before is not None:
        # A registry from before aliases follows `latest`: name its live version champion
        # before publishing moves `latest`, so the new version is not live before its gate.
        registry.keep_champion(state.live_before)
    meta = _meta(state)
    files["report.html"] = _version_report(state, registry, meta)
    published = registry.publish(
        files,
        meta=meta,
        version_tag=state.loaded.config.registry.version_tag,
        run_id=state.run_id,
    )
    state.version, state.artifact_dir = published.version, published.path
    state.published_at, state.published = published.created_at, published


def _live_version(registry: ModelRegistry) -> str | None:
    """The champion (or, before any promotion, the newest version); None in a new lineage."""
    try:
        return registry.resolve("champion").name
    except VersionNotFoundError:
        return None


def _promote(state: RunState) -> None:
    assert state.version is not None and state.artifact_dir is not None
    config = state.loaded.config.registry
    registry = ModelRegistry(state.artifact_dir.parent, lock_timeout=config.lock_timeout_s)
    state.promotion = decide_promotion(
        state.loaded,
        state.session,
        registry,
        state.version,
        state.live_before,
        asset=state.asset,
        labels=state.labels,
        published=state.published,
    )


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
    Step("promote", _promote),
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
            masked_rows=_mask_summary(state)["masked_rows"],
            promotion=state.promotion,
            insights=dict(state.insights),
        )


def _import_figures() -> None:
    """Import matplotlib (through :mod:`ModelEvaluation.figures`) while the window is read.

    The import costs 0.5-0.8 s of the plot step, and the read leaves the client idle about
    half of the time, waiting for the database: on a thread, the import fits into that wait
    (alternated seed-mode runs on 10 M x 8: plot step 2.4-2.5 s instead of 3.0-3.6, the read
    no slower within its noise). A failure is left to the plot step, which reports it.
    """
    with contextlib.suppress(Exception):
        importlib.import_module("ModelEvaluation.figures")


def run_training(loaded: LoadedConfig) -> OrchestrationResult:
    """Run every step of :data:`STEPS` and register a new version.

    Raises:
        ConfigError, ExtractionError, PreparationError, TrainingError, CalibrationError,
        DatabaseError, RegistryError: from the failing step; nothing is registered then.
    """
    run = TrainingRun(loaded)
    logger.info("training run %s with config %s", run.state.run_id, loaded.source)
    if loaded.config.plots.enabled:
        threading.Thread(target=_import_figures, name="import-figures", daemon=True).start()
    run.run_all()
    result = run.result()
    logger.info("registered %s at %s", result.version, result.artifact_dir)
    tracked = track_training(loaded, result)
    return dataclasses.replace(result, tracking=tracked.to_dict())


def run_profile(loaded: LoadedConfig, *, asset: Any = None) -> Profile:
    """Extract the configured training window (of ``asset`` in a fleet table), validate it
    and profile it."""
    run = TrainingRun(loaded, steps=STEPS[:3], asset=asset)
    state = run.run_all()
    assert state.profile is not None
    return state.profile
