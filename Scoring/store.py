"""The events table and the scoring state, in the same database as the samples.

``anomaly_events`` (name from ``events.table``) holds one row per event, unique on
(asset, source_table, axis, severity, start_ts, model_version). Writing is idempotent:

- an event whose start is already stored is updated, never duplicated; its end, samples and
  peak only grow (re-scoring an earlier, shorter range does not shrink it);
- an event that continues a stored one across a window start (its run begins at the window's
  first row and the stored event reaches the row before it) extends the stored event;
- with ``merge_gap_seconds`` an event starting within the gap after a stored event extends it;
  with ``cooldown_seconds`` an event starting within the cooldown after one is dropped.

``<events.table>_state`` remembers, per source table and model version, where scoring ended,
so ``score`` without ``--start`` continues from there. Events and state are written in one
transaction: all or nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from Database import DatabaseTarget, database_errors, split_table_name

__all__ = ["EventStore", "WriteSummary"]

logger = logging.getLogger(__name__)

_ONE_US = pd.Timedelta(microseconds=1)


@dataclass(frozen=True)
class WriteSummary:
    """How the events of one run landed: new rows, grown rows, unchanged and suppressed."""

    inserted: int
    extended: int
    unchanged: int
    suppressed: int


def _utc(value: Any) -> pd.Timestamp:
    """An event time (aware/naive datetime, or float epoch seconds) as a UTC Timestamp."""
    if isinstance(value, (int, float, np.floating, np.integer)):
        return pd.Timestamp(float(value), unit="s", tz="UTC")
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


class EventStore:
    """Reads and writes events and the scoring state for one source table.

    Args:
        engine: engine of the database holding the samples.
        target: the database (for password-safe error messages).
        table: events table name (``events.table``); the state table is ``<table>_state``.
        source_table: the scored samples table (``data.table``).
        asset: asset name stored with every event (empty for now).
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
        metadata = sa.MetaData(schema=schema)
        self.events = sa.Table(
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
        self.state = sa.Table(
            f"{name}_state"[:63],
            metadata,
            sa.Column("source_table", sa.String(255), primary_key=True),
            sa.Column("model_version", sa.String(64), primary_key=True),
            sa.Column("scored_until", sa.DateTime(timezone=True), nullable=False),
            sa.Column("run_id", sa.String(64), nullable=False),
            sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        )
        self._metadata = metadata

    def _exists(self) -> bool:
        inspector = sa.inspect(self.engine)
        return inspector.has_table(self.state.name, schema=self.state.schema)

    def scored_until(self, model_version: str) -> pd.Timestamp | None:
        """Where the last score run of this source table and version ended (None: never)."""
        with database_errors(self.target, "reading the scoring state"):
            if not self._exists():
                return None
            stmt = sa.select(self.state.c.scored_until).where(
                self.state.c.source_table == self.source_table,
                self.state.c.model_version == model_version,
            )
            with self.engine.connect() as conn:
                value = conn.execute(stmt).scalar_one_or_none()
        return None if value is None else _utc(value)

    def read_events(self, model_version: str | None = None) -> pd.DataFrame:
        """All stored events of this source table (optionally one version), by start time."""
        stmt = sa.select(self.events).where(self.events.c.source_table == self.source_table)
        if model_version is not None:
            stmt = stmt.where(self.events.c.model_version == model_version)
        with database_errors(self.target, "reading events"), self.engine.connect() as conn:
            if not sa.inspect(conn).has_table(self.events.name, schema=self.events.schema):
                return pd.DataFrame(columns=[c.name for c in self.events.columns])
            frame = pd.read_sql(stmt.order_by(self.events.c.start_ts, self.events.c.id), conn)
        for column in ("start_ts", "end_ts", "created_at", "updated_at"):
            frame[column] = frame[column].map(_utc)
        return frame

    def _existing(
        self, conn: Connection, model_version: str, since: pd.Timestamp
    ) -> dict[tuple[str, str], list[dict[str, Any]]]:
        """Stored events of this table and version ending at or after ``since``."""
        stmt = sa.select(self.events).where(
            self.events.c.asset == self.asset,
            self.events.c.source_table == self.source_table,
            self.events.c.model_version == model_version,
            self.events.c.end_ts >= since.to_pydatetime(),
        )
        grouped: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for row in conn.execute(stmt.order_by(self.events.c.start_ts)).mappings():
            record = dict(row)
            record["start_ts"], record["end_ts"] = _utc(row["start_ts"]), _utc(row["end_ts"])
            grouped.setdefault((row["axis"], row["severity"]), []).append(record)
        return grouped

    def write(
        self,
        events: pd.DataFrame,
        *,
        window_ts: pd.Series,
        previous_ts: Any,
        model_version: str,
        run_id: str,
        scored_until: Any,
        merge_gap_seconds: float = 0.0,
        cooldown_seconds: float = 0.0,
    ) -> WriteSummary:
        """Store the events of one scored window and move the scoring state, in one transaction.

        Args:
            events: from :meth:`ScoreResult.events` (columns of ``EVENT_COLUMNS``).
            window_ts: the ``ts`` of every scored window row (to count a grown event's new rows).
            previous_ts: ``ts`` of the row just before the window (None when there is none).
            model_version: registry version used.
            run_id: this run's id.
            scored_until: the window's end; the state keeps the later of it and the stored one.
            merge_gap_seconds, cooldown_seconds: as in ``events.*`` of the config.

        Returns:
            Counts of inserted, extended, unchanged and suppressed events.
        """
        now = dt.datetime.now(dt.timezone.utc)
        times = np.array([_utc(t).value for t in window_ts], dtype="int64")
        previous = None if previous_ts is None else _utc(previous_ts)
        reach = pd.Timedelta(seconds=max(merge_gap_seconds, cooldown_seconds))
        counts = {"inserted": 0, "extended": 0, "unchanged": 0, "suppressed": 0}
        action = f"writing events to {self.events.fullname!r}"
        with database_errors(self.target, action), self.engine.begin() as conn:
            self._metadata.create_all(conn, checkfirst=True)
            first = _utc(window_ts.iloc[0]) if len(window_ts) else _utc(scored_until)
            since = (previous or first) - reach - _ONE_US
            stored = self._existing(conn, model_version, since)
            ordered = events.sort_values("start", kind="stable") if len(events) else events
            for event in ordered.to_dict("records"):
                key = (event["axis"], event["severity"])
                outcome = self._place(
                    conn,
                    event,
                    stored.setdefault(key, []),
                    times,
                    previous,
                    model_version=model_version,
                    run_id=run_id,
                    now=now,
                    merge_gap=pd.Timedelta(seconds=merge_gap_seconds),
                    cooldown=pd.Timedelta(seconds=cooldown_seconds),
                )
                counts[outcome] += 1
            self._move_state(conn, model_version, _utc(scored_until), run_id, now)
        logger.info("events written to %s: %s", self.events.fullname, counts)
        return WriteSummary(**counts)

    def _place(
        self,
        conn: Connection,
        event: dict[str, Any],
        stored: list[dict[str, Any]],
        times: np.ndarray,
        previous: pd.Timestamp | None,
        *,
        model_version: str,
        run_id: str,
        now: dt.datetime,
        merge_gap: pd.Timedelta,
        cooldown: pd.Timedelta,
    ) -> str:
        start, end = _utc(event["start"]), _utc(event["end"])
        same = next((row for row in stored if row["start_ts"] == start), None)
        before = [row for row in stored if row["start_ts"] < start]
        last = before[-1] if before else None
        continues = (
            last is not None
            and bool(event["starts_at_frame_start"])
            and previous is not None
            and last["end_ts"] >= previous
        )
        merges = (
            last is not None
            and merge_gap > pd.Timedelta(0)
            and (start - last["end_ts"] <= merge_gap)
        )
        if same is None and (continues or merges or (last is not None and last["end_ts"] >= start)):
            return self._grow(conn, last, event, start, end, times, run_id, now)
        if same is not None:
            return self._grow(conn, same, event, start, end, times, run_id, now)
        if last is not None and cooldown > pd.Timedelta(0) and start - last["end_ts"] <= cooldown:
            return "suppressed"
        row = {
            "asset": self.asset,
            "source_table": self.source_table,
            "axis": event["axis"],
            "severity": event["severity"],
            "start_ts": start.to_pydatetime(),
            "end_ts": end.to_pydatetime(),
            "duration_s": float((end - start).total_seconds()),
            "samples": int(event["samples"]),
            "peak_residual": float(event["peak_residual"]),
            "threshold": float(event["threshold"]),
            "model_version": model_version,
            "run_id": run_id,
            "created_at": now,
            "updated_at": now,
        }
        conn.execute(self.events.insert().values(**row))
        stored.append({**row, "start_ts": start, "end_ts": end})
        stored.sort(key=lambda r: r["start_ts"])
        return "inserted"

    def _grow(
        self,
        conn: Connection,
        row: dict[str, Any],
        event: dict[str, Any],
        start: pd.Timestamp,
        end: pd.Timestamp,
        times: np.ndarray,
        run_id: str,
        now: dt.datetime,
    ) -> str:
        """Extend a stored event by the rows of ``event`` after its current end (if any)."""
        if end <= row["end_ts"] and float(event["peak_residual"]) <= row["peak_residual"]:
            return "unchanged"
        if start == row["start_ts"]:
            samples = max(int(row["samples"]), int(event["samples"]))
        elif row["end_ts"] < start:  # continued or merged: the gap rows are not event samples
            samples = int(row["samples"]) + int(event["samples"])
        else:  # overlaps what is stored: count only the rows after the stored end
            lo = np.searchsorted(times, row["end_ts"].value, side="right")
            hi = np.searchsorted(times, end.value, side="right")
            samples = int(row["samples"]) + max(0, int(hi - lo))
        new_end = max(end, row["end_ts"])
        values = {
            "end_ts": new_end.to_pydatetime(),
            "duration_s": float((new_end - row["start_ts"]).total_seconds()),
            "samples": samples,
            "peak_residual": max(float(row["peak_residual"]), float(event["peak_residual"])),
            "run_id": run_id,
            "updated_at": now,
        }
        conn.execute(self.events.update().where(self.events.c.id == row["id"]).values(**values))
        row.update({**values, "end_ts": new_end})
        return "extended"

    def _move_state(
        self,
        conn: Connection,
        model_version: str,
        until: pd.Timestamp,
        run_id: str,
        now: dt.datetime,
    ) -> None:
        key = (self.state.c.source_table == self.source_table) & (
            self.state.c.model_version == model_version
        )
        current = conn.execute(sa.select(self.state.c.scored_until).where(key)).scalar()
        if current is not None and _utc(current) >= until:
            return
        conn.execute(self.state.delete().where(key))
        conn.execute(
            self.state.insert().values(
                source_table=self.source_table,
                model_version=model_version,
                scored_until=until.to_pydatetime(),
                run_id=run_id,
                updated_at=now,
            )
        )
