"""Readable text for the terminal: aligned tables of profiles, metrics, thresholds, versions."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from Database import DatabaseError
from DataExtractionAnalysis import Profile
from Fleet import asset_from_folder
from ModelRegistry import Aliases, ModelRegistry, RegistryError
from Reports import channel
from Scoring import format_duration
from Thresholding import MACHINE_CHANNEL

logger = logging.getLogger(__name__)

__all__ = [
    "fleet_registry_list",
    "format_evaluation",
    "format_fleet_scoring",
    "format_fleet_state",
    "format_fleet_training",
    "format_profile",
    "format_scoring",
    "format_training",
    "registry_list",
    "registry_show",
]


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Left-aligned first column, right-aligned numbers, two spaces between columns."""

    def cell(value: Any) -> str:
        if value is None:
            return "-"
        if isinstance(value, float):
            return f"{value:.6g}"
        return str(value)

    text = [[cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in text)) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        parts = [values[0].ljust(widths[0])]
        parts += [v.rjust(w) for v, w in zip(values[1:], widths[1:], strict=True)]
        return "  ".join(parts).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(r) for r in text)])


def format_profile(result: Profile, table: str) -> str:
    """The ``profile`` command's output."""
    head = (
        f"table {table}: {result.rows} rows from {result.start} to {result.end}\n"
        f"dt_seconds {result.dt_seconds:g} (median interval); {result.gaps} gaps longer than "
        f"{result.gap_factor:g} x dt\n"
    )
    rows = [
        [axis, p.count, p.nan, f"{p.zero_share:.2%}", p.min, p.max, p.mean, p.std]
        for axis, p in result.axes.items()
    ]
    headers = ["axis", "count", "nan", "zeros", "min", "max", "mean", "std"]
    text = head + "\n" + _table(headers, rows)
    if result.health:
        text += "\n\n" + format_health({a: h.to_dict() for a, h in result.health.items()})
    return text


def format_health(health: dict[str, Any]) -> str:
    """Sensor health per axis (``{axis: {grade, findings}}``): grade, then each finding's
    reason and recommended action."""
    width = max(len(axis) for axis in health)
    lines = ["sensor health"]
    for axis, record in health.items():
        lines.append(f"  {axis.ljust(width)}  {record.get('grade')}")
        for finding in record.get("findings") or []:
            lines.append(f"  {'':{width}}    {finding['check']}: {finding['reason']}")
            lines.append(f"  {'':{width}}      -> {finding['action']}")
    return "\n".join(lines)


def _axis_rows(
    metrics: pd.DataFrame,
    thresholds: dict[str, dict[str, Any]],
    families: dict[str, str] | None = None,
) -> list[list[Any]]:
    """One row per axis (metrics and thresholds), then the machine channel's thresholds."""
    rows = []
    fitted = metrics.to_dict(orient="records")
    machine = thresholds.get(MACHINE_CHANNEL)
    if machine is not None:
        fitted.append({"axis": MACHINE_CHANNEL})
    for record in fitted:
        th = thresholds.get(record["axis"], {})
        family = (families or {}).get(record["axis"])
        if record["axis"] == MACHINE_CHANNEL:
            family = "machine"
        rows.append(
            [
                record["axis"],
                family,
                record.get("n"),
                record.get("r2"),
                record.get("mae"),
                record.get("rmse"),
                th.get("MaxC_low"),
                th.get("MinC_low"),
                th.get("MinC"),
                th.get("MaxC"),
                th.get("T_long_steps"),
                th.get("T_short_steps"),
                th.get("expected_events_per_day"),
            ]
        )
    return rows


_AXIS_HEADERS = [
    "axis",
    "family",
    "n",
    "R2",
    "MAE",
    "RMSE",
    "MaxC_low",
    "MinC_low",
    "MinC",
    "MaxC",
    "T_long",
    "T_short",
    "events/day",
]


