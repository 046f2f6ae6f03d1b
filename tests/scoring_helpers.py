"""Shared pieces of the scoring tests: a hand-published version and samples with known answers.

A hand-published linear version makes every answer exact: by default flat (the model predicts
1.0 everywhere, value - 1 is the residual), MinC = 1, MaxC = 2, T_long_steps = T_short_steps =
2 unless given, so a look-back of one sample. Samples are 1 s apart from ``T0``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from clitools import make_project
from conftest import Db

from Database import write_chunks
from ModelRegistry import ModelRegistry
from ModelSelection import select_model
from ModelTraining import AxisModelSet
from Orchestration import LoadedConfig, load_config
from Scoring import EventStore

T0 = pd.Timestamp("2026-01-05 00:00:00", tz="UTC")
ORIGIN = T0 - pd.Timedelta(hours=1)


def ts(i: int) -> pd.Timestamp:
    """The time of sample ``i``."""
    return T0 + pd.Timedelta(seconds=i)


def publish_linear_version(
    root: Path,
    axes: list[str],
    *,
    tag: str = "auto",
    t_long: int = 2,
    t_short: int = 2,
    epoch: bool = False,
    slope: float = 0.0,
    trained_until: pd.Timestamp | None = None,
    min_c: float = 1.0,
    max_c: float = 2.0,
    drift: dict | None = None,
    extra_meta: dict | None = None,
) -> str:
    """A version predicting ``1 + slope * (t - ORIGIN)`` in seconds, trained before T0.

    ``ORIGIN`` (one hour before T0) is the version's ``t0``, as float epoch seconds with
    ``epoch``, else as a timestamp. ``trained_until``: the last training sample recorded
    (default one second before T0). ``min_c``, ``max_c``: the thresholds of every axis.
    ``drift``: the content of ``drift.json`` (none without).
    """
    line = [1.0, 1.0 + slope, 1.0 + 2 * slope]
    train = pd.DataFrame({"time_s": [0.0, 1.0, 2.0], **{a: line for a in axes}})
    models = AxisModelSet(select_model("linear"), axes).fit(train)
    rule = {
        "MinC": min_c,
        "MaxC": max_c,
        "T_long_steps": t_long,
        "T_short_steps": t_short,
        "dt_seconds": 1.0,
    }
    files = {
        "models.json": json.dumps(models.to_dict()).encode(),
        "thresholds.json": json.dumps({a: rule for a in axes}).encode(),
        "prep_stats.json": json.dumps(
            {"t0": ORIGIN.timestamp(), "t0_kind": "epoch", "dt_seconds": 1.0}
            if epoch
            else {"t0": ORIGIN.isoformat(), "t0_kind": "datetime", "dt_seconds": 1.0}
        ).encode(),
    }
    if drift is not None:
        files["drift.json"] = json.dumps(drift).encode()
    meta = {
        "data": {
            "rows": 3,
            "start": ORIGIN.isoformat(),
            "end": (
                T0 - pd.Timedelta(seconds=1) if trained_until is None else trained_until
            ).isoformat(),
        },
        "axes": axes,
        **(extra_meta or {}),
    }
    return ModelRegistry(root).publish(files, meta=meta, version_tag=tag, run_id="test").version


def append_samples(db: Db, table: str, residuals: dict[str, list], first: int = 0) -> None:
    """Rows at 1 s spacing from ``first``; each axis value = 1 + residual (None -> idle 0)."""
    n = len(next(iter(residuals.values())))
    frame = pd.DataFrame({"ts": [ts(first + i) for i in range(n)]})
    for axis, res in residuals.items():
        frame[axis] = [0.0 if r is None else 1.0 + r for r in res]
    columns = {"ts": sa.DateTime(timezone=True), **{a: sa.Float(53) for a in residuals}}
    write_chunks(db.engine, db.target, db.table(table), columns, [frame], if_exists="append")


def training_project(
    db: Db, folder: Path, monkeypatch: pytest.MonkeyPatch, *overrides: str
) -> LoadedConfig:
    """Table ``s`` of 400 noisy samples (axes a, b, 2 s apart, seeded) in ``db`` and a project
    in ``folder`` that trains on it (no plots)."""
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {
            "ts": pd.date_range("2026-01-05", periods=400, freq="2s", tz="UTC"),
            "a": 5 + rng.normal(0, 1, 400),
            "b": 7 + rng.normal(0, 1, 400),
        }
    )
    columns = {"ts": sa.DateTime(timezone=True), "a": sa.Float(53), "b": sa.Float(53)}
    write_chunks(db.engine, db.target, "s", columns, [frame])
    use_database(db, monkeypatch)
    return load_config(
        make_project(folder),
        ["data.table=s", "data.axes=[a, b]", "plots.enabled=false", *overrides],
    )


def use_database(db: Db, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point ``DB_URL`` at ``db`` for runs in this process."""
    monkeypatch.setenv("DB_URL", db.url)


def loaded_config(db: Db, folder: Path, *overrides: str) -> LoadedConfig:
    """A config in ``folder`` scoring table ``s`` (axes a, b) of ``db`` into ``events``.

    Events are not merged across gaps unless an override asks (the default 300 s would join
    every event of these few-second tables).
    """
    return load_config(
        make_project(folder),
        [
            f"data.table={db.table('s')}",
            "data.axes=[a, b]",
            f"events.table={db.table('events')}",
            "events.merge_gap_seconds=0",
            *overrides,
        ],
    )


def stored_events(db: Db, table: str = "events") -> pd.DataFrame:
    """Every stored event of table ``s`` in the events table ``table``."""
    return EventStore(db.engine, db.target, db.table(table), db.table("s")).read_events()


def append_asset_rows(db: Db, asset: str, residuals: list[float], first: int = 0) -> None:
    """Rows of ``asset`` in table ``fleet``, 1 s apart from sample ``first``: a = 1 + residual,
    b = 1 (ok)."""
    frame = pd.DataFrame(
        {
            "ts": [ts(first + i) for i in range(len(residuals))],
            "asset": asset,
            "a": [1.0 + r for r in residuals],
            "b": 1.0,
        }
    )
    columns = {
        "ts": sa.DateTime(timezone=True),
        "asset": sa.Text(),
        "a": sa.Float(53),
        "b": sa.Float(53),
    }
    write_chunks(db.engine, db.target, db.table("fleet"), columns, [frame], if_exists="append")


def fleet_config(db: Db, folder: Path, *overrides: str) -> LoadedConfig:
    """A config in ``folder`` scoring the fleet table ``fleet`` (column ``asset``, axes a, b)
    of ``db`` into ``events``, without merging events across gaps."""
    return load_config(
        make_project(folder),
        [
            f"data.table={db.table('fleet')}",
            "data.asset_col=asset",
            "data.axes=[a, b]",
            f"events.table={db.table('events')}",
            f"fleet.table={db.table('fleet_state')}",
            "events.merge_gap_seconds=0",
            "fleet.workers=1",
            *overrides,
        ],
    )
