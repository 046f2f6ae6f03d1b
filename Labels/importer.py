"""Importing failure windows from a CSV into the labels table (``events import``).

The CSV has a header and the columns ``start`` and ``end`` (or ``start_ts`` and ``end_ts``;
ISO-8601, UTC when no zone is given), and optionally ``asset``, ``axis``, ``kind`` and
``severity``. Rows go into the labels table (created with :data:`LABEL_COLUMNS` and the asset
column when missing), all in one transaction; a window already there (same start, end, axis and
asset) is skipped, so importing the same file twice adds nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from Database import DatabaseTarget, split_table_name, validate_identifier, write_transaction

from .errors import LabelsError
from .store import LABEL_COLUMNS

__all__ = ["ImportedLabels", "import_label_csv"]

logger = logging.getLogger(__name__)

_ALIASES = {"start": "start_ts", "end": "end_ts"}
_TEXT_COLUMNS = ("axis", "kind", "severity")


@dataclass(frozen=True)
class ImportedLabels:
    """What an import did: rows added, rows already in the table, the table."""

    table: str
    rows: int
    skipped: int


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (OSError, pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise LabelsError(
            f"label CSV {path} cannot be read ({exc}); give a UTF-8 CSV with a header row "
            "start,end[,asset,axis,kind,severity]"
        ) from None
    frame = frame.rename(columns=lambda c: _ALIASES.get(c.strip().lower(), c.strip().lower()))
    missing = [c for c in ("start_ts", "end_ts") if c not in frame]
    if missing:
        raise LabelsError(
            f"label CSV {path} has no column(s) {missing}; its columns are {list(frame.columns)}; "
            "it needs start and end (asset, axis, kind and severity are optional)"
        )
    return frame


def _parsed(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    """UTC bounds and text columns (empty text = NULL); bad rows named by CSV line."""
    out = pd.DataFrame(index=frame.index)
    for column in ("start_ts", "end_ts"):
        times = pd.to_datetime(
            frame[column].str.strip(), utc=True, errors="coerce", format="ISO8601"
        )
        bad = times.isna()
        if bad.any():
            line = int(bad.to_numpy().nonzero()[0][0]) + 2
            raise LabelsError(
                f"label CSV {path}, line {line}: {column.removesuffix('_ts')} "
                f"{frame[column].iloc[line - 2]!r} is not an ISO-8601 time "
                "(e.g. 2026-01-10T14:00:00Z); fix or delete that row"
            )
        out[column] = times
    backwards = out["end_ts"] < out["start_ts"]
    if backwards.any():
        line = int(backwards.to_numpy().nonzero()[0][0]) + 2
        raise LabelsError(f"label CSV {path}, line {line}: end is before start; swap them")
    for column in ("asset", *_TEXT_COLUMNS):
        values = frame[column].str.strip() if column in frame else pd.Series("", index=frame.index)
        out[column] = values.where(values != "", None)
    return out


def _db_value(value: object) -> object:
    """A cell as the driver should get it: datetimes as such, missing text as NULL (pandas
    holds it as NaN, which PostgreSQL would store as the text 'NaN')."""
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    return None if pd.isna(value) else value


def _table(table: str, asset_col: str) -> sa.Table:
    schema, name = split_table_name(table)
    validate_identifier(asset_col, "asset column")
    return sa.Table(
        name,
        sa.MetaData(schema=schema),
        sa.Column("start_ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_ts", sa.DateTime(timezone=True), nullable=False),
        *(sa.Column(c, sa.String(128)) for c in _TEXT_COLUMNS),
        sa.Column(asset_col, sa.String(128)),
    )


def _key(frame: pd.DataFrame, asset: str) -> pd.Series:
    """One text per window: start, end, axis and asset."""
    parts = [
        pd.to_datetime(frame["start_ts"], utc=True).astype(str),
        pd.to_datetime(frame["end_ts"], utc=True).astype(str),
        frame["axis"].fillna("").astype(str) if "axis" in frame else "",
        frame[asset].fillna("").astype(str) if asset in frame else "",
    ]
    return parts[0] + "|" + parts[1] + "|" + parts[2] + "|" + parts[3]


def import_label_csv(
    engine: Engine,
    target: DatabaseTarget,
    path: Path,
    table: str,
    *,
    asset_col: str | None = None,
) -> ImportedLabels:
    """Add the windows of the CSV ``path`` to the labels table ``table``.

    Args:
        engine, target: the data's database.
        path: the CSV (see the module docstring).
        table: ``labels.table``.
        asset_col: the table's asset column (``data.asset_col``; default ``asset``).

    Raises:
        LabelsError: the CSV is unreadable or malformed (nothing is written); it names assets
            but the existing table has no asset column.
        DatabaseError: the database failed (nothing is written).
    """
    rows = _parsed(_read_csv(path), path)
    asset = asset_col or "asset"
    definition = _table(table, asset)
    with write_transaction(engine, target, f"importing labels into {table}") as conn:
        definition.create(conn, checkfirst=True)
        present = {
            c["name"] for c in sa.inspect(conn).get_columns(definition.name, definition.schema)
        }
        if asset not in present and rows["asset"].notna().any():
            raise LabelsError(
                f"label CSV {path} names assets but labels table {table!r} has no {asset!r} "
                f"column; add it (ALTER TABLE ... ADD COLUMN {asset} VARCHAR(128)) or drop the "
                "asset column from the CSV"
            )
        lost = [c for c in _TEXT_COLUMNS if c not in present and rows[c].notna().any()]
        if lost:
            raise LabelsError(
                f"label CSV {path} has values in {lost} but labels table {table!r} has no such "
                f"column(s); add them (ALTER TABLE ... ADD COLUMN {lost[0]} VARCHAR(128)) or "
                "drop them from the CSV"
            )
        rows = rows.rename(columns={"asset": asset})
        columns = [c for c in (*LABEL_COLUMNS, asset) if c in present and c in rows]
        stored = conn.execute(sa.select(*(definition.c[c] for c in columns))).fetchall()
        known = set(_key(pd.DataFrame(stored, columns=columns), asset)) if stored else set()
        keys = _key(rows, asset)
        new = rows[~keys.isin(known) & ~keys.duplicated()]
        records = [
            {column: _db_value(value) for column, value in row.items()}
            for row in new[columns].to_dict(orient="records")
        ]
        if records:
            conn.execute(definition.insert(), records)
    logger.info(
        "imported %d label window(s) from %s into %s (%d already there)",
        len(records),
        path,
        table,
        len(rows) - len(records),
    )
    return ImportedLabels(table=table, rows=len(records), skipped=len(rows) - len(records))
