"""Creating a table with explicit column types and filling it in chunks, all or nothing."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Literal

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from .connection import DatabaseTarget, database_errors
from .errors import DatabaseError
from .identifiers import split_table_name, validate_identifier

__all__ = ["float_columns", "table_exists", "write_chunks"]

logger = logging.getLogger(__name__)


def table_exists(engine: Engine, table: str) -> bool:
    """Whether ``table`` (``name`` or ``schema.name``) exists."""
    schema, name = split_table_name(table)
    return sa.inspect(engine).has_table(name, schema=schema)


def _records(chunk: pd.DataFrame) -> list[dict[str, object]]:
    """Rows as dicts with NaN/NaT turned into None, so missing values are stored as NULL."""
    cleaned = chunk.astype(object).where(chunk.notna(), None)
    return cleaned.to_dict("records")


def write_chunks(
    engine: Engine,
    target: DatabaseTarget,
    table: str,
    columns: Mapping[str, sa.types.TypeEngine],
    chunks: Iterable[pd.DataFrame],
    *,
    if_exists: Literal["fail", "append"] = "fail",
    index_column: str | None = None,
) -> int:
    """Create ``table`` with the given column types (unless appending) and insert every chunk.

    The whole load runs in one transaction; if a chunk fails to convert or insert, the
    transaction is rolled back and a table this call created is dropped again, so nothing
    is left half-written.

    Args:
        engine: open engine on ``target``.
        target: the database (for error messages with the masked URL).
        table: ``name`` or ``schema.name``.
        columns: column name -> SQLAlchemy type, in table order.
        chunks: DataFrames whose columns are exactly ``columns``' keys.
        if_exists: ``"fail"`` refuses an existing table; ``"append"`` adds rows to it.
        index_column: create a (non-unique) index on this column, e.g. the time column.

    Returns:
        The number of rows inserted.

    Raises:
        DatabaseError: the table exists and ``if_exists="fail"``, or the database refused.
    """
    schema, name = split_table_name(table)
    for column in columns:
        validate_identifier(column, "column name")
    exists = table_exists(engine, table)
    if exists and if_exists == "fail":
        raise DatabaseError(
            f"table {table!r} already exists in {target.display}; choose another name, or "
            "append to it with --if-exists append"
        )
    metadata = sa.MetaData(schema=schema)
    sa_table = sa.Table(name, metadata, *(sa.Column(c, t) for c, t in columns.items()))
    if index_column is not None:
        sa.Index(f"ix_{name}_{index_column}"[:63], sa_table.c[index_column])
    created = not exists
    rows = 0
    try:
        with database_errors(target, f"writing table {table!r}"), engine.begin() as conn:
            if created:
                metadata.create_all(conn)
            for chunk in chunks:
                if list(chunk.columns) != list(columns):
                    raise DatabaseError(
                        f"chunk columns {list(chunk.columns)} do not match table columns "
                        f"{list(columns)} of {table!r}"
                    )
                if len(chunk):
                    conn.execute(sa_table.insert(), _records(chunk))
                    rows += len(chunk)
    except Exception:
        if created:
            _drop_quietly(engine, sa_table)
        raise
    logger.info("wrote %d rows to %s", rows, table)
    return rows


def _drop_quietly(engine: Engine, sa_table: sa.Table) -> None:
    """Drop a table this module created when filling it failed (SQLite DDL is not transactional)."""
    try:
        with engine.begin() as conn:
            sa_table.drop(conn, checkfirst=True)
    except sa.exc.SQLAlchemyError:
        logger.warning("could not drop the partially written table %s", sa_table.fullname)


def float_columns(names: Iterable[str]) -> dict[str, sa.types.TypeEngine]:
    """Double-precision float columns for ``names`` (axis values are stored as float64)."""
    return {name: sa.Float(precision=53) for name in names}