def format_training(result: Any) -> str:
    """The ``train`` summary: per-axis metrics and thresholds, the expected alarm rate, timings
    and the artifact folder."""
    timings = ", ".join(f"{name} {seconds:.2f}s" for name, seconds in result.timings.items())
    demo = ""
    if result.data_source == "demo":
        demo = " of the embedded DEMO database (synthetic data, not your machines)"
    masked = ""
    if result.masked_rows:
        masked = f" ({result.masked_rows} in known incidents or maintenance left out)"
    budget = result.alarm_budget
    expected = budget.get("expected_events_per_day")
    alarms = "expected false alert events per day (on held-out data): " + (
        "-" if expected is None else f"{expected:.3g}"
    )
    if budget.get("max_events_per_day") is not None:
        alarms += f" (budget {budget['max_events_per_day']:g}"
        alarms += ": met)" if budget.get("met") else ": NOT met)"
    for change in budget.get("changes", []):
        alarms += f"\n  budget raised {change}"
    tracking = result.tracking or {}
    if tracking.get("status", "off") != "off":
        alarms += f"\ntracking: {tracking['status']} ({tracking['detail']})"
    if result.promotion is not None:
        verdict = "champion" if result.promotion["promoted"] else "NOT promoted"
        alarms += f"\n{result.version}: {verdict} ({result.promotion['reason']})"
    sentences = (getattr(result, "insights", None) or {}).get("sentences") or []
    insights = "".join(f"\n  {sentence}" for sentence in sentences)
    return (
        f"registered {result.version} (run {result.run_id}) from {result.rows} rows{demo}"
        f"{masked}, dt_seconds {result.profile.dt_seconds:g}\n\n"
        + _table(_AXIS_HEADERS, _axis_rows(result.metrics, result.thresholds, result.families))
        + f"\n\n{alarms}"
        + (f"\ninsights:{insights}" if insights else "")
        + f"\nsteps: {timings}\nartifacts: {result.artifact_dir}"
    )


def format_worst_events(records: Sequence[dict[str, Any]], *, with_asset: bool) -> str:
    """Aligned table of event records worst first: (asset,) axis, severity, start, duration,
    ratio to the threshold and side of the peak."""
    rows = [
        [
            *([r["asset"]] if with_asset else []),
            channel(r),
            r["severity"],
            _minute(r["start"]),
            format_duration(r["duration_s"]),
            "-" if r["ratio"] is None else f"{r['ratio']:.2f}",
            r["side"],
        ]
        for r in records
    ]
    headers = ["axis", "severity", "start (UTC)", "duration", "ratio", "side"]
    return _table([*(["asset"] if with_asset else []), *headers], rows)


def _minute(iso: str | None) -> str | None:
    """``2026-01-10 16:06:04`` from an ISO-8601 UTC string."""
    return None if iso is None else pd.Timestamp(iso).strftime("%Y-%m-%d %H:%M:%S")


def format_scoring(report: Any) -> str:
    """The ``score`` summary: window, events per axis and severity, the worst events, where
    the output went."""
    rows = [[axis, c.get("alert", 0), c.get("error", 0)] for axis, c in report.counts.items()]
    text = f"{report.detail}\n\n" + _table(["axis", "alert events", "error events"], rows)
    if report.worst:
        text += "\n\nworst events (ratio: peak over its threshold)\n"
        text += format_worst_events(report.worst, with_asset=report.asset is not None)
    notes = _scoring_notes(report)
    if notes:
        text += "\n\n" + "\n".join(notes)
    if report.output:
        text += f"\n\nper-sample levels: {report.output}"
    return text


