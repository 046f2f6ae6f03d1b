"""Failure predictors per asset: ``predictor train`` and ``apply`` (see docs/prediction.md).

``predictor train`` reads each asset's training window (``data.train_start``/``train_end``),
its known incidents (``labels.table`` and confirmed events) and its events, computes the window
features (kept in the feature store, ``predictor.feature_dir``), gates assets with too few
incidents (``needs-labels``), validates a forest in time order, fits it on the whole window and
publishes it with its metrics and plots under ``predictor.root_dir``.

``apply`` computes the features of new rows (from where the last apply stopped, or ``--since``)
and writes the failure probability per asset and bucket into ``predictor.table``, batch by
batch, each batch one transaction that replaces the rows of its buckets: re-running never
duplicates.

Every answer carries an ``ml_status`` per asset (``ok``, ``missing-ml-extras``,
``missing-ml-models``, ``invalid-ml-input``, ``ml-error``) and one for the run: the worst.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import pickle
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from Database import DatabaseError
from DataExtractionAnalysis import ExtractionError, extract_window, list_assets
from DataPreparation import time_since
from Fleet import FleetStateStore, PredictorState, asset_folder
from Labels import FeedbackStore, LabelsError, read_labels
from ModelRegistry import ModelRegistry, VersionNotFoundError
from Prediction import (
    ML_STATUS_CODES,
    FailurePredictor,
    MissingPredictorError,
    PredictionError,
    PredictionInputError,
    PredictorMetrics,
    RiskStore,
    cross_validated,
    horizon_labels,
    out_of_fold_metrics,
    time_splits,
    tune,
    tuning_splits,
    window_features,
)
from Scoring import EventStore

from .config import LoadedConfig, UsageError
from .context import DatabaseSession, open_database
from .orchestrator import training_window
from .scoring import _load_model

__all__ = ["AssetAnswer", "PredictionRun", "apply_predictors", "train_predictors"]

logger = logging.getLogger(__name__)

_SEVERITY = {code: rank for rank, code in enumerate(ML_STATUS_CODES)}


@dataclass
class AssetAnswer:
    """One asset's outcome: ``ml_status`` code and detail, and what was done."""

    asset: str | None
    code: str = "ok"
    detail: str = ""
    version: str | None = None
    metrics: dict[str, Any] | None = None
    buckets: int = 0
    written: int = 0

    @property
    def state(self) -> str:
        """The fleet state table's ``predictor_status``: the code, or ``needs-labels``."""
        gated = self.code == "ok" and self.detail.startswith("needs-labels")
        return "needs-labels" if gated else self.code

    def predictor_state(self) -> PredictorState:
        metrics = self.metrics or {}
        return PredictorState(
            asset=self.asset or "",
            status=self.state,
            version=self.version,
            auc=metrics.get("auc"),
            f1=metrics.get("f1"),
            forewarning_s=metrics.get("mean_forewarning_s"),
            detail=self.detail,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "asset": self.asset,
            "ml_status": {"code": self.code, "detail": self.detail},
            "version": self.version,
            "metrics": self.metrics,
            "buckets": self.buckets,
            "written": self.written,
        }


@dataclass
class PredictionRun:
    """The answers of every asset, and the run's ``ml_status``: the worst of them."""

    action: str
    answers: list[AssetAnswer] = field(default_factory=list)

    @property
    def code(self) -> str:
        return max((a.code for a in self.answers), key=_SEVERITY.__getitem__, default="ok")

    @property
    def detail(self) -> str:
        worst = [a for a in self.answers if a.code == self.code]
        done = sum(a.code == "ok" for a in self.answers)
        head = f"{self.action}: {done} of {len(self.answers)} asset(s) ok"
        if self.code == "ok":
            gated = [a for a in self.answers if a.detail.startswith("needs-labels")]
            return head + (f", {len(gated)} need more labels" if gated else "")
        return f"{head}; {worst[0].asset or 'the machine'}: {worst[0].detail}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "ml_status": {"code": self.code, "detail": self.detail},
            "assets": [a.to_dict() for a in self.answers],
        }


