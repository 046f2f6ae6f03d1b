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

Because of these rules a long range is scored as back-to-back chunks of about
``scoring.chunk_rows`` samples, each read with its own look-back and look-ahead: the levels,
the CSV and the events equal scoring the range in one piece, and memory follows the chunk.

Each chunk is computed first; the events of all chunks and the state are written in one
transaction (all or nothing), and the CSV, appended chunk by chunk aside, is renamed into place
only after that transaction has committed, so a failure leaves neither.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import errno
import logging
import os
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy.engine import Engine

from Database import DatabaseTarget
from DataExtractionAnalysis import (
    DataConfig,
    EmptyWindowError,
    ScoredHealth,
    epoch_seconds,
    expect_windows,
    extract_window,
    lookahead_end,
    lookback_start,
    neighbour_times,
    newest_time,
)
from DataPreparation import t0_from_stats, time_since, validate_frame
from ModelRegistry import LoadedVersion, ModelRegistry
from ModelTraining import AxisModelSet
from Scoring import (
    MACHINE_CHANNEL,
    SENSOR_SEVERITY,
    SEVERITIES,
    Continuation,
    EventStore,
    EventWriter,
    ScoreResult,
    ScoringInputError,
    event_records,
    lookahead_samples,
    lookback_samples,
    parse_thresholds,
    score_frame,
    worst_first,
)
from Scoring.drift import DriftBaselines

from .config import LoadedConfig
from .context import DatabaseSession, open_database
from .destinations import DestinationError
from .drift import retrain_reason
from .drift_run import DriftRun
from .status import ExitCode, Status

__all__ = ["ScoringReport", "run_scoring"]

logger = logging.getLogger(__name__)

_ONE_US = pd.Timedelta(microseconds=1)

