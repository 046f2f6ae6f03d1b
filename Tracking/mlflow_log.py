"""Logging a training run to MLflow, when the optional package is installed and a URI is set.

One run per training run of a single machine; a fleet run is one parent run with one child
run per asset (tag ``mlbox.asset``; find an asset's runs with
``mlflow.search_runs(filter_string="tags.`mlbox.asset` = 'robot_04'")``). Each run gets the
effective config as parameters (``tracking`` itself left out: its URI may hold credentials),
the metrics, and as artifacts the version's thresholds, selection table, metrics, models and
plots. A single machine's version is also registered (``tracking.registered_model``) and, when
it became the champion, the MLflow aliases ``champion`` and ``previous`` follow the registry's.
Tracking never fails a training run: a missing package is ``missing-ml-extras``, any MLflow
failure ``tracking-error``, both logged as warnings.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from Database import redact

from .config import TrackingConfig

__all__ = ["MISSING_EXTRAS", "RunRecord", "TrackingOutcome", "log_training", "safe_uri"]

logger = logging.getLogger(__name__)

MISSING_EXTRAS = "missing-ml-extras"
ARTIFACT_FILES = ("thresholds.json", "selection.json", "metrics.csv", "meta.yaml")
MODEL_FILES = ("models.json", "prep_stats.json", "thresholds.json")
_BATCH = 100  # MLflow's limit of parameters per log_batch call
_MAX_PARAM = 500
_UNSAFE_KEY = re.compile(r"[^A-Za-z0-9_\-. /]")
_CREDENTIALS = re.compile(r"//[^@\s]*@")


@dataclass(frozen=True)
class RunRecord:
    """What one MLflow run gets: plain data built by the orchestrator."""

    name: str
    params: Mapping[str, Any] = field(default_factory=dict)
    """Nested mapping (the effective config); flattened to ``a.b.c`` keys."""
    metrics: Mapping[str, float | None] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    version_dir: Path | None = None
    """The registry version whose files and ``plots/`` are logged as artifacts."""
    promoted: bool = False


@dataclass(frozen=True)
class TrackingOutcome:
    """``status``: ``off``, ``ok``, ``missing-ml-extras`` or ``tracking-error``."""

    status: str
    detail: str
    run_id: str | None = None
    model_version: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``--json``."""
        return asdict(self)


def artifact_location(uri: str) -> str | None:
    """Where a new experiment keeps its artifacts: beside a local store (``mlartifacts/`` in
    the folder of a ``sqlite:///`` file or under a ``file:`` store), never MLflow's default
    ``./mlruns`` of whatever folder the run started in; a server decides for itself (None)."""
    if uri.startswith("sqlite:///"):
        folder = Path(uri.removeprefix("sqlite:///")).resolve().parent
        return (folder / "mlartifacts").as_uri()
    if uri.startswith("file:") or "://" not in uri:
        store = Path(uri.removeprefix("file://").removeprefix("file:")).resolve()
        return (store / "mlartifacts").as_uri()
    return None


def flatten(params: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """``{"a": {"b": 1}}`` → ``{"a.b": "1"}``; values cut to 500 characters."""
    flat: dict[str, str] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, f"{name}."))
        else:
            flat[_key(name)] = str(value)[:_MAX_PARAM]
    return flat


def _key(name: str) -> str:
    """A metric or parameter name MLflow accepts (the machine channel ``*`` → ``machine``)."""
    return _UNSAFE_KEY.sub("_", name.replace("*", "machine"))


def safe_uri(uri: str) -> str:
    """The URI for messages, logs and ``meta.yaml``: the user info (``user:password@``, the
    password may hold ``/``) and every query value (``?token=``, ``?password=``) masked, and
    any credential another URL in the text shows (:func:`Database.redact`)."""
    base, mark, query = uri.partition("?")
    base = _CREDENTIALS.sub("//***@", base)
    if mark:
        pairs = [part.partition("=") for part in query.split("&")]
        base += "?" + "&".join(f"{name}={'***' if eq else ''}" for name, eq, _ in pairs)
    return redact(base)