def _selected_assets(loaded: LoadedConfig, session: DatabaseSession, only: str | None) -> list:
    data = loaded.config.data
    if data.asset_col is None:
        if only is not None:
            raise UsageError(
                f"--asset {only!r}: data.asset_col is not set, so the table is one machine"
            )
        return [None]
    found = list_assets(session.engine, session.target, data)
    if only is not None:
        chosen = [a for a in found if str(a) == only]
        if not chosen:
            shown = ", ".join(str(a) for a in found[:10]) or "none"
            raise UsageError(f"--asset {only!r}: no such asset in {data.table}; assets: {shown}")
        return chosen
    return found if data.assets == "all" else [a for a in found if str(a) in data.assets]


def _registry(loaded: LoadedConfig, asset: Any) -> ModelRegistry:
    root = loaded.path(loaded.config.predictor.root_dir)
    return ModelRegistry(root if asset is None else root / asset_folder(asset))


def _incidents(loaded: LoadedConfig, session: DatabaseSession, asset: Any) -> pd.DataFrame:
    """Known incidents of the asset: labelled windows and confirmed events (start, end,
    severity), overlapping ones merged."""
    config = loaded.config
    parts = []
    if config.labels.table is not None:
        labels = read_labels(
            session.engine,
            session.target,
            config.labels.table,
            asset_col=config.data.asset_col,
            asset=asset,
        )
        parts.append(labels[["start_ts", "end_ts", "severity"]])
    confirmed = FeedbackStore(session.engine, session.target, config.events.table)
    windows = confirmed.verdict_windows(config.data.table, "" if asset is None else str(asset))
    parts.append(windows[["start_ts", "end_ts", "severity"]])
    frames = [p for p in parts if len(p)]
    if not frames:
        return pd.DataFrame(columns=["start_ts", "end_ts", "severity"])
    windows = pd.concat(frames, ignore_index=True)
    windows["start_ts"] = pd.to_datetime(windows["start_ts"], utc=True)
    windows["end_ts"] = pd.to_datetime(windows["end_ts"], utc=True)
    windows = windows.sort_values("start_ts", ignore_index=True)
    # A confirmed event inside a labelled window is the same incident: overlapping windows
    # become one (the earliest start, the latest end, the first severity).
    reach = windows["end_ts"].cummax().shift()
    incident = (windows["start_ts"] > reach).cumsum()
    return (
        windows.groupby(incident)
        .agg(start_ts=("start_ts", "min"), end_ts=("end_ts", "max"), severity=("severity", "first"))
        .reset_index(drop=True)
    )


def _features(
    loaded: LoadedConfig,
    session: DatabaseSession,
    asset: Any,
    start: dt.datetime | None,
    end: dt.datetime | None,
) -> pd.DataFrame:
    """Window features of the asset's rows in ``[start, end)`` (see Prediction.features)."""
    config = loaded.config
    frame = extract_window(
        session.engine,
        session.target,
        config.data,
        start=start,
        end=end,
        fast_path=config.database.fast_path,
        asset=asset,
    ).frame
    axes = config.data.axis_columns
    columns = {axis: frame[axis].to_numpy(dtype=np.float64) for axis in axes}
    if config.predictor.residuals:
        columns.update(_absolute_residuals(loaded, frame, asset))
    store = EventStore(
        session.engine,
        session.target,
        config.events.table,
        config.data.table,
        "" if asset is None else str(asset),
    )
    events = store.read_events()
    if len(events):
        events = events[(events["asset"] == store.asset) & ~events["suppressed"].astype(bool)]
    predictor = config.predictor
    return window_features(
        frame["ts"],
        columns,
        pd.Timedelta(predictor.bucket),
        [pd.Timedelta(w) for w in predictor.windows],
        event_starts=events["start_ts"]
        if len(events)
        else pd.Series([], dtype="datetime64[ns, UTC]"),
    )


def _absolute_residuals(loaded: LoadedConfig, frame: pd.DataFrame, asset: Any) -> dict:
    """``{axis}_absres``: |residual| of each axis under the asset's latest registered model;
    none without a model."""
    try:
        model = _load_model(loaded, "latest", asset)
    except VersionNotFoundError:
        return {}
    timed = frame.assign(time_s=time_since(frame["ts"], model.t0))
    return {
        f"{axis}_absres": np.abs(model.models.residual(timed, axis))
        for axis in model.models.models_
    }


