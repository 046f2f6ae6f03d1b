"""SQL → time-ordered DataFrame, for WIDE tables and LONG tables pivoted to ``axis{k}`` columns.

The training window ``[start, end)`` is applied in SQL. Table and column names from config
are validated identifiers that SQLAlchemy quotes; values are bound parameters (server-side on
the generic path; on the PostgreSQL fast path, COPY cannot take parameters, so the typed
datetime/float bounds and the asset value are rendered as quoted literals by SQLAlchemy's
dialect — never pasted text).

Result contract: column ``ts`` (``datetime64[ns, UTC]``, or float epoch seconds when the
source column is numeric), then one float64 column per axis, sorted by time. Rows that share
a timestamp are handled by ``data.duplicates`` (default: refused).

Speed: on PostgreSQL a WIDE window of a timestamp and DOUBLE PRECISION axes arrives by binary
COPY, parsed by NumPy (:mod:`.pgcopy`; a large one in time ranges over two connections);
other windows through ADBC, kept in the Arrow buffers the driver filled (one chunk, NULL sent
as NaN by the server, so no copy); PostgreSQL pivots LONG windows itself (GROUP BY time), so
8x fewer rows cross the wire; sorted, distinct timestamps are confirmed in one pass.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import itertools
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Engine

from Database import DatabaseError, DatabaseTarget, database_errors, scrub, split_table_name

from .config import DataConfig

__all__ = [
    "EmptyWindowError",
    "Extraction",
    "ExtractionError",
    "KeptConnections",
    "SourceInfo",
    "expect_windows",
    "extract_window",
    "list_assets",
    "lookahead_end",
    "lookback_start",
    "neighbour_times",
    "newest_time",
    "newest_times",
    "reusing_connections",
]

logger = logging.getLogger(__name__)

TimeKind = Literal["timestamp", "timestamptz", "iso_text", "epoch"]
Reader = Literal["copy", "adbc", "sqlalchemy"]


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
    reader: Reader
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
    doubles: frozenset[str]  # labels of DOUBLE PRECISION columns
    asset: sa.ColumnClause | None = None  # data.asset_col, when the table holds a fleet
    asset_bytes: int = 0  # its width when it is a smallint, integer or bigint; else 0


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


@contextlib.contextmanager
def reusing_connections(kept: KeptConnections | None = None) -> Iterator[None]:
    """Within the block, reads share one fast-path connection and each table's column plan.

    A fleet task reads hundreds of assets' windows from one table: a new ADBC connection
    (~0.1 s) and a catalogue lookup of the columns for each would cost more than the read.
    The connections are closed when the block ends, unless they are ``kept``: then the next
    block given the same :class:`KeptConnections` takes them over (a fleet worker's next
    task of the same run), and :meth:`KeptConnections.close` closes them.
    """
    if kept is None:
        cache = _ReuseCache()
    else:
        cache = _ReuseCache(connections=kept.connections, plans=kept.plans)
    token = _REUSE.set(cache)
    try:
        yield
    finally:
        _REUSE.reset(token)
        if kept is None:
            _close_all(cache.connections)


def _close_all(connections: dict[str, Any]) -> None:
    while connections:
        _, connection = connections.popitem()
        with contextlib.suppress(Exception):
            connection.close()


@dataclass
class KeptConnections:
    """Fast-path connections and column plans that outlive a :func:`reusing_connections`
    block, for the next block of the same reads (the same engine and tables)."""

    connections: dict[str, Any] = field(default_factory=dict)
    plans: dict[tuple[Any, ...], Any] = field(default_factory=dict)

    def close(self) -> None:
        """Close the connections and forget the plans."""
        _close_all(self.connections)
        self.plans.clear()


@dataclass
class _ReuseCache:
    connections: dict[str, Any] = field(default_factory=dict)
    plans: dict[tuple[Any, ...], _Plan] = field(default_factory=dict)
    newest: dict[tuple[Any, ...], Any] = field(default_factory=dict)
    """(table, asset) → its newest sample time, as :func:`newest_time` returns it."""
    expected: dict[tuple[Any, ...], list[_Window]] = field(default_factory=dict)
    """Table → the windows still to be read, in the order they will be asked for."""
    windows: dict[_Window, tuple[pd.DataFrame, Reader]] = field(default_factory=dict)
    """Windows read together ahead of their turn: the raw result of each one's own query,
    and the reader that read it."""
    rows_read: int = 0
    windows_read: int = 0


@dataclass(frozen=True)
class _Window:
    table: tuple[Any, ...]
    asset: Any
    start: dt.datetime | None
    end: dt.datetime | None


_REUSE: contextvars.ContextVar[_ReuseCache | None] = contextvars.ContextVar(
    "extraction_reuse", default=None
)


def _table_key(engine: Engine, data: DataConfig) -> tuple[Any, ...]:
    """What identifies a table's reads within a :func:`reusing_connections` block."""
    return (
        id(engine),
        data.table,
        data.time_col,
        tuple(data.axes),
        data.axis_id_col,
        data.value_col,
        data.asset_col,
    )


def _plan(engine: Engine, target: DatabaseTarget, data: DataConfig) -> _Plan:
    cache = _REUSE.get()
    if cache is None:
        return _new_plan(engine, target, data)
    key = _table_key(engine, data)
    if key not in cache.plans:
        cache.plans[key] = _new_plan(engine, target, data)
    return cache.plans[key]


def _new_plan(engine: Engine, target: DatabaseTarget, data: DataConfig) -> _Plan:
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
    asset_name = (
        None
        if data.asset_col is None
        else _resolve(data.asset_col, available, "data.asset_col", data.table)
    )
    names = [time_name, *sources.values(), *([asset_name] if asset_name else [])]
    table = sa.table(name, *(sa.column(c) for c in dict.fromkeys(names)), schema=schema)
    selected = {label: table.c[source] for label, source in sources.items()}
    doubles = frozenset(
        label for label, source in sources.items() if isinstance(columns[source], sa.Double)
    )
    return _Plan(
        table=table,
        time_kind=time_kind,
        time=table.c[time_name],
        selected=selected,
        doubles=doubles,
        asset=None if asset_name is None else table.c[asset_name],
        asset_bytes=0 if asset_name is None else _integer_bytes(columns[asset_name]),
    )


def _integer_bytes(column_type: sa.types.TypeEngine) -> int:
    """The width of an integer column (``smallint`` 2, ``integer`` 4, ``bigint`` 8); 0 for
    any other type."""
    for kind, width in ((sa.BigInteger, 8), (sa.SmallInteger, 2), (sa.Integer, 4)):
        if isinstance(column_type, kind):
            return width
    return 0


def _bound(value: dt.datetime, kind: TimeKind, name: str) -> sa.BindParameter:
    value = value.astimezone(dt.timezone.utc)  # naive text/timestamp columns hold UTC
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


