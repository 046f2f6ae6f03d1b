"""Creating a table with explicit column types and filling it in chunks, all or nothing."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from .connection import DatabaseTarget, database_errors
from .errors import DatabaseError
from .identifiers import split_table_name, validate_identifier

__all__ = [
    "IfExists",
    "WriteResult",
    "add_missing_columns",
    "define_table",
    "float_columns",
    "insert_chunks",
    "table_exists",
    "write_chunks",
    "write_transaction",
]

logger = logging.getLogger(__name__)

IfExists = Literal["fail", "append", "append-new"]
"""An existing table: refuse it, add every row, or add only rows whose key is not in it yet."""

# Stored times are matched exactly in pandas; the SQL range only narrows what is read, with a
# second of margin for julianday()'s floating-point day numbers on SQLite.
_JULIANDAY_MARGIN = 1.0 / 86_400.0


@dataclass(frozen=True)
class WriteResult:
    """Rows inserted, and rows left out because their key was already in the table."""

    rows: int
    skipped: int = 0


def table_exists(engine: Engine | Connection, table: str) -> bool:
    """Whether ``table`` (``name`` or ``schema.name``) exists."""
    schema, name = split_table_name(table)
    return sa.inspect(engine).has_table(name, schema=schema)


def add_missing_columns(
    conn: Connection, table: sa.Table, columns: Iterable[sa.Column]
) -> list[str]:
    """Add to the existing ``table`` those of ``columns`` (nullable) it does not have yet: a
    table created by an earlier release gets the columns added since. Returns their names.

    Names are quoted by the dialect, never pasted as given.
    """
    present = {c["name"] for c in sa.inspect(conn).get_columns(table.name, schema=table.schema)}
    preparer = conn.dialect.identifier_preparer
    added = []
    for column in columns:
        if column.name in present:
            continue
        conn.execute(
            sa.text(
                f"ALTER TABLE {preparer.format_table(table)} ADD COLUMN "
                f"{preparer.quote(column.name)} {column.type.compile(conn.dialect)}"
            )
        )
        logger.info("added column %s to %s", column.name, table.fullname)
        added.append(column.name)
    return added


def define_table(
    table: str, columns: Mapping[str, sa.types.TypeEngine], index_column: str | None = None
) -> sa.Table:
    """The SQLAlchemy table ``table`` with ``columns`` and an optional (non-unique) index.

    Raises:
        UnsafeIdentifierError: the table or a column name is not a safe identifier.
    """
    schema, name = split_table_name(table)
    for column in columns:
        validate_identifier(column, "column name")
    metadata = sa.MetaData(schema=schema)
    sa_table = sa.Table(name, metadata, *(sa.Column(c, t) for c, t in columns.items()))
    if index_column is not None:
        sa.Index(f"ix_{name}_{index_column}"[:63], sa_table.c[index_column])
    return sa_table


@contextmanager
def write_transaction(
    engine: Engine, target: DatabaseTarget, action: str, *, lock: sa.Table | None = None
) -> Iterator[Connection]:
    """One transaction for a whole write, DDL included; rolled back entirely on any error.

    On SQLite it starts with ``BEGIN IMMEDIATE``: the Python driver would otherwise open the
    transaction only at the first INSERT, leaving DDL and reads outside it; this also takes
    SQLite's write lock for the whole block. On PostgreSQL, ``lock`` (an existing table) is
    locked against other writers (readers go on) until the end.

    Args:
        engine: open engine on ``target``.
        target: the database (for error messages with the masked URL).
        action: what is being done, for error messages, e.g. ``"writing table 'robot_a'"``.
        lock: a table that must not change under this transaction (PostgreSQL).

    Raises:
        DatabaseError: the database refused a statement (nothing of the block is kept).
    """
    with database_errors(target, action), engine.begin() as conn:
        if target.dialect == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        elif lock is not None and target.dialect == "postgresql":
            name = conn.dialect.identifier_preparer.format_table(lock)
            conn.execute(sa.text(f"LOCK TABLE {name} IN SHARE ROW EXCLUSIVE MODE"))
        yield conn


def _records(chunk: pd.DataFrame) -> list[dict[str, object]]:
    """Rows as dicts with NaN/NaT turned into None, so missing values are stored as NULL."""
    cleaned = chunk.astype(object).where(chunk.notna(), None)
    return cleaned.to_dict("records")


def _datetime_texts(series: pd.Series, process: Callable[[Any], Any]) -> list[str | None] | None:
    """A datetime column's values as SQLite's DATETIME type stores them (its bind processor
    writes each value's own clock fields as ``YYYY-MM-DD HH:MM:SS.ffffff``), formatted by NumPy
    at once instead of one Python call per value; None (use the processor) for other columns,
    or where NumPy's text could differ: nanosecond times before 1970 with sub-microsecond parts
    (the two round them apart), or when the processor's text of the first and last values is
    not NumPy's (a spot check; the column's own unit is kept, so no value is rescaled)."""
    if not pd.api.types.is_datetime64_any_dtype(series.dtype):
        return None
    wall = series.dt.tz_localize(None) if getattr(series.dt, "tz", None) is not None else series
    stamps = wall.to_numpy()  # datetime64 in the column's unit (s, ms, us or ns)
    present = ~np.isnat(stamps)
    if not present.any():
        return None
    unit = np.datetime_data(stamps.dtype)[0]
    if unit not in ("s", "ms", "us", "ns"):
        return None
    if unit == "ns":
        nanoseconds = stamps[present].view(np.int64)
        if (nanoseconds < 0).any() and (nanoseconds % 1000 != 0).any():
            return None
    text = np.char.replace(
        np.datetime_as_string(stamps.astype("datetime64[us]"), unit="us"), "T", " "
    )
    texts: list[str | None] = text.tolist()
    found = np.flatnonzero(present)
    for at in (found[0], found[-1]):
        if process(series.iloc[at]) != texts[at]:
            return None
    for at in np.flatnonzero(~present):
        texts[at] = None
    return texts


def _insert_positional(conn: Connection, sa_table: sa.Table, chunk: pd.DataFrame) -> bool:
    """On SQLite, insert ``chunk`` with one DBAPI ``executemany`` of tuples, each value
    converted by its column type's own bind processor, as SQLAlchemy's executemany converts
    it; False (nothing done) on other databases, and for chunks with ``object`` or
    ``category`` columns (their cells may be NumPy scalars, which SQLAlchemy's path unboxes).

    On SQLite, SQLAlchemy's executemany is a plain ``cursor.executemany`` after building a dict
    and a parameter set per row: ~80 % of the time of a bulk insert (the demo database's
    520,000 rows: 16.8 -> 7.4 s; with :func:`_datetime_texts` 4.5 s). Other drivers keep
    SQLAlchemy's path, with its dialect's own executemany (psycopg2: multi-row VALUES).
    """
    if conn.dialect.name != "sqlite" or conn.dialect.paramstyle != "qmark":
        return False
    if any(
        pd.api.types.is_object_dtype(dtype) or isinstance(dtype, pd.CategoricalDtype)
        for dtype in chunk.dtypes
    ):
        return False
    compiled = sa_table.insert().compile(dialect=conn.dialect)
    order = compiled.positiontup or []
    if sorted(order) != sorted(column.key for column in sa_table.columns):
        return False
    columns = []
    for key in order:
        column = sa_table.c[key]
        series = chunk[column.name]
        process = column.type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
        texts = None if process is None else _datetime_texts(series, process)
        if texts is not None:
            columns.append(texts)
            continue
        values = series.astype(object).where(series.notna(), None).tolist()
        columns.append(values if process is None else [process(value) for value in values])
    conn.exec_driver_sql(str(compiled), list(zip(*columns, strict=True)))
    return True


def _key_index(frame: pd.DataFrame, epoch: bool) -> pd.MultiIndex:
    """``frame``'s key columns (time first) in one comparable form: float or UTC ns."""
    columns = {}
    for position, column in enumerate(frame.columns):
        values = frame[column]
        if position > 0:
            columns[column] = values.astype("int64")
        elif epoch:
            columns[column] = values.astype("float64")
        else:
            parsed = pd.to_datetime(values, utc=True, format="ISO8601")
            columns[column] = parsed.astype("datetime64[ns, UTC]")
    return pd.MultiIndex.from_frame(pd.DataFrame(columns))


def _stored_keys(
    conn: Connection, sa_table: sa.Table, chunk: pd.DataFrame, keys: Sequence[str], epoch: bool
) -> pd.MultiIndex:
    """The keys stored in ``sa_table`` within the time range of ``chunk``."""
    time = sa_table.c[keys[0]]
    low, high = chunk[keys[0]].min(), chunk[keys[0]].max()
    read: list[sa.ColumnElement] = [sa_table.c[key] for key in keys]
    if epoch:
        where = time.between(float(low), float(high))
    elif conn.dialect.name == "sqlite":
        # SQLite keeps times as text in whatever ISO-8601 form was written; julianday()
        # compares them as times, and the raw text is parsed below.
        read[0] = sa.type_coerce(time, sa.String())
        day = sa.func.julianday(time)
        where = day.between(
            sa.func.julianday(low.isoformat()) - _JULIANDAY_MARGIN,
            sa.func.julianday(high.isoformat()) + _JULIANDAY_MARGIN,
        )
    else:
        where = time.between(low.to_pydatetime(), high.to_pydatetime())
    stored = pd.DataFrame(conn.execute(sa.select(*read).where(where)).all(), columns=list(keys))
    return _key_index(stored, epoch)


def _new_rows(
    conn: Connection, sa_table: sa.Table, chunk: pd.DataFrame, keys: Sequence[str]
) -> pd.DataFrame:
    """The rows of ``chunk`` whose key is neither stored yet nor repeated earlier in it."""
    epoch = pd.api.types.is_numeric_dtype(chunk[keys[0]])
    candidate = _key_index(chunk[list(keys)], epoch)
    stored = _stored_keys(conn, sa_table, chunk, keys, epoch)
    fresh = ~candidate.isin(stored) & ~candidate.duplicated(keep="first")
    return chunk[fresh]


def insert_chunks(
    conn: Connection,
    sa_table: sa.Table,
    chunks: Iterable[pd.DataFrame],
    *,
    skip_existing: Sequence[str] = (),
) -> WriteResult:
    """Insert every chunk into ``sa_table`` on ``conn`` (inside the caller's transaction).

    Args:
        conn: a connection inside a transaction, see :func:`write_transaction`.
        sa_table: the table; every chunk's columns must be exactly its columns.
        chunks: the rows to insert.
        skip_existing: key columns, time first (e.g. ``["ts"]`` or ``["ts", "axis_id"]``):
            a row whose key is already stored, or came earlier in the chunks, is skipped and
            counted. Empty: every row is inserted.

    Returns:
        Rows inserted and skipped.

    Raises:
        DatabaseError: a chunk's columns do not match the table's.
    """
    names = [column.name for column in sa_table.columns]
    rows = skipped = 0
    for chunk in chunks:
        if list(chunk.columns) != names:
            raise DatabaseError(
                f"chunk columns {list(chunk.columns)} do not match table columns {names} of "
                f"{sa_table.fullname!r}"
            )
        if skip_existing and len(chunk):
            fresh = _new_rows(conn, sa_table, chunk, skip_existing)
            skipped += len(chunk) - len(fresh)
            chunk = fresh
        if len(chunk):
            if not _insert_positional(conn, sa_table, chunk):
                conn.execute(sa_table.insert(), _records(chunk))
            rows += len(chunk)
    return WriteResult(rows=rows, skipped=skipped)


def write_chunks(
    engine: Engine,
    target: DatabaseTarget,
    table: str,
    columns: Mapping[str, sa.types.TypeEngine],
    chunks: Iterable[pd.DataFrame],
    *,
    if_exists: IfExists = "fail",
    index_column: str | None = None,
    key_columns: Sequence[str] = (),
) -> WriteResult:
    """Create ``table`` with the given column types (unless it exists) and insert every chunk.

    The whole load, table creation included, is one transaction: if a chunk fails to convert
    or insert, nothing is left, not even the table.

    Args:
        engine: open engine on ``target``.
        target: the database (for error messages with the masked URL).
        table: ``name`` or ``schema.name``.
        columns: column name -> SQLAlchemy type, in table order.
        chunks: DataFrames whose columns are exactly ``columns``' keys.
        if_exists: ``"fail"`` refuses an existing table; ``"append"`` adds every row to it;
            ``"append-new"`` adds only rows whose ``key_columns`` are not in it yet (nor
            earlier in ``chunks``), holding off other writers of the table meanwhile.
        index_column: create a (non-unique) index on this column, e.g. the time column.
        key_columns: the row key for ``"append-new"``, time column first.

    Returns:
        Rows inserted, and rows skipped by ``"append-new"``.

    Raises:
        DatabaseError: the table exists and ``if_exists="fail"``, or the database refused.
        ValueError: ``"append-new"`` without ``key_columns``.
    """
    if if_exists == "append-new" and not key_columns:
        raise ValueError("if_exists='append-new' needs key_columns, e.g. ['ts']")
    sa_table = define_table(table, columns, index_column)
    exists = table_exists(engine, table)
    if exists and if_exists == "fail":
        raise DatabaseError(
            f"table {table!r} already exists in {target.display}; choose another name, or "
            "append to it with --if-exists append (or append-new to skip rows already there)"
        )
    skip = tuple(key_columns) if if_exists == "append-new" else ()
    lock = sa_table if exists and skip else None
    with write_transaction(engine, target, f"writing table {table!r}", lock=lock) as conn:
        if not exists:
            sa_table.metadata.create_all(conn)
        result = insert_chunks(conn, sa_table, chunks, skip_existing=skip)
    logger.info("wrote %d rows to %s (%d already there)", result.rows, table, result.skipped)
    return result


def float_columns(names: Iterable[str]) -> dict[str, sa.types.TypeEngine]:
    """Double-precision float columns for ``names`` (axis values are stored as float64)."""
    return {name: sa.Float(precision=53) for name in names}
