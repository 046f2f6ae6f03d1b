"""The events table and the scoring state, in the same database as the samples.

``anomaly_events`` (name from ``events.table``) holds one row per event, unique on
(asset, source_table, axis, severity, start_ts, model_version). Writing is idempotent:

- a new event and every stored event of the same axis and severity that overlaps it or
  *touches* it (ends at the row just before it, or starts at the row just after it: adjacent
  runs are one maximal run) become one row: earliest start, latest end, highest peak, the
  samples of both without double counting; absorbed rows are deleted. So re-scoring never
  duplicates, an event that grew with newer data is extended, and windows scored in any order
  (backfills) fold into the same events as scoring their union;
- with ``merge_gap_seconds``, stored events within the gap fold in the same way;
- with ``cooldown_seconds``, an event starting within the cooldown after the end of the
  previous kept event (of the same axis and severity) is suppressed, in time order. It is
  stored with ``suppressed = true`` (for audit, and so that its continuation in the next
  window is suppressed too); consumers read ``WHERE NOT suppressed``. The cooldown assumes
  windows are scored in time order (a backfill of an earlier range cannot un-drop later
  events).

- rows of an asset that a run scores replace the events *other* versions stored there: those
  inside the run's rows are deleted, those reaching into them are cut back to the rows outside
  (see :meth:`EventWriter.add`), so a range scored by two versions has one set of events, each
  keeping the version that produced it.

``<events.table>_state`` remembers, per source table and asset, where the last score run
ended, whatever version it used, so ``score`` without ``--start`` continues from there and a
new version picks up where the previous one stopped (no row is skipped at a retrain). Tables
written by earlier releases, keyed by version, are read as they are (the newest row of the
source table) and rebuilt with the new key by the next write. A run's events (all its windows) and
state are written in one transaction (:meth:`EventStore.session`): all or nothing. The
transaction holds a database lock per (events table, asset) from its start, so a concurrent
run reads the stored events only after this one has committed (see ``Scoring._lock``).
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from Database import DatabaseTarget, add_missing_columns, database_errors, split_table_name

from ._lock import TABLES_LOCK, locked_transaction

__all__ = ["Continuation", "EventStore", "EventWriter", "WriteSummary"]

logger = logging.getLogger(__name__)

_ONE_US = pd.Timedelta(microseconds=1)

_DRIFT = "drift"
"""Severity of the events Scoring.drift writes; the alert/error merging leaves them alone."""
"""The lock "asset" that serialises creating and upgrading the tables (no asset id has NUL)."""
_PREPARED: set[tuple[str, str | None, str]] = set()
"""Events tables this process has created or checked: a fleet's 1,000 assets check once."""

PEAK_FIELDS = (
    "peak_residual",
    "threshold",
    "side",
    "peak_ts",
    "actual",
    "expected",
    "ratio",
    "contributors",
)
"""What an event says about its peak sample; a merged event keeps its furthest member's."""


def _peak_columns() -> list[sa.Column]:
    """Columns added after the first release: nullable, so older tables gain them in place."""
    return [
        sa.Column("side", sa.String(8), nullable=True),
        sa.Column("peak_ts", sa.DateTime(timezone=True), nullable=True),
        sa.Column("actual", sa.Float(53), nullable=True),
        sa.Column("expected", sa.Float(53), nullable=True),
        sa.Column("ratio", sa.Float(53), nullable=True),
        sa.Column("contributors", sa.Text, nullable=True),
    ]


def _finite(value: Any) -> float | None:
    """A float for the database, None for NaN/inf/missing."""
    if value is None:
        return None
    number = float(value)
    return number if np.isfinite(number) else None


def _peak_values(event: dict[str, Any]) -> dict[str, Any]:
    """The peak fields of a scored event, as stored."""
    peak_ts = event.get("peak_ts")
    contributors = event.get("contributors")
    return {
        "peak_residual": float(event["peak_residual"]),
        "threshold": float(event["threshold"]),
        "side": event.get("side"),
        "peak_ts": None if peak_ts is None or pd.isna(peak_ts) else _utc(peak_ts).to_pydatetime(),
        "actual": _finite(event.get("actual")),
        "expected": _finite(event.get("expected")),
        "ratio": _finite(event.get("ratio")),
        "contributors": contributors if isinstance(contributors, str) else None,
    }


