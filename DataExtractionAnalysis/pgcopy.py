"""PostgreSQL binary ``COPY ... TO STDOUT`` of a window of fixed-width columns, parsed by NumPy.

The fast path for the common table: a ``timestamp``/``timestamptz`` time column and
``DOUBLE PRECISION`` axes (NULL sent as NaN by the query, so every row has the same width).
Every row of such a COPY is 2 + 9 × (4 + 8) bytes for 8 axes, so the rows are a NumPy record
array over the received bytes: checking and converting them is a few passes over cache-sized
blocks (~0.1 µs a row), where ADBC's general row-by-row decoder costs the client ~0.85 µs a
row. On 10 M × 8 that is ~3 CPU seconds instead of ~8.5 for the client, so the database's own
work is the limit again.

A large window is read as :data:`PARTS` consecutive time ranges over :data:`THREADS`
connections at once: on the 2-core benchmark machine, the database's work for one part
overlaps the client's for another. The parts are cut at equal time steps (half-open, so a
timestamp falls in exactly one; an open end stays open), each sorted by the database, all
read in one exported snapshot; joined in order they are the window as one query gives it.

A fleet's read-ahead group (the windows of many assets in one query) comes as one row per
asset, its id and each column packed into one ``bytea`` (:func:`copy_packed`): the driver hands
every COPY row to Python on its own, so 25 rows of packed columns cost the client a fraction
of 250,000 rows of samples. A packed column is the column's values' own binary form one after
the other (``string_agg(float8send(v), '')``): 8 bytes a value, where an ``array_agg`` array
sends 12 (each element's length too) — a third less for the server to send and the client to
receive, and one ``frombuffer`` per column.

Anything that does not fit the fixed layout (a NULL where NaN was expected, a timestamp that
is ``infinity`` or outside pandas' nanosecond range) makes :func:`read_window` return None,
and the caller reads the window the general way.
"""

from __future__ import annotations

import datetime as dt
import io
import itertools
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from Database import DatabaseError, DatabaseTarget, scrub

__all__ = [
    "BULK_READ_SETTINGS",
    "PARTS",
    "SPLIT_ROWS",
    "THREADS",
    "columns_frame",
    "copy_columns",
    "copy_packed",
    "parse_copy",
    "parse_packed_copy",
    "read_small_window",
    "read_window",
    "tune_session",
]

logger = logging.getLogger(__name__)

PARTS = 4
"""Time ranges a large window is read in (each buffered whole before it is parsed: 4 parts
keep the received bytes of at most two, ~0.55 GB for 10 M × 8, in memory at once)."""
THREADS = 2
"""Connections reading parts at once: the database works on one while the client parses
another; more only queue on a 2-core machine."""
SPLIT_ROWS = 1_000_000
"""Rows (the planner's estimate) from which a window is read in parts; below it, one query
on one connection (the extra connections would cost more than they save)."""

BULK_READ_SETTINGS = (("jit", "off"), ("max_parallel_workers_per_gather", "0"))
"""Session settings of the COPY readers' own connections. Their queries are range scans
streamed whole to one client: JIT compilation (~20 ms a query once the planner's cost passes
``jit_above_cost``) and parallel workers (two processes started per query, on a machine whose
cores the pipeline already keeps busy) cost the server more CPU than they save. Measured on
the fleet bench's 250,000-row read-ahead query: 313 -> 190 ms of server CPU; on a 2.5 M-row
part of a large window: no difference. A server without a setting (before PostgreSQL 11 has
no ``jit``) keeps its default."""