WORST_EVENTS = 10
"""Events a score run lists (worst first, see :func:`Scoring.worst_first`)."""


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
    asset: str | None = None
    stale: bool = False
    """No new rows, and the newest sample is older than ``scoring.stale_after``."""
    worst: list[dict[str, Any]] = field(default_factory=list)
    """The worst kept events overlapping the scored rows (at most :data:`WORST_EVENTS`), as
    :func:`Scoring.event_records` gives them."""
    drift: dict[str, Any] = field(default_factory=dict)
    """``started`` (drift events begun by this run) and ``drifting`` (axis → direction and
    since when) after the run; empty when the version has no drift baselines."""
    health: dict[str, Any] = field(default_factory=dict)
    """Axis → ``{grade, findings}`` of the scored samples (flat, out of range, dt change), for
    the axes with findings."""
    trend: dict[str, Any] = field(default_factory=dict)
    """Axis → time to threshold (a significant trend of its residual level in the window)."""
    sensor: dict[str, int] = field(default_factory=dict)
    """Axis → ``sensor`` events (dead sensor while the machine runs) kept by this run."""
    retrain: str | None = None
    """Why the version should be retrained (too old, or drifting axes); None: it need not be."""

    @property
    def status(self) -> Status:
        """``ok``, or ``stale`` (exit 10) when the source stopped delivering rows."""
        return Status("stale" if self.stale else "ok", self.detail)

    def exit_code(self, fail_on: str | None) -> ExitCode:
        """0; 6/7 when ``--fail-on`` asked to fail on alert/error events that were found;
        else 10 when the source is stale."""
        totals = {s: sum(c.get(s, 0) for c in self.counts.values()) for s in SEVERITIES}
        if fail_on in {"alert", "error"} and totals["error"]:
            return ExitCode.ERROR_EVENTS
        if fail_on == "alert" and totals["alert"]:
            return ExitCode.ALERT_EVENTS
        return ExitCode.STALE if self.stale else ExitCode.OK

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` payload of ``score`` (without ``status``)."""
        return {
            **({} if self.asset is None else {"asset": self.asset}),
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
            "worst_events": self.worst,
            "output": None if self.output is None else str(self.output),
            "drift": self.drift,
            "health": self.health,
            "time_to_threshold": self.trend,
            "sensor_events": self.sensor,
            "retrain": self.retrain,
        }


@dataclass(frozen=True)
class _Model:
    """What scoring needs from a registered version, read from its JSON artifacts.

    ``trained_until`` is the last training sample in the time column's own kind (float epoch
    seconds or a UTC timestamp); ``dt_seconds`` the sampling interval seen in training.
    """

    version: str
    models: AxisModelSet
    thresholds: dict[str, dict[str, Any]]
    t0: pd.Timestamp | float
    trained_until: pd.Timestamp | float | None
    dt_seconds: float | None
    drift: DriftBaselines | None = None
    skipped: tuple[str, ...] = ()
    """Configured axes the version left out for their sensor health (``health.on_low: skip``)."""
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)
    """Axis → the training window's [min, max] (for the out-of-range check)."""
    published: str | None = None
    """When the version was published (``meta.yaml`` ``created_at``)."""


def _load_model(loaded: LoadedConfig, version: str, asset: Any = None) -> _Model:
    if asset is None:
        registry = ModelRegistry(loaded.path(loaded.config.registry.root_dir))
    else:
        from .fleet import asset_registry

        registry = asset_registry(loaded, asset)
    return model_of(registry, version)


def model_of(registry: ModelRegistry, version: str) -> _Model:
    """Load and verify ``version`` (a tag or an alias) of ``registry`` for scoring."""
    found: LoadedVersion = registry.load(version)
    models = AxisModelSet.from_dict(found.read_json("models.json"))
    thresholds = found.read_json("thresholds.json")
    stats = found.read_json("prep_stats.json")
    end = (found.meta.get("data") or {}).get("end")
    trained_until: pd.Timestamp | float | None = None
    if isinstance(end, str):
        trained_until = pd.Timestamp(end).tz_convert("UTC")
    elif isinstance(end, (int, float)):
        trained_until = float(end)
    step = stats.get("dt_seconds")
    dt_seconds = float(step) if isinstance(step, (int, float)) and step > 0 else None
    return _Model(
        found.version,
        models,
        thresholds,
        t0_from_stats(stats),
        trained_until,
        dt_seconds,
        _drift_baselines(found),
        tuple(str(axis) for axis in found.meta.get("health_skipped") or ()),
        {
            str(axis): (float(bounds[0]), float(bounds[1]))
            for axis, bounds in (found.meta.get("ranges") or {}).items()
        },
        found.meta.get("created_at"),
    )


def _drift_baselines(found: LoadedVersion) -> DriftBaselines | None:
    """The version's ``drift.json`` (None: trained without drift baselines).

    Raises:
        ScoringInputError: the file is not a drift baseline record (status ``invalid-input``).
    """
    if "drift.json" not in found.artifacts:
        return None
    try:
        return DriftBaselines.from_dict(found.read_json("drift.json"))
    except ValueError as exc:
        raise ScoringInputError(f"version {found.version}: {exc}") from exc


def _check_axes(data: DataConfig, model: _Model, off_axis: str | None = None) -> list[str]:
    if off_axis is not None and off_axis not in data.axis_columns:
        raise ScoringInputError(
            f"scoring.off_axis {off_axis!r} is not one of data.axes {data.axis_columns}; name "
            "the axis whose value tells the machine is off, or set scoring.off_axis: null"
        )
    trained = [name for name in model.thresholds if name != MACHINE_CHANNEL]
    configured = [axis for axis in data.axis_columns if axis not in model.skipped]
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


def _just_after(last: pd.Timestamp | float) -> dt.datetime:
    """The first microsecond instant after the sample ``last``, as the database compares them.

    Epoch seconds are compared as floats with the bound's ``timestamp()``. ``last`` converted
    to a timestamp, plus 1 µs and cut to the microsecond, can give ``last`` itself again (the
    float's binary noise lands below the microsecond), which re-scored the last training
    sample; so step up until the bound really lies beyond it (at most a few steps).
    """
    if isinstance(last, float):
        bound = _as_utc(last).floor("us").to_pydatetime()
        while bound.timestamp() <= last:
            bound += dt.timedelta(microseconds=1)
        return bound
    return (last.floor("us") + _ONE_US).to_pydatetime()


@contextmanager
def _write_csv(path: Path | None) -> Iterator[Callable[[pd.DataFrame], None]]:
    """Write aside chunk by chunk and rename when the block succeeds.

    A reader never sees a half-written file, and a run that fails leaves none. The file is
    created (and the folder made) on entry, so an unwritable ``--output`` fails before any
    work; a run that scored no sample leaves no file. ``path`` None writes nothing.

    Raises:
        DestinationError: the CSV cannot be written (status ``registry-error``).
    """
    if path is None:
        yield lambda frame: None
        return
    try:
        if path.is_dir():  # the rename would fail only after the events are committed
            raise IsADirectoryError(errno.EISDIR, "is a folder", str(path))
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    except OSError as exc:
        raise _output_error(path, exc) from exc
    rows = 0
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:

            def append(frame: pd.DataFrame) -> None:
                nonlocal rows
                try:
                    frame.to_csv(
                        handle,
                        index=False,
                        header=rows == 0,
                        date_format="%Y-%m-%dT%H:%M:%S.%f%z",
                    )
                except OSError as exc:
                    raise _output_error(path, exc) from exc
                rows += len(frame)

            yield append
        if rows:
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
    model: _Model,
    run_id: str,
    start: Any,
    end: Any,
    detail: str,
    axes: list[str],
    asset: str | None,
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
        asset=asset,
    )


@dataclass(frozen=True)
class _Chunk:
    """One scored piece ``[start, end)`` of a run's range.

    Attributes:
        result: the levels of its rows (None: no sample in it).
        previous, following: ``ts`` of the rows just before and after it (None: none).
        end: its end (None: up to the newest sample).
        held: where its provisional levels begin (None: all final).
    """

    result: ScoreResult | None
    previous: Any
    following: Any
    end: pd.Timestamp | None
    held: pd.Timestamp | None


@dataclass(frozen=True)
class _Read:
    """Rows read for one chunk (None: none) and where the read stopped (None: at the newest
    sample, so the newest levels are provisional)."""

    frame: pd.DataFrame | None
    read_to: Any


@dataclass(frozen=True)
class _RangeScorer:
    """Reads and scores a range of the configured table chunk by chunk."""

    engine: Engine
    target: DatabaseTarget
    data: DataConfig
    model: _Model
    axes: list[str]
    fast_path: bool
    asset: Any = None

    sensor_steps: int | None = None
    off_axis: str | None = None
    off_below: float = 0.0
    known: Mapping[tuple[str, Any, int], Any] = field(default_factory=dict)
    """Neighbour times read ahead (see :func:`prefetch_windows`): ``("back" | "ahead", anchor,
    samples)`` → what :func:`lookback_start` / :func:`lookahead_end` give for this asset."""

    def _back(self, anchor: Any, samples: int) -> Any:
        key = ("back", anchor, samples)
        if key in self.known:
            return self.known[key]
        return lookback_start(
            self.engine, self.target, self.data, anchor, samples, asset=self.asset
        )

    def _ahead(self, anchor: Any, samples: int) -> Any:
        key = ("ahead", anchor, samples)
        if key in self.known:
            return self.known[key]
        return lookahead_end(self.engine, self.target, self.data, anchor, samples, asset=self.asset)

    @property
    def before(self) -> int:
        """Rows of look-back: runs (sensor faults too), smoothing and the models' own look-back
        (e.g. ar lags)."""
        return lookback_samples(
            self.model.thresholds, self.model.models.lookback_, self.sensor_steps
        )

    @property
    def after(self) -> int:
        """Rows of look-ahead that make a window's levels final."""
        return lookahead_samples(self.model.thresholds, self.sensor_steps)

    def chunks(
        self, start: dt.datetime | None, end: dt.datetime | None, span: dt.timedelta | None
    ) -> Iterator[_Chunk]:
        """Score ``[start, end)`` as back-to-back chunks of ``span`` (None: in one piece).

        Without ``end`` the last chunk runs up to the newest sample (its newest levels are
        provisional). Without ``start`` the range is scored in one piece: chunks need a first
        bound to count from.
        """
        for lo, hi in self.bounds(start, end, span):
            yield self.score(lo, hi)

    def bounds(
        self, start: dt.datetime | None, end: dt.datetime | None, span: dt.timedelta | None
    ) -> Iterator[tuple[dt.datetime | None, dt.datetime | None]]:
        """The ``[lo, hi)`` of the chunks of :meth:`chunks`."""
        lo = start
        while True:
            hi = end
            cut = _later(lo, span)
            if cut is not None and (end is None or cut < end):
                hi = cut
                if end is None and self._ahead(hi, 1) is None:
                    hi = None  # nothing from there on: the last chunk, open to the newest data
            yield lo, hi
            if hi is None or hi == end:
                return
            lo = hi

    def _machine_off(self, frame: pd.DataFrame) -> np.ndarray | None:
        return _off_where(frame, self.off_axis, self.off_below)

    def score(self, start: dt.datetime | None, end: dt.datetime | None) -> _Chunk:
        """Read ``[start, end)`` with its look-back and look-ahead, and score it."""
        return self.levels(self.read(start, end, self.before, self.after), start, end)

    def read(
        self, start: dt.datetime | None, end: dt.datetime | None, before: int, after: int
    ) -> _Read:
        """Read ``[start, end)`` with ``before`` rows of look-back and ``after`` of look-ahead.

        A wider context than a model needs changes none of its levels inside the window, so
        one read can serve several models (the replay gate's candidate and champion).
        """
        # At least the row on each side, even when the levels need no context (runs of one
        # sample): the store joins a run at a window edge to a stored run that reaches it.
        read_from: Any = start
        if start is not None:
            read_from = self._back(start, max(before, 1)) or start
        read_to: Any = None
        if end is not None:
            read_to = self._ahead(end, max(after, 1) + 1)
        try:
            frame = extract_window(
                self.engine,
                self.target,
                self.data,
                start=_datetime(read_from),
                end=_datetime(read_to),
                fast_path=self.fast_path,
                allow_missing_axes=True,
                asset=self.asset,
            ).frame
        except EmptyWindowError:
            return _Read(None, read_to)
        return _Read(frame, read_to)

    def levels(self, read: _Read, start: dt.datetime | None, end: dt.datetime | None) -> _Chunk:
        """Score the rows of ``read`` inside ``[start, end)`` with this scorer's model."""
        context = self.after
        until = None if end is None else _as_utc(end)
        frame = read.frame
        if frame is None:
            return _Chunk(None, None, None, until, None)
        held = None
        if read.read_to is None:
            # Fewer than `context` samples follow the window yet: the newest `context` levels
            # are provisional (a run may still reach T). They are scored and written (levels
            # and events only ever grow), but the state stops before them, so the next run
            # scores them again with the samples that follow. Cut down to the microsecond the
            # state keeps, never up past a sample.
            tail = frame["ts"].iloc[max(0, len(frame) - context)] if context else None
            held = (
                _as_utc(frame["ts"].iloc[-1]) + _ONE_US
                if tail is None
                else _as_utc(tail).floor("us")
            )
        validate_frame(frame, self.axes, min_samples=1, allow_empty_axes=True)
        model = self.model
        timed = frame.assign(time_s=time_since(frame["ts"], model.t0))
        predicted = model.models.predict(timed)
        window_start = start if start is not None else frame["ts"].iloc[0]
        result = score_frame(
            predicted,
            None,
            model.thresholds,
            window_start=_bound(window_start, frame),
            window_end=_bound(end, frame),
            machine_scores=model.models.machine_score(timed),
            sensor_steps=self.sensor_steps,
            machine_off=self._machine_off(frame),
        )
        if result.frame.empty:
            return _Chunk(None, None, None, until, held)
        before, after = result.context_before, result.context_after
        previous = frame["ts"].iloc[before - 1] if before else None
        following = frame["ts"].iloc[before + len(result.frame)] if after else None
        return _Chunk(result, previous, following, until, held)


def _off_where(frame: pd.DataFrame, axis: str | None, below: float) -> np.ndarray | None:
    """Rows where ``axis`` reads at most ``below`` in absolute value or nothing (None: no
    configured off condition)."""
    if axis is None:
        return None
    values = frame[axis].to_numpy(dtype=np.float64, na_value=np.nan)
    return ~(np.abs(values) > below)  # NaN compares False: missing means off


@dataclass
class _Progress:
    """What a run has scored so far, chunk by chunk."""

    first: pd.Timestamp | None = None
    last: pd.Timestamp | None = None
    samples: int = 0
    end: pd.Timestamp | None = None
    held: pd.Timestamp | None = None

    def add(self, chunk: _Chunk) -> None:
        self.end = chunk.end
        if chunk.held is not None:
            self.held = chunk.held if self.held is None else min(self.held, chunk.held)
        if chunk.result is None:
            return
        ts = chunk.result.frame["ts"]
        if self.first is None:
            self.first = _as_utc(ts.iloc[0])
        self.last = _as_utc(ts.iloc[-1])
        self.samples += len(ts)

    @property
    def final_until(self) -> pd.Timestamp | None:
        """Levels before it are final: the run's end, or where provisional levels begin."""
        if self.held is None:
            return self.end
        return self.held if self.end is None else min(self.end, self.held)


def run_scoring(
    loaded: LoadedConfig,
    *,
    version: str = "champion",
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    output: Path | None = None,
    asset: Any = None,
) -> ScoringReport:
    """Score ``[start, end)`` of the configured table with a registered version.

    Args:
        loaded: the validated config (``data``, ``registry``, ``events``, ``scoring``).
        version: registry version or alias, default ``champion`` (``latest`` while no
            version has been promoted).
        start: window start; None = where the last run for this table (and asset) ended,
            whatever version it used (first run: just after the version's training window).
        end: window end, exclusive; None = up to the newest samples (the newest
            ``lookback_samples`` levels are provisional and scored again by the next run).
        output: CSV with one row per sample (``ts``, per axis residual and level, ``level``).
        asset: with ``data.asset_col``, the asset (as :func:`list_assets` returns it): its
            rows, its registry folder, its events and continuation point.

    Raises:
        VersionNotFoundError: no registry or no such version (status ``missing-model``).
        ScoringInputError, ExtractionError, PreparationError: the window does not match the
            version (status ``invalid-input``).
        DatabaseError: the database failed (status ``db-error``).
    """
    model = _load_model(loaded, version, asset)
    session = open_database(loaded)
    try:
        return score_with(loaded, session, model, start=start, end=end, output=output, asset=asset)
    finally:
        session.close()


def score_with(
    loaded: LoadedConfig,
    session: DatabaseSession,
    model: _Model,
    *,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    output: Path | None = None,
    asset: Any = None,
    prefetched: Prefetched | None = None,
) -> ScoringReport:
    """:func:`run_scoring` on an open database with a loaded version (a fleet's tasks score
    many assets on one connection; ``prefetched``: what :func:`prefetch_windows` read for
    this asset with the others of its task)."""
    run_id = f"score-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{uuid.uuid4().hex[:8]}"
    data = loaded.config.data
    axes = _check_axes(data, model, loaded.config.scoring.off_axis)
    # Counts name the machine channel too when the version has one.
    channels = [*axes, MACHINE_CHANNEL] if MACHINE_CHANNEL in model.thresholds else list(axes)
    events_config = loaded.config.events
    asset_id = None if asset is None else str(asset)
    of_asset = "" if asset is None else f" asset {asset_id}"
    store = EventStore(
        session.engine, session.target, events_config.table, data.table, asset_id or ""
    )
    continued = store.continuation() if prefetched is None else prefetched.continued
    if start is None:
        start = _run_start(continued, model)
        logger.info("continuing %s%s with %s from %s", data.table, of_asset, model.version, start)
    if start is not None and end is not None and end <= start:
        raise ScoringInputError(f"--end ({end}) must be after --start ({start})")
    scorer = _range_scorer(
        loaded, session, model, axes, asset, {} if prefetched is None else prefetched.known
    )
    span = _chunk_span(loaded.config.scoring.chunk_rows, model.dt_seconds)
    progress = _Progress()
    drift = DriftRun.open(loaded, store, model.drift, model.version, asset_id)
    health = ScoredHealth(loaded.config.health, model.ranges, model.dt_seconds)
    with _write_csv(output) as append_rows, ExitStack() as transaction:
        writer: EventWriter | None = None
        for chunk in scorer.chunks(start, end, span):
            progress.add(chunk)
            if chunk.result is None:
                continue
            if writer is None:  # the run's one transaction, once there is something to write
                writer = transaction.enter_context(
                    store.session(
                        model.version,
                        run_id,
                        merge_gap_seconds=events_config.merge_gap_seconds,
                        cooldown_seconds=events_config.cooldown_seconds,
                    )
                )
            append_rows(chunk.result.frame)
            # The cooldown is applied by the store, in time order against stored events
            # too, so that where windows are cut cannot change which events it drops.
            writer.add(
                chunk.result.events(merge_gap_seconds=events_config.merge_gap_seconds),
                window_ts=chunk.result.frame["ts"],
                previous_ts=chunk.previous,
                next_ts=chunk.following,
            )
            if drift is not None:
                drift.fold(writer, chunk.result)
            if loaded.config.health.enabled:
                health.add(epoch_seconds(chunk.result.frame["ts"]), chunk.result.values)
        if writer is not None:
            writer.advance_state(progress.final_until)
            if drift is not None:
                drift.save(writer, run_id)
    stale = _staleness(loaded, session, asset, end, progress, continued)
    if writer is None:
        report = _empty(
            model, run_id, start, end, "no samples in the window yet", channels, asset_id
        )
        return report if stale is None else dataclasses.replace(report, stale=True, detail=stale)
    drift_summary = {} if drift is None else drift.summary()
    retrain = retrain_reason(
        model.version,
        model.published,
        loaded.config.registry.max_model_age,
        drift_summary.get("drifting", {}),
    )
    if retrain is not None:
        logger.warning("retrain %s%s: %s", model.version, of_asset, retrain)
    graded = health.findings()
    for axis, found in graded.items():
        logger.warning("sensor health of %s%s: %s", axis, of_asset, "; ".join(found.reasons))
    written = writer.summary()
    counts = {
        name: {s: written.kept.get(name, {}).get(s, 0) for s in SEVERITIES} for name in channels
    }
    detail = (
        f"scored {progress.samples} samples{of_asset} from {progress.first} to {progress.last} "
        f"with {model.version} (final up to {progress.final_until}): "
        f"{sum(c['alert'] for c in counts.values())} alert and "
        f"{sum(c['error'] for c in counts.values())} error events"
    )
    logger.info("%s; stored: %s", detail, written)
    return ScoringReport(
        version=model.version,
        run_id=run_id,
        start=progress.first,
        end=progress.last,
        samples=progress.samples,
        final_until=progress.final_until,
        counts=counts,
        written=written.counts(),
        output=output,
        detail=detail if stale is None else f"{detail}; {stale}",
        asset=asset_id,
        stale=stale is not None,
        worst=_worst_events(store, progress, counts),
        drift=drift_summary,
        retrain=retrain,
        trend={}
        if drift is None
        else drift.time_to_threshold(loaded, parse_thresholds(model.thresholds)),
        health={axis: found.to_dict() for axis, found in graded.items()},
        sensor={
            axis: kept[SENSOR_SEVERITY]
            for axis, kept in written.kept.items()
            if kept.get(SENSOR_SEVERITY)
        },
    )


def _run_start(continued: Continuation | None, model: _Model) -> dt.datetime | None:
    """Where a run without ``--start`` begins: where the last run of the table and asset
    stopped, whatever version it used; the first run just after the training window."""
    if continued is not None:
        return continued.scored_until.to_pydatetime()
    if model.trained_until is not None:
        return _just_after(model.trained_until)
    return None


def _range_scorer(
    loaded: LoadedConfig,
    session: DatabaseSession,
    model: _Model,
    axes: list[str],
    asset: Any,
    known: Mapping[tuple[str, Any, int], Any],
) -> _RangeScorer:
    scoring = loaded.config.scoring
    return _RangeScorer(
        session.engine,
        session.target,
        loaded.config.data,
        model,
        axes,
        loaded.config.database.fast_path,
        asset,
        scoring.sensor_steps,
        scoring.off_axis,
        scoring.off_below,
        known,
    )


@dataclass(frozen=True)
class Prefetched:
    """What a fleet task read for one asset ahead of its score run: its continuation state
    and the neighbour times its first chunk's bounds and read need (see :class:`_RangeScorer`)."""

    continued: Continuation | None
    known: dict[tuple[str, Any, int], Any] = field(default_factory=dict)


def prefetch_windows(
    loaded: LoadedConfig,
    session: DatabaseSession,
    models: Sequence[tuple[Any, _Model]],
    *,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
) -> dict[str, Prefetched]:
    """Read ahead, for the score runs of ``models`` (asset, its version) that follow one after
    the other in a :func:`reusing_connections` block: every asset's continuation state in one
    statement, the look-back start (and end of the look-ahead, or whether rows follow a
    chunk's end) of every asset's first chunk in another, and announce each asset's first
    window so that the windows are read several at a time (:func:`expect_windows`).

    It reads what each run would read by itself, only together: a run that asks for
    something else (a second chunk) reads it itself, and :func:`score_with` with these gives
    the same levels, events and state as without.

    Raises:
        DatabaseError: the database failed.
    """
    data = loaded.config.data
    store = EventStore(session.engine, session.target, loaded.config.events.table, data.table)
    states = store.continuations([str(asset) for asset, _ in models])
    runs: list[tuple[Any, _RangeScorer, Any, Any, list[tuple[str, Any, int]]]] = []
    requests: list[tuple[Any, dt.datetime, int, bool]] = []
    for asset, model in models:
        lo = start if start is not None else _run_start(states[str(asset)], model)
        if lo is not None and end is not None and end <= lo:
            continue  # the run itself says why
        scorer = _range_scorer(loaded, session, model, [], asset, {})
        cut = _later(lo, _chunk_span(loaded.config.scoring.chunk_rows, model.dt_seconds))
        wanted: list[tuple[str, Any, int]] = []
        if lo is not None:
            wanted.append(("back", lo, max(scorer.before, 1)))
        if cut is not None and (end is None or cut < end):
            if end is None:
                wanted.append(("ahead", cut, 1))  # rows from the cut on: a second chunk
        elif end is not None:
            wanted.append(("ahead", end, max(scorer.after, 1) + 1))
        runs.append((asset, scorer, lo, cut, wanted))
        requests.extend(
            (asset, anchor, samples, kind == "ahead") for kind, anchor, samples in wanted
        )
    answers = iter(neighbour_times(session.engine, session.target, data, requests))
    prefetched: dict[str, Prefetched] = {}
    windows: list[tuple[Any, dt.datetime | None, dt.datetime | None]] = []
    for asset, scorer, lo, cut, wanted in runs:
        known = {key: next(answers) for key in wanted}
        prefetched[str(asset)] = Prefetched(states[str(asset)], known)
        hi = end
        if cut is not None and (end is None or cut < end):
            if end is not None or known[("ahead", cut, 1)] is not None:
                continue  # more than one chunk: the run reads its windows itself
            hi = None
        read_from = lo if lo is None else known[("back", lo, max(scorer.before, 1))] or lo
        read_to = None if hi is None else known[("ahead", hi, max(scorer.after, 1) + 1)]
        windows.append((asset, _datetime(read_from), _datetime(read_to)))
    expect_windows(session.engine, data, windows)
    return prefetched


def _worst_events(
    store: EventStore, progress: _Progress, counts: dict[str, dict[str, int]]
) -> list[dict[str, Any]]:
    """The run's worst kept events (read back: merged, with their stored peaks); none read
    when the run kept none (most runs of a quiet fleet)."""
    if not any(sum(by_severity.values()) for by_severity in counts.values()):
        return []
    found = store.read_overlapping(progress.first, progress.last)
    return event_records(worst_first(found, WORST_EVENTS))


def _staleness(
    loaded: LoadedConfig,
    session: DatabaseSession,
    asset: Any,
    end: dt.datetime | None,
    progress: _Progress,
    continued: Any,
) -> str | None:
    """Why the source is stale (None: it is not, or the run had an ``--end``).

    Stale: no sample newer than any earlier run has read (or none at all in this run), while
    the newest one is older than ``scoring.stale_after``.
    """
    limit = loaded.config.scoring.stale_after
    if end is not None or limit is None:
        return None
    seen = None if continued is None else continued.last_sample
    if progress.last is not None and (seen is None or progress.last > seen):
        return None  # this run read rows no run had read before: the source delivers
    data = loaded.config.data
    newest = newest_time(session.engine, session.target, data, asset=asset)
    if newest is None:
        return None
    newest_utc = _as_utc(newest)
    if seen is not None and newest_utc > seen and progress.samples:
        return None
    age = pd.Timestamp.now(tz="UTC") - newest_utc
    if age <= limit:
        return None
    of_asset = "" if asset is None else f" for asset {asset}"
    return (
        f"stale: no new rows in {data.table}{of_asset} since {newest_utc} ({age.floor('s')} "
        f"ago, more than scoring.stale_after {limit}); check that the source still delivers"
    )


def _chunk_span(rows: int, dt_seconds: float | None) -> dt.timedelta | None:
    """Time covered by about ``rows`` samples (None: unknown sampling, score in one piece)."""
    if dt_seconds is None:
        return None
    try:
        return max(dt.timedelta(seconds=rows * dt_seconds), dt.timedelta(microseconds=1))
    except OverflowError:  # longer than any calendar: one piece
        return None


def _later(start: dt.datetime | None, span: dt.timedelta | None) -> dt.datetime | None:
    """``start + span``; None without either, or past the calendar's end (one piece then)."""
    if start is None or span is None:
        return None
    try:
        return start + span
    except OverflowError:
        return None


def _datetime(value: Any) -> dt.datetime | None:
    """Extraction bounds are datetimes; epoch seconds from a numeric time column become UTC.

    Cut down to the microsecond (a datetime's resolution), so a bound taken from a sample's
    time never moves past that sample.
    """
    if value is None or isinstance(value, dt.datetime):
        return value
    return _as_utc(value).floor("us").to_pydatetime()


def _bound(value: Any, frame: pd.DataFrame) -> Any:
    """A window bound in the frame's own time kind (float epoch seconds or UTC timestamp)."""
    if value is None:
        return None
    if pd.api.types.is_datetime64_any_dtype(frame["ts"]):
        return _as_utc(value)
    if isinstance(value, (int, float)):
        return float(value)
    return _as_utc(value).timestamp()
