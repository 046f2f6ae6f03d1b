"""Shared pieces of the fleet tests: a fleet table with known usable-sample counts per asset."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa
from clitools import make_project
from conftest import Db

from Database import write_chunks
from Orchestration import LoadedConfig, load_config

T0 = pd.Timestamp("2026-01-05 00:00:00", tz="UTC")

FAST = (
    "model.type=linear",
    "model.machine=none",
    "thresholds.calibration=in_sample",
    "plots.enabled=false",
    "labels.table=null",
    "fleet.workers=1",
)
"""Overrides that keep a fleet of tiny windows quick: one family, no folds, no plots."""


def asset_frame(
    asset: object, rows: int, *, idle: int = 0, seed: int = 0, start: pd.Timestamp = T0
) -> pd.DataFrame:
    """``rows`` samples 1 s apart from ``start``: the last ``idle`` are idle (every axis 0)."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "ts": [start + pd.Timedelta(seconds=i) for i in range(rows)],
            "asset": asset,
            "a": 5.0 + rng.normal(0.0, 0.1, rows),
            "b": 7.0 + rng.normal(0.0, 0.1, rows),
        }
    )
    if idle:
        frame.loc[rows - idle :, ["a", "b"]] = 0.0
    return frame


def write_fleet(db: Db, frames: list[pd.DataFrame], table: str = "fleet") -> None:
    """Append ``frames`` (from :func:`asset_frame`) to ``table`` of ``db``."""
    asset_type = sa.Integer() if pd.api.types.is_integer_dtype(frames[0]["asset"]) else sa.Text()
    columns = {
        "ts": sa.DateTime(timezone=True),
        "asset": asset_type,
        "a": sa.Float(53),
        "b": sa.Float(53),
    }
    write_chunks(db.engine, db.target, db.table(table), columns, frames, if_exists="append")


def fleet_config(db: Db, folder: Path, *overrides: str) -> LoadedConfig:
    """A project in ``folder`` training the fleet table of ``db`` (asset column ``asset``)."""
    return load_config(
        make_project(folder),
        [
            f"data.table={db.table('fleet')}",
            "data.asset_col=asset",
            "data.axes=[a, b]",
            "data.train_end=null",
            f"fleet.table={db.table('fleet_state')}",
            f"events.table={db.table('events')}",
            "events.merge_gap_seconds=0",
            *FAST,
            *overrides,
        ],
    )


def cli_sets(*assignments: str) -> list[str]:
    """``--set`` options pointing a command at the table ``fleet`` (asset column ``asset``,
    axes a and b), then ``assignments``."""
    base = ("data.table=fleet", "data.asset_col=asset", "data.axes=[a, b]")
    return [part for item in (*base, *assignments) for part in ("--set", item)]
