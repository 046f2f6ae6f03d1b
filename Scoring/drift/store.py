"""The drift state table and the ``drift`` events, written in a score run's transaction.

The state table (``drift.table``, default ``<events.table>_drift``) has one row per (source
table, asset, axis): ``cusum_pos``, ``cusum_neg``, ``ewma_value``, ``is_drifting``,
``drift_direction`` (``up``/``down``), ``drifting_since``, the open block (``open_block``,
``open_first_s``, ``open_last_s``, ``open_sum``, ``open_count``), ``last_sample_s`` (epoch
seconds of the newest folded sample: later runs fold only what follows), ``model_version``,
``run_id``, ``updated_at``. A drift start becomes a row of the events table with severity
``drift`` (start and end of the drifting blocks, the samples in them, the strongest block's
mean standardised residual as ``peak_residual``, ``cusum_h`` as ``threshold``, its strength as
``ratio``, ``upper``/``lower`` as ``side``); later runs extend it until the drift ends.
``<drift.table>_levels`` keeps the sum and count of the raw residuals per block, version and
axis, for the time-to-threshold trend across runs (:func:`levels_table`).
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from Database import DatabaseTarget, database_errors, split_table_name

from .._lock import TABLES_LOCK, locked_transaction
from .tracker import AxisDriftState, DriftBaselines, DriftEpisode, DriftTracker

__all__ = [
    "DRIFT_SEVERITY",
    "DriftStateStore",
    "drift_table",
    "levels_table",
    "read_drift_state",
]

logger = logging.getLogger(__name__)

DRIFT_SEVERITY = "drift"
"""The ``severity`` of drift rows in the events table."""

STATE_COLUMNS = (
    "source_table",
    "asset",
    "axis",
    "is_drifting",
    "drift_direction",
    "drifting_since",
    "cusum_pos",
    "cusum_neg",
    "ewma_value",
    "model_version",
    "updated_at",
)
"""What :func:`read_drift_state` returns, in this order."""

_CREATED: set[tuple[str, str | None, str]] = set()


@functools.lru_cache(maxsize=64)
def drift_table(table: str) -> sa.Table:
    """The SQLAlchemy definition of the drift state table ``table`` (``[schema.]name``), one
    per process (statements compiled once for every asset's store).

    Raises:
        UnsafeIdentifierError: the name is not a safe identifier.
    """
    schema, name = split_table_name(table)
    return sa.Table(
        name,
        sa.MetaData(schema=schema),
        sa.Column("source_table", sa.String(255), primary_key=True),
        sa.Column("asset", sa.String(128), primary_key=True),
        sa.Column("axis", sa.String(128), primary_key=True),
        sa.Column("cusum_pos", sa.Float(53), nullable=False),
        sa.Column("cusum_neg", sa.Float(53), nullable=False),
        sa.Column("ewma_value", sa.Float(53), nullable=False),
        sa.Column("is_drifting", sa.Boolean, nullable=False),
        sa.Column("drift_direction", sa.String(4), nullable=True),
        sa.Column("drifting_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("open_block", sa.BigInteger, nullable=True),
        sa.Column("open_first_s", sa.Float(53), nullable=True),
        sa.Column("open_last_s", sa.Float(53), nullable=True),
        sa.Column("open_sum", sa.Float(53), nullable=False),
        sa.Column("open_count", sa.Integer, nullable=False),
        sa.Column("last_sample_s", sa.Float(53), nullable=True),
        sa.Column("model_version", sa.String(64), nullable=False),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


@functools.lru_cache(maxsize=64)
def levels_table(table: str) -> sa.Table:
    """The per-block residual levels of the drift state table ``table``: ``<name>_levels``,
    one row per (source table, asset, axis, model version, block) with the sum and count of
    its residuals (what the time-to-threshold trend reads across runs).

    Raises:
        UnsafeIdentifierError: the name is not a safe identifier.
    """
    schema, name = split_table_name(table)
    return sa.Table(
        f"{name}_levels"[:63],
        sa.MetaData(schema=schema),
        sa.Column("source_table", sa.String(255), primary_key=True),
        sa.Column("asset", sa.String(128), primary_key=True),
        sa.Column("axis", sa.String(128), primary_key=True),
        sa.Column("model_version", sa.String(64), primary_key=True),
        sa.Column("block", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("sum", sa.Float(53), nullable=False),
        sa.Column("count", sa.BigInteger, nullable=False),
    )


def levels_by_axis(
    rows: Iterable[Any],
) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Rows ``(axis, block, sum, count)`` of a levels table, as axis → (block ids, sums,
    counts) in the rows' order, axes sorted (what :class:`Scoring.trend.LevelHistory` takes)."""
    by_axis: dict[str, tuple[list[int], list[float], list[int]]] = {}
    for axis, block, total, count in rows:
        blocks, sums, counts = by_axis.setdefault(str(axis), ([], [], []))
        blocks.append(block)
        sums.append(total)
        counts.append(count)
    return {
        axis: (
            np.array(blocks, dtype=np.int64),
            np.array(sums, dtype=np.float64),
            np.array(counts, dtype=np.int64),
        )
        for axis, (blocks, sums, counts) in sorted(by_axis.items())
    }


def _stamp(seconds: float | None) -> dt.datetime | None:
    """Epoch seconds as a UTC datetime at the database's microsecond resolution."""
    if seconds is None or not np.isfinite(seconds):
        return None
    return pd.Timestamp(seconds, unit="s", tz="UTC").round("us").to_pydatetime()


def _seconds(value: Any) -> float | None:
    if value is None:
        return None
    stamp = pd.Timestamp(value)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp.timestamp()


class DriftStateStore:
    """Loads and saves the drift state of one (source table, asset) on a run's connection.

    Args:
        table: the drift state table name (``drift.table``).
        events: the events table (``EventStore.events``), where drift episodes are written.
        source_table: the scored samples table.
        asset: the asset (empty: the table is one machine).
    """

    def __init__(self, table: str, events: sa.Table, source_table: str, asset: str = "") -> None:
        self.state = drift_table(table)
        self.levels = levels_table(table)
        self.events = events
        self.source_table = source_table
        self.asset = asset

    def _key(self) -> Any:
        return (self.state.c.source_table == self.source_table) & (self.state.c.asset == self.asset)

    def _create(self, conn: Connection) -> None:
        key = (conn.engine.url.render_as_string(), self.state.schema, self.state.name)
        if key not in _CREATED:
            self.state.create(conn, checkfirst=True)
            self.levels.create(conn, checkfirst=True)
            _CREATED.add(key)

    def prepare(self, engine: Engine) -> None:
        """Create the state and levels tables (once per process) in a transaction of its own,
        under the tables lock of the events store: score runs of different assets start
        together, and two CREATE TABLE IF NOT EXISTS at once collide on PostgreSQL. Call it
        before the score run's transaction begins (on SQLite that transaction holds the
        database's write lock)."""
        key = (engine.url.render_as_string(), self.state.schema, self.state.name)
        if key in _CREATED:
            return
        with (
            engine.connect() as conn,
            locked_transaction(conn, self.state.schema, self.state.name, TABLES_LOCK) as locked,
        ):
            self._create(locked)

    def load(self, conn: Connection, baselines: DriftBaselines, model_version: str) -> DriftTracker:
        """The stored state as a tracker; reset (charts and drifts) when another version wrote
        it, since its values are in that version's residual σ."""
        self._create(conn)
        rows = conn.execute(sa.select(self.state).where(self._key())).mappings().all()
        tracker = DriftTracker(baselines)
        if not rows:
            return tracker
        first = rows[0]
        tracker.last_sample = first["last_sample_s"]
        if first["model_version"] != model_version:
            logger.info(
                "drift state of %s%s was written by %s: charts restart with %s's baselines",
                self.source_table,
                f" asset {self.asset}" if self.asset else "",
                first["model_version"],
                model_version,
            )
            return tracker
        tracker.open_block = first["open_block"]
        tracker.open_first, tracker.open_last = first["open_first_s"], first["open_last_s"]
        for row in rows:
            if row["axis"] not in tracker.axes:
                continue
            tracker.axes[row["axis"]] = AxisDriftState(
                cusum_pos=row["cusum_pos"],
                cusum_neg=row["cusum_neg"],
                ewma_value=row["ewma_value"],
                is_drifting=bool(row["is_drifting"]),
                drift_direction=row["drift_direction"],
                drifting_since=_seconds(row["drifting_since"]),
                open_sum=row["open_sum"],
                open_count=row["open_count"],
            )
        return tracker

    def _levels_key(self, model_version: str) -> Any:
        levels = self.levels.c
        return (
            (levels.source_table == self.source_table)
            & (levels.asset == self.asset)
            & (levels.model_version == model_version)
        )

    def load_levels(
        self, conn: Connection, model_version: str, since_block: int
    ) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Axis → (block ids, sums, counts) stored by earlier runs of ``model_version`` from
        block ``since_block`` on."""
        self._create(conn)
        levels = self.levels.c
        stmt = sa.select(levels.axis, levels.block, levels["sum"], levels["count"]).where(
            self._levels_key(model_version), levels.block >= since_block
        )
        return levels_by_axis(conn.execute(stmt))

    def save_levels(
        self,
        conn: Connection,
        model_version: str,
        added: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
        *,
        known: tuple[int, dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]] | None = None,
    ) -> None:
        """Add this run's block sums and counts (axis → block ids, sums, counts) to the stored
        ones: one read, one delete and one insert for all axes (not three per axis).

        ``known``: ``(since, blocks)`` as :meth:`load_levels` gave them earlier in the same
        transaction; when every added block is from ``since`` on, they are the stored rows
        and the read is spared.
        """
        levels = self.levels.c
        axes = {axis: blocks for axis, blocks in added.items() if len(blocks[0])}
        if not axes:
            return
        ids = sorted({int(i) for blocks in axes.values() for i in blocks[0]})
        key = self._levels_key(model_version) & levels.axis.in_(list(axes)) & levels.block.in_(ids)
        # Rows of these blocks and axes, whether or not this run adds to them: all are
        # deleted and written back, the ones it adds to with its sums added.
        merged: dict[tuple[str, int], tuple[float, int]]
        if known is not None and ids[0] >= known[0]:
            wanted = set(ids)
            merged = {}
            for axis in axes:
                stored = known[1].get(str(axis))
                if stored is None:
                    continue
                for block, total, count in zip(*(v.tolist() for v in stored), strict=True):
                    if block in wanted:
                        merged[(str(axis), int(block))] = (float(total), int(count))
        else:
            read = sa.select(levels.axis, levels.block, levels["sum"], levels["count"])
            merged = {
                (str(axis), int(block)): (float(total), int(count))
                for axis, block, total, count in conn.execute(read.where(key))
            }
        for axis, (blocks, sums, counts) in axes.items():
            for block, total, count in zip(
                blocks.tolist(), sums.tolist(), counts.tolist(), strict=True
            ):
                before = merged.get((axis, int(block)), (0.0, 0))
                merged[(axis, int(block))] = (before[0] + float(total), before[1] + int(count))
        conn.execute(self.levels.delete().where(key))
        conn.execute(
            self.levels.insert(),
            [
                {
                    "source_table": self.source_table,
                    "asset": self.asset,
                    "axis": axis,
                    "model_version": model_version,
                    "block": block,
                    "sum": total,
                    "count": count,
                }
                for (axis, block), (total, count) in merged.items()
            ],
        )

    def save(self, conn: Connection, tracker: DriftTracker, model_version: str, run_id: str) -> int:
        """Replace the state rows and write the episodes; returns the drift events started."""
        now = dt.datetime.now(dt.timezone.utc)
        conn.execute(self.state.delete().where(self._key()))
        rows = [
            {
                "source_table": self.source_table,
                "asset": self.asset,
                "axis": axis,
                "cusum_pos": state.cusum_pos,
                "cusum_neg": state.cusum_neg,
                "ewma_value": state.ewma_value,
                "is_drifting": state.is_drifting,
                "drift_direction": state.drift_direction,
                "drifting_since": _stamp(state.drifting_since),
                "open_block": tracker.open_block,
                "open_first_s": tracker.open_first,
                "open_last_s": tracker.open_last,
                "open_sum": state.open_sum,
                "open_count": state.open_count,
                "last_sample_s": tracker.last_sample,
                "model_version": model_version,
                "run_id": run_id,
                "updated_at": now,
            }
            for axis, state in tracker.axes.items()
        ]
        if rows:
            conn.execute(self.state.insert(), rows)
        started = 0
        for episode in tracker.episodes:
            started += self._write_episode(conn, episode, tracker, model_version, run_id, now)
        return started

    def _write_episode(
        self,
        conn: Connection,
        episode: DriftEpisode,
        tracker: DriftTracker,
        model_version: str,
        run_id: str,
        now: dt.datetime,
    ) -> int:
        events = self.events
        start = _stamp(episode.start)
        values = {
            "end_ts": _stamp(episode.end),
            "peak_residual": episode.peak_z,
            "peak_ts": _stamp(episode.peak_ts),
            "ratio": episode.peak_strength,
            "run_id": run_id,
            "updated_at": now,
        }
        if episode.stored:
            stored = (
                conn.execute(
                    sa.select(events.c.id, events.c.samples, events.c.ratio).where(
                        events.c.asset == self.asset,
                        events.c.source_table == self.source_table,
                        events.c.axis == episode.axis,
                        events.c.severity == DRIFT_SEVERITY,
                        events.c.start_ts == start,
                    )
                )
                .mappings()
                .first()
            )
            if stored is not None:
                if stored["ratio"] is not None and stored["ratio"] >= episode.peak_strength:
                    values = {k: v for k, v in values.items() if k not in _PEAK}
                end = values["end_ts"]
                assert start is not None and end is not None
                conn.execute(
                    events.update()
                    .where(events.c.id == stored["id"])
                    .values(
                        **values,
                        samples=int(stored["samples"]) + episode.samples,
                        duration_s=(end - start).total_seconds(),
                    )
                )
                return 0
        end = values["end_ts"]
        assert start is not None and end is not None
        conn.execute(
            events.insert().values(
                asset=self.asset,
                source_table=self.source_table,
                axis=episode.axis,
                severity=DRIFT_SEVERITY,
                start_ts=start,
                duration_s=(end - start).total_seconds(),
                samples=episode.samples,
                threshold=tracker.params.cusum_h,
                suppressed=False,
                side="upper" if episode.direction == "up" else "lower",
                model_version=model_version,
                created_at=now,
                **values,
            )
        )
        return 0 if episode.stored else 1


_PEAK = ("peak_residual", "peak_ts", "ratio")


def read_drift_state(
    engine: Engine,
    table: str,
    *,
    source_table: str | None = None,
    asset: str | None = None,
    target: DatabaseTarget | None = None,
) -> pd.DataFrame:
    """The drift state rows (columns :data:`STATE_COLUMNS`), by source table, asset and axis.

    Args:
        engine: engine of the data's database.
        table: the drift state table (``drift.table``, default ``<events.table>_drift``).
        source_table, asset: only this source table / asset (None: all).
        target: the database, for password-safe error messages (default: from ``engine``).

    Returns:
        An empty frame with those columns when the table does not exist yet (nothing scored).

    Raises:
        UnsafeIdentifierError: ``table`` is not a safe identifier.
        DatabaseError: the database failed.
    """
    state = drift_table(table)
    stmt = sa.select(*(state.c[name] for name in STATE_COLUMNS))
    if source_table is not None:
        stmt = stmt.where(state.c.source_table == source_table)
    if asset is not None:
        stmt = stmt.where(state.c.asset == asset)
    stmt = stmt.order_by(state.c.source_table, state.c.asset, state.c.axis)
    where = target or DatabaseTarget(engine.url, embedded=False)
    with database_errors(where, f"reading the drift state {table!r}"), engine.connect() as conn:
        if not sa.inspect(conn).has_table(state.name, schema=state.schema):
            return pd.DataFrame(columns=list(STATE_COLUMNS))
        frame = pd.DataFrame(conn.execute(stmt).mappings().all(), columns=list(STATE_COLUMNS))
    for column in ("drifting_since", "updated_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    frame["is_drifting"] = frame["is_drifting"].astype(bool)
    # A NULL next to strings reads back as NaN (pandas infers a string column): None, as stored
    direction = frame["drift_direction"].astype(object)
    frame["drift_direction"] = direction.where(direction.notna(), None)
    return frame