def _furthest(candidates: list[dict[str, Any]]) -> dict[str, Any]:
    """The peak fields of the candidate furthest beyond its threshold (rows stored before the
    ratio existed compare by their peak residual)."""

    def key(record: dict[str, Any]) -> tuple[float, float]:
        ratio = record.get("ratio")
        return (-np.inf if ratio is None else float(ratio), float(record["peak_residual"]))

    best = max(candidates, key=key)
    return {field: best.get(field) for field in PEAK_FIELDS}


@dataclass(frozen=True)
class Continuation:
    """Where the last score run of a source table and asset stopped.

    Attributes:
        scored_until: levels before it are final; the next run starts there.
        last_sample: the newest sample any run has read (None: not recorded), so a run can
            tell that no new rows arrived.
        model_version: the version of the run that wrote it.
    """

    scored_until: pd.Timestamp
    last_sample: pd.Timestamp | None
    model_version: str


@dataclass(frozen=True)
class WriteSummary:
    """How the events of one run landed, and how many were kept per axis and severity.

    Counted per stored row the run wrote to: ``inserted`` rows hold only events of this run,
    ``extended`` rows older ones it changed, ``unchanged`` older ones it found as they were;
    ``suppressed`` rows are left out of ``kept`` (cooldown).
    """

    inserted: int
    extended: int
    unchanged: int
    suppressed: int
    kept: dict[str, dict[str, int]]

    def counts(self) -> dict[str, int]:
        """The four outcome counts, for reports."""
        return {
            "inserted": self.inserted,
            "extended": self.extended,
            "unchanged": self.unchanged,
            "suppressed": self.suppressed,
        }


def _utc(value: Any) -> pd.Timestamp:
    """An event time as a UTC Timestamp at the database's microsecond resolution.

    Float epoch seconds carry binary noise (``...447.556`` is ``...447.555999...``); rounding
    to the microsecond makes a re-scored event compare equal to the stored one.
    """
    if isinstance(value, (int, float, np.floating, np.integer)):
        stamp = pd.Timestamp(float(value), unit="s", tz="UTC")
    else:
        stamp = pd.Timestamp(value)
        stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp.round("us")


def _utc_ns(ts: pd.Series) -> np.ndarray:
    """A whole ``ts`` column as int64 UTC nanoseconds, rounded to microseconds (vectorised)."""
    if pd.api.types.is_datetime64_any_dtype(ts):
        stamps = pd.to_datetime(ts, utc=True)
    else:
        stamps = pd.to_datetime(ts.astype("float64"), unit="s", utc=True)
    return (
        stamps.dt.round("us").astype("datetime64[ns, UTC]").to_numpy("datetime64[ns]").view("int64")
    )