def _asset_filter(plan: _Plan, asset: Any, suffix: str = "") -> list[sa.ColumnElement]:
    """``asset_col = :asset`` (a bound value) when the table holds a fleet, else nothing.

    Raises:
        ExtractionError: a fleet table read without naming the asset, or an asset given for
            a table without ``data.asset_col``.
    """
    if plan.asset is None:
        if asset is not None:
            raise ExtractionError(
                f"asset {asset!r} given, but data.asset_col is not set for {plan.table.name!r}"
            )
        return []
    if asset is None:
        raise ExtractionError(
            f"table {plan.table.name!r} holds a fleet (data.asset_col); name the asset to read"
        )
    return [plan.asset == sa.bindparam(f"asset{suffix}", asset)]


def _window_filter(
    plan: _Plan,
    start: dt.datetime | None,
    end: dt.datetime | None,
    asset: Any = None,
    suffix: str = "",
) -> list[sa.ColumnElement]:
    """The window's conditions; ``suffix`` tells the bound parameters of several apart."""
    return [*_asset_filter(plan, asset, suffix), *_time_filter(plan, start, end, suffix)]


def _time_filter(
    plan: _Plan, start: dt.datetime | None, end: dt.datetime | None, suffix: str = ""
) -> list[sa.ColumnElement]:
    """A time, within ``[start, end)`` when they are given."""
    time = _comparable(plan, plan.time)
    conditions: list[sa.ColumnElement] = [plan.time.is_not(None)]
    if start is not None:
        bound = _bound(start, plan.time_kind, f"start{suffix}")
        conditions.append(time >= _comparable(plan, bound))
    if end is not None:
        conditions.append(time < _comparable(plan, _bound(end, plan.time_kind, f"end{suffix}")))
    return conditions


def _statement(
    plan: _Plan,
    data: DataConfig,
    start: dt.datetime | None,
    end: dt.datetime | None,
    *,
    nan_for_null: bool = False,
    asset: Any = None,
) -> sa.Select:
    """The window query; ``nan_for_null`` sends NULL in DOUBLE PRECISION columns as NaN.

    NaN is what both readers turn NULL into anyway; sent by the server it spares the fast
    path a NULL-filling copy of every such column (see :func:`_arrow_column`). That costs the
    server ~0.5 s on 10M rows x 8 axes, but the copies would cost the client more: ~1.5 s
    (fresh memory, right after the read, faults in slowly) and 0.5 GiB more at the peak, as
    the read's Arrow buffers are freed together, once no column points into them.
    """

    stmt = sa.select(*_outputs(plan, nan_for_null)).where(*_window_filter(plan, start, end, asset))
    if data.layout == "long":
        stmt = stmt.where(plan.selected[data.axis_id_col].in_(list(data.axes)))
    return stmt.order_by(_comparable(plan, plan.time))


def _outputs(plan: _Plan, nan_for_null: bool) -> list[sa.ColumnElement]:
    """``ts`` and the selected columns, as the window query returns them."""

    def output(label: str, column: sa.ColumnClause) -> sa.ColumnElement:
        if nan_for_null and label in plan.doubles:
            nan = sa.cast(sa.literal("NaN"), postgresql.DOUBLE_PRECISION)
            return sa.func.coalesce(column, nan).label(label)
        return column.label(label)

    return [plan.time.label("ts"), *(output(label, col) for label, col in plan.selected.items())]


_ROWS, _AXES_SEEN = "rows_", "axes_seen_"
"""Extra columns of the pivot query: LONG rows per sample, and a bit mask of their axis ids."""

_MAX_PIVOT_AXES = 62  # bits of the bigint mask


def _pivot_statement(
    plan: _Plan,
    data: DataConfig,
    start: dt.datetime | None,
    end: dt.datetime | None,
    *,
    nan_for_null: bool = False,
    asset: Any = None,
) -> sa.Select:
    """PostgreSQL pivots a LONG window itself: one row per sample, one column per axis.

    ``max(value) FILTER (WHERE axis_id = k)`` per axis, grouped by time. With the row count
    and the bit mask of the axis ids seen per sample, the client can still tell repeated
    (timestamp, axis id) rows and axes without rows apart (see :func:`_pivoted_frame`).
    Measured on 10M samples x 8 axes (80M rows, bench/bench_training.py --long): faster than
    sending the 80M rows and pivoting them in pandas (or NumPy), at a fifth of the memory.
    """
    value, axis_id = plan.selected[data.value_col], plan.selected[data.axis_id_col]
    columns: list[sa.ColumnElement] = [plan.time.label("ts")]
    for k, label in zip(data.axes, data.axis_columns, strict=True):
        aggregate: sa.ColumnElement = sa.func.max(value).filter(axis_id == k)
        if nan_for_null:  # the sample has no row for this axis, or its value is NULL
            aggregate = sa.func.coalesce(
                aggregate, sa.cast(sa.literal("NaN"), postgresql.DOUBLE_PRECISION)
            )
        columns.append(aggregate.label(label))
    bit = sa.case(
        {k: sa.cast(sa.literal(1 << i), sa.BigInteger) for i, k in enumerate(data.axes)},
        value=axis_id,
    )
    columns += [sa.func.count().label(_ROWS), sa.func.bit_or(bit).label(_AXES_SEEN)]
    return (
        sa.select(*columns)
        .where(*_window_filter(plan, start, end, asset), axis_id.in_(list(data.axes)))
        .group_by(plan.time)
        .order_by(plan.time)
    )


def _read_sqlalchemy(engine: Engine, target: DatabaseTarget, stmt: sa.Select) -> pd.DataFrame:
    with database_errors(target, "reading the training window"), engine.connect() as conn:
        return pd.read_sql(stmt, conn, coerce_float=True)


_ADBC_BATCH_BYTES = 1 << 40
"""Batch size hint for ADBC, far above any window: the result arrives as one Arrow chunk.

One chunk per column lets numbers become NumPy arrays without a copy (the driver grows its
buffers with ``realloc`` while rows stream in, so the hint itself allocates nothing). The hint
counts wire bytes (~110 per row of 9 columns), so the default 16 MiB cut 10M rows into ~70
chunks, and joining them cost one more copy of the whole window."""


def _read_adbc(target: DatabaseTarget, stmt: sa.Select) -> pd.DataFrame:
    """PostgreSQL fast path: ADBC streams the result through binary COPY straight into Arrow."""
    return _arrow_frame(_read_arrow(target, stmt))


def _arrow_frame(table: pa.Table) -> pd.DataFrame:
    """An Arrow result as a frame, its numbers without a copy (see :func:`_arrow_column`)."""
    columns = {name: _arrow_column(table.column(name)) for name in table.column_names}
    return pd.DataFrame(columns, copy=False)


_LITERAL_DIALECT = postgresql.dialect(paramstyle="named")
"""PostgreSQL text for a driver that takes no parameters: with the default ``pyformat`` style
SQLAlchemy doubles every ``%`` (``'line%1'`` would be sent as ``'line%%1'``)."""


