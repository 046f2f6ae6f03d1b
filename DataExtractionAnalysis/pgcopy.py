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
timestamp falls in exactly one), each sorted by the database; joined in order they are the
window sorted as one query would give it.

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
from typing import Any

import numpy as np
import pandas as pd

from Database import DatabaseError, DatabaseTarget, scrub

__all__ = ["PARTS", "SPLIT_ROWS", "THREADS", "parse_copy", "read_window"]

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

_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
_TRAILER = b"\xff\xff"
_BLOCK_ROWS = 8192
"""Rows checked and converted together: the block (~0.9 MB for 8 axes) stays in cache across
the per-column passes."""
_PG_EPOCH_US = 946_684_800_000_000
"""2000-01-01T00:00:00Z (PostgreSQL's timestamp origin) in microseconds since 1970."""
_NS_LIMIT_US = np.iinfo(np.int64).max // 1000 - _PG_EPOCH_US
"""Microseconds since 2000 beyond which a time does not fit ``datetime64[ns]``."""


def _row_type(columns: int) -> np.dtype:
    """A binary COPY row: field count, then (length, big-endian value) per column; the first
    column is the time (int64 microseconds since 2000), the others float64."""
    fields: list[tuple[str, str]] = [("count", ">i2")]
    for k in range(columns):
        fields += [(f"len{k}", ">i4"), (f"val{k}", ">i8" if k == 0 else ">f8")]
    return np.dtype(fields)


def parse_copy(data: memoryview | bytes, columns: int) -> list[np.ndarray] | None:
    """The columns of a binary COPY of a time column and ``columns - 1`` float64 columns.

    Returns:
        ``[time, value, ...]``: the time as int64 nanoseconds since 1970 (UTC), the values
        as float64; None when the bytes are not such rows (a NULL, another width, a time that
        ``datetime64[ns]`` cannot hold).

    Raises:
        ValueError: the bytes are not a binary COPY at all (no signature or trailer).
    """
    view = memoryview(data).cast("B")
    if bytes(view[: len(_SIGNATURE)]) != _SIGNATURE or bytes(view[-2:]) != _TRAILER:
        raise ValueError("not a PostgreSQL binary COPY stream (signature or trailer missing)")
    head = len(_SIGNATURE)  # then 4 bytes of flags and the 4-byte length of an extension
    start = head + 8 + int.from_bytes(view[head + 4 : head + 8], "big")
    body = view[start:-2]
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
    ticks = out[0]
    if ticks.size and (ticks.min() < -_NS_LIMIT_US or ticks.max() > _NS_LIMIT_US):
        return None  # 'infinity', '-infinity' or beyond 1677-2262
    ticks += _PG_EPOCH_US
    ticks *= 1000
    return out


def _parts(
    start: dt.datetime | None, end: dt.datetime | None, estimate: Callable[[], float]
) -> list[tuple[dt.datetime | None, dt.datetime | None]]:
    """``[start, end)`` as consecutive ranges: :data:`PARTS` of equal length when both ends
    are known and the window is estimated at :data:`SPLIT_ROWS` rows or more, else itself."""
    if start is None or end is None or end <= start or estimate() < SPLIT_ROWS:
        return [(start, end)]
    cuts = [start + (end - start) * k / PARTS for k in range(PARTS + 1)]
    cuts[-1] = end
    return list(itertools.pairwise(cuts))


def read_window(
    target: DatabaseTarget,
    sql_for: Callable[[dt.datetime | None, dt.datetime | None], str],
    labels: Sequence[str],
    start: dt.datetime | None,
    end: dt.datetime | None,
) -> pd.DataFrame | None:
    """The window ``[start, end)`` as a frame ``ts`` (``datetime64[ns, UTC]``) + ``labels[1:]``.

    Args:
        target: a PostgreSQL database.
        sql_for: the SELECT of ``[a, b)`` (literal SQL: COPY takes no parameters), sorted by
            time, its columns ``labels``: the time, then DOUBLE PRECISION values without NULL.
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
        conn.autocommit = True  # no transaction stays open; each COPY is one snapshot anyway
        return conn

    def estimate(conn: Any) -> float:
        with conn.cursor() as cursor:
            cursor.execute("EXPLAIN (FORMAT JSON) " + sql_for(start, end))
            return float(cursor.fetchone()[0][0]["Plan"]["Plan Rows"])

    def read(bounds: tuple[dt.datetime | None, dt.datetime | None], conn: Any = None) -> Any:
        received = io.BytesIO()
        with closing(conn or connect()) as own, own.cursor() as cursor:
            cursor.copy_expert(f"COPY ({sql_for(*bounds)}) TO STDOUT (FORMAT binary)", received)
        with received.getbuffer() as data:
            return parse_copy(data, len(labels))

    try:
        first = connect()
        try:
            parts = _parts(start, end, lambda: estimate(first))
        except BaseException:
            first.close()
            raise
        if len(parts) == 1:
            results = [read(parts[0], first)]
        else:
            first.close()
            with ThreadPoolExecutor(THREADS, thread_name_prefix="copy") as pool:
                results = list(pool.map(read, parts))
    except psycopg2.Error as exc:
        detail = scrub(" ".join(str(exc).split()), target.url)
        raise DatabaseError(
            f"reading the training window ({target.display}) through COPY failed: {detail}"
        ) from None
    if any(result is None for result in results):
        logger.info("the window does not have the fixed COPY layout: read the general way")
        return None
    columns: dict[str, object] = {}
    for k, label in enumerate(labels):
        joined = np.concatenate([result[k] for result in results]) if len(results) > 1 else None
        values = results[0][k] if joined is None else joined
        for result in results:
            result[k] = None  # free each part's column once it is joined
        if k == 0:
            columns[label] = pd.Series(values.view("datetime64[ns]"), copy=False).dt.tz_localize(
                "UTC"
            )
        else:
            columns[label] = pd.Series(values, copy=False)
    return pd.DataFrame(columns, copy=False)
