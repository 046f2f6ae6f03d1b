"""Fleet scoring: every asset of a fleet table scored with its own champion version.

One task per batch of assets (local process pool or Dask, as for training); each task opens
one database connection and scores its assets one after the other with
:func:`Orchestration.scoring.score_with`: each asset's window, events, continuation point and
writers' lock are its own, so assets never wait for each other. What the runs would read one
asset at a time before writing is read for the whole task first
(:func:`Orchestration.scoring.prefetch_windows`): the continuation states in one statement,
the windows' look-back bounds in another, the windows themselves a group at a time. An asset
without a version (never trained: it needs more data) is skipped; one that fails is reported
with the reason and the others go on.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from DataExtractionAnalysis import list_assets, reusing_connections
from Fleet import Progress, batches_of, peak_rss_mib, pool_size, run_tasks, worker_name
from ModelRegistry import VersionNotFoundError
from Scoring import SEVERITIES, worst_records

from .config import LoadedConfig, UsageError
from .context import open_database
from .fleet import prepare_process, worker_environment
from .scoring import WORST_EVENTS, Prefetched, _load_model, _Model, prefetch_windows, score_with
from .status import ExitCode, Status, status_for

__all__ = ["AssetScore", "FleetScoringReport", "resolve_asset", "run_fleet_scoring"]

logger = logging.getLogger(__name__)

SCORE_STATUSES = ("ok", "stale", "no-model", "failed")


@dataclass(frozen=True)
class AssetScore:
    """What scoring one asset gave: status (ok, stale, no-model, failed), version, samples,
    events kept per severity, and the run's detail (the reason, when it failed)."""

    asset: str
    status: str
    version: str | None = None
    samples: int = 0
    events: dict[str, int] = field(default_factory=dict)
    detail: str = ""
    code: str | None = None
    seconds: float = 0.0
    worker: str = field(default_factory=lambda: worker_name())
    peak_rss_mib: float = field(default_factory=lambda: peak_rss_mib())
    worker_cpu_s: float = field(default_factory=lambda: round(time.process_time(), 3))
    worst: list[dict[str, Any]] = field(default_factory=list)
    """Its worst events in the scored rows (see :attr:`ScoringReport.worst`)."""

    def to_dict(self) -> dict[str, Any]:
        """Plain values for ``--json``."""
        return asdict(self)


