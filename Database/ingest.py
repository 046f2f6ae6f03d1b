"""Loading a CSV export into the configured database, in chunks, with explicit column types."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from .connection import DatabaseTarget
from .identifiers import validate_identifier
from .tables import float_columns, write_chunks

__all__ = ["IngestError", "IngestResult", "ingest_csv"]

logger = logging.getLogger(__name__)


class IngestError(ValueError):
    """The CSV cannot be loaded: missing columns, unparseable times or non-numeric values."""


@dataclass(frozen=True)
class IngestResult:
    """What was loaded: table, row count, axis columns (WIDE) and the time column's kind."""

    table: str
    rows: int
    axes: list[str]
    time_kind: Literal["timestamp", "epoch"]


def _read_header(path: Path) -> list[str]:
    try:
        return list(pd.read_csv(path, nrows=0, encoding="utf-8-sig").columns)
    except FileNotFoundError:
        raise IngestError(f"CSV file {str(path)!r} not found") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise IngestError(f"cannot read CSV header of {str(path)!r}: {exc}") from None


def _numeric(chunk: pd.DataFrame, column: str, first_line: int) -> pd.Series:
    converted = pd.to_numeric(chunk[column], errors="coerce")
    bad = (converted.isna() & chunk[column].notna()) | np.isinf(converted)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise IngestError(
            f"column {column!r}, CSV line {first_line + row}: {chunk[column].iloc[row]!r} is "
            "not a finite number; fix the value or leave the cell empty for a missing reading"
        )
    return converted.astype("float64")


def _time(chunk: pd.DataFrame, column: str, kind: str, first_line: int) -> pd.Series:
    values = chunk[column]
    if values.isna().any():
        row = int(np.flatnonzero(values.isna().to_numpy())[0])
        raise IngestError(f"column {column!r}, CSV line {first_line + row}: empty timestamp")
    if kind == "epoch":
        return _numeric(chunk, column, first_line)
    parsed = pd.to_datetime(values, utc=True, format="ISO8601", errors="coerce")
    if parsed.isna().any():
        row = int(np.flatnonzero(parsed.isna().to_numpy())[0])
        raise IngestError(
            f"column {column!r}, CSV line {first_line + row}: {values.iloc[row]!r} is not an "
            "ISO-8601 timestamp (e.g. 2026-01-05 12:00:00+00:00); a file whose first "
            "timestamp is a number is read as epoch seconds throughout"
        )
    return parsed


def _checked(reader: Iterator[pd.DataFrame], csv_path: Path) -> Iterator[pd.DataFrame]:
    """Chunks of the CSV; a malformed row becomes an IngestError naming the line."""
    try:
        yield from reader
    except pd.errors.ParserError as exc:
        raise IngestError(
            f"CSV {csv_path.name} is malformed: {' '.join(str(exc).split())}; fix that row "
            "(unbalanced quotes, or more fields than the header)"
        ) from None


def ingest_csv(
    engine: Engine,
    target: DatabaseTarget,
    csv_path: Path,
    table: str,
    *,
    layout: Literal["wide", "long"] = "wide",
    time_col: str = "ts",
    axis_id_col: str = "axis_id",
    value_col: str = "value",
    if_exists: Literal["fail", "append"] = "fail",
    chunk_rows: int = 50_000,
) -> IngestResult:
    """Load ``csv_path`` into ``table``; all chunks in one transaction, so all or nothing.

    WIDE: the time column plus every other column as a float64 axis (names are kept as they
    are, e.g. ``Axis #1``). LONG: the time, axis-id and value columns. Timestamps are ISO-8601
    (stored as TIMESTAMP WITH TIME ZONE, UTC; no zone = UTC) or numbers (epoch seconds, stored
    as double precision).

    Raises:
        IngestError: a column is missing, a time cannot be parsed, a value is not numeric.
        DatabaseError: the table exists (with ``if_exists="fail"``) or the database refused.
    """
    header = _read_header(csv_path)
    required = [time_col] if layout == "wide" else [time_col, axis_id_col, value_col]
    missing = [col for col in required if col not in header]
    if missing:
        raise IngestError(
            f"CSV {csv_path.name} has no column(s) {missing}; its columns are {header}. "
            "Name the time column with --time-col"
        )
    for column in header:
        validate_identifier(column, "CSV column name")
    if layout == "wide":
        axes = [col for col in header if col != time_col]
        if not axes:
            raise IngestError(f"CSV {csv_path.name} has no axis columns besides {time_col!r}")
        value_types = float_columns(axes)
    else:
        axes = []
        ignored = [col for col in header if col not in required]
        if ignored:
            logger.warning("LONG ingest ignores the CSV columns %s", ignored)
        value_types = {axis_id_col: sa.Integer(), value_col: sa.Float(precision=53)}
    first = pd.read_csv(csv_path, nrows=1, usecols=[time_col], encoding="utf-8-sig")
    epoch = pd.api.types.is_numeric_dtype(first[time_col])
    kind: Literal["timestamp", "epoch"] = "epoch" if epoch else "timestamp"
    time_type = sa.Float(precision=53) if epoch else sa.DateTime(timezone=True)
    columns = {time_col: time_type, **value_types}

    def chunks() -> Iterator[pd.DataFrame]:
        line = 2  # line 1 is the header
        # All columns are read (no usecols), so pandas refuses a row with extra fields.
        with pd.read_csv(csv_path, chunksize=chunk_rows, dtype=str, encoding="utf-8-sig") as reader:
            for chunk in _checked(reader, csv_path):
                out = pd.DataFrame({time_col: _time(chunk, time_col, kind, line)})
                for column in value_types:
                    out[column] = _numeric(chunk, column, line)
                if layout == "long":
                    out[axis_id_col] = out[axis_id_col].astype("int64")
                line += len(chunk)
                yield out[list(columns)]

    rows = write_chunks(
        engine, target, table, columns, chunks(), if_exists=if_exists, index_column=time_col
    )
    logger.info("ingested %d rows from %s into %s (%s layout)", rows, csv_path, table, layout)
    return IngestResult(table=table, rows=rows, axes=axes, time_kind=kind)
