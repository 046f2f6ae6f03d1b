"""Operator feedback on events: verdicts that survive re-scoring and version changes.

Rows of the events table come and go: re-scoring folds and extends them, and another version
scoring the same range replaces them (new ids). A verdict is therefore kept in a table of its
own, ``<events.table>_feedback``, keyed by what stays stable: the source table, asset, axis and
severity of the event and its window ``[start_ts, end_ts]`` when it was labelled.

- An event carries the verdict of the newest feedback row of its source table, asset, axis and
  severity whose window overlaps its own (both ends inclusive); none: unlabelled.
- Labelling an event replaces every verdict of that key overlapping it (one verdict per
  incident), so labelling twice never duplicates and the last word wins.
- Verdicts: ``confirmed`` (a real incident), ``false-positive`` (no incident: an alarm to
  avoid), ``ignore`` (real but uninteresting, e.g. a test run: neither counted nor learned).
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections.abc import Sequence

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from Database import DatabaseTarget, database_errors, split_table_name, write_transaction

from .errors import LabelsError

__all__ = ["FEEDBACK_COLUMNS", "VERDICTS", "FeedbackStore", "feedback_table_name", "match_verdicts"]

logger = logging.getLogger(__name__)

VERDICTS = ("confirmed", "false-positive", "ignore")
"""What an operator can say about an event."""

KEY_COLUMNS = ("source_table", "asset", "axis", "severity")
"""An event and a verdict can match only when these are equal (then their windows must overlap)."""

FEEDBACK_COLUMNS = (
    *KEY_COLUMNS,
    "start_ts",
    "end_ts",
    "verdict",
    "note",
    "event_id",
    "model_version",
    "updated_at",
)
"""The columns :meth:`FeedbackStore.read` returns."""


def feedback_table_name(events_table: str) -> str:
    """``<events.table>_feedback`` (same schema), cut to PostgreSQL's 63 characters."""
    schema, name = split_table_name(events_table)
    table = f"{name}_feedback"[:63]
    return table if schema is None else f"{schema}.{table}"


def match_verdicts(events: pd.DataFrame, feedback: pd.DataFrame) -> pd.DataFrame:
    """The verdict and note of each event (see the module docstring), vectorised.

    Args:
        events: columns ``id``, ``source_table``, ``asset``, ``axis``, ``severity``,
            ``start_ts``, ``end_ts`` (UTC).
        feedback: as :meth:`FeedbackStore.read` returns.

    Returns:
        Indexed like ``events``: ``verdict`` and ``note`` (None where unlabelled).
    """
    result = pd.DataFrame({"verdict": None, "note": None}, index=events.index, dtype=object)
    if events.empty or feedback.empty:
        return result
    left = events[[*KEY_COLUMNS, "start_ts", "end_ts"]].assign(_row=events.index)
    right = feedback[[*KEY_COLUMNS, "start_ts", "end_ts", "verdict", "note", "updated_at"]]
    pairs = left.merge(right, on=list(KEY_COLUMNS), suffixes=("", "_fb"))
    pairs = pairs[
        (pairs["start_ts"] <= pairs["end_ts_fb"]) & (pairs["start_ts_fb"] <= pairs["end_ts"])
    ]
    newest = pairs.sort_values("updated_at", kind="stable").drop_duplicates("_row", keep="last")
    result.loc[newest["_row"].to_numpy(), ["verdict", "note"]] = newest[
        ["verdict", "note"]
    ].to_numpy()
    result = result.astype(object).where(result.notna(), None)
    return result


def _utc(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values, utc=True)