@dataclass(frozen=True)
class FleetScoringReport:
    """Outcome of scoring a fleet: one :class:`AssetScore` per asset, in asset order."""

    run_id: str
    table: str
    assets: list[AssetScore]
    seconds: float

    @property
    def counts(self) -> dict[str, int]:
        """Assets per status."""
        found = Counter(score.status for score in self.assets)
        return {status: found.get(status, 0) for status in SCORE_STATUSES}

    @property
    def events(self) -> dict[str, int]:
        """Events kept per severity, over all assets."""
        return {s: sum(a.events.get(s, 0) for a in self.assets) for s in SEVERITIES}

    @property
    def worst(self) -> list[dict[str, Any]]:
        """The fleet's worst events of this run, over all assets (at most ``WORST_EVENTS``)."""
        return worst_records([e for a in self.assets for e in a.worst], WORST_EVENTS)

    @property
    def status(self) -> Status:
        """``fleet-partial`` when an asset failed, else ``stale`` when one is, else ``ok``."""
        counts, events = self.counts, self.events
        detail = (
            f"scored {len(self.assets)} assets of {self.table}: {counts['ok']} ok, "
            f"{counts['stale']} stale, {counts['no-model']} without a version, "
            f"{counts['failed']} failed; {events['alert']} alert and {events['error']} error "
            f"events, {sum(a.samples for a in self.assets)} samples"
        )
        code = "fleet-partial" if counts["failed"] else "stale" if counts["stale"] else "ok"
        return Status(code, detail)

    def exit_code(self, fail_on: str | None) -> ExitCode:
        """7/6 for error/alert events asked for with ``--fail-on``, else the status's code."""
        events = self.events
        if fail_on in {"alert", "error"} and events["error"]:
            return ExitCode.ERROR_EVENTS
        if fail_on == "alert" and events["alert"]:
            return ExitCode.ALERT_EVENTS
        return self.status.exit_code

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` payload of a fleet ``score`` (without ``status``)."""
        return {
            "run_id": self.run_id,
            "table": self.table,
            "counts": self.counts,
            "events": self.events,
            "seconds": round(self.seconds, 3),
            "worst_events": self.worst,
            "assets": [score.to_dict() for score in self.assets],
        }


@dataclass(frozen=True)
class _ScoreTask:
    loaded: LoadedConfig
    start: dt.datetime | None
    end: dt.datetime | None


def _load_champion(task: _ScoreTask, asset: Any) -> tuple[_Model | Exception, float]:
    """The asset's champion (or why it cannot be loaded) and the seconds it took."""
    started = time.perf_counter()
    try:
        found: _Model | Exception = _load_model(task.loaded, "champion", str(asset))
    except Exception as exc:  # reported by _score_one, for this asset only
        found = exc
    return found, time.perf_counter() - started


def _prefetch(
    task: _ScoreTask, session: Any, models: dict[Any, tuple[_Model | Exception, float]]
) -> dict[str, Prefetched]:
    """:func:`prefetch_windows` of the task's assets with a version; nothing (each asset
    reads its own) when that fails: the asset's own run then reports what is wrong."""
    loaded = [(asset, model) for asset, (model, _) in models.items() if isinstance(model, _Model)]
    if not loaded:
        return {}
    try:
        return prefetch_windows(task.loaded, session, loaded, start=task.start, end=task.end)
    except Exception as exc:
        logger.warning("reading %d assets' windows together failed: %s", len(loaded), exc)
        return {}


def _score_one(
    task: _ScoreTask,
    session: Any,
    asset: Any,
    loaded: tuple[_Model | Exception, float] | None = None,
    prefetched: Prefetched | None = None,
) -> AssetScore:
    started = time.perf_counter()
    asset_id = str(asset)
    found, loading = _load_champion(task, asset) if loaded is None else loaded
    started -= loading
    try:
        if isinstance(found, Exception):
            raise found
        model = found
    except VersionNotFoundError:
        return AssetScore(asset_id, "no-model", detail="no version yet (not trained)")
    except Exception as exc:  # a broken alias or a version failing verification: this asset only
        status = status_for(exc)
        logger.warning("asset %s not scored: %s", asset_id, status.detail)
        return AssetScore(asset_id, "failed", detail=status.detail, code=status.code)
    try:
        report = score_with(
            task.loaded,
            session,
            model,
            start=task.start,
            end=task.end,
            asset=asset,
            prefetched=prefetched,
        )
    except Exception as exc:  # one asset's failure never stops the others
        status = status_for(exc)
        if status.code == "error":
            logger.exception("asset %s: unexpected failure while scoring", asset_id)
        else:
            logger.warning("asset %s not scored: %s", asset_id, status.detail)
        return AssetScore(asset_id, "failed", model.version, detail=status.detail, code=status.code)
    totals = {s: sum(c.get(s, 0) for c in report.counts.values()) for s in SEVERITIES}
    return AssetScore(
        asset_id,
        report.status.code,
        model.version,
        report.samples,
        totals,
        report.detail,
        seconds=round(time.perf_counter() - started, 4),
        worst=report.worst,
    )


def score_assets(task: _ScoreTask, batch: list[Any]) -> list[AssetScore]:
    """One task: score the assets of ``batch`` one after the other on one connection, their
    continuation states and windows read together ahead (:func:`prefetch_windows`)."""
    environ = prepare_process(task.loaded)
    session = open_database(task.loaded, environ=environ)
    try:
        with reusing_connections():
            models = {asset: _load_champion(task, asset) for asset in batch}
            prefetched = _prefetch(task, session, models)
            return [
                _score_one(task, session, asset, models[asset], prefetched.get(str(asset)))
                for asset in batch
            ]
    finally:
        session.close()


def _failed_batch(batch: list[Any], exc: BaseException) -> list[AssetScore]:
    status = status_for(exc)
    detail = f"its task did not finish: {status.detail}"
    return [AssetScore(str(a), "failed", detail=detail, code=status.code) for a in batch]


def _all_assets(loaded: LoadedConfig) -> list[Any]:
    session = open_database(loaded, access="read")
    try:
        return list_assets(session.engine, session.target, loaded.config.data)
    finally:
        session.close()


def _assets(loaded: LoadedConfig) -> list[Any]:
    """The assets ``data.assets`` selects, as the database holds them (ids compared as text)."""
    found, wanted = _all_assets(loaded), loaded.config.data.assets
    return found if wanted == "all" else [value for value in found if str(value) in wanted]


def resolve_asset(loaded: LoadedConfig, text: str) -> Any:
    """The asset ``--asset TEXT`` names, as the database holds it (an id compared as text).

    Raises:
        UsageError: the table holds no such asset (the message lists some that it holds).
    """
    found = _all_assets(loaded)
    for value in found:
        if str(value) == text:
            return value
    shown = ", ".join(str(v) for v in found[:10]) + (" ..." if len(found) > 10 else "")
    raise UsageError(
        f"--asset {text!r}: no such asset in {loaded.config.data.table} "
        f"(data.asset_col {loaded.config.data.asset_col}); assets: {shown or 'none'}"
    )


def run_fleet_scoring(
    loaded: LoadedConfig, *, start: dt.datetime | None = None, end: dt.datetime | None = None
) -> FleetScoringReport:
    """Score every selected asset of the fleet table with its champion version.

    Raises:
        ExtractionError: the table or the asset column is missing.
        DatabaseError: the database cannot be reached.
    """
    started = time.perf_counter()
    run_id = f"score-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{uuid.uuid4().hex[:8]}"
    config = loaded.config
    assets = _assets(loaded)
    batches = batches_of(assets, config.fleet, pool_size(config.fleet))
    with Progress(len(assets), "scoring") as progress:
        scores = run_tasks(
            score_assets,
            _ScoreTask(loaded, start, end),
            batches,
            config=config.fleet,
            progress=progress,
            on_error=_failed_batch,
            environment=worker_environment(loaded),
        )
    scores.sort(key=lambda score: score.asset)
    report = FleetScoringReport(run_id, config.data.table, scores, time.perf_counter() - started)
    logger.info("%s in %.1f s", report.status.detail, report.seconds)
    return report