def _scoring_notes(report: Any) -> list[str]:
    """Drift, sensor health, dead sensors, time to threshold and retraining, one line each."""
    notes = []
    drift = getattr(report, "drift", None) or {}
    for axis, state in (drift.get("drifting") or {}).items():
        notes.append(f"drift: {axis} drifts {state['direction']} since {state['since']}")
    if drift and not drift.get("drifting"):
        started = drift.get("started", 0)
        plural = "" if started == 1 else "s"
        notes.append(f"drift: no axis drifts now ({started} drift event{plural} began in the run)")
    for axis, record in (getattr(report, "health", None) or {}).items():
        reasons = "; ".join(f"{f['check']}: {f['reason']}" for f in record["findings"])
        notes.append(f"sensor health: {axis} {record['grade']} ({reasons})")
    for axis, count in (getattr(report, "sensor", None) or {}).items():
        notes.append(f"dead sensor: {axis} ({count} sensor events)")
    trend = getattr(report, "trend", None)
    if drift:
        if trend:
            for axis, item in trend.items():
                notes.append(
                    f"time to threshold: {axis} reaches its error threshold in about "
                    f"{item['days']:.1f} days ({item['days_early']:.1f} to {item['days_late']:.1f})"
                )
        else:
            notes.append("time to threshold: no axis trends significantly towards its threshold")
    if getattr(report, "retrain", None):
        notes.append(f"retrain: {report.retrain}")
    return notes


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def format_evaluation(run: Any) -> str:
    """The ``evaluate`` summary: pointwise and event-wise figures, and the labels missed."""
    r = run.report
    delay = "-" if r.mean_time_to_detect_s is None else f"{r.mean_time_to_detect_s:.0f} s"
    per_day = "-" if r.false_events_per_day is None else f"{r.false_events_per_day:.2f}"
    rows = [
        ["samples scored (not idle)", r.samples],
        ["labelled samples", r.positives],
        ["flagged samples (alert or error)", r.flagged],
        ["precision / recall / F1", f"{_share(r.precision)} / {_share(r.recall)} / {_share(r.f1)}"],
        ["false-alarm rate", _share(r.false_alarm_rate)],
        ["missed-alarm rate", _share(r.missed_alarm_rate)],
        [
            "labels / found (event recall)",
            f"{r.labels} / {r.labels_found} ({_share(r.event_recall)})",
        ],
        [
            "events / on a label (precision)",
            f"{r.events} / {r.true_events} ({_share(r.event_precision)})",
        ],
        ["mean time to detect", delay],
        ["false events / per day", f"{r.false_events} / {per_day} over {r.days:.2f} days"],
    ]
    text = f"{run.version} against {run.labels_table}, {run.start} to {run.end}\n\n" + _table(
        ["measure", "value"], rows
    )
    missed = [row for row in r.per_label if not row["found"]]
    if missed:
        text += "\n\nmissed:\n" + "\n".join(
            f"  {row['kind'] or 'anomaly'} on {row['axis'] or 'the machine'} from "
            f"{row['start_ts']} to {row['end_ts']}"
            for row in missed
        )
    return text


def _aliases(registry: ModelRegistry) -> Aliases:
    """The lineage's aliases; a broken one is listed as unset, with a warning."""
    try:
        return registry.aliases()
    except RegistryError as exc:
        logger.warning("aliases of %s not shown: %s", registry.root_dir, exc)
        return Aliases(None, None, ())


def registry_list(root: Path) -> tuple[dict[str, Any], str]:
    """``registry list``: JSON payload and aligned text (aliases marked)."""
    registry = ModelRegistry(root)
    versions = registry.list_versions()
    aliases = _aliases(registry)
    payload = {
        "versions": [
            {
                "version": v.version,
                "created_at": v.created_at,
                "rows": v.rows,
                "start": v.window_start,
                "end": v.window_end,
                "axes": list(v.axes),
                "latest": v.is_latest,
                "aliases": aliases.marks(v.version),
            }
            for v in versions
        ],
        "aliases": aliases.to_dict(),
    }
    if not versions:
        return payload, f"no versions in {root}; train one with: python main.py"
    rows = [
        [
            v.version
            + "".join(f" ({mark})" for mark in (["latest"] if v.is_latest else []))
            + "".join(f" ({mark})" for mark in aliases.marks(v.version)),
            v.created_at.strftime("%Y-%m-%d %H:%M:%S") if v.created_at else None,
            v.rows,
            v.window_start,
            v.window_end,
            len(v.axes),
        ]
        for v in versions
    ]
    return payload, _table(["version", "created (UTC)", "rows", "from", "to", "axes"], rows)