def _literal_sql(stmt: sa.Select) -> str:
    """``stmt`` as PostgreSQL text with its bound values (the typed, program-computed window
    bounds; the asset, quoted as a string literal) rendered as literals."""
    return str(stmt.compile(dialect=_LITERAL_DIALECT, compile_kwargs={"literal_binds": True}))


def _read_arrow(target: DatabaseTarget, stmt: sa.Select) -> pa.Table:
    """The result of ``stmt`` read through ADBC (see :func:`_read_adbc`)."""
    import adbc_driver_manager
    import adbc_driver_postgresql.dbapi as adbc
    from adbc_driver_postgresql import StatementOptions

    sql = _literal_sql(stmt)
    cache = _REUSE.get()
    try:
        with contextlib.ExitStack() as stack:
            if cache is None:
                conn = stack.enter_context(adbc.connect(target.libpq_uri))
            else:
                if target.libpq_uri not in cache.connections:
                    # Autocommit: no transaction stays open between reads, and a failed read
                    # leaves no aborted one behind for the next asset.
                    cache.connections[target.libpq_uri] = adbc.connect(
                        target.libpq_uri, autocommit=True
                    )
                conn = cache.connections[target.libpq_uri]
            cursor = stack.enter_context(conn.cursor())
            cursor.adbc_statement.set_options(
                **{StatementOptions.BATCH_SIZE_HINT_BYTES.value: str(_ADBC_BATCH_BYTES)}
            )
            cursor.execute(sql)
            table = cursor.fetch_arrow_table()
    except adbc_driver_manager.Error as exc:
        if cache is not None:  # reconnect for the next read rather than reuse a broken one
            broken = cache.connections.pop(target.libpq_uri, None)
            if broken is not None:
                with contextlib.suppress(Exception):
                    broken.close()
        detail = scrub(" ".join(str(exc).split()), target.url)
        raise DatabaseError(
            f"reading the training window ({target.display}) through ADBC failed: {detail}"
        ) from None
    return table


def _fixed_width(plan: _Plan, data: DataConfig) -> bool:
    """Whether a WIDE window's rows all have the same width on the wire (see :mod:`.pgcopy`):
    a timestamp time column and DOUBLE PRECISION axes (their NULL sent as NaN)."""
    return (
        data.layout == "wide"
        and plan.time_kind in ("timestamp", "timestamptz")
        and all(label in plan.doubles for label in plan.selected)
    )


def _read_copy(
    target: DatabaseTarget,
    plan: _Plan,
    data: DataConfig,
    start: dt.datetime | None,
    end: dt.datetime | None,
    asset: Any,
) -> pd.DataFrame | None:
    """The window through :func:`.pgcopy.read_window`; None when it must be read otherwise."""
    from .pgcopy import read_window

    def sql_for(first: dt.datetime | None, last: dt.datetime | None) -> str:
        stmt = _statement(plan, data, first, last, nan_for_null=True, asset=asset)
        return _literal_sql(stmt)

    def range_sql() -> str:
        first_and_last = sa.select(sa.func.min(plan.time), sa.func.max(plan.time))
        return _literal_sql(first_and_last.where(*_window_filter(plan, start, end, asset)))

    return read_window(target, sql_for, range_sql, ["ts", *plan.selected], start, end)


def _numbers_with_nan(column: pa.ChunkedArray) -> np.ndarray:
    """Numbers with NULLs as float64 with NaN: one copy of the values, then NaN where NULL.

    About 25 ms for 10M values, where pyarrow's own conversion takes ~200 ms. (DOUBLE
    PRECISION columns do not come here: the query sends their NULLs as NaN.)
    """
    out = np.empty(len(column), dtype=np.float64)
    position = 0
    for chunk in column.chunks:
        size = len(chunk)
        rows = slice(position, position + size)
        if chunk.null_count == 0:
            out[rows] = chunk.to_numpy()
        elif chunk.null_count == size:
            out[rows] = np.nan
        else:
            validity, data = chunk.buffers()[:2]
            values = np.frombuffer(data, dtype=chunk.type.to_pandas_dtype())
            out[rows] = values[chunk.offset : chunk.offset + size]
            bits = np.unpackbits(np.frombuffer(validity, dtype=np.uint8), bitorder="little")
            missing = ~bits[chunk.offset : chunk.offset + size].view(bool)
            np.copyto(out[rows], np.nan, where=missing)
        position += size
    return out


def _arrow_column(column: pa.ChunkedArray) -> pd.Series:
    """One Arrow column as a Series; zero-copy for a single chunk of numbers without NULLs.

    Numbers become NumPy arrays (NULL → NaN, which makes integers float64, as ``read_sql``
    does); timestamps become ``datetime64[ns]`` (UTC instants for a time zone aware column)
    by integer scaling; anything else goes through pyarrow's own pandas conversion.
    """
    kind = column.type
    if pa.types.is_floating(kind) or pa.types.is_integer(kind):
        if column.null_count:
            return pd.Series(_numbers_with_nan(column), copy=False)
        return pd.Series(column.to_numpy(), copy=False)
    if pa.types.is_timestamp(kind):
        values = pd.Series(column.to_numpy(), copy=False)
        return _as_nanoseconds(values, utc=kind.tz is not None)
    return column.to_pandas()


