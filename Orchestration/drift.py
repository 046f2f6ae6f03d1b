"""``orchestrate.py drift``: which axes drift, since when and in which direction; and which
models need retraining (too old, or their data drifts)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from ModelEvaluation import compare_assets
from Scoring import read_drift_state

from .config import LoadedConfig
from .context import open_database
from .report import _table

__all__ = [
    "compare_fleet",
    "flag_retraining",
    "format_drift_state",
    "read_drift",
    "retrain_reason",
]


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
            "drift_direction": row["drift_direction"] or None,  # read_drift_state: no NaN
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


def retrain_reason(
    version: str,
    published: Any,
    max_age: dt.timedelta | None,
    drifting: Mapping[str, Mapping[str, Any]],
    now: pd.Timestamp | None = None,
) -> str | None:
    """Why ``version`` should be retrained (None: it need not be).

    Args:
        version: the version's tag.
        published: when it was published (None or NaT: unknown, age not judged).
        max_age: ``registry.max_model_age`` (None: never by age).
        drifting: axis → ``{direction, since}`` of its drifting axes.
        now: the current time (default: now, UTC).
    """
    reasons = []
    if max_age is not None and published is not None and not pd.isna(published):
        stamp = pd.Timestamp(published)
        stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
        age = (now or pd.Timestamp.now(tz="UTC")) - stamp
        if age > max_age:
            reasons.append(
                f"{version} is {_duration(age.to_pytimedelta())} old (registry.max_model_age "
                f"{_duration(max_age)})"
            )
    for axis, state in drifting.items():
        since = state.get("since")
        reasons.append(
            f"{axis} drifts {state.get('direction') or ''}".rstrip()
            + ("" if since is None else f" since {since}")
        )
    return "; ".join(reasons) or None


def _duration(span: dt.timedelta) -> str:
    """``59 days``, or ``0:00:05`` below a day."""
    return (
        f"{span.days} days"
        if span.days
        else str(span - dt.timedelta(microseconds=span.microseconds))
    )


def flag_retraining(loaded: LoadedConfig, fleet: pd.DataFrame) -> pd.DataFrame:
    """The fleet state rows with ``retrain`` (the reason, or None) from each asset's version
    age and its drifting axes (the drift state table)."""
    if fleet.empty:
        return fleet.assign(retrain=pd.Series(dtype=object))
    drift = read_drift(loaded)
    drifting = drift.loc[drift["is_drifting"].astype(bool)]
    reasons = []
    for row in fleet.to_dict(orient="records"):
        mine = drifting[drifting["asset"] == str(row["asset"])]
        axes = {
            r["axis"]: {
                "direction": r["drift_direction"],
                "since": None if pd.isna(r["drifting_since"]) else r["drifting_since"].isoformat(),
            }
            for r in mine.to_dict(orient="records")
        }
        reasons.append(
            retrain_reason(
                str(row.get("version")),
                row.get("trained_at"),
                loaded.config.registry.max_model_age,
                axes,
            )
        )
    return fleet.assign(retrain=reasons)


def compare_fleet(loaded: LoadedConfig, fleet: pd.DataFrame) -> tuple[dict[str, Any], str]:
    """``fleet --compare``: each asset's tightest headroom (from its version's insights), its
    difficulty relative to the fleet, and the sentences about them.

    Raises:
        RegistryError: a version named in the fleet state fails verification.
    """
    from .fleet import asset_registry

    headrooms: dict[str, dict[str, float | None]] = {}
    versions: dict[str, str] = {}
    for row in fleet.to_dict(orient="records"):
        version = row.get("version")
        if version is None or pd.isna(version):
            continue
        meta = asset_registry(loaded, row["asset"]).load(str(version)).meta
        axes = ((meta.get("insights") or {}).get("axes")) or {}
        headrooms[str(row["asset"])] = {a: i.get("headroom_sigma") for a, i in axes.items()}
        versions[str(row["asset"])] = str(version)
    compared = compare_assets(headrooms)
    rows = []
    for asset, figures in compared["assets"].items():
        rooms = {a: h for a, h in headrooms[asset].items() if h is not None}
        tight = min(rooms, key=lambda axis: rooms[axis]) if rooms else None
        rows.append(
            [
                asset,
                versions[asset],
                tight,
                figures["tightest_headroom_sigma"],
                figures["difficulty"],
            ]
        )
    payload = {"compare": compared}
    if not rows:
        return payload, "no trained asset with insights to compare yet; train the fleet first"
    rows.sort(key=lambda r: -(r[4] if r[4] is not None else -np.inf))
    headers = ["asset", "version", "tightest axis", "headroom (sigma)", "difficulty"]
    text = _table(headers, rows)
    return payload, text + "".join(f"\n{sentence}" for sentence in compared["insights"])