def registry_show(root: Path, version: str) -> tuple[dict[str, Any], str]:
    """``registry show``: thresholds and metrics of one version side by side."""
    registry = ModelRegistry(root)
    loaded = registry.load(version)
    marks = _aliases(registry).marks(loaded.version)
    decision = registry.decision(loaded.version)
    thresholds = loaded.read_json("thresholds.json")
    metrics = pd.read_csv(io.BytesIO(loaded.read_bytes("metrics.csv")))
    # Versions written before model selection existed have no selection.json.
    selection = loaded.read_json("selection.json") if "selection.json" in loaded.artifacts else {}
    meta = loaded.meta
    data = meta.get("data", {})
    payload = {
        "version": loaded.version,
        "path": str(loaded.path),
        "meta": {
            k: meta.get(k)
            for k in ("run_id", "created_at", "axes", "dt_seconds", "data", "health_skipped")
        },
        "health": meta.get("health") or {},
        "metrics": metrics.to_dict(orient="records"),
        "thresholds": thresholds,
        "families": meta.get("families"),
        "selection": selection,
        "aliases": marks,
        "promotion": decision,
    }
    promotion = ""
    if decision is not None:
        verdict = "promoted" if decision.get("promoted") else "NOT promoted"
        promotion = f"\n{verdict}: {decision.get('reason')}"
    head = (
        f"{loaded.version} at {loaded.path}{''.join(f' ({mark})' for mark in marks)}\n"
        f"created {meta.get('created_at')} by run "
        f"{meta.get('run_id')}; {data.get('rows')} rows from {data.get('start')} to "
        f"{data.get('end')}; dt_seconds {meta.get('dt_seconds')}{promotion}\n\n"
    )
    families = meta.get("families") or {}
    text = head + _table(_AXIS_HEADERS, _axis_rows(metrics, thresholds, families))
    if meta.get("health"):
        text += "\n\n" + format_health(meta["health"])
    if selection.get("table"):
        text += "\n\nfamily selection (" + str(selection.get("criterion")) + "; chosen marked *)\n"
        text += _table(
            ["axis", "family", "params", "spread", "gain", "shift", "AUC"],
            [
                [
                    row["axis"],
                    row["family"] + (" *" if row["chosen"] else ""),
                    json.dumps(row["params"]) if row["params"] else "-",
                    row["spread"],
                    row["gain"],
                    row["shift"],
                    row["auc"],
                ]
                for row in selection["table"]
            ],
        )
    return payload, text


def _note(outcome: Any) -> str:
    """What a fleet table row says besides its status: missing data, the failure, attention."""
    if outcome.status == "needs-data":
        return f"needs {outcome.missing} more samples"
    if outcome.status == "failed":
        return str(outcome.reason)
    return "; ".join(outcome.attention)


def format_fleet_training(report: Any) -> str:
    """The fleet ``train`` summary: counts, then one line per asset."""
    demo = " (embedded DEMO database)" if report.data_source == "demo" else ""
    rows = [
        [
            o.asset,
            o.status,
            o.version,
            o.samples,
            o.expected_events_per_day,
            o.plots or None,
            _clip(_note(o), 90),
        ]
        for o in report.outcomes
    ]
    headers = ["asset", "status", "version", "samples", "events/day", "plots", "note"]
    return (
        f"{report.status.detail}{demo} in {report.seconds:.1f} s on {report.workers} "
        f"worker(s), run {report.run_id}\n\n" + _table(headers, rows)
    )


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def format_fleet_state(
    state: pd.DataFrame, table: str, source_table: str
) -> tuple[dict[str, Any], str]:
    """``fleet``: the fleet state table as JSON rows and an aligned table."""
    records = []
    for row in state.to_dict(orient="records"):
        record = {key: (None if _missing(value) else value) for key, value in row.items()}
        for key in ("families", "thresholds"):
            if record[key] is not None:
                record[key] = json.loads(record[key])
        records.append(record)
    payload = {"table": table, "source_table": source_table, "assets": records}
    if not records:
        return payload, (
            f"no fleet state for {source_table} in {table} yet; train the fleet first "
            "(python main.py with data.asset_col set)"
        )
    rows = [
        [
            r["asset"],
            r["status"],
            r["version"],
            None if r["trained_at"] is None else r["trained_at"].strftime("%Y-%m-%d %H:%M"),
            r["samples"],
            r["missing"],
            r["expected_events_per_day"],
            *_predictor_cells(r),
            _clip(r["reason"] or r["attention"] or "", 70),
            _clip(r.get("retrain") or "", 70) or None,
        ]
        for r in records
    ]
    headers = ["asset", "status", "version", "trained (UTC)", "samples", "missing", "events/day"]
    predictor = ["predictor", "AUC", "F1", "forewarning (s)"]
    return payload, _table([*headers, *predictor, "note", "retrain"], rows)


