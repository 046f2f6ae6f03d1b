"""On the embedded demo robot with the shipped config: training and scoring its last 20 % flag
drift on axis3 (the injected 5.5 h degradation) and on no other axis, grade the two stuck
axes of the scored part low "flat", and project axis8's slow wear (and only it) to its error
threshold within 10 % of the crossing the generator implies."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from conftest import PROJECT_ROOT

from Database import demo_signals
from Orchestration import load_config, run_training
from Orchestration.context import open_database
from Orchestration.digest import run_digest
from Orchestration.drift import read_drift
from Orchestration.scoring import run_scoring
from Scoring import EventStore


def test_drift_on_the_degrading_axis_only_and_the_stuck_axes_flat(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.delenv("DB_URL", raising=False)
    loaded = load_config(
        PROJECT_ROOT / "config.yaml",
        [
            f"database.embedded_path={tmp_path / 'demo.sqlite'}",
            f"registry.root_dir={tmp_path / 'registry'}",
            "plots.enabled=false",
        ],
    )
    run_training(loaded)

    report = run_scoring(loaded)

    session = open_database(loaded, access="read")
    try:
        store = EventStore(session.engine, session.target, "anomaly_events", "robot_samples")
        events = store.read_events()
    finally:
        session.close()
    drift = events[events["severity"] == "drift"]
    assert set(drift["axis"]) == {"axis3"}
    (episode,) = drift.to_dict("records")
    label_start = pd.Timestamp("2026-01-11 02:04:07.937", tz="UTC")  # the degradation label
    assert label_start < episode["start_ts"] < label_start + pd.Timedelta(hours=5.5)
    assert episode["side"] == "upper"
    assert report.drift["started"] == 1
    flat = {a: [f["check"] for f in h["findings"]] for a, h in report.health.items()}
    assert flat == {"axis2": ["flat"], "axis5": ["flat"]}
    assert {h["grade"] for h in report.health.values()} == {"low"}
    state = read_drift(loaded)
    assert len(state) == 8 and set(state["model_version"]) == {"v1"}

    # The wear: axis8 rises linearly from 80 % of the data to its end, 0 while the robot stops.
    # Its true crossing of MaxC: where the line through the wear reaches MaxC minus the
    # residual centre, counted from the newest block the projection starts at.
    (projected,) = report.trend
    assert projected == "axis8"
    trend = report.trend["axis8"]
    start_fraction, axis_index, sigmas = demo_signals._WEAR
    assert demo_signals.DEMO_AXES[axis_index] == "axis8"
    rows = demo_signals.DEFAULT_ROWS
    span_days = (rows - int(start_fraction * rows) - 1) * demo_signals._STEP_MS / 86_400_000
    rise = sigmas * demo_signals._NOISE * demo_signals._BASE_CURRENT[axis_index]
    slope = rise / span_days  # amperes per day
    assert abs(trend["slope_per_day"] - slope) < 0.1 * slope
    thresholds = json.loads((tmp_path / "registry" / "v1" / "thresholds.json").read_text())
    maxc, center = thresholds["axis8"]["MaxC"], thresholds["axis8"]["center"]
    at = pd.Timestamp(trend["at"], unit="s", tz="UTC")
    wear_start = demo_signals.DEMO_START + pd.Timedelta(
        milliseconds=int(start_fraction * rows) * demo_signals._STEP_MS
    )
    level_at = slope * (at - wear_start).total_seconds() / 86_400
    true_days = (maxc - center - level_at) / slope
    assert abs(trend["days"] - true_days) < 0.1 * true_days
    assert trend["days_early"] < true_days < trend["days_late"]

    # The morning digest projects the same from the stored block levels.
    digest = run_digest(loaded, plots=False).digest
    sections = {section.key: section for section in digest.sections}
    assert sections["trend"].rows == [
        [
            "robot_samples",
            "axis8",
            round(trend["days"], 1),
            f"{trend['days_early']:.1f} to {trend['days_late']:.1f}",
            "MaxC",
            pd.Timestamp(trend["at"], unit="s", tz="UTC").isoformat(),
            "v1",
        ]
    ]
    assert "drift" not in sections  # axis3's drift ended with its degradation
    # The cross family's echoes and the shifts of axes 2, 3 and 5 make alarms coincide.
    assert sections["coinciding"].rows[0] == ["robot_samples", "axis1 and axis2", 80, 8, 10]
