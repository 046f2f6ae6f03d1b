"""Reading the labels table: windows of known anomalies, with bound values and quoted names.

Columns: ``start_ts`` and ``end_ts`` (inclusive; timestamps, ISO text on SQLite, or epoch
seconds; both required), and optionally ``axis`` (NULL, empty or absent = the whole machine),
``kind`` and ``severity`` (free text). A fleet's table may hold the asset of each window in a
column named like ``data.asset_col`` (NULL = every asset); :func:`read_labels` then keeps the
windows of one asset.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from Database import DatabaseTarget, database_errors, split_table_name, table_exists

from .errors import LabelsError

__all__ = ["LABEL_COLUMNS", "label_mask", "read_labels"]

logger = logging.getLogger(__name__)

LABEL_COLUMNS = ("start_ts", "end_ts", "axis", "kind", "severity")
REQUIRED_COLUMNS = ("start_ts", "end_ts")


def _utc(values: pd.Series, column: str, table: str, key: str) -> pd.Series:
    """Timestamps, ISO text or epoch seconds as UTC timestamps; unparsable values named."""
    if pd.api.types.is_numeric_dtype(values):
        return pd.to_datetime(values.astype("float64"), unit="s", utc=True)
    try:
        return pd.to_datetime(values, utc=True, format="ISO8601")
    except (ValueError, TypeError) as exc:
        raise LabelsError(
            f"{_noun(key)} {table!r}: column {column!r} holds a value that is not a time "
            f"({exc}); store ISO-8601 timestamps or epoch seconds"
        ) from exc


def _noun(key: str) -> str:
    """``labels table`` or ``calendar table``, from the config key naming the table."""
    return "calendar table" if key.endswith("calendar_table") else "labels table"


def read_labels(
    engine: Engine,
    target: DatabaseTarget,
    table: str,
    *,
    asset_col: str | None = None,
    asset: object = None,
    key: str = "labels.table",
) -> pd.DataFrame:
    """All labels of ``table``, sorted by start: UTC ``start_ts``/``end_ts``, ``axis`` (None =
    machine), ``kind``, ``severity``.

    With ``asset`` and an ``asset_col`` the table has, only the windows of that asset (compared
    as text) and those without an asset. ``key``: the config key naming the table, for
    messages (``labels.calendar_table`` reads maintenance windows the same way).

    Raises
    ------
    LabelsError
        The table does not exist, lacks ``start_ts``/``end_ts``, or holds a window without
        both times or that ends before it starts.
    DatabaseError
        The database failed.
    """
    schema, name = split_table_name(table)
    with database_errors(target, f"reading labels from {table}"):
        if not table_exists(engine, table):
            raise LabelsError(
                f"{_noun(key)} {table!r} does not exist in {target.display}; create it with "
                f"columns {', '.join(LABEL_COLUMNS)}, or set {key}: null"
            )
        present = {c["name"] for c in sa.inspect(engine).get_columns(name, schema=schema)}
        missing = [c for c in REQUIRED_COLUMNS if c not in present]
        if missing:
            raise LabelsError(
                f"{_noun(key)} {table!r} lacks column(s) {missing}; it needs start_ts and "
                "end_ts (axis, kind and severity are optional)"
            )
        columns = [c for c in LABEL_COLUMNS if c in present]
        by_asset = asset is not None and asset_col is not None and asset_col in present
        read = [*columns, asset_col] if by_asset else columns
        source = sa.table(name, *(sa.column(c) for c in read), schema=schema)
        with engine.connect() as connection:
            rows = connection.execute(sa.select(*source.columns)).fetchall()
    frame = pd.DataFrame(rows, columns=read)
    if by_asset:
        owner = frame.pop(asset_col)
        mine = owner.map(lambda value: not pd.isna(value) and _same_asset(value, asset))
        frame = frame[owner.isna() | mine.astype(bool)].reset_index(drop=True)
    for column in LABEL_COLUMNS:  # an optional column the table lacks is NULL everywhere
        if column not in frame:
            frame[column] = pd.Series([None] * len(frame), dtype=object)
    frame = frame[list(LABEL_COLUMNS)]
    empty_bounds = int((frame["start_ts"].isna() | frame["end_ts"].isna()).sum())
    if empty_bounds:
        raise LabelsError(
            f"{_noun(key)} {table!r}: {empty_bounds} window(s) have no start_ts or end_ts; "
            "give every window both times, or delete those rows"
        )
    if frame.empty:
        return frame.astype({"start_ts": "datetime64[ns, UTC]", "end_ts": "datetime64[ns, UTC]"})
    frame["start_ts"] = _utc(frame["start_ts"], "start_ts", table, key)
    frame["end_ts"] = _utc(frame["end_ts"], "end_ts", table, key)
    frame["axis"] = pd.Series(
        [None if pd.isna(a) or str(a) == "" else str(a) for a in frame["axis"]], dtype=object
    )
    backwards = frame["end_ts"] < frame["start_ts"]
    if backwards.any():
        first = frame[backwards].iloc[0]
        raise LabelsError(
            f"{_noun(key)} {table!r}: {int(backwards.sum())} window(s) end before they start, "
            f"e.g. {first['start_ts']} to {first['end_ts']}; swap start_ts and end_ts"
        )
    logger.info("read %d labelled window(s) from %s", len(frame), table)
    return frame.sort_values("start_ts", kind="stable").reset_index(drop=True)


def label_mask(ts: pd.Series, labels: pd.DataFrame, axes: Sequence[str] | None = None) -> dict:
    """Per axis, which rows of ``ts`` lie inside a label of that axis or of the machine.

    Returns
    -------
    dict
        ``"*"`` → rows inside any label; and for each of ``axes``, rows inside a label of that
        axis or of the whole machine (``axis`` None).
    """
    times = (
        pd.to_datetime(ts, utc=True)
        if not pd.api.types.is_numeric_dtype(ts)
        else (pd.to_datetime(ts.astype("float64"), unit="s", utc=True))
    )
    ns = times.to_numpy("datetime64[ns]").view("int64")
    masks = {"*": np.zeros(ns.size, dtype=bool)}
    for axis in axes or ():
        masks[axis] = np.zeros(ns.size, dtype=bool)
    for start, end, axis in zip(
        labels["start_ts"].to_numpy("datetime64[ns]").view("int64"),
        labels["end_ts"].to_numpy("datetime64[ns]").view("int64"),
        labels["axis"],
        strict=True,
    ):
        lo, hi = np.searchsorted(ns, start, "left"), np.searchsorted(ns, end, "right")
        if lo >= hi:
            continue
        masks["*"][lo:hi] = True
        for name in axes or ():
            if axis is None or axis == name:
                masks[name][lo:hi] = True
    return masks


def _same_asset(value: object, asset: object) -> bool:
    """Whether a labels row's asset id names ``asset``. An integer id column with NULLs (the
    rows for every asset) reads as floats: ``7.0`` is asset ``7``."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value) == str(asset)