def log_training(
    config: TrackingConfig,
    record: RunRecord,
    children: Sequence[RunRecord] = (),
    *,
    register: bool = False,
) -> TrackingOutcome:
    """Log ``record`` (and ``children`` as its nested runs) to ``tracking.mlflow_uri``.

    Args:
        register: register ``record``'s version as a model version and mirror the aliases.

    Returns:
        The outcome; never raises for a missing package or an MLflow failure.
    """
    if config.mlflow_uri is None:
        return TrackingOutcome("off", "tracking.mlflow_uri is not set")
    uri = safe_uri(config.mlflow_uri)
    try:
        import mlflow
    except ImportError:
        detail = (
            f"tracking.mlflow_uri is set ({uri}) but MLflow is not installed; the run was not "
            "tracked. Install it with: pip install mlflow-skinny (or set tracking.mlflow_uri: "
            "null)"
        )
        logger.warning("%s: %s", MISSING_EXTRAS, detail)
        return TrackingOutcome(MISSING_EXTRAS, detail)
    try:
        client = mlflow.MlflowClient(config.mlflow_uri)
        experiment = client.get_experiment_by_name(config.experiment)
        experiment_id = (
            experiment.experiment_id
            if experiment is not None
            else client.create_experiment(
                config.experiment, artifact_location=artifact_location(config.mlflow_uri)
            )
        )
        run_id = _log_run(client, experiment_id, record)
        for child in children:
            _log_run(client, experiment_id, child, parent=run_id)
        version = None
        if register and record.version_dir is not None:
            version = _register(client, config.registered_model, run_id, record)
    except Exception as exc:  # tracking is optional: it never fails the training run
        detail = f"MLflow at {uri} failed: {type(exc).__name__}: {safe_uri(str(exc))[:300]}"
        logger.warning("tracking-error: %s; the run itself succeeded", detail)
        return TrackingOutcome("tracking-error", detail)
    detail = f"logged run {run_id} to {uri}, experiment {config.experiment}"
    if children:
        detail += f", with {len(children)} child runs"
    logger.info("%s", detail)
    return TrackingOutcome("ok", detail, run_id=run_id, model_version=version)


def _log_run(client: Any, experiment_id: str, record: RunRecord, parent: str | None = None) -> str:
    from mlflow.entities import Metric, Param, RunTag

    tags = {**record.tags, **({} if parent is None else {"mlflow.parentRunId": parent})}
    run = client.create_run(experiment_id, run_name=record.name, tags=tags)
    run_id = run.info.run_id
    stamp = int(time.time() * 1000)
    params = [Param(k, v) for k, v in flatten(record.params).items()]
    for start in range(0, len(params), _BATCH):
        client.log_batch(run_id, params=params[start : start + _BATCH])
    metrics = [
        Metric(_key(k), float(v), stamp, 0) for k, v in record.metrics.items() if v is not None
    ]
    client.log_batch(run_id, metrics=metrics, tags=[RunTag("mlbox.run", record.name)])
    if record.version_dir is not None:
        for name in ARTIFACT_FILES:
            if (record.version_dir / name).is_file():
                client.log_artifact(run_id, str(record.version_dir / name))
        plots = record.version_dir / "plots"
        if plots.is_dir():
            client.log_artifacts(run_id, str(plots), "plots")
    client.set_terminated(run_id)
    return run_id


def _register(client: Any, name: str, run_id: str, record: RunRecord) -> str:
    """Register the version's model files; mirror ``champion`` / ``previous`` when promoted."""
    assert record.version_dir is not None
    for file in MODEL_FILES:
        if (record.version_dir / file).is_file():
            client.log_artifact(run_id, str(record.version_dir / file), "model")
    try:
        client.get_registered_model(name)
    except Exception:  # MlflowException RESOURCE_DOES_NOT_EXIST
        client.create_registered_model(name)
    source = f"{client.get_run(run_id).info.artifact_uri}/model"
    version = client.create_model_version(
        name, source, run_id=run_id, tags={"mlbox.version": record.name}
    ).version
    if record.promoted:
        try:
            old = client.get_model_version_by_alias(name, "champion").version
        except Exception:  # no champion yet
            old = None
        if old is not None and old != version:
            client.set_registered_model_alias(name, "previous", old)
        client.set_registered_model_alias(name, "champion", version)
    return str(version)