@functools.lru_cache(maxsize=64)
def _tables(schema: str | None, name: str) -> tuple[sa.MetaData, sa.Table, sa.Table]:
    """The events table ``[schema.]name`` and its state table, defined once per process:
    SQLAlchemy caches a statement's compiled SQL per table object, so a fleet's stores (one
    per asset) share their statements instead of compiling each anew."""
    metadata = sa.MetaData(schema=schema)
    events = sa.Table(
        name,
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("asset", sa.String(128), nullable=False),
        sa.Column("source_table", sa.String(255), nullable=False),
        sa.Column("axis", sa.String(128), nullable=False),
        sa.Column("severity", sa.String(8), nullable=False),
        sa.Column("start_ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("duration_s", sa.Float(53), nullable=False),
        sa.Column("samples", sa.Integer, nullable=False),
        sa.Column("peak_residual", sa.Float(53), nullable=False),
        sa.Column("threshold", sa.Float(53), nullable=False),
        sa.Column("suppressed", sa.Boolean, nullable=False),
        *_peak_columns(),
        sa.Column("model_version", sa.String(64), nullable=False),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint(
            "asset",
            "source_table",
            "axis",
            "severity",
            "start_ts",
            "model_version",
            name=f"uq_{name}_event"[:63],
        ),
        sa.Index(f"ix_{name}_start"[:63], "start_ts"),
    )
    state = sa.Table(
        f"{name}_state"[:63],
        metadata,
        sa.Column("source_table", sa.String(255), primary_key=True),
        sa.Column("asset", sa.String(128), primary_key=True),
        sa.Column("scored_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_ts", sa.DateTime(timezone=True), nullable=True),
        sa.Column("model_version", sa.String(64), nullable=False),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    return metadata, events, state


class EventStore:
    """Reads and writes events and the scoring state for one source table.

    Args:
        engine: engine of the database holding the samples.
        target: the database (for password-safe error messages).
        table: events table name (``events.table``); the state table is ``<table>_state``.
        source_table: the scored samples table (``data.table``).
        asset: the asset of every event and of the state (empty: the table is one machine).
    """

    def __init__(
        self,
        engine: Engine,
        target: DatabaseTarget,
        table: str,
        source_table: str,
        asset: str = "",
    ) -> None:
        schema, name = split_table_name(table)
        self.engine = engine
        self.target = target
        self.source_table = source_table
        self.asset = asset
        self._metadata, self.events, self.state = _tables(schema, name)

    def _state_layout(self, conn: Connection) -> str | None:
        """``current``, ``by-version`` (an earlier release's table), or None (no table)."""
        if self._prepared_key() in _PREPARED:
            return "current"  # this process created or upgraded it (see _prepare_tables)
        inspector = sa.inspect(conn)
        if not inspector.has_table(self.state.name, schema=self.state.schema):
            return None
        columns = {c["name"] for c in inspector.get_columns(self.state.name, self.state.schema)}
        return "current" if "asset" in columns else "by-version"

    def scored_until(self) -> pd.Timestamp | None:
        """Where the last score run of this source table and asset ended (None: never)."""
        found = self.continuation()
        return None if found is None else found.scored_until

    def continuation(self) -> Continuation | None:
        """The stored state of this source table and asset (None: never scored).

        A state table of an earlier release (keyed by version) gives its newest row of this
        source table for the empty asset (without ``last_sample``).
        """
        return self.continuations([self.asset])[self.asset]

    def continuations(self, assets: Sequence[str]) -> dict[str, Continuation | None]:
        """:meth:`continuation` of each of ``assets`` of this source table, in one statement
        (a fleet's score task reads its assets' states together).

        Raises:
            DatabaseError: the database failed.
        """
        with database_errors(self.target, "reading the scoring state"), self.engine.connect() as c:
            layout = self._state_layout(c)
            if layout is None:
                return dict.fromkeys(assets)
            if layout == "by-version":
                row = self._old_state(c).get(self.source_table)
                old = (
                    None
                    if row is None
                    else Continuation(_utc(row["scored_until"]), None, row["model_version"])
                )
                return {asset: None if asset else old for asset in assets}
            stmt = sa.select(
                self.state.c.asset,
                self.state.c.scored_until,
                self.state.c.last_ts,
                self.state.c.model_version,
            ).where(
                self.state.c.source_table == self.source_table,
                self.state.c.asset.in_(sa.bindparam("assets", list(assets), expanding=True)),
            )
            rows = c.execute(stmt).all()
        found = {
            asset: Continuation(_utc(until), None if last is None else _utc(last), version)
            for asset, until, last, version in rows
        }
        return {asset: found.get(asset) for asset in assets}

    def newest_scored(self) -> dict[str, pd.Timestamp]:
        """Asset → the newest sample any score run of this source table has read (where not
        recorded, where the last run stopped); empty before the first run.

        Raises:
            DatabaseError: the database failed.
        """
        with database_errors(self.target, "reading the scoring state"), self.engine.connect() as c:
            layout = self._state_layout(c)
            if layout is None:
                return {}
            if layout == "by-version":
                row = self._old_state(c).get(self.source_table)
                return {} if row is None else {"": _utc(row["scored_until"])}
            stmt = sa.select(
                self.state.c.asset, self.state.c.scored_until, self.state.c.last_ts
            ).where(self.state.c.source_table == self.source_table)
            rows = c.execute(stmt).all()
        return {asset: _utc(last if last is not None else until) for asset, until, last in rows}

    def _old_state(self, conn: Connection) -> dict[str, dict[str, Any]]:
        """Source table → the newest row of a state table keyed by version (earlier releases).

        The newest row is where the last score run stopped, whatever version it used.
        """
        old = sa.table(
            self.state.name,
            *(sa.column(c) for c in ("source_table", "model_version", "scored_until")),
            sa.column("run_id"),
            sa.column("updated_at"),
            schema=self.state.schema,
        )
        newest: dict[str, dict[str, Any]] = {}
        for row in conn.execute(sa.select(old)).mappings():
            # Untyped columns: SQLite gives the times as text, so compare them parsed.
            record = {
                **row,
                "scored_until": _utc(row["scored_until"]).to_pydatetime(),
                "updated_at": _utc(row["updated_at"]).to_pydatetime(),
            }
            known = newest.get(row["source_table"])
            if known is None or record["updated_at"] > known["updated_at"]:
                newest[row["source_table"]] = record
        return newest

    def _migrate_state(self, conn: Connection) -> None:
        """Rebuild a state table keyed by version with the key (source table, asset).

        Runs inside the writers' transaction: readers see the old table or the new one.
        """
        if self._state_layout(conn) != "by-version":
            return
        rows = [{**row, "asset": ""} for row in self._old_state(conn).values()]
        sa.Table(self.state.name, sa.MetaData(schema=self.state.schema)).drop(conn)
        self.state.create(conn)
        if rows:
            conn.execute(self.state.insert(), rows)
        logger.info(
            "scoring state %s rebuilt per source table and asset (%d rows kept)",
            self.state.fullname,
            len(rows),
        )

    def read_events(self, model_version: str | None = None) -> pd.DataFrame:
        """All stored events of this source table (optionally one version), by start time."""
        stmt = sa.select(self.events).where(self.events.c.source_table == self.source_table)
        if model_version is not None:
            stmt = stmt.where(self.events.c.model_version == model_version)
        with database_errors(self.target, "reading events"), self.engine.connect() as conn:
            if not sa.inspect(conn).has_table(self.events.name, schema=self.events.schema):
                return pd.DataFrame(columns=[c.name for c in self.events.columns])
            frame = pd.read_sql(stmt.order_by(self.events.c.start_ts, self.events.c.id), conn)
        for column in ("start_ts", "end_ts", "peak_ts", "created_at", "updated_at"):
            if column in frame.columns:  # peak_ts is NULL in rows of an earlier release
                frame[column] = frame[column].map(lambda v: pd.NaT if pd.isna(v) else _utc(v))
        return frame

    def read_overlapping(
        self,
        since: pd.Timestamp | None = None,
        until: pd.Timestamp | None = None,
        *,
        all_assets: bool = False,
    ) -> pd.DataFrame:
        """Kept (not suppressed) events of this source table overlapping ``[since, until]``.

        Args:
            since, until: UTC bounds (None: open on that side); an event overlaps when it
                ends at or after ``since`` and starts at or before ``until``.
            all_assets: every asset of the source table, else only this store's asset.

        Returns:
            The events table's rows (no table yet: none), by start time; ``start_ts``,
            ``end_ts`` and ``peak_ts`` as UTC timestamps.

        Raises:
            DatabaseError: the database failed.
        """
        events = self.events
        stmt = sa.select(events).where(
            events.c.source_table == self.source_table, events.c.suppressed.is_(False)
        )
        if not all_assets:
            stmt = stmt.where(events.c.asset == self.asset)
        if since is not None:
            stmt = stmt.where(events.c.end_ts >= _utc(since).to_pydatetime())
        if until is not None:
            stmt = stmt.where(events.c.start_ts <= _utc(until).to_pydatetime())
        with database_errors(self.target, "reading events"), self.engine.connect() as conn:
            prepared = self._prepared_key() in _PREPARED  # created or checked by this process
            if not prepared and not sa.inspect(conn).has_table(events.name, schema=events.schema):
                return pd.DataFrame(columns=[c.name for c in events.columns])
            frame = pd.read_sql(stmt.order_by(events.c.start_ts, events.c.id), conn)
        for column in ("start_ts", "end_ts", "peak_ts"):
            if column in frame.columns:
                frame[column] = pd.to_datetime(frame[column], utc=True, format="ISO8601")
        return frame

    @contextmanager
    def session(
        self,
        model_version: str,
        run_id: str,
        *,
        merge_gap_seconds: float = 0.0,
        cooldown_seconds: float = 0.0,
    ) -> Iterator[EventWriter]:
        """The one transaction of a score run, holding the writers' lock of (table, asset).

        Every window the run scores is added to the writer in time order; the run's events,
        and the state moved by :meth:`EventWriter.advance_state`, are committed together when
        the block ends, or not at all when it raises. A second run writing the same events
        table and asset waits for the lock, so it reads the events this one stored (see
        ``Scoring._lock``).

        Args:
            model_version: registry version used.
            run_id: this run's id.
            merge_gap_seconds, cooldown_seconds: as in ``events.*`` of the config.

        Yields:
            The writer of this run.

        Raises:
            DatabaseError: the database failed (nothing of the run is stored).
        """
        action = f"writing events to {self.events.fullname!r}"
        with database_errors(self.target, action):
            self._prepare_tables()
            conn = self.engine.connect()
        try:
            with ExitStack() as transaction:
                with database_errors(self.target, action):
                    locked = transaction.enter_context(
                        locked_transaction(conn, self.events.schema, self.events.name, self.asset)
                    )
                writer = EventWriter(
                    self,
                    locked,
                    model_version=model_version,
                    run_id=run_id,
                    gap=pd.Timedelta(seconds=merge_gap_seconds),
                    cooldown=pd.Timedelta(seconds=cooldown_seconds),
                )
                yield writer
                with database_errors(self.target, action):
                    transaction.close()  # commits
        finally:
            conn.close()
        logger.info("events written to %s: %s", self.events.fullname, writer.summary().counts())

    def _prepare_tables(self) -> None:
        """Create the tables, add missing columns, rebuild an old state table: once per process.

        Under a lock of its own for the whole events table (not an asset's), so writers of
        different assets starting together do not create the same table twice.
        """
        key = self._prepared_key()
        if key in _PREPARED:
            return
        with (
            self.engine.connect() as conn,
            locked_transaction(conn, self.events.schema, self.events.name, TABLES_LOCK) as locked,
        ):
            self._migrate_state(locked)
            self._metadata.create_all(locked, checkfirst=True)
            self._add_missing_columns(locked)
        _PREPARED.add(key)

    def _prepared_key(self) -> tuple[str, str | None, str]:
        return (self.engine.url.render_as_string(), self.events.schema, self.events.name)

    def _add_missing_columns(self, conn: Connection) -> None:
        """Give an events table created by an earlier release the columns added since."""
        add_missing_columns(conn, self.events, _peak_columns())

    def _existing(
        self, conn: Connection, since: pd.Timestamp, until: pd.Timestamp
    ) -> list[dict[str, Any]]:
        """Stored events of this table and asset (every version) overlapping ``[since, until]``,
        by start time."""
        stmt = sa.select(self.events).where(
            self.events.c.asset == self.asset,
            self.events.c.source_table == self.source_table,
            self.events.c.end_ts >= since.to_pydatetime(),
            self.events.c.start_ts <= until.to_pydatetime(),
        )
        found = []
        for row in conn.execute(stmt.order_by(self.events.c.start_ts)).mappings():
            record = dict(row)
            record["start_ts"], record["end_ts"] = _utc(row["start_ts"]), _utc(row["end_ts"])
            if record.get("peak_ts") is not None:
                record["peak_ts"] = _utc(record["peak_ts"]).to_pydatetime()
            found.append(record)
        return found


@dataclass
class _Touched:
    """A stored row this run wrote to: whether it holds rows older than the run, and changed."""

    axis: str
    severity: str
    older: bool
    changed: bool
    suppressed: bool


class EventWriter:
    """Places the events of a run's windows among the stored ones (see :meth:`EventStore.session`).

    Counts are per stored row the run wrote to, so an episode that spans two windows of one
    run (chunks) is one event, as when the run scores them as one window.
    """

    def __init__(
        self,
        store: EventStore,
        conn: Connection,
        *,
        model_version: str,
        run_id: str,
        gap: pd.Timedelta,
        cooldown: pd.Timedelta,
    ) -> None:
        self._store = store
        self._events = store.events
        self._conn = conn
        self._model_version = model_version
        self._run_id = run_id
        self._gap = gap
        self._cooldown = cooldown
        self._now = dt.datetime.now(dt.timezone.utc)
        self._first: pd.Timestamp | None = None
        self._last: pd.Timestamp | None = None
        self._touched: dict[int, _Touched] = {}

    def add(
        self, events: pd.DataFrame, *, window_ts: pd.Series, previous_ts: Any, next_ts: Any
    ) -> None:
        """Store the events of one scored window (windows of a run come in time order).

        Args:
            events: from :meth:`ScoreResult.events`, merged but *without* cooldown (the
                cooldown is applied here, against stored events too, in time order).
            window_ts: the ``ts`` of every scored window row (to count samples without
                double counting).
            previous_ts: ``ts`` of the row just before the window (None when there is none).
            next_ts: ``ts`` of the row just after the window (None when there is none yet).

        Raises:
            DatabaseError: the database failed.
        """
        times = _utc_ns(window_ts)
        if not len(times):
            return
        if self._first is None:
            self._first = pd.Timestamp(times[0], tz="UTC")
        self._last = pd.Timestamp(times[-1], tz="UTC")
        edges = (
            None if previous_ts is None else _utc(previous_ts),
            None if next_ts is None else _utc(next_ts),
        )
        reach = max(self._gap, self._cooldown)
        since = (edges[0] or pd.Timestamp(times[0], tz="UTC")) - reach - _ONE_US
        until = (edges[1] or pd.Timestamp(times[-1], tz="UTC")) + self._gap + _ONE_US
        with database_errors(self._store.target, f"writing events to {self._events.fullname!r}"):
            stored: dict[tuple[str, str], list[dict[str, Any]]] = {}
            others = []
            for row in self._store._existing(self._conn, since, until):
                if row["severity"] == _DRIFT:
                    continue  # drift rows belong to the drift state (Scoring.drift)
                if row["model_version"] == self._model_version:
                    stored.setdefault((row["axis"], row["severity"]), []).append(row)
                else:
                    others.append(row)
            self._replace_other_versions(others, times, edges)
            if not len(events):
                return  # most windows of a quiet fleet (to_dict of an empty frame costs ~4 ms)
            for event in events.sort_values("start", kind="stable").to_dict("records"):
                rows = stored.setdefault((event["axis"], event["severity"]), [])
                self._place(event, rows, times, edges)

    @property
    def connection(self) -> Connection:
        """The run's connection, inside its transaction: tables written alongside the events
        (the drift state) commit or roll back with them."""
        return self._conn

    def advance_state(self, scored_until: Any) -> None:
        """Move the continuation point to ``scored_until``, unless the run lies beyond it.

        Levels before ``scored_until`` are final. The state moves there when the run's first
        sample is at or before the stored state (a later backfill range leaves it). The state
        belongs to the source table and asset, whatever version scored.

        Raises:
            DatabaseError: the database failed.
        """
        until = _utc(scored_until)
        first = until if self._first is None else self._first
        state = self._store.state
        key = (state.c.source_table == self._store.source_table) & (
            state.c.asset == self._store.asset
        )
        newest = None if self._last is None else _utc(self._last)
        with database_errors(self._store.target, f"writing the scoring state {state.fullname!r}"):
            stored = self._conn.execute(
                sa.select(state.c.scored_until, state.c.last_ts).where(key)
            ).one_or_none()
            if stored is not None:
                current, seen = _utc(stored[0]), None if stored[1] is None else _utc(stored[1])
                if current >= until or first > current:
                    until = current  # a backfill beyond the point, or behind it: it stays
                newest = seen if newest is None else newest if seen is None else max(seen, newest)
                if until == current and newest == seen:
                    return
            self._conn.execute(state.delete().where(key))
            self._conn.execute(
                state.insert().values(
                    source_table=self._store.source_table,
                    asset=self._store.asset,
                    scored_until=until.to_pydatetime(),
                    last_ts=None if newest is None else newest.to_pydatetime(),
                    model_version=self._model_version,
                    run_id=self._run_id,
                    updated_at=self._now,
                )
            )

    def _replace_other_versions(
        self,
        others: list[dict[str, Any]],
        times: np.ndarray,
        edges: tuple[pd.Timestamp | None, pd.Timestamp | None],
    ) -> None:
        """Take the rows ``times`` (UTC ns) of this window back from other versions' events
        (``others``: those stored near the window).

        An event of another version inside the rows is deleted; one reaching into them from
        before (after) ends at the row before the window (starts at the row after it); one
        spanning the whole window is split into those two parts. A cut event loses the
        samples it had inside the window (its part after the window, when split, gets its
        share of the rest by duration); its peak details stay those it had.
        """
        low, high = pd.Timestamp(times[0], tz="UTC"), pd.Timestamp(times[-1], tz="UTC")
        before = edges[0] if edges[0] is not None else low - _ONE_US
        after = edges[1] if edges[1] is not None else high + _ONE_US
        for row in others:
            start, end = row["start_ts"], row["end_ts"]
            if end < low or start > high:
                continue
            inside = int(
                np.searchsorted(times, min(end, high).value, side="right")
                - np.searchsorted(times, max(start, low).value, side="left")
            )
            left, right = start < low, end > high
            if not left and not right:
                self._conn.execute(self._events.delete().where(self._events.c.id == row["id"]))
                continue
            rest = max(1, int(row["samples"]) - inside)
            parts = (
                [(start, before), (after, end)]
                if left and right
                else [(start, before) if left else (after, end)]
            )
            durations = [max((b - a).total_seconds(), 0.0) for a, b in parts]
            total = sum(durations)
            shares = [
                max(1, round(rest * d / total)) if total else max(1, rest // len(parts))
                for d in durations
            ]
            if len(parts) == 2:
                shares[0] = max(1, rest - shares[1])
            for index, ((a, b), samples) in enumerate(zip(parts, shares, strict=True)):
                values = {
                    "start_ts": a.to_pydatetime(),
                    "end_ts": b.to_pydatetime(),
                    "duration_s": float((b - a).total_seconds()),
                    "samples": samples,
                    "updated_at": self._now,
                }
                if index == 0:
                    self._conn.execute(
                        self._events.update().where(self._events.c.id == row["id"]).values(**values)
                    )
                else:
                    copy = {k: v for k, v in row.items() if k != "id"}
                    copy["peak_ts"] = row.get("peak_ts")
                    self._conn.execute(self._events.insert().values(**{**copy, **values}))
            logger.info(
                "event %s of %s on %s (%s) cut back to the rows outside the window rescored by %s",
                row["id"],
                row["model_version"],
                row["axis"],
                row["severity"],
                self._model_version,
            )

    def summary(self) -> WriteSummary:
        """Stored rows this run inserted, extended, left unchanged or suppressed so far."""
        counts = {"inserted": 0, "extended": 0, "unchanged": 0, "suppressed": 0}
        kept: dict[str, dict[str, int]] = {}
        for row in self._touched.values():
            if row.suppressed:
                counts["suppressed"] += 1
                continue
            counts["extended" if row.changed else "unchanged" if row.older else "inserted"] += 1
            per_axis = kept.setdefault(row.axis, {})
            per_axis[row.severity] = per_axis.get(row.severity, 0) + 1
        return WriteSummary(**counts, kept=kept)

    def _place(
        self,
        event: dict[str, Any],
        stored: list[dict[str, Any]],
        times: np.ndarray,
        edges: tuple[pd.Timestamp | None, pd.Timestamp | None],
    ) -> None:
        gap, cooldown = self._gap, self._cooldown
        start, end = _utc(event["start"]), _utc(event["end"])
        # A stored row joins the run when it touches it (reaches the row next to the run: the
        # look-back/look-ahead row at a window edge, else the run's own edge, since the
        # neighbouring window row is not part of the run), or lies within the merge gap of
        # the run itself (not of that neighbouring row, which would widen the gap by a row).
        before = edges[0] if event["starts_at_frame_start"] and edges[0] is not None else start
        after = edges[1] if event["ends_at_frame_end"] and edges[1] is not None else end
        low, high = min(before, start - gap), max(after, end + gap)
        joined = [row for row in stored if row["start_ts"] <= high and row["end_ts"] >= low]
        if joined and joined[0]["start_ts"] <= start:
            suppressed = bool(joined[0]["suppressed"])  # the run's start decided it already
        else:
            first = min(start, *(r["start_ts"] for r in joined)) if joined else start
            kept = [r for r in stored if not r["suppressed"] and r["end_ts"] < first]
            suppressed = bool(
                kept and cooldown > pd.Timedelta(0) and first - kept[-1]["end_ts"] <= cooldown
            )
        if joined:
            self._fold(joined, stored, event, start, end, times, suppressed)
            return
        row = {
            "asset": self._store.asset,
            "source_table": self._store.source_table,
            "axis": event["axis"],
            "severity": event["severity"],
            "start_ts": start.to_pydatetime(),
            "end_ts": end.to_pydatetime(),
            "duration_s": float((end - start).total_seconds()),
            "samples": int(event["samples"]),
            **_peak_values(event),
            "suppressed": suppressed,
            "model_version": self._model_version,
            "run_id": self._run_id,
            "created_at": self._now,
            "updated_at": self._now,
        }
        new_id = self._conn.execute(self._events.insert().values(**row)).inserted_primary_key[0]
        stored.append({**row, "id": new_id, "start_ts": start, "end_ts": end})
        stored.sort(key=lambda r: r["start_ts"])
        self._touched[new_id] = _Touched(
            event["axis"], event["severity"], older=False, changed=False, suppressed=suppressed
        )

    def _fold(
        self,
        joined: list[dict[str, Any]],
        stored: list[dict[str, Any]],
        event: dict[str, Any],
        start: pd.Timestamp,
        end: pd.Timestamp,
        times: np.ndarray,
        suppressed: bool,
    ) -> None:
        """Make ``event`` and the stored rows it joins one row (the earliest one survives)."""
        samples = int(event["samples"])
        total = samples
        for row in joined:
            lo = max(row["start_ts"], start).value
            hi = min(row["end_ts"], end).value
            shared = (
                0
                if lo > hi
                else int(
                    np.searchsorted(times, hi, side="right")
                    - np.searchsorted(times, lo, side="left")
                )
            )
            total += int(row["samples"]) - min(shared, samples, int(row["samples"]))
        keep = joined[0]
        new_start = min(start, *(r["start_ts"] for r in joined))
        new_end = max(end, *(r["end_ts"] for r in joined))
        values = {
            "start_ts": new_start,
            "end_ts": new_end,
            "samples": max(total, samples),
            **_furthest([_peak_values(event), *joined]),
            "suppressed": suppressed,
        }
        # A row this run has not written to yet is older than the run; a row this run
        # inserted stays "inserted" however often later windows of the run extend it.
        older = changed = False
        for row in joined:
            seen = self._touched.pop(row["id"], None)
            older |= seen is None or seen.older
            changed |= seen is not None and seen.changed
        unchanged = len(joined) == 1 and all(keep[k] == v for k, v in values.items())
        self._touched[keep["id"]] = _Touched(
            event["axis"],
            event["severity"],
            older=older,
            changed=changed or (older and not unchanged),
            suppressed=suppressed,
        )
        if unchanged:
            return
        absorbed = [r["id"] for r in joined[1:]]
        if absorbed:
            self._conn.execute(self._events.delete().where(self._events.c.id.in_(absorbed)))
        update = {
            **values,
            "start_ts": new_start.to_pydatetime(),
            "end_ts": new_end.to_pydatetime(),
            "duration_s": float((new_end - new_start).total_seconds()),
            "run_id": self._run_id,
            "updated_at": self._now,
        }
        self._conn.execute(
            self._events.update().where(self._events.c.id == keep["id"]).values(**update)
        )
        stored[:] = [r for r in stored if r["id"] not in absorbed]
        keep.update({**update, "start_ts": new_start, "end_ts": new_end})
