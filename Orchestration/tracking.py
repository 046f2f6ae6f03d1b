"""What a training run hands to the optional MLflow tracking (see :mod:`Tracking`)."""

from __future__ import annotations

from typing import Any

from Tracking import RunRecord, TrackingOutcome, log_training

from .config import LoadedConfig

__all__ = ["track_fleet", "track_training"]


def _params(loaded: LoadedConfig) -> dict[str, Any]:
    """The effective config; ``tracking`` left out (its URI may hold credentials)."""
    return loaded.config.model_dump(mode="json", exclude={"tracking"})


def _promotion_tags(promotion: dict[str, Any] | None) -> dict[str, str]:
    if promotion is None:
        return {}
    return {
        "mlbox.promoted": str(promotion["promoted"]).lower(),
        "mlbox.promotion_reason": str(promotion["reason"])[:500],
    }


def track_training(loaded: LoadedConfig, result: Any) -> TrackingOutcome:
    """Log a single machine's training run (an :class:`OrchestrationResult`)."""
    metrics: dict[str, float | None] = {
        "rows": result.rows,
        "masked_rows": result.masked_rows,
        "expected_events_per_day": result.expected_events_per_day,
    }
    for row in result.metrics.to_dict(orient="records"):
        for key in ("r2", "mae", "rmse"):
            if key in row:
                metrics[f"{row['axis']}.{key}"] = row[key]
    metrics.update({f"seconds.{step}": seconds for step, seconds in result.timings.items()})
    promotion = result.promotion or {}
    record = RunRecord(
        name=result.version,
        params=_params(loaded),
        metrics=metrics,
        tags={
            "mlbox.version": result.version,
            "mlbox.table": loaded.config.data.table,
            "mlbox.data_source": result.data_source,
            **_promotion_tags(result.promotion),
        },
        version_dir=result.artifact_dir,
        promoted=bool(promotion.get("promoted")),
    )
    return log_training(loaded.config.tracking, record, register=True)


def track_fleet(loaded: LoadedConfig, report: Any) -> TrackingOutcome:
    """Log a fleet training run: one parent run, one child run per trained asset."""
    from .fleet import asset_registry

    parent = RunRecord(
        name=f"fleet {report.run_id}",
        params=_params(loaded),
        metrics={f"assets.{status}": count for status, count in report.counts.items()},
        tags={"mlbox.table": loaded.config.data.table, "mlbox.fleet_run": report.run_id},
    )
    children = [
        RunRecord(
            name=f"{outcome.asset} {outcome.version}",
            params={"families": outcome.families, "thresholds": outcome.thresholds},
            metrics={
                "samples": outcome.samples,
                "expected_events_per_day": outcome.expected_events_per_day,
                "seconds": outcome.seconds,
            },
            tags={
                "mlbox.asset": outcome.asset,
                "mlbox.version": str(outcome.version),
                **_promotion_tags(outcome.promotion),
            },
            version_dir=asset_registry(loaded, outcome.asset).root_dir / str(outcome.version),
        )
        for outcome in report.outcomes
        if outcome.trained
    ]
    return log_training(loaded.config.tracking, parent, children)
