"""Where to pivot a LONG table (ts, axis_id, value) into one column per axis: a measurement.

Each method reads the window through ADBC (binary COPY → Arrow) and ends with the same WIDE
frame (``ts`` + ``axis1..axis8``, float64, NaN where an axis has no row):

- ``database``: ``GROUP BY ts`` with ``max(value) FILTER (WHERE axis_id = k)`` per axis;
- ``pandas``: the LONG rows ordered by ts, then ``DataFrame.pivot`` (hashes every row);
- ``numpy``: the LONG rows ordered by (ts, axis_id), then one scatter into a preallocated
  array (rows are already grouped, so no hashing or sorting);
- ``pipeline``: ``extract_window`` with a LONG config, i.e. whatever the extractor does.

    python bench/long_pivot.py --url URL --table bench_robot_long --start ISO --end ISO \\
        --method database

Prints one JSON object: ``method``, ``seconds`` (read + pivot), ``rows`` (samples).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path

import adbc_driver_postgresql.dbapi as adbc
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

AXES = list(range(1, 9))


def fetch(url: str, sql: str) -> pd.DataFrame:
    with adbc.connect(url) as conn, conn.cursor() as cursor:
        cursor.adbc_statement.set_options(**{"adbc.postgresql.batch_size_hint_bytes": str(1 << 40)})
        cursor.execute(sql)
        table = cursor.fetch_arrow_table()
    return pd.DataFrame(
        {name: table.column(name).to_numpy() for name in table.column_names}, copy=False
    )


def window(table: str, start: str, end: str) -> str:
    return f"FROM {table} WHERE ts >= '{start}' AND ts < '{end}' AND axis_id IN (1,2,3,4,5,6,7,8)"


def in_database(url: str, table: str, start: str, end: str) -> pd.DataFrame:
    columns = ", ".join(f"max(value) FILTER (WHERE axis_id = {k}) AS axis{k}" for k in AXES)
    return fetch(url, f"SELECT ts, {columns} {window(table, start, end)} GROUP BY ts ORDER BY ts")


def in_pandas(url: str, table: str, start: str, end: str) -> pd.DataFrame:
    rows = fetch(url, f"SELECT ts, axis_id, value {window(table, start, end)} ORDER BY ts")
    wide = rows.pivot(index="ts", columns="axis_id", values="value").reindex(columns=AXES)
    wide.columns = [f"axis{k}" for k in AXES]
    return wide.reset_index().rename_axis(columns=None)


def in_numpy(url: str, table: str, start: str, end: str) -> pd.DataFrame:
    rows = fetch(url, f"SELECT ts, axis_id, value {window(table, start, end)} ORDER BY ts, axis_id")
    ts = rows["ts"].to_numpy()
    new_sample = np.empty(ts.size, dtype=bool)
    new_sample[0] = True
    np.not_equal(ts[1:], ts[:-1], out=new_sample[1:])
    sample = np.cumsum(new_sample) - 1
    wide = np.full((int(sample[-1]) + 1, len(AXES)), np.nan)
    wide[sample, np.searchsorted(AXES, rows["axis_id"].to_numpy())] = rows["value"].to_numpy()
    frame = {"ts": ts[new_sample]}
    frame.update({f"axis{k}": wide[:, i] for i, k in enumerate(AXES)})
    return pd.DataFrame(frame, copy=False)


def pipeline(url: str, table: str, start: str, end: str) -> pd.DataFrame:
    from Database import DatabaseConfig, connect_engine, resolve_target
    from DataExtractionAnalysis import DataConfig, extract_window

    target = resolve_target(DatabaseConfig(), Path.cwd(), {"DB_URL": url})
    engine = connect_engine(target, DatabaseConfig())
    data = DataConfig(table=table, axes=AXES)
    bounds = {
        "start": dt.datetime.fromisoformat(start),
        "end": dt.datetime.fromisoformat(end),
    }
    return extract_window(engine, target, data, **bounds).frame


METHODS = {"database": in_database, "pandas": in_pandas, "numpy": in_numpy, "pipeline": pipeline}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--table", required=True)
    parser.add_argument("--start", required=True)
    parser.add_argument("--end", required=True)
    parser.add_argument("--method", choices=sorted(METHODS), required=True)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    frame = METHODS[args.method](args.url, args.table, args.start, args.end)
    seconds = time.perf_counter() - started
    print(json.dumps({"method": args.method, "seconds": round(seconds, 3), "rows": len(frame)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
