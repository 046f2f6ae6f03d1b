"""Loading a CSV export into the configured database, in chunks, with explicit column types."""

from __future__ import annotations

import csv
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
from .tables import IfExists, float_columns, write_chunks

__all__ = ["IngestError", "IngestResult", "ingest_csv", "parse_delimiter"]

logger = logging.getLogger(__name__)


class IngestError(ValueError):
    """The CSV cannot be loaded: missing columns, unparseable times or non-numeric values."""


@dataclass(frozen=True)
class IngestResult:
    """What was loaded.

    ``axes``: WIDE, the axis columns; LONG, the axis ids found in the CSV (sorted).
    ``skipped``: rows left out by ``if_exists="append-new"`` because their time (and axis
    id) was already in the table or earlier in the file.
    """

    table: str
    rows: int
    axes: list[str] | list[int]
    time_kind: Literal["timestamp", "epoch"]
    skipped: int = 0


# Delimiters recognised in a header that did not split: how to name them, how to pass them.
_OTHER_DELIMITERS = {
    ",": ("','", "','"),
    ";": ("';'", "';'"),
    "\t": ("tabs", "tab"),
    "|": ("'|'", "'|'"),
}


def parse_delimiter(text: str) -> str:
    """The CSV field separator named by ``text``: one character, or ``tab`` / ``\\t``.

    Raises:
        IngestError: not one character, or a quote or line break.
    """
    value = "\t" if text in {"tab", "\\t"} else text
    if len(value) != 1 or value in '"\r\n':
        raise IngestError(
            f"{text[:20]!r} is not a delimiter: give one character other than a quote or line "
            "break, e.g. ';', or tab"
        )
    return value


def _read_header(path: Path, delimiter: str) -> list[str]:
    """The header row, refused when a name repeats or the delimiter looks wrong."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as stream:
            header = next(csv.reader(stream, delimiter=delimiter), None)
    except FileNotFoundError:
        raise IngestError(f"CSV file {str(path)!r} not found") from None
    except (OSError, csv.Error, UnicodeDecodeError) as exc:
        raise IngestError(f"cannot read CSV header of {str(path)!r}: {exc}") from None
    if not header or not any(header):
        raise IngestError(f"CSV {path.name} is empty; line 1 must be the header row")
    if len(header) == 1:
        other = next((d for d in _OTHER_DELIMITERS if d != delimiter and d in header[0]), None)
        if other is not None:
            name, option = _OTHER_DELIMITERS[other]
            raise IngestError(
                f"CSV {path.name} line 1 (header) is one column {header[0][:80]!r} with "
                f"{delimiter!r} as delimiter: looks like the file uses {name} — pass "
                f"--delimiter {option}"
            )
    seen: dict[str, int] = {}
    for position, name in enumerate(header, start=1):
        if name in seen:
            raise IngestError(
                f"CSV {path.name} line 1 (header): column {name!r} appears twice (columns "
                f"{seen[name]} and {position}); rename one, every column needs its own name"
            )
        seen[name] = position
    return header


def _refuse_first(bad: pd.Series, values: pd.Series, first_line: int, problem: str) -> None:
    """Raise for the first row flagged in ``bad``: column, CSV line, the value, ``problem``."""
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise IngestError(
            f"column {values.name!r}, CSV line {first_line + row}: {values.iloc[row]!r} {problem}"
        )


def _numeric(chunk: pd.DataFrame, column: str, first_line: int) -> pd.Series:
    converted = pd.to_numeric(chunk[column], errors="coerce")
    bad = (converted.isna() & chunk[column].notna()) | np.isinf(converted)
    _refuse_first(
        bad,
        chunk[column],
        first_line,
        "is not a finite number; fix the value or leave the cell empty for a missing reading",
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
    _refuse_first(
        parsed.isna(),
        values,
        first_line,
        "is not an ISO-8601 timestamp (e.g. 2026-01-05 12:00:00+00:00); a file whose first "
        "timestamp is a number is read as epoch seconds throughout",
    )
    return parsed


def _axis_ids(chunk: pd.DataFrame, column: str, first_line: int) -> pd.Series:
    ids = _numeric(chunk, column, first_line)
    _refuse_first(
        ids.isna() | (ids != ids.round()),
        chunk[column],
        first_line,
        "is not an axis id; axis ids are whole numbers (1, 2, ...)",
    )
    return ids.astype("int64")


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
    if_exists: IfExists = "fail",
    chunk_rows: int = 50_000,
    delimiter: str = ",",
) -> IngestResult:
    """Load ``csv_path`` into ``table``; all chunks in one transaction, so all or nothing.

    WIDE: the time column plus every other column as a float64 axis (names are kept as they
    are, e.g. ``Axis #1``). LONG: the time, axis-id and value columns. Timestamps are ISO-8601
    (stored as TIMESTAMP WITH TIME ZONE, UTC; no zone = UTC) or numbers (epoch seconds, stored
    as double precision).

    Args:
        if_exists: an existing table: ``"fail"`` (default), ``"append"`` every row, or
            ``"append-new"``: skip rows whose time (LONG: time and axis id) is already in the
            table or earlier in the file, and count them in ``skipped``.
        chunk_rows: rows read and inserted at a time.
        delimiter: the field separator, see :func:`parse_delimiter` (default ``,``).

    Raises:
        IngestError: a column is missing or named twice, a time cannot be parsed, a value is
            not numeric, the header looks split by another delimiter.
        DatabaseError: the table exists (with ``if_exists="fail"``) or the database refused.
    """
    delimiter = parse_delimiter(delimiter)
    header = _read_header(csv_path, delimiter)
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
    first = pd.read_csv(csv_path, nrows=1, usecols=[time_col], encoding="utf-8-sig", sep=delimiter)
    epoch = pd.api.types.is_numeric_dtype(first[time_col])
    kind: Literal["timestamp", "epoch"] = "epoch" if epoch else "timestamp"
    time_type = sa.Float(precision=53) if epoch else sa.DateTime(timezone=True)
    columns = {time_col: time_type, **value_types}
    axis_ids: set[int] = set()

    def chunks() -> Iterator[pd.DataFrame]:
        line = 2  # line 1 is the header
        # All columns are read (no usecols), so pandas refuses a row with extra fields.
        with pd.read_csv(
            csv_path, chunksize=chunk_rows, dtype=str, encoding="utf-8-sig", sep=delimiter
        ) as reader:
            for chunk in _checked(reader, csv_path):
                out = pd.DataFrame({time_col: _time(chunk, time_col, kind, line)})
                for column in value_types:
                    out[column] = _numeric(chunk, column, line)
                if layout == "long":
                    out[axis_id_col] = _axis_ids(chunk, axis_id_col, line)
                    axis_ids.update(out[axis_id_col].unique().tolist())
                line += len(chunk)
                yield out[list(columns)]

    keys = [time_col] if layout == "wide" else [time_col, axis_id_col]
    written = write_chunks(
        engine,
        target,
        table,
        columns,
        chunks(),
        if_exists=if_exists,
        index_column=time_col,
        key_columns=keys,
    )
    logger.info(
        "ingested %d rows from %s into %s (%s layout; %d already there, skipped)",
        written.rows,
        csv_path,
        table,
        layout,
        written.skipped,
    )
    return IngestResult(
        table=table,
        rows=written.rows,
        axes=axes if layout == "wide" else sorted(axis_ids),
        time_kind=kind,
        skipped=written.skipped,
    )
