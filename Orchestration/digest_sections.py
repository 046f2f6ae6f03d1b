"""The digest's sections from other stages: drift, sensor health, failure risk, promotions,
and the axes whose alarms coincide.

Each source takes the :class:`~Orchestration.digest.DigestContext` and returns a
:class:`Reports.DigestSection`, or None when it has nothing to say (then the section is absent).
A source reads only what its stage already stores: the drift state table, the versions'
``meta.yaml`` health grades, the predictor's risk table, the registry's decision files.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import pandas as pd
import sqlalchemy as sa

from Database import database_errors, split_table_name
from ModelEvaluation.insights import coinciding_alarms
from ModelRegistry import ModelRegistry, RegistryError, VersionNotFoundError
from Reports import DigestSection
from Scoring import MACHINE_CHANNEL, format_duration, parse_thresholds, read_drift_state
from Scoring.drift import DriftBaselines
from Scoring.drift.store import levels_by_axis, levels_table
from Scoring.trend import LevelHistory

from .fleet import asset_registry

if TYPE_CHECKING:
    from .digest import DigestContext

__all__ = [
    "coinciding_section",
    "drift_section",
    "failure_risk_section",
    "health_section",
    "promotion_section",
    "time_to_threshold_section",
]

logger = logging.getLogger(__name__)


def _registry(context: DigestContext, asset: str) -> ModelRegistry:
    if context.loaded.config.data.asset_col is not None:
        return asset_registry(context.loaded, asset)
    config = context.loaded.config.registry
    return ModelRegistry(context.loaded.path(config.root_dir), lock_timeout=config.lock_timeout_s)


def _assets(context: DigestContext) -> list[str]:
    """The assets the digest covers (one machine: the empty id)."""
    if context.loaded.config.data.asset_col is None:
        return [""]
    return list(context.assets)


def promotion_section(context: DigestContext) -> DigestSection | None:
    """Per asset whose newest version is not its champion: the version kept back and why.

    A version that went live is no news for the morning; one the gate kept back is (scoring goes
    on with the older champion).
    """
    rows: list[list[Any]] = []
    for asset in _assets(context):
        registry = _registry(context, asset)
        try:  # two small files per asset, not every version's meta.yaml
            newest = registry.resolve("latest").name
            champion = registry.aliases().champion
            decision = None if champion in (None, newest) else registry.decision(newest)
        except VersionNotFoundError:
            continue  # no version yet: the fleet table says why
        except RegistryError as exc:
            rows.append([asset or context.loaded.config.data.table, "-", "-", f"unreadable: {exc}"])
            continue
        if champion in (None, newest) or decision is None:
            continue
        rows.append(
            [asset or context.loaded.config.data.table, newest, champion, decision.get("reason")]
        )
    if not rows:
        return None
    return DigestSection(
        key="promotion",
        title="Versions kept back by the promotion gate",
        headers=["asset", "newest version", "scoring with", "reason"],
        rows=rows,
        note="registry promote VERSION (--asset ID) makes a version live by hand",
    )


def failure_risk_section(context: DigestContext) -> DigestSection | None:
    """Per asset with a failure predictor: the newest and the highest failure probability of the
    period (``predictor.table``), highest first."""
    config = context.loaded.config
    schema, name = split_table_name(config.predictor.table)
    session = context.session
    with (
        database_errors(session.target, f"reading {config.predictor.table}"),
        session.engine.connect() as conn,
    ):
        if not sa.inspect(conn).has_table(name, schema=schema):
            return None
        table = sa.Table(name, sa.MetaData(schema=schema), autoload_with=conn)
        query = sa.select(
            table.c.asset, table.c.bucket_start, table.c.probability, table.c.model_version
        ).where(
            table.c.source_table == config.data.table,
            table.c.bucket_start >= context.since.to_pydatetime(),
            table.c.bucket_start <= context.until.to_pydatetime(),
        )
        frame = pd.DataFrame(
            conn.execute(query).fetchall(), columns=list(query.selected_columns.keys())
        )
    if config.data.asset_col is not None:
        frame = frame[frame["asset"].isin(context.assets)]
    if frame.empty:
        return None
    frame["bucket_start"] = pd.to_datetime(frame["bucket_start"], utc=True)  # SQLite: naive
    frame = frame.sort_values(["asset", "bucket_start"], kind="stable")
    rows = []
    for asset, part in frame.groupby("asset", sort=False):
        worst = part.loc[part["probability"].idxmax()]
        rows.append(
            [
                asset or config.data.table,
                round(float(part["probability"].iloc[-1]), 3),
                round(float(worst["probability"]), 3),
                pd.Timestamp(worst["bucket_start"]).isoformat(),
                part["model_version"].iloc[-1],
            ]
        )
    rows.sort(key=lambda row: -row[2])
    return DigestSection(
        key="failure",
        title="Failure risk",
        headers=["asset", "newest probability", "highest", "highest at", "predictor"],
        rows=rows,
        note=(
            "probability that a confirmed incident starts within "
            f"{format_duration(config.predictor.horizon.total_seconds())} "
            "(python orchestrate.py apply writes it)"
        ),
    )


def drift_section(context: DigestContext) -> DigestSection | None:
    """Axes drifting now (the drift state table: CUSUM / EWMA of the residual level), the
    longest-drifting first."""
    config = context.loaded.config
    if not config.drift.enabled:
        return None
    state = read_drift_state(
        context.session.engine,
        config.drift.table_for(config.events.table),
        source_table=config.data.table,
        target=context.session.target,
    )
    drifting = state[state["is_drifting"].fillna(False).astype(bool)]
    if config.data.asset_col is not None:
        drifting = drifting[drifting["asset"].isin(context.assets)]
    if drifting.empty:
        return None
    since = pd.to_datetime(drifting["drifting_since"], utc=True)
    drifting = drifting.assign(since=since).sort_values(["since", "asset", "axis"])
    rows = [
        [
            row.asset or config.data.table,
            row.axis,
            row.drift_direction,
            None if pd.isna(row.since) else row.since.isoformat(),
            row.model_version,
        ]
        for row in drifting.itertuples()
    ]
    return DigestSection(
        key="drift",
        title="Drifting axes",
        headers=["asset", "axis", "direction", "since", "version"],
        rows=rows,
        note=(
            "the residual level left its baseline (python orchestrate.py drift; score --json "
            "gives the time to threshold)"
        ),
    )


def health_section(context: DigestContext) -> DigestSection | None:
    """Axes whose sensor health the live version graded below ``high``, worst first."""
    rows: list[list[Any]] = []
    for asset in _assets(context):
        registry = _registry(context, asset)
        try:
            meta = registry.load("champion", verify=False).meta
        except RegistryError:
            continue  # no version yet, or unreadable: the fleet table says why
        skipped = set(meta.get("health_skipped") or [])
        for axis, grade in (meta.get("health") or {}).items():
            if grade.get("grade", "high") == "high":
                continue
            reasons = "; ".join(f"{f['check']}: {f['reason']}" for f in grade.get("findings", []))
            action = "left out" if axis in skipped else "trained"
            rows.append(
                [asset or context.loaded.config.data.table, axis, grade["grade"], action, reasons]
            )
    if not rows:
        return None
    rows.sort(key=lambda row: (row[2] != "low", str(row[0]), str(row[1])))
    return DigestSection(
        key="health",
        title="Sensor health",
        headers=["asset", "axis", "grade", "in the version", "why"],
        rows=rows,
        note="graded at training (python orchestrate.py registry show); see docs/health.md",
    )


def coinciding_section(context: DigestContext) -> DigestSection | None:
    """Per asset, the pairs of axes whose alarm episodes of the period mostly come together
    (:func:`ModelEvaluation.insights.coinciding_alarms`: at least 3 episodes on each axis, at
    least half of them together), most coinciding first."""
    events = context.events
    if events is None or events.empty:
        return None
    alarms = events[events["severity"].isin(["alert", "error"]) & (events["axis"] != "*")]
    rows: list[list[Any]] = []
    for asset, part in alarms.groupby(alarms["asset"].astype(str), sort=True):
        for pair in coinciding_alarms(
            part["axis"].astype(str).tolist(), part["start_ts"], part["end_ts"]
        ):
            rows.append(
                [
                    asset or context.loaded.config.data.table,
                    " and ".join(pair["axes"]),
                    round(100 * pair["share"]),
                    pair["coinciding"],
                    pair["episodes"],
                ]
            )
    if not rows:
        return None
    rows.sort(key=lambda row: (-row[2], -row[4], str(row[0]), row[1]))
    return DigestSection(
        key="coinciding",
        title="Alarms that coincide",
        headers=["asset", "axes", "together %", "together", "episodes"],
        rows=rows,
        note=(
            "one cause seen on several axes: joints that move together, or a faulty axis the "
            "others are predicted from; look at them as one incident"
        ),
    )


def _live_drift_version(context: DigestContext, asset: str) -> tuple[Any, Any, Any] | None:
    """The asset's live version, its drift baselines and threshold rules (None: no version, or
    one without drift baselines; an unreadable one is logged)."""
    try:
        found = _registry(context, asset).load("champion", verify=False)
    except RegistryError:
        return None  # no version yet, or unreadable: the fleet table says why
    if "drift.json" not in found.artifacts:
        return None  # trained before drift baselines
    try:
        baselines = DriftBaselines.from_dict(found.read_json("drift.json"))
        rules = parse_thresholds(found.read_json("thresholds.json"))
    except (RegistryError, ValueError, KeyError, TypeError) as exc:
        logger.warning(
            "time to threshold of %s: version %s is unreadable (%s); retrain it",
            asset or context.loaded.config.data.table,
            found.version,
            exc,
        )
        return None
    return found, baselines, rules


def time_to_threshold_section(context: DigestContext) -> DigestSection | None:
    """Per asset and axis whose residual level trends significantly towards its error
    threshold: when it gets there, the soonest first.

    From what score runs stored: the live version's block levels (``<drift.table>_levels``)
    over ``drift.trend_window`` up to the asset's newest block (at most the period's end),
    projected as a score run does (:meth:`Scoring.trend.LevelHistory.project`, with
    ``drift.isolate_ratio``); the days count from that newest block, shown as "as of".
    """
    config = context.loaded.config
    drift = config.drift
    if not drift.enabled:
        return None
    table = levels_table(drift.table_for(config.events.table))
    session = context.session
    window = drift.trend_window.total_seconds()
    rows: list[list[Any]] = []
    with (
        database_errors(session.target, f"reading {table.name}"),
        session.engine.connect() as conn,
    ):
        if not sa.inspect(conn).has_table(table.name, schema=table.schema):
            return None
        c = table.c
        for asset in _assets(context):
            live = _live_drift_version(context, asset)
            if live is None:
                continue
            found, baselines, rules = live
            block = baselines.params.block_seconds
            key = (
                (c.source_table == config.data.table)
                & (c.asset == asset)
                & (c.model_version == found.version)
            )
            newest = conn.execute(
                sa.select(sa.func.max(c.block)).where(
                    key, c.block <= int(context.until.timestamp() // block)
                )
            ).scalar()
            if newest is None:
                continue  # not scored with this version yet
            stmt = sa.select(c.axis, c.block, c["sum"], c["count"]).where(
                key, c.block >= int(newest) - int(window // block) - 1, c.block <= int(newest)
            )
            stored = levels_by_axis(conn.execute(stmt))
            history = LevelHistory(block, stored)
            projected = history.project(
                {a: r for a, r in rules.items() if a != MACHINE_CHANNEL and a in stored},
                window_seconds=window,
                confidence=drift.trend_confidence,
                min_blocks=drift.trend_min_blocks,
                scales={a: b.scale for a, b in baselines.axes.items()},
                isolate_ratio=baselines.params.isolate_ratio,
            )
            for axis, trend in projected.items():
                rows.append(
                    [
                        asset or config.data.table,
                        axis,
                        round(trend.days, 1),
                        f"{trend.days_early:.1f} to {trend.days_late:.1f}",
                        "MaxC" if trend.slope_per_day > 0 else "MaxC_low",
                        pd.Timestamp(trend.at, unit="s", tz="UTC").isoformat(),
                        found.version,
                    ]
                )
    if not rows:
        return None
    rows.sort(key=lambda row: (row[2], str(row[0]), row[1]))
    return DigestSection(
        key="trend",
        title="Time to threshold",
        headers=["asset", "axis", "days", "range (days)", "towards", "as of", "version"],
        rows=rows,
        note=(
            "a significant trend of the mean residual per "
            f"{format_duration(drift.block.total_seconds())} block over the last "
            f"{format_duration(window)} of score runs, projected from 'as of' to the error "
            "threshold (range: the slope's confidence interval); plan the maintenance before it"
        ),
    )
