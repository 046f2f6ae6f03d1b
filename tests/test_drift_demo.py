"""On the embedded demo robot with the shipped config: training and scoring its last 20 % flag
drift on axis3 (the injected 5.5 h degradation) and on no other axis, and grade the two stuck
axes of the scored part low "flat"."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from conftest import PROJECT_ROOT

from Orchestration import load_config, run_training
from Orchestration.context import open_database
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
