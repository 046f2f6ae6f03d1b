"""``orchestrate.py drift``: which axes drift, since when and in which direction."""

from __future__ import annotations

from typing import Any

import pandas as pd

from Scoring import read_drift_state

from .config import LoadedConfig
from .context import open_database
from .report import _table

__all__ = ["format_drift_state", "read_drift"]


def read_drift(loaded: LoadedConfig, *, asset: str | None = None) -> pd.DataFrame:
    """The drift state rows of ``data.table`` (one asset's with ``asset``); empty before the
    first score run of a version with drift baselines.

    Raises:
        DatabaseError: the database cannot be reached or read.
    """
    config = loaded.config
    session = open_database(loaded, access="read")
    try:
        return read_drift_state(
            session.engine,
            config.drift.table_for(config.events.table),
            source_table=config.data.table,
            asset=asset,
            target=session.target,
        )
    finally:
        session.close()


def format_drift_state(state: pd.DataFrame, table: str) -> tuple[dict[str, Any], str]:
    """The rows as JSON records and as an aligned table (drifting axes first)."""
    ordered = state.sort_values(
        ["is_drifting", "asset", "axis"], ascending=[False, True, True], kind="stable"
    )
    records = [
        {
            **row,
            "drifting_since": None if pd.isna(row["drifting_since"]) else row["drifting_since"],
            "drift_direction": row["drift_direction"] or None,
        }
        for row in ordered.to_dict(orient="records")
    ]
    drifting = sum(1 for r in records if r["is_drifting"])
    payload = {"table": table, "drifting": drifting, "axes": records}
    if not records:
        return payload, (
            f"no drift state in {table} yet: score with a version trained with drift.enabled "
            "(python orchestrate.py score)"
        )
    rows = [
        [
            r["asset"] or "-",
            r["axis"],
            "yes" if r["is_drifting"] else "no",
            r["drift_direction"],
            None if r["drifting_since"] is None else r["drifting_since"].strftime("%Y-%m-%d %H:%M"),
            r["cusum_pos"],
            r["cusum_neg"],
            r["ewma_value"],
            r["model_version"],
        ]
        for r in records
    ]
    headers = ["asset", "axis", "drifting", "direction", "since (UTC)", "cusum+", "cusum-"]
    text = _table([*headers, "ewma", "version"], rows)
    return payload, f"{text}\n{drifting} of {len(records)} axes drifting"
