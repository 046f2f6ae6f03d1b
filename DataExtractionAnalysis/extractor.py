"""SQL → time-ordered DataFrame, for WIDE tables and LONG tables pivoted to ``axis{k}`` columns.

The training window ``[start, end)`` is applied in SQL. Table and column names from config
are validated identifiers that SQLAlchemy quotes; values are bound parameters (server-side on
the generic path; on the PostgreSQL fast path, COPY cannot take parameters, so the typed
datetime/float bounds are rendered as literals by SQLAlchemy's dialect — never config text).

Result contract: column ``ts`` (``datetime64[ns, UTC]``, or float epoch seconds when the
source column is numeric), then one float64 column per axis, sorted by time. Rows that share
a timestamp are handled by ``data.duplicates`` (default: refused).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Literal

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Engine

from Database import DatabaseError, DatabaseTarget, database_errors, scrub, split_table_name

from .config import DataConfig

__all__ = [
    "EmptyWindowError",
    "Extraction",
    "ExtractionError",
    "SourceInfo",
    "extract_window",
    "lookahead_end",
    "lookback_start",
]

logger = logging.getLogger(__name__)

TimeKind = Literal["timestamp", "timestamptz", "iso_text", "epoch"]


class ExtractionError(ValueError):
    """The configured table, columns or data cannot give a valid training frame."""


class EmptyWindowError(ExtractionError):
    """The requested window holds no rows."""


@dataclass(frozen=True)
class SourceInfo:
    """What was read: table, dialect, kind of time column and which reader was used."""

    table: str
    dialect: str
    time_kind: TimeKind
    reader: Literal["adbc", "sqlalchemy"]
    layout: Literal["wide", "long"]


@dataclass(frozen=True)
class Extraction:
    """An extracted window: the frame, where it came from, and what was done to duplicates."""

    frame: pd.DataFrame
    source: SourceInfo
    duplicates_resolved: int


@dataclass(frozen=True)
class _Plan:
    table: sa.TableClause
    time_kind: TimeKind
    time: sa.ColumnClause
    selected: dict[str, sa.ColumnClause]  # output label -> source column


def _time_kind(column_type: sa.types.TypeEngine, dialect: str) -> TimeKind:
    if isinstance(column_type, sa.DateTime):
        if dialect == "sqlite":
            return "iso_text"
        return "timestamptz" if column_type.timezone else "timestamp"
    if isinstance(column_type, (sa.Float, sa.Integer, sa.Numeric)):
        return "epoch"
    if dialect == "sqlite" and isinstance(column_type, (sa.String, sa.types.NullType)):
        return "iso_text"
    raise ExtractionError(
        f"time column has type {column_type}; expected a TIMESTAMP, ISO-8601 text (SQLite) "
        "or numeric epoch seconds"
    )


def _resolve(name: str, available: list[str], what: str, table: str) -> str:
    """Find ``name`` among the table's columns: exact match, else a unique case-insensitive one."""
    if name in available:
        return name
    folded = [col for col in available if col.lower() == name.lower()]
    if len(folded) == 1:
        return folded[0]
    raise ExtractionError(
        f"column {name!r} ({what}) not found in table {table!r}; available columns: "
        f"{', '.join(available)}"
    )


def _plan(engine: Engine, target: DatabaseTarget, data: DataConfig) -> _Plan:
    schema, name = split_table_name(data.table)
    with database_errors(target, f"reading the columns of table {data.table!r}"):
        inspector = sa.inspect(engine)
        if not inspector.has_table(name, schema=schema):
            tables = inspector.get_table_names(schema=schema)
            raise ExtractionError(
                f"table {data.table!r} (data.table) not found in {target.display}; available "
                f"tables: {', '.join(tables) or 'none'}. Set data.table, or load a CSV with "
                "'python orchestrate.py ingest FILE.csv --table NAME'"
            )
        columns = {col["name"]: col["type"] for col in inspector.get_columns(name, schema=schema)}
    available = list(columns)
    time_name = _resolve(data.time_col, available, "data.time_col", data.table)
    try:
        time_kind = _time_kind(columns[time_name], target.dialect)
    except ExtractionError as exc:
        raise ExtractionError(f"data.time_col {time_name!r} in {data.table!r}: {exc}") from None
    if data.layout == "wide":
        sources = {
            axis: _resolve(axis, available, "data.axes", data.table) for axis in data.axis_columns
        }
    else:
        sources = {
            data.axis_id_col: _resolve(data.axis_id_col, available, "data.axis_id_col", data.table),
            data.value_col: _resolve(data.value_col, available, "data.value_col", data.table),
        }
    table = sa.table(name, *(sa.column(c) for c in [time_name, *sources.values()]), schema=schema)
    selected = {label: table.c[source] for label, source in sources.items()}
    return _Plan(table=table, time_kind=time_kind, time=table.c[time_name], selected=selected)