def _predictor_cells(record: dict[str, Any]) -> list[Any]:
    """The predictor's status and version, AUC, F1 and mean forewarning (blank before its
    first ``predictor train``)."""
    status = record.get("predictor_status")
    if status is None:
        return [None, None, None, None]
    version = record.get("predictor_version")
    shown = status if version is None else f"{status} {version}"
    rounded = [
        None if record.get(key) is None else round(record[key], 3)
        for key in ("predictor_auc", "predictor_f1")
    ]
    forewarning = record.get("predictor_forewarning_s")
    return [shown, *rounded, None if forewarning is None else round(forewarning)]


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value) or value is pd.NaT


def fleet_registry_list(loaded: Any) -> tuple[dict[str, Any], str]:
    """``registry list`` of a fleet: each asset's latest version, with its fleet status."""
    config = loaded.config
    root = loaded.path(config.registry.root_dir)
    statuses: dict[str, str] = {}
    try:
        from .fleet import read_fleet_state

        state = read_fleet_state(loaded)
        statuses = dict(zip(state["asset"], state["status"], strict=True))
    except DatabaseError as exc:
        logger.warning("fleet statuses not shown: %s", exc)
    assets: dict[str, Any] = {}
    if root.is_dir():
        for entry in sorted(root.iterdir()):
            asset = asset_from_folder(entry.name) if entry.is_dir() else None
            if asset is None:
                continue
            lineage = ModelRegistry(entry)
            versions = lineage.list_versions()
            if versions:
                assets[asset] = (versions, entry, _aliases(lineage).champion)
    rows, listed = [], []
    for asset in sorted(set(assets) | set(statuses)):
        versions, entry, champion = assets.get(asset, ([], None, None))
        latest = next((v for v in versions if v.is_latest), versions[-1] if versions else None)
        listed.append(
            {
                "asset": asset,
                "path": None if entry is None else str(entry),
                "version": None if latest is None else latest.version,
                "champion": champion,
                "versions": len(versions),
                "created_at": None if latest is None else latest.created_at,
                "rows": None if latest is None else latest.rows,
                "status": statuses.get(asset),
            }
        )
        rows.append(
            [
                asset,
                None if latest is None else latest.version,
                champion,
                len(versions),
                None
                if latest is None or latest.created_at is None
                else latest.created_at.strftime("%Y-%m-%d %H:%M:%S"),
                None if latest is None else latest.rows,
                statuses.get(asset),
            ]
        )
    payload = {"root": str(root), "assets": listed}
    if not listed:
        return payload, f"no assets in {root}; train the fleet with: python main.py"
    headers = ["asset", "latest", "champion", "versions", "trained (UTC)", "rows", "status"]
    return payload, _table(headers, rows)


def format_fleet_scoring(report: Any) -> str:
    """The fleet ``score`` summary: counts, then one line per asset."""
    rows = [
        [
            a.asset,
            a.status,
            a.version,
            a.samples,
            a.events.get("alert", 0),
            a.events.get("error", 0),
            _clip(a.detail, 90) if a.status != "ok" else "",
        ]
        for a in report.assets
    ]
    headers = ["asset", "status", "version", "samples", "alert events", "error events", "note"]
    text = f"{report.status.detail} in {report.seconds:.1f} s\n\n" + _table(headers, rows)
    worst = report.worst
    if worst:
        text += "\n\nworst events (ratio: peak over its threshold)\n"
        text += format_worst_events(worst, with_asset=True)
    return text
