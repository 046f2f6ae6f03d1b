"""A scoring run: registered version + new window → per-sample levels → events in the database.

Window rules (so that scoring back-to-back windows gives exactly the levels of their union):

- ``L = lookback_samples(thresholds)`` rows before the window start are read as look-back, so
  a run that began earlier keeps its full length;
- with ``--end``, ``L`` rows from the end on are read as look-ahead, so a run still open at the
  end is judged on its full length too;
- without ``--end``, or when fewer than ``L`` samples follow it yet, the newest ``L`` levels
  are provisional: they depend on samples not recorded yet. They are written (levels and
  events only ever grow), but the stored state stops before them, so the next run, which
  continues from the state when ``--start`` is not given, scores them again.

Everything is computed first; then the CSV is written aside, events + state are written in one
transaction, and only once that committed is the CSV renamed into place, so a failure writes
nothing.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from DataExtractionAnalysis import (
    DataConfig,
    EmptyWindowError,
    extract_window,
    lookahead_end,
    lookback_start,
)
from DataPreparation import t0_from_stats, time_since, validate_frame
from ModelRegistry import LoadedVersion, ModelRegistry
from ModelTraining import AxisModelSet
from Scoring import SEVERITIES, EventStore, ScoringInputError, lookback_samples, score_frame

from .config import LoadedConfig
from .context import open_database
from .destinations import DestinationError
from .status import ExitCode

__all__ = ["ScoringReport", "run_scoring"]

logger = logging.getLogger(__name__)

_ONE_US = pd.Timedelta(microseconds=1)


@dataclass(frozen=True)
class ScoringReport:
    """Outcome of a score run: window, counts per axis and severity, what was written.

    ``start``/``end`` are the first and last scored samples; levels before ``final_until``
    are final, later ones provisional (the next run scores them again).
    """

    version: str
    run_id: str
    start: pd.Timestamp | None
    end: pd.Timestamp | None
    samples: int
    counts: dict[str, dict[str, int]]
    final_until: pd.Timestamp | None = None
    written: dict[str, int] = field(default_factory=dict)
    output: Path | None = None
    detail: str = ""

    def exit_code(self, fail_on: str | None) -> ExitCode:
        """0, or 6/7 when ``--fail-on`` asked to fail on alert/error events that were found."""
        totals = {s: sum(c.get(s, 0) for c in self.counts.values()) for s in SEVERITIES}
        if fail_on in {"alert", "error"} and totals["error"]:
            return ExitCode.ERROR_EVENTS
        if fail_on == "alert" and totals["alert"]:
            return ExitCode.ALERT_EVENTS
        return ExitCode.OK

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` payload of ``score`` (without ``status``)."""
        return {
            "version": self.version,
            "run_id": self.run_id,
            "window": {
                "start": None if self.start is None else self.start.isoformat(),
                "end": None if self.end is None else self.end.isoformat(),
                "final_until": None if self.final_until is None else self.final_until.isoformat(),
            },
            "samples": self.samples,
            "counts": self.counts,
            "events_written": self.written,
            "output": None if self.output is None else str(self.output),
        }


@dataclass(frozen=True)
class _Model:
    """What scoring needs from a registered version, read from its JSON artifacts."""

    version: str
    models: AxisModelSet
    thresholds: dict[str, dict[str, Any]]
    t0: pd.Timestamp | float
    trained_until: pd.Timestamp | None


def _load_model(loaded: LoadedConfig, version: str) -> _Model:
    registry = ModelRegistry(loaded.path(loaded.config.registry.root_dir))
    found: LoadedVersion = registry.load(version)
    models = AxisModelSet.from_dict(found.read_json("models.json"))
    thresholds = found.read_json("thresholds.json")
    stats = found.read_json("prep_stats.json")
    end = (found.meta.get("data") or {}).get("end")
    trained_until = None
    if isinstance(end, str):
        trained_until = pd.Timestamp(end).tz_convert("UTC")
    elif isinstance(end, (int, float)):
        trained_until = pd.Timestamp(float(end), unit="s", tz="UTC")
    return _Model(found.version, models, thresholds, t0_from_stats(stats), trained_until)