def _bound(value: dt.datetime, kind: TimeKind, name: str) -> sa.BindParameter:
    if kind == "epoch":
        return sa.bindparam(name, value.timestamp(), type_=sa.Float())
    if kind == "iso_text":
        return sa.bindparam(name, value.strftime("%Y-%m-%d %H:%M:%S.%f"), type_=sa.String())
    if kind == "timestamp":
        return sa.bindparam(name, value.replace(tzinfo=None), type_=sa.DateTime())
    return sa.bindparam(name, value, type_=sa.DateTime(timezone=True))


def _comparable(plan: _Plan, expr: sa.ColumnElement) -> sa.ColumnElement:
    """SQLite keeps timestamps as text in varying ISO forms; julianday() compares them as time."""
    return sa.func.julianday(expr) if plan.time_kind == "iso_text" else expr


def _window_filter(
    plan: _Plan, start: dt.datetime | None, end: dt.datetime | None
) -> list[sa.ColumnElement]:
    time = _comparable(plan, plan.time)
    conditions: list[sa.ColumnElement] = [plan.time.is_not(None)]
    if start is not None:
        conditions.append(time >= _comparable(plan, _bound(start, plan.time_kind, "start")))
    if end is not None:
        conditions.append(time < _comparable(plan, _bound(end, plan.time_kind, "end")))
    return conditions


def _statement(
    plan: _Plan, data: DataConfig, start: dt.datetime | None, end: dt.datetime | None
) -> sa.Select:
    columns = [plan.time.label("ts"), *(col.label(label) for label, col in plan.selected.items())]
    stmt = sa.select(*columns).where(*_window_filter(plan, start, end))
    if data.layout == "long":
        stmt = stmt.where(plan.selected[data.axis_id_col].in_(list(data.axes)))
    return stmt.order_by(_comparable(plan, plan.time))


def _read_sqlalchemy(engine: Engine, target: DatabaseTarget, stmt: sa.Select) -> pd.DataFrame:
    with database_errors(target, "reading the training window"), engine.connect() as conn:
        return pd.read_sql(stmt, conn, coerce_float=True)


def _read_adbc(target: DatabaseTarget, stmt: sa.Select) -> pd.DataFrame:
    """PostgreSQL fast path: ADBC streams the result through binary COPY straight into Arrow."""
    import adbc_driver_manager
    import adbc_driver_postgresql.dbapi as adbc

    sql = str(stmt.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))
    uri = target.url.set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        with adbc.connect(uri) as conn, conn.cursor() as cursor:
            cursor.execute(sql)
            table = cursor.fetch_arrow_table()
    except adbc_driver_manager.Error as exc:
        detail = scrub(" ".join(str(exc).split()), target.url)
        raise DatabaseError(
            f"reading the training window ({target.display}) through ADBC failed: {detail}"
        ) from None
    return table.to_pandas(self_destruct=True, split_blocks=True)


def _to_time(values: pd.Series, kind: TimeKind, where: str) -> pd.Series:
    try:
        if kind == "epoch":
            return pd.to_numeric(values).astype("float64")
        if kind == "iso_text" or not pd.api.types.is_datetime64_any_dtype(values):
            parsed = pd.to_datetime(values, utc=True, format="ISO8601")
        elif getattr(values.dtype, "tz", None) is None:
            parsed = values.dt.tz_localize("UTC")
        else:
            parsed = values.dt.tz_convert("UTC")
    except (ValueError, TypeError) as exc:
        raise ExtractionError(f"{where}: timestamps cannot be parsed: {exc}") from None
    return parsed.astype("datetime64[ns, UTC]")