def _store_features(loaded: LoadedConfig, asset: Any, features: pd.DataFrame) -> Path:
    """Write the asset's features to the feature store (one Parquet file per asset)."""
    folder = loaded.path(loaded.config.predictor.feature_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{'machine' if asset is None else asset_folder(asset)}.parquet"
    features.to_parquet(path)
    return path


def _answer(asset: Any, action: Callable[[AssetAnswer], None]) -> AssetAnswer:
    """Run ``action`` for one asset; a predictor error becomes its ``ml_status``."""
    answer = AssetAnswer(asset=None if asset is None else str(asset))
    try:
        action(answer)
    except PredictionError as exc:
        answer.code, answer.detail = exc.ml_status, str(exc)
    except DatabaseError:
        raise  # the database, not the asset: db-error for the whole run
    except (ExtractionError, LabelsError) as exc:
        answer.code, answer.detail = "invalid-ml-input", str(exc)
    except Exception as exc:  # one asset's failure must not stop the others
        logger.exception("predictor of asset %s failed", answer.asset)
        answer.code, answer.detail = "ml-error", f"{type(exc).__name__}: {exc}"
    if answer.code != "ok":
        logger.error("%s: %s: %s", answer.asset or "machine", answer.code, answer.detail)
    return answer


def _train_one(
    loaded: LoadedConfig, session: DatabaseSession, asset: Any, run_id: str, answer: AssetAnswer
) -> None:
    config = loaded.config.predictor
    start, end = _window(loaded, session, asset)
    features = _features(loaded, session, asset, start, end)  # extraction refuses no rows
    incidents = _incidents(loaded, session, asset)
    first, last = features.index[0], features.index[-1] + pd.Timedelta(config.bucket)
    starts = pd.to_datetime(incidents["start_ts"], utc=True)
    inside = incidents[(starts >= first) & (starts < last)]
    _store_features(loaded, asset, features)
    answer.buckets = len(features)
    if len(inside) < config.min_incidents:
        answer.detail = (
            f"needs-labels: {len(inside)} known incident(s) in the window, "
            f"{config.min_incidents - len(inside)} more needed (predictor.min_incidents)"
        )
        logger.warning("%s: %s", answer.asset or "machine", answer.detail)
        return
    weights = loaded.config.thresholds.learned.severity_weights
    labels = horizon_labels(
        features.index, pd.Timedelta(config.bucket), inside, pd.Timedelta(config.horizon), weights
    )
    label, weight = labels["label"].to_numpy(), labels["weight"].to_numpy()
    bucket = pd.Timedelta(config.bucket)
    gap = int(np.ceil(pd.Timedelta(config.horizon) / bucket)) + max(config.window_buckets())
    splits = time_splits(len(features), config.folds, gap)
    model = FailurePredictor(
        config.n_estimators, config.max_depth, config.min_samples_leaf, config.tuning.seed
    )
    if config.tuning.trials > 0:
        model = tune(
            model,
            features,
            label,
            weight,
            tuning_splits(splits, config.folds, gap),
            config.tuning.trials,
            config.probability_threshold,
        )
    probability = cross_validated(model, features, label, weight, splits)
    metrics = out_of_fold_metrics(
        features.index,
        label,
        probability,
        inside,
        pd.Timedelta(config.horizon),
        bucket,
        config.probability_threshold,
        config.folds,
    )
    model.fit(features, label, weight)
    answer.metrics = {**metrics.to_dict(), "params": model.params()}
    answer.version = _publish(
        loaded, asset, run_id, model, metrics, label, probability, (start, end), len(inside)
    )
    answer.detail = (
        f"trained {answer.version}: AUC {_fmt(metrics.auc)}, F1 {_fmt(metrics.f1)}, "
        f"{metrics.warned} of {metrics.incidents} incidents warned, mean forewarning "
        f"{_fmt(metrics.mean_forewarning_s)} s"
    )


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


def _window(loaded: LoadedConfig, session: DatabaseSession, asset: Any):
    from .orchestrator import RunState

    state = RunState(loaded=loaded, session=session, run_id="predictor", asset=asset)
    return training_window(state)


def _publish(
    loaded: LoadedConfig,
    asset: Any,
    run_id: str,
    model: FailurePredictor,
    metrics: PredictorMetrics,
    label: np.ndarray,
    probability: np.ndarray,
    window: tuple[Any, Any],
    incidents: int,
) -> str:
    from Prediction.figures import predictor_plots

    plots = predictor_plots(metrics.confusion, label, probability, model.importances())
    importances = model.importances()
    files = {
        "predictor.pkl": pickle.dumps(model),
        "metrics.json": json.dumps(metrics.to_dict(), indent=2).encode(),
        "importance.csv": importances.rename("importance").to_csv(index_label="feature").encode(),
        **{f"plots/{name}": data for name, data in plots.items()},
    }
    config = loaded.config
    meta = {
        "kind": "failure-predictor",
        "asset": None if asset is None else str(asset),
        "data": {
            "table": config.data.table,
            "start": None if window[0] is None else str(window[0]),
            "end": None if window[1] is None else str(window[1]),
        },
        "incidents": incidents,
        "predictor": config.predictor.model_dump(mode="json"),
        "params": model.params(),
        "features": model.features_,
        "metrics": {k: v for k, v in metrics.to_dict().items() if k != "params"},
    }
    return _registry(loaded, asset).publish(files, meta=meta, run_id=run_id).version


def _each_asset(
    loaded: LoadedConfig,
    action: str,
    asset: str | None,
    work: Callable[[DatabaseSession, Any, AssetAnswer], None],
    access: str = "write",
) -> PredictionRun:
    """``work`` for every selected asset on one database session, one answer each."""
    session = open_database(loaded, access=access)
    run = PredictionRun(action)
    try:
        for value in _selected_assets(loaded, session, asset):
            run.answers.append(_answer(value, lambda a, v=value: work(session, v, a)))
    finally:
        session.close()
    return run


def train_predictors(loaded: LoadedConfig, *, asset: str | None = None) -> PredictionRun:
    """Train and publish a predictor per selected asset (one machine: one predictor).

    Raises:
        DatabaseError: the database cannot be reached (no asset could be tried).
    """
    run_id = f"predictor-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{uuid.uuid4().hex[:8]}"

    def train(session: DatabaseSession, value: Any, answer: AssetAnswer) -> None:
        _train_one(loaded, session, value, run_id, answer)

    run = _each_asset(loaded, "predictor train", asset, train, access="read")
    _record_in_fleet_state(loaded, run, run_id)
    return run


def _record_in_fleet_state(loaded: LoadedConfig, run: PredictionRun, run_id: str) -> None:
    """The predictors' status and metrics per asset into the fleet state table (``fleet``)."""
    config = loaded.config
    session = open_database(loaded)
    try:
        FleetStateStore(
            session.engine, session.target, config.fleet.table, config.data.table
        ).write_predictors([answer.predictor_state() for answer in run.answers], run_id)
    finally:
        session.close()


def _apply_one(
    loaded: LoadedConfig,
    session: DatabaseSession,
    asset: Any,
    since: dt.datetime | None,
    answer: AssetAnswer,
) -> None:
    config = loaded.config.predictor
    registry = _registry(loaded, asset)
    try:
        version = registry.load("latest")
    except VersionNotFoundError:
        raise MissingPredictorError(
            f"no predictor for {answer.asset or 'the machine'} in {registry.root_dir}; train "
            "one with: python orchestrate.py predictor train"
        ) from None
    model = pickle.load(io.BytesIO(version.read_bytes("predictor.pkl")))  # our own verified file
    key = "" if asset is None else str(asset)
    store = RiskStore(session.engine, session.target, config.table, loaded.config.data.table, key)
    start = pd.Timestamp(since) if since is not None else store.newest_bucket()
    longest = max(pd.Timedelta(w) for w in config.windows)
    read_from = None if start is None else (start - longest).to_pydatetime()
    features = _features(loaded, session, asset, read_from, None)
    if start is not None:
        features = features[features.index >= start]
    answer.version, answer.buckets = version.version, len(features)
    if features.empty:
        answer.detail = "no new buckets"
        return
    values = features[model.features_] if set(model.features_) <= set(features) else features
    probability = model.predict_proba(values)
    if not np.isfinite(probability).all():
        raise PredictionInputError("the predictor gave a non-finite probability")
    _store_features(loaded, asset, features)
    risk = pd.Series(probability, index=features.index)
    answer.written = store.write(risk, version.version, config.batch_rows)
    answer.detail = f"{answer.written} bucket(s) written with {version.version}"


def apply_predictors(
    loaded: LoadedConfig, *, asset: str | None = None, since: dt.datetime | None = None
) -> PredictionRun:
    """Write the failure probability per selected asset and bucket to ``predictor.table``.

    Raises:
        DatabaseError: the database cannot be reached (no asset could be tried).
    """

    def apply(session: DatabaseSession, value: Any, answer: AssetAnswer) -> None:
        _apply_one(loaded, session, value, since, answer)

    return _each_asset(loaded, "apply", asset, apply)