class FeedbackStore:
    """The feedback table of one events table.

    Args:
        engine: engine of the database holding the events.
        target: the database (for password-safe error messages).
        events_table: ``events.table``; the verdicts live in :func:`feedback_table_name` of it.
    """

    def __init__(self, engine: Engine, target: DatabaseTarget, events_table: str) -> None:
        self.engine = engine
        self.target = target
        self.table = _feedback_table(*split_table_name(feedback_table_name(events_table)))

    def read(self, source_table: str | None = None, asset: str | None = None) -> pd.DataFrame:
        """Stored verdicts (of one source table and asset when given), oldest update first."""
        stmt = sa.select(*(self.table.c[c] for c in FEEDBACK_COLUMNS))
        if source_table is not None:
            stmt = stmt.where(self.table.c.source_table == source_table)
        if asset is not None:
            stmt = stmt.where(self.table.c.asset == asset)
        with database_errors(self.target, "reading event feedback"), self.engine.connect() as c:
            if not sa.inspect(c).has_table(self.table.name, schema=self.table.schema):
                return _empty()
            rows = c.execute(stmt.order_by(self.table.c.updated_at, self.table.c.id)).fetchall()
        frame = pd.DataFrame(rows, columns=list(FEEDBACK_COLUMNS))
        if frame.empty:
            return _empty()
        for column in ("start_ts", "end_ts", "updated_at"):
            frame[column] = _utc(frame[column])
        return frame

    def label(self, events: pd.DataFrame, verdict: str, note: str | None = None) -> int:
        """Give ``events`` the verdict ``verdict`` (replacing overlapping verdicts); one
        transaction.

        Args:
            events: rows of the events table (``id``, the key columns, ``start_ts``,
                ``end_ts``, ``model_version``).
            verdict: one of :data:`VERDICTS`.
            note: free text kept with the verdict.

        Returns:
            The verdicts written (one per event).

        Raises:
            LabelsError: an unknown verdict.
            DatabaseError: the database failed (nothing is written).
        """
        if verdict not in VERDICTS:
            raise LabelsError(
                f"verdict {verdict!r} is not one of {', '.join(VERDICTS)}; label with "
                "--as confirmed, --as false-positive or --as ignore"
            )
        now = dt.datetime.now(dt.timezone.utc)
        rows = [
            {
                **{key: str(getattr(event, key)) for key in KEY_COLUMNS},
                "start_ts": pd.Timestamp(event.start_ts).to_pydatetime(),
                "end_ts": pd.Timestamp(event.end_ts).to_pydatetime(),
                "verdict": verdict,
                "note": note,
                "event_id": int(event.id),
                "model_version": str(event.model_version),
                "updated_at": now,
            }
            for event in events.itertuples(index=False)
        ]
        table = self.table
        with write_transaction(self.engine, self.target, f"writing {table.fullname}") as conn:
            table.create(conn, checkfirst=True)
            for row in rows:
                conn.execute(
                    table.delete().where(
                        *(table.c[key] == row[key] for key in KEY_COLUMNS),
                        table.c.start_ts <= row["end_ts"],
                        table.c.end_ts >= row["start_ts"],
                    )
                )
                conn.execute(table.insert().values(**row))
        logger.info("%d event(s) labelled %s in %s", len(rows), verdict, table.fullname)
        return len(rows)

    def verdict_windows(
        self,
        source_table: str,
        asset: str,
        verdicts: Sequence[str] = ("confirmed",),
        *,
        stored: pd.DataFrame | None = None,
    ) -> pd.DataFrame:
        """Windows of one source table and asset with one of ``verdicts`` (``start_ts``,
        ``end_ts``, ``axis``, ``severity``, ``verdict``), by start.

        ``stored``: what :meth:`read` gave for ``source_table`` (every asset), read once for
        many assets (a fleet task); None: this asset's verdicts are read now.
        """
        if stored is None:
            frame = self.read(source_table, asset)
        elif stored.empty:  # no verdicts at all: no filter (~0.15 ms a fleet asset)
            frame = stored
        else:
            frame = stored[stored["asset"] == asset]
        if frame.empty:  # most assets: no verdicts, the frame made once (as read() gives it)
            return _NO_WINDOWS.copy()
        return _windows(frame, verdicts)


def _windows(frame: pd.DataFrame, verdicts: Sequence[str]) -> pd.DataFrame:
    """The windows of ``frame`` (verdicts as :meth:`FeedbackStore.read` gives them) with one
    of ``verdicts``, by start."""
    frame = frame[frame["verdict"].isin(list(verdicts))]
    columns = ["start_ts", "end_ts", "axis", "severity", "verdict"]
    return frame[columns].sort_values("start_ts", kind="stable").reset_index(drop=True)


@functools.lru_cache(maxsize=64)
def _feedback_table(schema: str | None, name: str) -> sa.Table:
    """The feedback table's definition, built once per name (a fleet opens a store per
    asset; building the table costs more than filtering its verdicts)."""
    return sa.Table(
        name,
        sa.MetaData(schema=schema),
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("source_table", sa.String(255), nullable=False),
        sa.Column("asset", sa.String(128), nullable=False),
        sa.Column("axis", sa.String(128), nullable=False),
        sa.Column("severity", sa.String(8), nullable=False),
        sa.Column("start_ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("verdict", sa.String(16), nullable=False),
        sa.Column("note", sa.Text, nullable=True),
        sa.Column("event_id", sa.Integer, nullable=True),
        sa.Column("model_version", sa.String(64), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint(*KEY_COLUMNS, "start_ts", name=f"uq_{name}"[:63]),
    )


def _empty() -> pd.DataFrame:
    """No verdicts, in the columns and types of :meth:`FeedbackStore.read` (a copy: building
    it costs more than reading a small table, and a fleet asks once per asset)."""
    return _EMPTY.copy()


def _build_empty() -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series(dtype=object) for c in FEEDBACK_COLUMNS})
    for column in ("start_ts", "end_ts", "updated_at"):
        frame[column] = pd.Series(dtype="datetime64[ns, UTC]")
    return frame


_EMPTY = _build_empty()
_NO_WINDOWS = _windows(_EMPTY, VERDICTS)
"""What :meth:`FeedbackStore.verdict_windows` gives for no verdicts (a copy each time)."""