def _to_float(values: pd.Series, column: str, table: str) -> pd.Series:
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return values.astype("float64")
    converted = pd.to_numeric(values, errors="coerce")
    bad = converted.isna() & values.notna()
    if bad.any():
        example = values[bad].iloc[0]
        raise ExtractionError(
            f"column {column!r} of table {table!r} holds non-numeric values "
            f"({int(bad.sum())} rows, e.g. {example!r}); axis values must be numbers — fix the "
            "source data or remove the column from data.axes"
        )
    return converted.astype("float64")


def _resolve_duplicates(
    frame: pd.DataFrame, keys: list[str], data: DataConfig
) -> tuple[pd.DataFrame, int]:
    duplicated = frame.duplicated(keys, keep=False)
    count = int(frame.duplicated(keys).sum())
    if not count:
        return frame, 0
    if data.duplicates == "error":
        first = frame.loc[duplicated, "ts"].iloc[0]
        what = "timestamp" if len(keys) == 1 else "timestamp and axis id"
        raise ExtractionError(
            f"{count} rows repeat the {what} of an earlier row in table {data.table!r} "
            f"(first at {first}); set "
            "data.duplicates to 'first', 'last' or 'mean' to resolve them, or fix the source"
        )
    if data.duplicates == "mean":
        resolved = frame.groupby(keys, sort=False, as_index=False).mean()
    else:
        resolved = frame.drop_duplicates(keys, keep=data.duplicates)
    logger.warning(
        "%d rows shared a timestamp in %s; resolved with data.duplicates=%s",
        count,
        data.table,
        data.duplicates,
    )
    return resolved.reset_index(drop=True), count


def _pivot(frame: pd.DataFrame, data: DataConfig) -> pd.DataFrame:
    ids = frame[data.axis_id_col]
    present = set(pd.unique(ids))
    missing = [k for k in data.axes if k not in present]
    if missing:
        raise ExtractionError(
            f"LONG axis ids {missing} (data.axes) have no rows in table {data.table!r} in the "
            f"window; ids present: {sorted(int(k) for k in present)}"
        )
    wide = frame.pivot(index="ts", columns=data.axis_id_col, values=data.value_col)
    wide = wide.reindex(columns=list(data.axes))
    wide.columns = data.axis_columns
    return wide.reset_index().rename_axis(columns=None)


def _normalise(raw: pd.DataFrame, plan: _Plan, data: DataConfig) -> tuple[pd.DataFrame, int]:
    frame = raw
    where = f"data.time_col {data.time_col!r} of table {data.table!r}"
    frame["ts"] = _to_time(frame["ts"], plan.time_kind, where)
    if data.layout == "wide":
        for axis in data.axis_columns:
            frame[axis] = _to_float(frame[axis], axis, data.table)
        frame, duplicates = _resolve_duplicates(frame, ["ts"], data)
    else:
        frame[data.value_col] = _to_float(frame[data.value_col], data.value_col, data.table)
        frame[data.axis_id_col] = pd.to_numeric(frame[data.axis_id_col]).astype("int64")
        frame, duplicates = _resolve_duplicates(frame, ["ts", data.axis_id_col], data)
        frame = _pivot(frame, data)
    if not frame["ts"].is_monotonic_increasing:
        frame = frame.sort_values("ts", kind="stable", ignore_index=True)
    return frame[["ts", *data.axis_columns]].reset_index(drop=True), duplicates


def _data_range(engine: Engine, target: DatabaseTarget, plan: _Plan) -> str:
    stmt = sa.select(sa.func.min(plan.time), sa.func.max(plan.time), sa.func.count())
    with database_errors(target, "reading the table's time range"), engine.connect() as conn:
        first, last, count = conn.execute(stmt.select_from(plan.table)).one()
    if not count:
        return "the table is empty"
    return f"the table holds {count} rows from {first} to {last}"