def _as_nanoseconds(values: pd.Series, *, utc: bool) -> pd.Series:
    """``datetime64`` of any unit as ``datetime64[ns]`` (``[ns, UTC]`` with ``utc``), cheaply.

    Scaling the int64 ticks costs one pass where pandas' unit cast costs ~10; values that do
    not fit nanoseconds (or NaT) are returned unscaled, for pandas to convert or reject.
    """
    if getattr(values.dtype, "tz", None) is not None:
        values, utc = values.dt.tz_convert(None), True
    ticks = values.to_numpy()
    unit, _ = np.datetime_data(ticks.dtype)
    if unit != "ns":
        scale = int(np.timedelta64(1, unit) // np.timedelta64(1, "ns"))
        raw = ticks.view("int64")
        limit = np.iinfo(np.int64).max // scale
        if raw.size and (raw.min() < -limit or raw.max() > limit):
            return values.dt.tz_localize("UTC") if utc else values
        ticks = (raw * scale).view("datetime64[ns]")
    converted = pd.Series(ticks, index=values.index, copy=False)
    return converted.dt.tz_localize("UTC") if utc else converted


_UTC_NANOSECONDS = pd.DatetimeTZDtype("ns", "UTC")


def _to_time(values: pd.Series, kind: TimeKind, where: str) -> pd.Series:
    if values.dtype == _UTC_NANOSECONDS:
        return values  # the fast path delivers this already (see _arrow_column)
    try:
        if kind == "epoch":
            seconds = pd.to_numeric(values).astype("float64")
        elif kind == "iso_text" or not pd.api.types.is_datetime64_any_dtype(values):
            return pd.to_datetime(values, utc=True, format="ISO8601").astype("datetime64[ns, UTC]")
        else:
            return _as_nanoseconds(values, utc=True).astype("datetime64[ns, UTC]")
    except (ValueError, TypeError) as exc:
        raise ExtractionError(f"{where}: timestamps cannot be parsed: {exc}") from None
    return _finite_seconds(seconds, where)


def _finite_seconds(seconds: pd.Series, where: str) -> pd.Series:
    """``seconds`` unchanged; ExtractionError when a time is NaN or infinite.

    SQL's ``IS NOT NULL`` keeps NaN (PostgreSQL sorts it after every number), so such a row
    reaches the frame, where it would pass as a missing or repeated timestamp.
    """
    array = seconds.to_numpy()
    if not array.size or (np.isfinite(array.min()) and np.isfinite(array.max())):
        return seconds  # two reductions, no mask, in the common case
    bad = int(np.count_nonzero(~np.isfinite(array)))
    raise ExtractionError(
        f"{where} holds {bad} rows whose time is NaN or infinite instead of epoch seconds; "
        "give those rows their real time, or set it to NULL (rows without a time are "
        "skipped) or delete them"
    )


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


def _strictly_increasing(ts: pd.Series) -> bool:
    """True when every timestamp is later than the one before: sorted, no duplicates."""
    if isinstance(ts.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(ts):
        values = ts.dt.tz_convert(None) if getattr(ts.dtype, "tz", None) else ts
        ticks = values.to_numpy().view("int64")
    else:
        ticks = ts.to_numpy(dtype="float64")
    return bool(np.all(ticks[1:] > ticks[:-1]))


def _duplicates_error(count: int, what: str, first: object, data: DataConfig) -> ExtractionError:
    return ExtractionError(
        f"{count} rows repeat the {what} of an earlier row in table {data.table!r} "
        f"(first at {first}); set "
        "data.duplicates to 'first', 'last' or 'mean' to resolve them, or fix the source"
    )


def _resolve_duplicates(
    frame: pd.DataFrame, keys: list[str], data: DataConfig
) -> tuple[pd.DataFrame, int]:
    if keys == ["ts"] and _strictly_increasing(frame["ts"]):
        return frame, 0  # one O(n) pass instead of hashing every timestamp
    duplicated = frame.duplicated(keys, keep=False)
    count = int(frame.duplicated(keys).sum())
    if not count:
        return frame, 0
    if data.duplicates == "error":
        first = frame.loc[duplicated, "ts"].iloc[0]
        what = "timestamp" if len(keys) == 1 else "timestamp and axis id"
        raise _duplicates_error(count, what, first, data)
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


def _missing_axes_error(
    missing: list[int], present: list[int], data: DataConfig
) -> ExtractionError:
    return ExtractionError(
        f"LONG axis ids {missing} (data.axes) have no rows in table {data.table!r} in the "
        f"window; ids present: {present}"
    )


def _repeated_rows(raw: pd.DataFrame, data: DataConfig) -> np.ndarray:
    """Per sample of a pivoted window: LONG rows beyond one per axis id (repeats)."""
    seen = raw[_AXES_SEEN].to_numpy(dtype=np.int64)
    distinct = sum((seen >> i) & 1 for i in range(len(data.axes)))
    return raw[_ROWS].to_numpy(dtype=np.int64) - distinct


def _pivoted_frame(
    raw: pd.DataFrame, plan: _Plan, data: DataConfig, allow_missing_axes: bool
) -> pd.DataFrame:
    """Check a window pivoted by the database like :func:`_pivot` checks the client's."""
    seen = int(np.bitwise_or.reduce(raw[_AXES_SEEN].to_numpy(dtype=np.int64)))
    present = [k for i, k in enumerate(data.axes) if seen >> i & 1]
    if len(present) < len(data.axes) and not allow_missing_axes:
        missing = [k for k in data.axes if k not in present]
        raise _missing_axes_error(missing, sorted(int(k) for k in present), data)
    repeated = _repeated_rows(raw, data)
    count = int(repeated.sum())
    if count:  # data.duplicates is "error" here: other rules re-read the rows (extract_window)
        first = _to_time(raw["ts"], plan.time_kind, data.time_col)[repeated > 0].iloc[0]
        raise _duplicates_error(count, "timestamp and axis id", first, data)
    return raw.drop(columns=[_ROWS, _AXES_SEEN])


def _pivot(frame: pd.DataFrame, data: DataConfig, allow_missing_axes: bool) -> pd.DataFrame:
    ids = frame[data.axis_id_col]
    present = set(pd.unique(ids))
    missing = [k for k in data.axes if k not in present]
    if missing and not allow_missing_axes:
        raise _missing_axes_error(missing, sorted(int(k) for k in present), data)
    wide = frame.pivot(index="ts", columns=data.axis_id_col, values=data.value_col)
    wide = wide.reindex(columns=list(data.axes))
    wide.columns = data.axis_columns
    return wide.reset_index().rename_axis(columns=None)


def _in_contract(raw: pd.DataFrame, data: DataConfig) -> bool:
    """Whether a WIDE window is already what :func:`_normalise` makes of it: UTC nanosecond
    times, strictly increasing, float64 axes (the fast readers' common case). Checked on the
    dtypes and one pass over the times: pandas' per-column conversions and checks cost tens
    of microseconds each, as much as the rest of a 10,000-row window's extraction."""
    dtypes = dict(zip(raw.columns, raw.dtypes, strict=True))
    if dtypes.get("ts") != _UTC_NANOSECONDS:
        return False
    if not all(dtypes.get(axis) == np.float64 for axis in data.axis_columns):
        return False
    ticks = raw["ts"].array.asi8
    return bool(np.all(ticks[1:] > ticks[:-1]))


def _normalise(
    raw: pd.DataFrame,
    plan: _Plan,
    data: DataConfig,
    *,
    pivoted: bool = False,
    allow_missing_axes: bool = False,
) -> tuple[pd.DataFrame, int]:
    if not pivoted and data.layout == "wide" and _in_contract(raw, data):
        if list(raw.columns) != ["ts", *data.axis_columns]:
            raw = raw[["ts", *data.axis_columns]]
        if not raw.index.equals(pd.RangeIndex(len(raw))):
            raw = raw.reset_index(drop=True)
        return raw, 0
    frame = _pivoted_frame(raw, plan, data, allow_missing_axes) if pivoted else raw
    where = f"data.time_col {data.time_col!r} of table {data.table!r}"
    frame["ts"] = _to_time(frame["ts"], plan.time_kind, where)
    if data.layout == "wide" or pivoted:
        for axis in data.axis_columns:
            frame[axis] = _to_float(frame[axis], axis, data.table)
        frame, duplicates = _resolve_duplicates(frame, ["ts"], data)
    else:
        frame[data.value_col] = _to_float(frame[data.value_col], data.value_col, data.table)
        frame[data.axis_id_col] = pd.to_numeric(frame[data.axis_id_col]).astype("int64")
        frame, duplicates = _resolve_duplicates(frame, ["ts", data.axis_id_col], data)
        frame = _pivot(frame, data, allow_missing_axes)
    if not frame["ts"].is_monotonic_increasing:
        frame = frame.sort_values("ts", kind="stable", ignore_index=True)
    return frame[["ts", *data.axis_columns]].reset_index(drop=True), duplicates


def _data_range(engine: Engine, target: DatabaseTarget, plan: _Plan, asset: Any = None) -> str:
    stmt = sa.select(sa.func.min(plan.time), sa.func.max(plan.time), sa.func.count())
    stmt = stmt.select_from(plan.table).where(*_asset_filter(plan, asset))
    what = "the table" if asset is None else f"asset {asset!r}"
    with database_errors(target, "reading the table's time range"), engine.connect() as conn:
        first, last, count = conn.execute(stmt).one()
    if not count:
        return f"{what} has no rows" if asset is not None else "the table is empty"
    return f"{what} holds {count} rows from {first} to {last}"


def extract_window(
    engine: Engine,
    target: DatabaseTarget,
    data: DataConfig,
    *,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    fast_path: bool = True,
    allow_missing_axes: bool = False,
    asset: Any = None,
) -> Extraction:
    """Read ``[start, end)`` of the configured table into the frame contract above.

    Args:
        engine: engine connected to ``target``.
        target: the database (dialect, masked URL for messages, URL for the fast path).
        data: the ``data`` config section.
        start: inclusive window start (aware datetime, UTC); None = from the first row.
        end: exclusive window end; None = through the last row.
        fast_path: on PostgreSQL, read by binary COPY (parsed by NumPy, or by ADBC into
            Arrow: see the module docstring).
        allow_missing_axes: LONG only: an axis id without rows in the window becomes an
            all-NaN column (scoring: an axis offline for a while) instead of an error.
        asset: with ``data.asset_col``, the asset to read (``WHERE asset_col = :asset``,
            bound; the value as :func:`list_assets` returns it); None otherwise.

    Returns:
        The extraction: frame, source info and the number of duplicate rows resolved.

    Raises:
        ExtractionError: missing table/column, non-numeric values, duplicates (with
            ``data.duplicates: error``), or unparseable timestamps.
        EmptyWindowError: no rows in the window; the message gives the table's range.
        DatabaseError: the database failed; the message never holds the password.
    """
    plan = _plan(engine, target, data)
    use_adbc = fast_path and target.dialect == "postgresql"

    def read(stmt: sa.Select) -> pd.DataFrame:
        return _read_adbc(target, stmt) if use_adbc else _read_sqlalchemy(engine, target, stmt)

    pivoted = (
        data.layout == "long"
        and target.dialect == "postgresql"
        and len(data.axes) <= _MAX_PIVOT_AXES
    )
    make_statement = _pivot_statement if pivoted else _statement
    reader: Reader = "adbc" if use_adbc else "sqlalchemy"
    ahead = None if pivoted else _read_ahead(engine, target, data, use_adbc, asset, start, end)
    raw = None
    if ahead is not None:
        raw, reader = ahead
    if raw is None and use_adbc and not pivoted and _fixed_width(plan, data):
        # A fleet's windows keep to the block's kept connection: a new connection per
        # window would cost more than the COPY parser saves on it.
        if _REUSE.get() is None:
            raw = _read_copy(target, plan, data, start, end, asset)
        else:
            raw = _read_copy_kept(target, plan, data, start, end, asset)
        reader = "adbc" if raw is None else "copy"
        if raw is not None:
            _count_read(len(raw))
    if raw is None:
        raw = read(make_statement(plan, data, start, end, nan_for_null=use_adbc, asset=asset))
        _count_read(len(raw))
    window = f"[{start or 'first row'}, {end or 'last row'})"
    of_asset = "" if asset is None else f" for asset {asset!r}"
    if raw.empty:
        raise EmptyWindowError(
            f"no rows in table {data.table!r}{of_asset} in the window {window}; "
            f"{_data_range(engine, target, plan, asset)}. Adjust data.train_start/"
            "data.train_end (or --start/--end)"
        )
    if pivoted and data.duplicates != "error" and _repeated_rows(raw, data).any():
        # Repeated (timestamp, axis id) rows to resolve: read the rows themselves (rare).
        pivoted = False
        raw = read(_statement(plan, data, start, end, nan_for_null=use_adbc, asset=asset))
    frame, duplicates = _normalise(
        raw, plan, data, pivoted=pivoted, allow_missing_axes=allow_missing_axes
    )
    source = SourceInfo(
        table=data.table,
        dialect=target.dialect,
        time_kind=plan.time_kind,
        reader=reader,
        layout=data.layout,
    )
    logger.info(
        "extracted %d samples x %d axes from %s%s %s via %s",
        len(frame),
        len(data.axis_columns),
        data.table,
        of_asset,
        window,
        source.reader,
    )
    return Extraction(frame=frame, source=source, duplicates_resolved=duplicates)


READ_AHEAD_ROWS = 250_000
"""Rows read together at most when a fleet task reads its assets' windows ahead (about 20 MB
for 8 axes, ~25 windows of 10,000 samples): a worker's memory follows a few windows, never the
fleet's, while the per-query costs (planning, a round trip, compiling the statement) are paid
once per group instead of once per asset."""

_ASSET_LABEL = "asset__"
"""The asset column in a read-ahead result (split off before each window's frame is made)."""


def expect_windows(
    engine: Engine,
    data: DataConfig,
    windows: list[tuple[Any, dt.datetime | None, dt.datetime | None]],
) -> None:
    """Announce the (asset, start, end) windows that this :func:`reusing_connections` block
    will read with :func:`extract_window`, in that order.

    The windows are then read several at a time, in one query each (``WHERE asset_col IN
    (...)`` or one bound condition per window; values bound, never pasted), as many as fit
    :data:`READ_AHEAD_ROWS` going by the windows read so far (the first alone), and split by
    asset in the client; each :func:`extract_window` call takes its window from there and
    checks it as if it had read it itself. Only WIDE fleet tables; nothing happens outside
    a block. A read-ahead that fails, or whose rows do not all belong to the windows asked
    for (an id the database compares otherwise than Python), is dropped: each window is
    then read on its own, as without this call.
    """
    cache = _REUSE.get()
    if cache is None or data.layout != "wide" or data.asset_col is None:
        return
    key = _table_key(engine, data)
    cache.expected[key] = [_Window(key, asset, start, end) for asset, start, end in windows]


def _count_read(rows: int) -> None:
    cache = _REUSE.get()
    if cache is not None:
        cache.rows_read += rows
        cache.windows_read += 1


def _read_ahead(
    engine: Engine,
    target: DatabaseTarget,
    data: DataConfig,
    use_adbc: bool,
    asset: Any,
    start: dt.datetime | None,
    end: dt.datetime | None,
) -> tuple[pd.DataFrame, Reader] | None:
    """The raw result of this window's query, read ahead with others (see
    :func:`expect_windows`), and the reader that read it; None when it was not announced or
    is read on its own.

    On the fast path, a group of fixed-width rows (:func:`_fixed_width`, an integer asset
    column) arrives by binary COPY as one row of packed columns per asset, parsed by NumPy
    (:func:`_read_group_packed`), ~10x less client CPU than ADBC's decoder; other groups
    through ADBC."""
    cache = _REUSE.get()
    if cache is None or asset is None:
        return None
    key = _table_key(engine, data)
    wanted = _Window(key, asset, start, end)
    if wanted in cache.windows:
        return cache.windows.pop(wanted)
    pending = cache.expected.get(key, [])
    if wanted not in pending:
        return None
    del pending[: pending.index(wanted)]  # windows never asked for (their asset stopped early)
    if not cache.windows_read:
        pending.pop(0)
        return None  # the first window alone, to learn how many rows a window holds
    average = max(cache.rows_read / cache.windows_read, 1.0)
    group = pending[: max(1, int(READ_AHEAD_ROWS // average))]
    del pending[: len(group)]
    if len(group) == 1:
        return None
    plan = _plan(engine, target, data)
    stmt = _read_ahead_statement(plan, group, nan_for_null=use_adbc)
    reader: Reader = "adbc" if use_adbc else "sqlalchemy"
    try:
        parts = None
        if use_adbc and plan.asset_bytes and _fixed_width(plan, data):
            parts = _read_group_packed(target, plan, stmt, group)
        if parts is not None:
            reader = "copy"
        elif use_adbc:
            parts = _split_arrow(_read_arrow(target, stmt), group)
        else:
            parts = _split_frame(_read_sqlalchemy(engine, target, stmt), group)
    except DatabaseError as exc:
        logger.warning("reading %d windows at once failed, each is read alone: %s", len(group), exc)
        return None
    if parts is None:
        logger.info("rows of other asset ids than asked for: each window is read alone")
        return None
    for window, part in parts.items():
        _count_read(len(part))
        cache.windows[window] = part, reader
    return cache.windows.pop(wanted)


def _read_group_packed(
    target: DatabaseTarget, plan: _Plan, stmt: sa.Select, group: list[_Window]
) -> dict[_Window, pd.DataFrame] | None:
    """A read-ahead group's windows by binary COPY on the block's kept connection, one row per
    asset: its id and each column packed into one ``bytea`` (:func:`.pgcopy.copy_packed`:
    ``string_agg`` of each value's binary form). The aggregates of one row take its samples
    in the same order, so the columns line up; they are fed the rows by asset and time (an
    index on the two gives them so, with no sort), and each window is still checked and
    sorted by time in the client, as any window is. None when the rows do not have the fixed
    layout (a time beyond ``datetime64[ns]``), or hold an id not asked for.

    Raises:
        DatabaseError: connecting or reading failed (the connection is dropped).
    """
    from .pgcopy import columns_frame, copy_packed

    labels = ["ts", *plan.selected]
    rows = stmt.order_by(plan.asset, plan.time).subquery("rows_")
    asset = rows.c[_ASSET_LABEL]
    # timestamp_send / timestamptz_send: int64 microseconds since 2000, as a COPY sends the
    # column; float8send: the (NaN for NULL) value. Neither is NULL here (the time is filtered
    # IS NOT NULL, the values coalesced), and string_agg would skip a NULL: so a column's
    # bytes hold exactly one value per row.
    send = sa.func.timestamptz_send if plan.time_kind == "timestamptz" else sa.func.timestamp_send
    empty = sa.cast(sa.literal(""), sa.LargeBinary)
    packed = [sa.func.string_agg(send(rows.c["ts"]), empty)] + [
        sa.func.string_agg(sa.func.float8send(rows.c[label]), empty) for label in plan.selected
    ]
    grouped = sa.select(asset, *packed)
    sql = _literal_sql(grouped.group_by(asset))
    found = _on_kept_copy_connection(
        target, "the training windows", lambda conn: copy_packed(conn, sql, len(labels))
    )
    if found is None:
        logger.info("the windows do not have the fixed COPY layout: read through ADBC")
        return None
    by_asset = {window.asset: window for window in group}
    columns: dict[_Window, list[np.ndarray]] = {}
    for key, values in found:
        window = by_asset.get(key)
        if window is None or window in columns:
            return None
        columns[window] = values
    empty_columns = [np.empty(0, dtype=np.int64)] + [np.empty(0) for _ in plan.selected]
    return {
        window: columns_frame(labels, [columns.get(window, list(empty_columns))])
        for window in group
    }


def _read_copy_kept(
    target: DatabaseTarget,
    plan: _Plan,
    data: DataConfig,
    start: dt.datetime | None,
    end: dt.datetime | None,
    asset: Any,
) -> pd.DataFrame | None:
    """A window read on its own within a :func:`reusing_connections` block, by binary COPY on
    the block's kept connection (:func:`.pgcopy.read_small_window`); None when it must be
    read otherwise (estimated at :data:`.pgcopy.SPLIT_ROWS` rows or more, or not of the
    fixed layout).

    Raises:
        DatabaseError: connecting or reading failed (the connection is dropped).
    """
    from .pgcopy import read_small_window

    sql = _literal_sql(_statement(plan, data, start, end, nan_for_null=True, asset=asset))
    labels = ["ts", *plan.selected]
    return _on_kept_copy_connection(
        target, "the training window", lambda conn: read_small_window(conn, sql, labels)
    )


_T = TypeVar("_T")


def _on_kept_copy_connection(target: DatabaseTarget, what: str, read: Callable[[Any], _T]) -> _T:
    """``read`` on the :func:`reusing_connections` block's psycopg2 connection to ``target``
    (autocommit, read-only; opened on first use, closed with the block's others).

    Raises:
        DatabaseError: connecting or reading failed; the connection is dropped, so the next
            read opens a new one.
    """
    import psycopg2

    from .pgcopy import tune_session

    cache = _REUSE.get()
    assert cache is not None
    key = "copy:" + target.libpq_uri
    try:
        if key not in cache.connections:
            conn = psycopg2.connect(target.libpq_uri)
            tune_session(conn)
            conn.set_session(readonly=True, autocommit=True)
            cache.connections[key] = conn
        return read(cache.connections[key])
    except psycopg2.Error as exc:
        broken = cache.connections.pop(key, None)
        if broken is not None:
            with contextlib.suppress(Exception):
                broken.close()
        detail = scrub(" ".join(str(exc).split()), target.url)
        raise DatabaseError(
            f"reading {what} ({target.display}) through COPY failed: {detail}"
        ) from None


def _read_ahead_statement(plan: _Plan, group: list[_Window], *, nan_for_null: bool) -> sa.Select:
    """The windows of ``group`` in one query, with each row's asset; unordered (each window
    is checked and sorted in the client, as any window is)."""
    assert plan.asset is not None
    first = group[0]
    if all((w.start, w.end) == (first.start, first.end) for w in group):
        ids = sa.bindparam("assets", [w.asset for w in group], expanding=True)
        conditions = [plan.asset.in_(ids), *_time_filter(plan, first.start, first.end)]
    else:
        conditions = [
            sa.or_(
                *(
                    sa.and_(*_window_filter(plan, w.start, w.end, w.asset, suffix=f"_{number}"))
                    for number, w in enumerate(group)
                )
            )
        ]
    columns = [*_outputs(plan, nan_for_null), plan.asset.label(_ASSET_LABEL)]
    return sa.select(*columns).where(*conditions)


def _asset_runs(
    ids: np.ndarray, group: list[_Window]
) -> tuple[np.ndarray | None, dict[_Window, slice]] | None:
    """Where each window's rows are: the row order to take (None: as they are) and a slice
    of it per window; None when a row's id is none of the group's."""
    order = None
    if ids.size:
        change = np.flatnonzero(ids[1:] != ids[:-1]) + 1
        if len(set(ids[np.r_[0, change]].tolist())) != change.size + 1:  # an id in two runs
            order = np.argsort(ids, kind="stable")
            ids = ids[order]
            change = np.flatnonzero(ids[1:] != ids[:-1]) + 1
        bounds = [0, *change.tolist(), ids.size]
    else:
        bounds = [0]
    by_asset = {window.asset: window for window in group}
    slices = {window: slice(0, 0) for window in group}
    for lo, hi in itertools.pairwise(bounds):
        window = by_asset.get(ids[lo].item() if isinstance(ids[lo], np.generic) else ids[lo])
        if window is None:
            return None
        slices[window] = slice(lo, hi)
    return order, slices


def _split_arrow(table: pa.Table, group: list[_Window]) -> dict[_Window, pd.DataFrame] | None:
    """A read-ahead result of the fast path cut into each window's frame (zero-copy slices)."""
    ids = table.column(_ASSET_LABEL).to_numpy(zero_copy_only=False)
    found = _asset_runs(ids, group)
    if found is None:
        return None
    order, slices = found
    table = table.drop_columns([_ASSET_LABEL])
    if order is not None:
        table = table.take(order)
    return {
        window: _arrow_frame(table.slice(rows.start, rows.stop - rows.start))
        for window, rows in slices.items()
    }


def _split_frame(frame: pd.DataFrame, group: list[_Window]) -> dict[_Window, pd.DataFrame] | None:
    """A read-ahead result of the generic path cut into each window's frame."""
    found = _asset_runs(frame[_ASSET_LABEL].to_numpy(), group)
    if found is None:
        return None
    order, slices = found
    frame = frame.drop(columns=[_ASSET_LABEL])
    if order is not None:
        frame = frame.iloc[order]
    return {window: frame.iloc[rows].reset_index(drop=True) for window, rows in slices.items()}


def _neighbour_time(
    engine: Engine,
    target: DatabaseTarget,
    data: DataConfig,
    anchor: dt.datetime,
    samples: int,
    *,
    forward: bool,
    asset: Any = None,
) -> dt.datetime | float | None:
    """The ``samples``-th distinct sample time before ``anchor`` (or at/after it, ``forward``)."""
    if samples <= 0:
        return None
    plan = _plan(engine, target, data)
    nearest = _nearest_times(plan, data, anchor, samples, forward, asset).subquery()
    with database_errors(target, "reading the rows next to the window"), engine.connect() as conn:
        rows = conn.execute(sa.select(nearest.c.ts)).scalars().all()
    return _neighbour_value(plan, data, rows, samples, forward)


def _nearest_times(
    plan: _Plan,
    data: DataConfig,
    anchor: dt.datetime,
    samples: int,
    forward: bool,
    asset: Any,
    suffix: str = "",
) -> sa.Select:
    """The ``samples`` distinct sample times nearest to ``anchor`` on one side of it."""
    time = _comparable(plan, plan.time)
    bound = _comparable(plan, _bound(anchor, plan.time_kind, f"anchor{suffix}"))
    condition = time >= bound if forward else time < bound
    condition = sa.and_(condition, *_asset_filter(plan, asset, suffix))
    if data.layout == "long":  # the same rows as the window reads: only configured axes
        condition = condition & plan.selected[data.axis_id_col].in_(list(data.axes))
    return (
        sa.select(plan.time.label("ts"))
        .where(plan.time.is_not(None), condition)
        .distinct()
        .order_by(time.asc() if forward else time.desc())
        .limit(samples)
    )


def _neighbour_value(
    plan: _Plan, data: DataConfig, rows: Sequence[Any], samples: int, forward: bool
) -> dt.datetime | float | None:
    """:func:`_neighbour_time`'s answer from the rows of :func:`_nearest_times`."""
    if len(rows) < (samples if forward else 1):
        return None
    found = _to_time(pd.Series(rows), plan.time_kind, data.time_col)
    value = found.max() if forward else found.min()
    return float(value) if plan.time_kind == "epoch" else value.to_pydatetime()


def neighbour_times(
    engine: Engine,
    target: DatabaseTarget,
    data: DataConfig,
    requests: Sequence[tuple[Any, dt.datetime, int, bool]],
) -> list[dt.datetime | float | None]:
    """:func:`lookback_start` (``forward`` False) or :func:`lookahead_end` (True) of each
    ``(asset, anchor, samples, forward)`` of ``requests``, in one statement (``UNION ALL`` of
    each one's own query, values bound): a fleet's score task asks for its assets' windows
    together instead of one round trip each. The answers equal the single calls'.

    Raises:
        DatabaseError: the database failed.
    """
    answers: list[dt.datetime | float | None] = [None] * len(requests)
    asked = [number for number, request in enumerate(requests) if request[2] > 0]
    if not asked:
        return answers
    plan = _plan(engine, target, data)
    parts = []
    for number in asked:
        asset, anchor, samples, forward = requests[number]
        nearest = _nearest_times(plan, data, anchor, samples, forward, asset, f"_{number}")
        nearest = nearest.subquery(f"nearest_{number}")
        parts.append(sa.select(sa.literal(number, sa.Integer).label("request"), nearest.c.ts))
    rows: dict[int, list[Any]] = {number: [] for number in asked}
    with database_errors(target, "reading the rows next to the windows"), engine.connect() as c:
        for number, ts in c.execute(sa.union_all(*parts)):
            rows[number].append(ts)
    for number in asked:
        _, _, samples, forward = requests[number]
        answers[number] = _neighbour_value(plan, data, rows[number], samples, forward)
    return answers


def lookback_start(
    engine: Engine,
    target: DatabaseTarget,
    data: DataConfig,
    before: dt.datetime,
    samples: int,
    *,
    asset: Any = None,
) -> dt.datetime | float | None:
    """Time of the ``samples``-th distinct sample before ``before`` (start of a look-back).

    Returns None when there is nothing before ``before`` or ``samples`` is 0; with fewer
    samples available, the earliest one. The value has the time column's own kind (aware
    datetime, or float epoch seconds). ``asset``: as in :func:`extract_window`.
    """
    return _neighbour_time(engine, target, data, before, samples, forward=False, asset=asset)


def lookahead_end(
    engine: Engine,
    target: DatabaseTarget,
    data: DataConfig,
    after: dt.datetime,
    samples: int,
    *,
    asset: Any = None,
) -> dt.datetime | float | None:
    """Time of the ``samples``-th distinct sample at or after ``after`` (end of a look-ahead).

    Returns None when fewer than ``samples`` samples exist from ``after`` on, or ``samples``
    is 0. Reading ``[.., that time]`` inclusive covers exactly ``samples`` rows past ``after``.
    ``asset``: as in :func:`extract_window`.
    """
    return _neighbour_time(engine, target, data, after, samples, forward=True, asset=asset)


def newest_time(
    engine: Engine, target: DatabaseTarget, data: DataConfig, *, asset: Any = None
) -> dt.datetime | float | None:
    """Time of the newest sample of the table (of ``asset`` with ``data.asset_col``).

    Relative window bounds (``-30d``) count from it. None when there is no row. The value
    has the time column's own kind (aware UTC datetime, or float epoch seconds).
    """
    plan = _plan(engine, target, data)
    cache = _REUSE.get()
    known = (_table_key(engine, data), asset)
    if cache is not None and known in cache.newest:
        value = cache.newest[known]
    else:
        conditions = [plan.time.is_not(None), *_asset_filter(plan, asset)]
        newest = sa.select(plan.time).where(*conditions, *_configured_axes(plan, data))
        newest = newest.order_by(_comparable(plan, plan.time).desc()).limit(1)
        with database_errors(target, "reading the newest sample"), engine.connect() as conn:
            value = conn.execute(newest).scalar_one_or_none()
    if value is None:
        return None
    if (
        plan.time_kind in ("timestamp", "timestamptz")
        and isinstance(value, dt.datetime)
        and _NS_YEARS[0] <= value.year <= _NS_YEARS[1]
    ):  # what the conversion below gives, without a Series for one value
        if value.tzinfo is None:  # a naive column holds UTC
            return value.replace(tzinfo=dt.timezone.utc)
        return value.astimezone(dt.timezone.utc)
    found = _to_time(pd.Series([value]), plan.time_kind, data.time_col).iloc[0]
    return float(found) if plan.time_kind == "epoch" else found.to_pydatetime()


_NS_YEARS = (1678, 2261)
"""Years whose every instant ``datetime64[ns]`` holds."""


def newest_times(
    engine: Engine, target: DatabaseTarget, data: DataConfig, assets: list[Any]
) -> None:
    """Read the newest sample time of each of ``assets`` in one statement (``max`` each), for
    the :func:`newest_time` calls of the same :func:`reusing_connections` block.

    Nothing happens outside a block, without ``data.asset_col``, or for ISO-8601 text times
    (SQLite: compared as time, not as text, by :func:`newest_time`'s own query).

    Raises:
        DatabaseError: the database failed.
    """
    cache = _REUSE.get()
    if cache is None or data.asset_col is None or not assets:
        return
    plan = _plan(engine, target, data)
    if plan.time_kind == "iso_text" or plan.asset is None:
        return
    # One max() subquery per asset: with an index on (asset, time) each is one index probe.
    newest = [
        sa.select(sa.func.max(plan.time))
        .where(
            plan.time.is_not(None),
            *_asset_filter(plan, asset, f"_{number}"),
            *_configured_axes(plan, data),
        )
        .scalar_subquery()
        .label(f"newest_{number}")
        for number, asset in enumerate(assets)
    ]
    with database_errors(target, "reading the newest samples"), engine.connect() as conn:
        found = conn.execute(sa.select(*newest)).one()
    key = _table_key(engine, data)
    cache.newest.update({(key, asset): value for asset, value in zip(assets, found, strict=True)})


def _configured_axes(plan: _Plan, data: DataConfig) -> list[sa.ColumnElement]:
    """LONG: only the rows of the configured axis ids count (as the window reads them)."""
    if data.layout != "long":
        return []
    return [plan.selected[data.axis_id_col].in_(list(data.axes))]


def list_assets(engine: Engine, target: DatabaseTarget, data: DataConfig) -> list[Any]:
    """The distinct values of ``data.asset_col``, ordered (``SELECT DISTINCT``), NULL left out.

    The values keep the column's own type (int, text), so they bind back exactly.

    Raises:
        ExtractionError: ``data.asset_col`` is not set, or the table or column is missing.
        DatabaseError: the database failed.
    """
    plan = _plan(engine, target, data)
    if plan.asset is None:
        raise ExtractionError("data.asset_col is not set: the table is one machine")
    stmt = sa.select(plan.asset).where(plan.asset.is_not(None)).distinct().order_by(plan.asset)
    with database_errors(target, f"listing the assets of {data.table!r}"), engine.connect() as c:
        if target.dialect == "postgresql" and _leads_an_index(c, data, plan.asset.name):
            stmt = _skip_scan(plan.asset)
        return list(c.execute(stmt).scalars().all())


def _leads_an_index(conn: sa.Connection, data: DataConfig, column: str) -> bool:
    """Whether an index of ``data.table`` starts with ``column``, a number or text column
    (``min`` and ``>`` order them as ``ORDER BY`` does; not every type has a ``min``)."""
    schema, name = split_table_name(data.table)
    inspector = sa.inspect(conn)
    kinds = {c["name"]: c["type"] for c in inspector.get_columns(name, schema=schema)}
    if not isinstance(kinds.get(column), (sa.Integer, sa.Numeric, sa.String)):
        return False
    indexes = inspector.get_indexes(name, schema=schema)
    return any((index.get("column_names") or [None])[0] == column for index in indexes)


def _skip_scan(column: sa.ColumnClause) -> sa.Select:
    """The distinct non-NULL values of ``column``, ordered, one index probe each (a recursive
    ``min(column) ... WHERE column > previous``): a fleet table of 10 M rows lists its 1,000
    assets in milliseconds instead of a ``SELECT DISTINCT`` over every row (about a second).
    The same values, compared and ordered as ``SELECT DISTINCT ... ORDER BY`` does."""
    table = column.table
    assert table is not None
    found = (
        sa.select(sa.func.min(column).label("value"))
        .where(column.is_not(None))
        .cte("assets", recursive=True)
    )
    following = sa.select(sa.func.min(column)).where(column > found.c.value).scalar_subquery()
    found = found.union_all(sa.select(following).where(found.c.value.is_not(None)))
    return sa.select(found.c.value).where(found.c.value.is_not(None)).order_by(found.c.value)
