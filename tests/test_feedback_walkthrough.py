"""The feedback walkthrough of docs/feedback.md on the embedded demo, through the real CLI:
train on the first 80 %, score the rest, confirm the events of half of the labelled anomalies
and mark a few others false positives, retrain (the mask is exactly the confirmed windows plus
the margin), then train the failure predictor and apply it twice (same rows, same values)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
import yaml
from clitools import make_project, run_cli

from Database import DEMO_ANOMALY_TABLE

ROWS = 20_000  # ~10.5 h at 1.891 s
TRAIN_END = pd.Timestamp("2026-01-05T08:24:00Z")  # ~80 % of it
MARGIN_S = 60


def _read(path: Path, table: str) -> pd.DataFrame:
    engine = sa.create_engine(f"sqlite:///{path}")
    try:
        return pd.read_sql_table(table, engine)
    finally:
        engine.dispose()


def _utc(frame: pd.DataFrame, *columns: str) -> pd.DataFrame:
    for column in columns:
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame


def _on_a_label(event: pd.Series, labels: pd.DataFrame) -> bool:
    """The event overlaps a label of its axis (a label of several axes: of every axis; the
    machine channel: any label)."""
    hit = (labels["start_ts"] <= event["end_ts"]) & (labels["end_ts"] >= event["start_ts"])
    if event["axis"] != "*":
        hit &= labels["axis"].isna() | (labels["axis"] == event["axis"])
    return bool(hit.any())


def _rows_inside(ts: pd.Series, windows: pd.DataFrame, margin: pd.Timedelta) -> int:
    """Samples inside any window widened by ``margin`` (ends inclusive), counted by hand."""
    inside = np.zeros(len(ts), dtype=bool)
    for start, end in zip(windows["start_ts"], windows["end_ts"], strict=True):
        inside |= ((ts >= start - margin) & (ts <= end + margin)).to_numpy()
    return int(inside.sum())


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    config = make_project(
        tmp_path, f"plots: {{enabled: false}}\nlabels: {{table: {DEMO_ANOMALY_TABLE}}}\n"
    )
    built = run_cli("orchestrate.py", "demo-db", "--rows", str(ROWS), config=config)
    assert built.code == 0, built.stderr
    return config


def test_the_feedback_walkthrough_on_the_demo(demo: Path) -> None:
    def cli(*args: str):
        run = run_cli(*args, config=demo)
        assert run.code == 0, f"{args}: {run.stderr[-2000:]}"
        return run

    database = demo.parent / "demo.sqlite"
    cli("main.py", "--set", f"data.train_end={TRAIN_END.isoformat()}")
    cli("orchestrate.py", "score")
    events = _utc(
        pd.DataFrame(
            cli("orchestrate.py", "events", "list", "--limit", "1000", "--json").json()["events"]
        ),
        "start_ts",
        "end_ts",
    )
    labels = _utc(_read(database, DEMO_ANOMALY_TABLE), "start_ts", "end_ts")
    scored = labels[labels["start_ts"] >= TRAIN_END].sort_values("start_ts", ignore_index=True)
    half = scored.iloc[::2]
    on_half = events.apply(_on_a_label, axis=1, labels=half)
    on_none = ~events.apply(_on_a_label, axis=1, labels=scored)
    confirmed = events[on_half]
    # Events on an axis no label of the time names (the anomaly's spill-over into the other
    # axes' cross-model residuals): the earliest three are marked false positives.
    false = events[on_none & ~on_half].sort_values("start_ts").head(3)
    assert len(scored) == 22 and len(half) == 11
    assert (len(events), len(confirmed), int((on_none & ~on_half).sum())) == (88, 35, 33)
    every_half_label_has_an_event = [
        bool(confirmed.apply(_on_a_label, axis=1, labels=half.iloc[[i]]).any())
        for i in range(len(half))
    ]
    assert all(every_half_label_has_an_event)

    cli("orchestrate.py", "events", "label", *map(str, confirmed["id"]), "--as", "confirmed")
    cli("orchestrate.py", "events", "label", *map(str, false["id"]), "--as", "false-positive")
    verdicts = pd.DataFrame(
        cli("orchestrate.py", "events", "list", "--limit", "1000", "--json").json()["events"]
    ).set_index("id")["verdict"]
    assert verdicts.value_counts().to_dict() == {"confirmed": 35, "false-positive": 3}

    # Retrain on everything, with labels.table off: the mask is the operators' word alone.
    everything = ["--set", "data.train_end=null"]
    margin = ["--set", f"labels.mask_margin={MARGIN_S}s"]
    cli("main.py", *everything, *margin, "--set", "labels.table=null")
    meta = yaml.safe_load((demo.parent / "registry" / "v2" / "meta.yaml").read_text())
    samples = _utc(_read(database, "robot_samples")[["ts"]], "ts")["ts"]
    masked = _rows_inside(samples, confirmed, pd.Timedelta(seconds=MARGIN_S))
    assert meta["labels"]["windows"] == {"labels": 0, "confirmed": 35, "maintenance": 0}
    assert meta["labels"]["margin_s"] == MARGIN_S
    assert meta["labels"]["rows"] == ROWS
    assert meta["labels"]["masked_incident_rows"] == meta["labels"]["masked_rows"] == masked
    assert 0 < masked < ROWS // 4

    # The predictor learns from the labelled and the confirmed incidents; trained twice it
    # gives the same figures, and apply writes the same rows with the same values again.
    trained = cli("orchestrate.py", "predictor", "train", *everything, "--json").json()["assets"]
    first = cli("orchestrate.py", "apply", "--json").json()
    risk = _read(database, "failure_risk").sort_values("bucket_start", ignore_index=True)
    since = pd.Timestamp(risk["bucket_start"].iloc[0], tz="UTC").isoformat()
    retrained = cli("orchestrate.py", "predictor", "train", *everything, "--json").json()["assets"]
    again = cli("orchestrate.py", "apply", "--since", since, "--json").json()
    risk_again = _read(database, "failure_risk").sort_values("bucket_start", ignore_index=True)

    assert [a["ml_status"]["code"] for a in trained] == ["ok"]
    assert trained[0]["metrics"]["auc"] is not None and trained[0]["metrics"]["warned"] > 0
    assert (trained[0]["version"], retrained[0]["version"]) == ("v1", "v2")
    assert trained[0]["metrics"] == retrained[0]["metrics"]
    assert first["ml_status"]["code"] == "ok" and first["assets"][0]["version"] == "v1"
    assert first["assets"][0]["written"] == len(risk) > 0
    assert again["assets"][0]["written"] == len(risk_again) == len(risk)
    columns = ["asset", "source_table", "bucket_start", "probability"]
    pd.testing.assert_frame_equal(risk_again[columns], risk[columns])
    assert set(risk_again["model_version"]) == {"v2"}
    state = cli("orchestrate.py", "fleet", "--json").json()["assets"]
    assert [
        (row["asset"], row["status"], row["predictor_status"], row["predictor_version"])
        for row in state
    ] == [("", "predictor-only", "ok", "v2")]
    assert state[0]["predictor_auc"] == pytest.approx(retrained[0]["metrics"]["auc"])