def extract_window(
    engine: Engine,
    target: DatabaseTarget,
    data: DataConfig,
    *,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    fast_path: bool = True,
) -> Extraction:
    """Read ``[start, end)`` of the configured table into the frame contract above.

    Args:
        engine: engine connected to ``target``.
        target: the database (dialect, masked URL for messages, URL for the fast path).
        data: the ``data`` config section.
        start: inclusive window start (aware datetime, UTC); None = from the first row.
        end: exclusive window end; None = through the last row.
        fast_path: on PostgreSQL, read through ADBC (binary COPY → Arrow).

    Returns:
        The extraction: frame, source info and the number of duplicate rows resolved.

    Raises:
        ExtractionError: missing table/column, non-numeric values, duplicates (with
            ``data.duplicates: error``), or unparseable timestamps.
        EmptyWindowError: no rows in the window; the message gives the table's range.
        DatabaseError: the database failed; the message never holds the password.
    """
    plan = _plan(engine, target, data)
    stmt = _statement(plan, data, start, end)
    use_adbc = fast_path and target.dialect == "postgresql"
    raw = _read_adbc(target, stmt) if use_adbc else _read_sqlalchemy(engine, target, stmt)
    window = f"[{start or 'first row'}, {end or 'last row'})"
    if raw.empty:
        raise EmptyWindowError(
            f"no rows in table {data.table!r} in the window {window}; "
            f"{_data_range(engine, target, plan)}. Adjust data.train_start/data.train_end "
            "(or --start/--end)"
        )
    frame, duplicates = _normalise(raw, plan, data)
    source = SourceInfo(
        table=data.table,
        dialect=target.dialect,
        time_kind=plan.time_kind,
        reader="adbc" if use_adbc else "sqlalchemy",
        layout=data.layout,
    )
    logger.info(
        "extracted %d samples x %d axes from %s %s via %s",
        len(frame),
        len(data.axis_columns),
        data.table,
        window,
        source.reader,
    )
    return Extraction(frame=frame, source=source, duplicates_resolved=duplicates)


def _neighbour_time(
    engine: Engine,
    target: DatabaseTarget,
    data: DataConfig,
    anchor: dt.datetime,
    samples: int,
    *,
    forward: bool,
) -> dt.datetime | float | None:
    """The ``samples``-th distinct sample time before ``anchor`` (or at/after it, ``forward``)."""
    if samples <= 0:
        return None
    plan = _plan(engine, target, data)
    time = _comparable(plan, plan.time)
    bound = _comparable(plan, _bound(anchor, plan.time_kind, "anchor"))
    condition = time >= bound if forward else time < bound
    nearest = (
        sa.select(plan.time.label("ts"))
        .where(plan.time.is_not(None), condition)
        .distinct()
        .order_by(time.asc() if forward else time.desc())
        .limit(samples)
        .subquery()
    )
    with database_errors(target, "reading the rows next to the window"), engine.connect() as conn:
        rows = conn.execute(sa.select(nearest.c.ts)).scalars().all()
    if len(rows) < (samples if forward else 1):
        return None
    found = _to_time(pd.Series(rows), plan.time_kind, data.time_col)
    value = found.max() if forward else found.min()
    return float(value) if plan.time_kind == "epoch" else value.to_pydatetime()


def lookback_start(
    engine: Engine, target: DatabaseTarget, data: DataConfig, before: dt.datetime, samples: int
) -> dt.datetime | float | None:
    """Time of the ``samples``-th distinct sample before ``before`` (start of a look-back).

    Returns None when there is nothing before ``before`` or ``samples`` is 0; with fewer
    samples available, the earliest one. The value has the time column's own kind (aware
    datetime, or float epoch seconds).
    """
    return _neighbour_time(engine, target, data, before, samples, forward=False)


def lookahead_end(
    engine: Engine, target: DatabaseTarget, data: DataConfig, after: dt.datetime, samples: int
) -> dt.datetime | float | None:
    """Time of the ``samples``-th distinct sample at or after ``after`` (end of a look-ahead).

    Returns None when fewer than ``samples`` samples exist from ``after`` on, or ``samples``
    is 0. Reading ``[.., that time]`` inclusive covers exactly ``samples`` rows past ``after``.
    """
    return _neighbour_time(engine, target, data, after, samples, forward=True)