def _check_axes(data: DataConfig, model: _Model) -> list[str]:
    trained = list(model.thresholds)
    configured = data.axis_columns
    if set(trained) != set(configured):
        raise ScoringInputError(
            f"version {model.version} was trained on axes {trained}, but data.axes gives "
            f"{configured} (missing: {sorted(set(trained) - set(configured))}, not trained: "
            f"{sorted(set(configured) - set(trained))}); score with the matching data.axes "
            "or train a new version"
        )
    return trained


def _as_utc(value: Any) -> pd.Timestamp:
    if isinstance(value, (int, float)):
        return pd.Timestamp(float(value), unit="s", tz="UTC")
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


@contextlib.contextmanager
def _csv_on_success(frame: pd.DataFrame, path: Path | None) -> Iterator[None]:
    """Write the CSV aside now; rename it into place only if the ``with`` block succeeds.

    The block writes the events, so a run whose database write fails leaves no CSV (and no
    temporary file), and a reader never sees a half-written one.

    Raises:
        DestinationError: the CSV cannot be written (status ``registry-error``).
    """
    if path is None:
        yield
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        os.close(fd)
    except OSError as exc:
        raise _output_error(path, exc) from exc
    try:
        try:
            frame.to_csv(tmp, index=False, date_format="%Y-%m-%dT%H:%M:%S.%f%z")
        except OSError as exc:
            raise _output_error(path, exc) from exc
        yield
        try:
            os.replace(tmp, path)
        except OSError as exc:
            raise _output_error(path, exc, committed=True) from exc
    finally:
        Path(tmp).unlink(missing_ok=True)


def _output_error(path: Path, exc: OSError, *, committed: bool = False) -> DestinationError:
    done = "; the events were written, only the CSV is missing" if committed else ""
    return DestinationError(
        f"--output {path} cannot be written: {exc.strerror or exc}{done}; give the path of a "
        f"CSV file in a writable folder, or free space on its disk"
    )


def _empty(
    model: _Model, run_id: str, start: Any, end: Any, detail: str, axes: list[str]
) -> ScoringReport:
    logger.info("%s", detail)
    return ScoringReport(
        version=model.version,
        run_id=run_id,
        start=None if start is None else _as_utc(start),
        end=None if end is None else _as_utc(end),
        samples=0,
        counts={axis: dict.fromkeys(SEVERITIES, 0) for axis in axes},
        detail=detail,
    )