_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
_TRAILER = b"\xff\xff"
_BLOCK_ROWS = 8192
"""Rows checked and converted together: the block (~0.9 MB for 8 axes) stays in cache across
the per-column passes."""
_PG_EPOCH_US = 946_684_800_000_000
"""2000-01-01T00:00:00Z (PostgreSQL's timestamp origin) in microseconds since 1970."""
_NS_MAX_US = np.iinfo(np.int64).max // 1000 - _PG_EPOCH_US
_NS_MIN_US = -(np.iinfo(np.int64).max // 1000) - _PG_EPOCH_US
"""Microseconds since 2000 within which a time fits ``datetime64[ns]`` (1677-2262)."""


def tune_session(conn: Any) -> None:
    """Apply :data:`BULK_READ_SETTINGS` to a new psycopg2 connection's session (each one in
    autocommit, so a setting the server does not know fails alone); the connection is left in
    autocommit, with no transaction open."""
    import psycopg2

    conn.autocommit = True
    with conn.cursor() as cursor:
        for name, value in BULK_READ_SETTINGS:
            try:
                cursor.execute(f"SET {name} = {value}")  # constants of this module only
            except psycopg2.Error as exc:
                logger.debug("the server keeps its %s: %s", name, exc)


def _row_type(columns: int) -> np.dtype:
    """A binary COPY row: field count, then (length, big-endian value) per column; the first
    column is the time (int64 microseconds since 2000), the others float64."""
    fields: list[tuple[str, str]] = [("count", ">i2")]
    for k in range(columns):
        fields += [(f"len{k}", ">i4"), (f"val{k}", ">i8" if k == 0 else ">f8")]
    return np.dtype(fields)


_PACKED = (np.dtype(">i8"), np.dtype(">f8"))
"""A packed column's values on the wire (big-endian): the time's (microseconds since 2000),
then a value's."""


def _body(data: memoryview | bytes) -> memoryview:
    """The rows of a binary COPY stream (after the header and its extension, before the
    trailer).

    Raises:
        ValueError: the bytes are not a binary COPY at all (no signature or trailer).
    """
    view = memoryview(data).cast("B")
    if bytes(view[: len(_SIGNATURE)]) != _SIGNATURE or bytes(view[-2:]) != _TRAILER:
        raise ValueError("not a PostgreSQL binary COPY stream (signature or trailer missing)")
    head = len(_SIGNATURE)  # then 4 bytes of flags and the 4-byte length of an extension
    start = head + 8 + int.from_bytes(view[head + 4 : head + 8], "big")
    return view[start:-2]


def _to_nanoseconds(ticks: np.ndarray) -> bool:
    """Turn microseconds since 2000 into nanoseconds since 1970, in place; False (and
    ``ticks`` unusable) when one is 'infinity', '-infinity' or beyond 1677-2262."""
    if ticks.size and (ticks.min() < _NS_MIN_US or ticks.max() > _NS_MAX_US):
        return False
    ticks += _PG_EPOCH_US
    ticks *= 1000
    return True


def parse_copy(data: memoryview | bytes, columns: int) -> list[np.ndarray] | None:
    """The columns of a binary COPY of a time column and ``columns - 1`` float64 columns.

    Returns:
        ``[time, value, ...]``: the time as int64 nanoseconds since 1970 (UTC), the values
        as float64; None when the bytes are not such rows (a NULL, another width, a time that
        ``datetime64[ns]`` cannot hold).

    Raises:
        ValueError: the bytes are not a binary COPY at all (no signature or trailer).
    """
    body = _body(data)
    row = _row_type(columns)
    if len(body) % row.itemsize:
        return None
    rows = np.frombuffer(body, dtype=row)
    out = [np.empty(len(rows), dtype=np.int64 if k == 0 else np.float64) for k in range(columns)]
    for first in range(0, len(rows), _BLOCK_ROWS):
        block = rows[first : first + _BLOCK_ROWS]
        if not (block["count"] == columns).all():
            return None
        for k in range(columns):
            if not (block[f"len{k}"] == 8).all():
                return None
            out[k][first : first + len(block)] = block[f"val{k}"]
    return out if _to_nanoseconds(out[0]) else None


def parse_packed_copy(
    data: memoryview | bytes, columns: int
) -> list[tuple[int, list[np.ndarray]]] | None:
    """The rows of a binary COPY of an integer key and ``columns`` packed columns of the same
    length: the time's ``timestamp[tz]_send`` values, then float64 ``float8send`` values, each
    column's concatenated into one ``bytea`` (a window's rows per asset, see
    :func:`copy_packed`).

    Returns:
        Per row, its key and ``[time, value, ...]`` as :func:`parse_copy` gives them; None
        when a row is not of that layout (a NULL key or column, other widths, columns of
        different lengths, a time that ``datetime64[ns]`` cannot hold).

    Raises:
        ValueError: the bytes are not a binary COPY at all (no signature or trailer).
    """
    body = _body(data)
    found: list[tuple[int, list[np.ndarray]]] = []
    at, size = 0, len(body)
    while at < size:
        if at + 6 > size:
            return None
        count = int.from_bytes(body[at : at + 2], "big", signed=True)
        width = int.from_bytes(body[at + 2 : at + 6], "big", signed=True)
        if count != columns + 1 or width not in (2, 4, 8) or at + 6 + width > size:
            return None
        key = int.from_bytes(body[at + 6 : at + 6 + width], "big", signed=True)
        at += 6 + width
        values: list[np.ndarray] = []
        for k in range(columns):
            length = int.from_bytes(body[at : at + 4], "big", signed=True)
            # A NULL column is -1; a packed one holds whole 8-byte values, as many as the
            # time column (the first) holds.
            if length < 0 or length % 8 or at + 4 + length > size:
                return None
            if values and length != values[0].size * 8:
                return None
            packed = np.frombuffer(body, dtype=_PACKED[min(k, 1)], count=length // 8, offset=at + 4)
            values.append(packed.astype(np.int64 if k == 0 else np.float64))
            at += 4 + length
        if len(values) != columns or not _to_nanoseconds(values[0]):
            return None
        found.append((key, values))
    return found


def copy_columns(conn: Any, sql: str, columns: int) -> list[np.ndarray] | None:
    """``sql`` (literal SQL) read by binary COPY on ``conn`` (a psycopg2 connection) and
    parsed by :func:`parse_copy`; None when the rows do not have its fixed layout.

    Raises:
        psycopg2.Error: the read failed.
    """
    return _copied(conn, sql, lambda data: parse_copy(data, columns))


def copy_packed(conn: Any, sql: str, columns: int) -> list[tuple[int, list[np.ndarray]]] | None:
    """``sql`` (literal SQL: an integer key and ``columns`` packed columns per row) read by
    binary COPY on ``conn`` and parsed by :func:`parse_packed_copy`; None when the rows do not
    have its layout.

    One row per asset instead of one per sample: the driver hands every COPY row to Python
    on its own (~0.25 µs each), so a read-ahead group of 250,000 samples cost ~60 ms of the
    client's CPU as rows, ~12 ms as 25 rows of packed columns (0.05 s measured per 100
    assets), for the same work of the server.

    Raises:
        psycopg2.Error: the read failed.
    """
    return _copied(conn, sql, lambda data: parse_packed_copy(data, columns))


_Parsed = TypeVar("_Parsed")


def _copied(conn: Any, sql: str, parse: Callable[[memoryview], _Parsed | None]) -> _Parsed | None:
    """``parse`` of what ``COPY (sql) TO STDOUT (FORMAT binary)`` sends; None when it is not a
    binary COPY stream."""
    received = io.BytesIO()
    with conn.cursor() as cursor:
        cursor.copy_expert(f"COPY ({sql}) TO STDOUT (FORMAT binary)", received)
    with received.getbuffer() as data:
        try:
            return parse(data)
        except ValueError:
            return None


def _cuts(
    low: dt.datetime, high: dt.datetime, start: dt.datetime | None, end: dt.datetime | None
) -> list[tuple[dt.datetime | None, dt.datetime | None]]:
    """``[start, end)`` as :data:`PARTS` consecutive ranges, cut at equal steps of ``[low,
    high]`` (the window's first and last time); the outer ends stay ``start`` and ``end``
    (None = open), so no row falls outside the parts."""
    if high <= low:
        return [(start, end)]
    inner = [low + (high - low) * k / PARTS for k in range(1, PARTS)]
    return list(itertools.pairwise([start, *inner, end]))


def _utc(value: Any) -> dt.datetime | None:
    """A time the driver returned, as an aware UTC datetime (a naive one holds UTC)."""
    if not isinstance(value, dt.datetime):
        return None
    return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value


def read_window(
    target: DatabaseTarget,
    sql_for: Callable[[dt.datetime | None, dt.datetime | None], str],
    range_sql: Callable[[], str],
    labels: Sequence[str],
    start: dt.datetime | None,
    end: dt.datetime | None,
) -> pd.DataFrame | None:
    """The window ``[start, end)`` as a frame ``ts`` (``datetime64[ns, UTC]``) + ``labels[1:]``.

    A window the planner estimates at :data:`SPLIT_ROWS` rows or more is cut into
    :data:`PARTS` time ranges (at equal steps between its first and last time when an end is
    open) read over :data:`THREADS` connections, all in one snapshot: the first connection
    exports its ``REPEATABLE READ`` snapshot and every part imports it, so rows written
    meanwhile change no part. Where a snapshot cannot be exported (a standby), the window is
    read as one part.

    Args:
        target: a PostgreSQL database.
        sql_for: the SELECT of ``[a, b)`` (literal SQL: COPY takes no parameters), sorted by
            time, its columns ``labels``: the time, then DOUBLE PRECISION values without NULL.
        range_sql: the SELECT of the window's first and last time (one row, two columns);
            built only when a large window has an open end.
        labels: the output columns, ``"ts"`` first.
        start, end: the window; None = open.

    Returns:
        The frame, or None when a part did not have the fixed layout (see :func:`parse_copy`).

    Raises:
        DatabaseError: connecting or reading failed; the message never holds the password.
    """
    import psycopg2

    def connect() -> Any:
        conn = psycopg2.connect(target.libpq_uri)
        tune_session(conn)
        conn.set_session(isolation_level="REPEATABLE READ", readonly=True, autocommit=False)
        return conn

    whole_sql = sql_for(start, end)

    def plan(conn: Any) -> tuple[list[tuple[dt.datetime | None, dt.datetime | None]], str]:
        """The parts, and the snapshot they are read in ("" for one part)."""
        whole = [(start, end)]
        with conn.cursor() as cursor:
            cursor.execute("EXPLAIN (FORMAT JSON) " + whole_sql)
            if float(cursor.fetchone()[0][0]["Plan"]["Plan Rows"]) < SPLIT_ROWS:
                return whole, ""
            low, high = start, end
            if low is None or high is None:
                cursor.execute(range_sql())
                first_time, last_time = (_utc(value) for value in cursor.fetchone())
                low, high = low or first_time, high or last_time
            if low is None or high is None:
                return whole, ""
            try:
                cursor.execute("SELECT pg_export_snapshot()")
            except psycopg2.Error as exc:
                logger.info("no snapshot to share (%s): the window is read as one part", exc)
                conn.rollback()
                return whole, ""
            return _cuts(low, high, start, end), cursor.fetchone()[0]

    def read(sql: str, snapshot: str, conn: Any = None) -> list[np.ndarray] | None:
        with closing(conn or connect()) as own:
            if snapshot:
                with own.cursor() as cursor:
                    cursor.execute("SET TRANSACTION SNAPSHOT %s", (snapshot,))
            return copy_columns(own, sql, len(labels))

    try:
        with closing(connect()) as first:
            parts, snapshot = plan(first)
            if len(parts) == 1:
                results = [read(whole_sql, "", first)]
            else:
                queries = [sql_for(*bounds) for bounds in parts]
                # The first connection holds the exported snapshot until every part is read.
                pool = ThreadPoolExecutor(THREADS, thread_name_prefix="copy")
                try:
                    futures = [pool.submit(read, sql, snapshot) for sql in queries]
                    results = [future.result() for future in futures]
                finally:  # a failed part: the parts not yet started are not read
                    pool.shutdown(wait=True, cancel_futures=True)
    except psycopg2.Error as exc:
        detail = scrub(" ".join(str(exc).split()), target.url)
        raise DatabaseError(
            f"reading the window ({target.display}) through COPY failed: {detail}"
        ) from None
    if any(result is None for result in results):
        logger.info("the window does not have the fixed COPY layout: read the general way")
        return None
    return columns_frame(labels, results)


def read_small_window(conn: Any, sql: str, labels: Sequence[str]) -> pd.DataFrame | None:
    """The window of ``sql`` (as for :func:`read_window`) in one COPY on ``conn``, a kept
    psycopg2 connection, when the planner estimates it under :data:`SPLIT_ROWS` rows.

    Returns:
        The frame as :func:`read_window` gives it; None when the window is estimated larger
        (its parts want their own connections) or the rows do not have the fixed layout.

    Raises:
        psycopg2.Error: the read failed.
    """
    with conn.cursor() as cursor:
        cursor.execute("EXPLAIN (FORMAT JSON) " + sql)
        if float(cursor.fetchone()[0][0]["Plan"]["Plan Rows"]) >= SPLIT_ROWS:
            return None
    columns = copy_columns(conn, sql, len(labels))
    return None if columns is None else columns_frame(labels, [columns])


def columns_frame(labels: Sequence[str], results: list[list[np.ndarray]]) -> pd.DataFrame:
    """The parts' columns (:func:`parse_copy`) joined in order, as a frame ``labels``.

    Built from the arrays themselves (the time as a UTC ``DatetimeIndex`` over its int64
    nanoseconds), each its own block, no copy: a Series per column first cost ~0.25 ms more
    per frame, and a fleet builds one per asset."""
    columns: dict[str, object] = {}
    for k, label in enumerate(labels):
        joined = np.concatenate([result[k] for result in results]) if len(results) > 1 else None
        values = results[0][k] if joined is None else joined
        for result in results:
            result[k] = None  # free each part's column once it is joined
        if k == 0:
            columns[label] = pd.DatetimeIndex(values.view("datetime64[ns]")).tz_localize("UTC")
        else:
            columns[label] = values
    return pd.DataFrame(columns, copy=False)