def run_scoring(
    loaded: LoadedConfig,
    *,
    version: str = "latest",
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    output: Path | None = None,
) -> ScoringReport:
    """Score ``[start, end)`` of the configured table with a registered version.

    Args:
        loaded: the validated config (``data``, ``registry``, ``events`` sections).
        version: registry version, default ``latest``.
        start: window start; None = where the last run for this table and version ended
            (first run: just after the version's training window).
        end: window end, exclusive; None = up to the newest samples (the newest
            ``lookback_samples`` levels are provisional and scored again by the next run).
        output: CSV with one row per sample (``ts``, per axis residual and level, ``level``).

    Raises:
        VersionNotFoundError: no registry or no such version (status ``missing-model``).
        ScoringInputError, ExtractionError, PreparationError: the window does not match the
            version (status ``invalid-input``).
        DatabaseError: the database failed (status ``db-error``).
    """
    run_id = f"score-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{uuid.uuid4().hex[:8]}"
    model = _load_model(loaded, version)
    data = loaded.config.data
    axes = _check_axes(data, model)
    session = open_database(loaded)
    try:
        events_config = loaded.config.events
        store = EventStore(session.engine, session.target, events_config.table, data.table)
        if start is None:
            continued = store.scored_until(model.version)
            origin = continued or (
                model.trained_until + pd.Timedelta(microseconds=1)
                if model.trained_until is not None
                else None
            )
            start = None if origin is None else origin.to_pydatetime()
            logger.info("continuing %s with %s from %s", data.table, model.version, start)
        if start is not None and end is not None and end <= start:
            raise ScoringInputError(f"--end ({end}) must be after --start ({start})")
        context = lookback_samples(model.thresholds)
        engine, target = session.engine, session.target
        read_from = start
        if start is not None and context:
            read_from = lookback_start(engine, target, data, start, context) or start
        read_to = None
        if end is not None:
            read_to = lookahead_end(engine, target, data, end, context + 1) if context else end
        try:
            frame = extract_window(
                engine,
                target,
                data,
                start=_datetime(read_from),
                end=_datetime(read_to),
                fast_path=loaded.config.database.fast_path,
                allow_missing_axes=True,
            ).frame
        except EmptyWindowError:
            return _empty(model, run_id, start, end, "no samples in the window yet", axes)
        window_start = start if start is not None else frame["ts"].iloc[0]
        final_until = None if end is None else _as_utc(end)
        if read_to is None:
            # Fewer than `context` samples follow the window yet: the newest `context` levels
            # are provisional (a run may still reach T). They are scored and written (levels
            # and events only ever grow), but the state stops before them, so the next run
            # scores them again with the samples that follow.
            tail = frame["ts"].iloc[max(0, len(frame) - context)] if context else None
            held = _as_utc(frame["ts"].iloc[-1]) + _ONE_US if tail is None else _as_utc(tail)
            final_until = held if final_until is None else min(final_until, held)
        validate_frame(frame, axes, min_samples=1, allow_empty_axes=True)
        predicted = model.models.predict(frame.assign(time_s=time_since(frame["ts"], model.t0)))
        result = score_frame(
            predicted,
            None,
            model.thresholds,
            window_start=_bound(window_start, frame),
            window_end=_bound(end, frame),
        )
        if result.frame.empty:
            return _empty(model, run_id, start, end, "no samples in the window yet", axes)
        # The cooldown is applied by the store, in time order against stored events too, so
        # that where windows are cut cannot change which events it drops.
        events = result.events(merge_gap_seconds=events_config.merge_gap_seconds)
        before, after = result.context_before, result.context_after
        previous = frame["ts"].iloc[before - 1] if before else None
        following = frame["ts"].iloc[before + len(result.frame)] if after else None
        with _csv_on_success(result.frame, output):
            written = store.write(
                events,
                window_ts=result.frame["ts"],
                previous_ts=previous,
                next_ts=following,
                model_version=model.version,
                run_id=run_id,
                scored_until=final_until,
                merge_gap_seconds=events_config.merge_gap_seconds,
                cooldown_seconds=events_config.cooldown_seconds,
            )
    finally:
        session.close()
    counts = {axis: {s: written.kept.get(axis, {}).get(s, 0) for s in SEVERITIES} for axis in axes}
    first, last = _as_utc(result.frame["ts"].iloc[0]), _as_utc(result.frame["ts"].iloc[-1])
    detail = (
        f"scored {len(result.frame)} samples from {first} to {last} with {model.version} "
        f"(final up to {final_until}): "
        f"{sum(c['alert'] for c in counts.values())} alert and "
        f"{sum(c['error'] for c in counts.values())} error events"
    )
    logger.info("%s; stored: %s", detail, written)
    return ScoringReport(
        version=model.version,
        run_id=run_id,
        start=first,
        end=last,
        samples=len(result.frame),
        final_until=final_until,
        counts=counts,
        written=written.counts(),
        output=output,
        detail=detail,
    )


def _datetime(value: Any) -> dt.datetime | None:
    """Extraction bounds are datetimes; epoch seconds from a numeric time column become UTC."""
    if value is None or isinstance(value, dt.datetime):
        return value
    return _as_utc(value).to_pydatetime()


def _bound(value: Any, frame: pd.DataFrame) -> Any:
    """A window bound in the frame's own time kind (float epoch seconds or UTC timestamp)."""
    if value is None:
        return None
    if pd.api.types.is_datetime64_any_dtype(frame["ts"]):
        return _as_utc(value)
    if isinstance(value, (int, float)):
        return float(value)
    return _as_utc(value).timestamp()
