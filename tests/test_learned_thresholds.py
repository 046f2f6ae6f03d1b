"""Learned thresholds: the search on a hand-made outcome set with a known best rule, the
confidence and the fallback to the percentile policy, and the rows of labelled windows."""

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
from Orchestration import load_config, run_training
from Thresholding import Outcomes, apply_learned, outcome_rows, search_rule

GRID = {"multipliers": [1.0, 1.5, 2.0, 2.5, 3.5], "sustains": [1, 2, 3]}


def _exceed() -> np.ndarray:
    """100 rows at 0.5 x the percentile threshold, with:

    - incident A, rows 10-19 (weight 1): 3.0 at rows 12-16;
    - incident B, rows 40-49 (weight 2): 2.2 at rows 40-44;
    - a wobble of 1.8 at rows 70-71 and a one-sample spike of 4.0 at row 80 (labelled false
      positive, rows 79-81): false alarms;
    - 5.0 at rows 90-92, inside a window labelled ignore (a test run): never a false alarm.
    """
    exceed = np.full(100, 0.5)
    exceed[12:17] = 3.0
    exceed[40:45] = 2.2
    exceed[70:72] = 1.8
    exceed[80] = 4.0
    exceed[90:93] = 5.0
    exceed[60] = np.nan  # idle: no judgement
    return exceed


OUTCOMES = Outcomes.of(
    [
        (10, 19, "confirmed", 1.0),
        (40, 49, "confirmed", 2.0),
        (79, 81, "false-positive", 1.0),
        (90, 95, "ignore", 1.0),
    ]
)


def test_the_search_finds_the_known_best_multiplier_and_sustain() -> None:
    rule = search_rule(_exceed(), OUTCOMES, **GRID, min_labels=3)

    # m = 2, k = 2: A alarms at row 13 (3 of 10 rows late: 1 - 0.5 * 0.3 = 0.85), B at row 41
    # (2 * 0.95 = 1.9), the wobble (1.8) stays below and the spike is too short: 2.75.
    # Runner-up: m = 2, k = 1 finds both earlier (0.9 + 2.0) but raises the spike: 1.9;
    # m = 1.5 raises the wobble; m = 2.5 misses B; k = 3 is later: 0.8 + 1.8 = 2.6.
    assert (rule.multiplier, rule.sustain) == (2.0, 2)
    assert rule.objective == pytest.approx(2.75)
    assert (rule.incidents, rule.found, rule.false_alarms, rule.false_positive_labels) == (
        2,
        2,
        0,
        1,
    )
    assert rule.mean_delay_samples == pytest.approx(2.0)  # (3 + 1) / 2
    assert rule.confidence == pytest.approx(1.0)  # 3 labels of 3, recall 1, no false alarm


def test_false_alarms_cost_and_fewer_labels_lower_the_confidence() -> None:
    cheap = search_rule(_exceed(), OUTCOMES, **GRID, false_alarm_cost=0.05, min_labels=6)

    # False alarms at 0.05 each: finding both at once is worth the spike. m = 2, k = 1 finds A
    # at row 12 and B at row 40 (0.9 + 2.0) and raises the spike: 2.85; m = 1.5, k = 1 also
    # raises the wobble: 2.8; m = 2, k = 2 raises nothing but is later: 2.75.
    assert (cheap.multiplier, cheap.sustain, cheap.false_alarms) == (2.0, 1, 1)
    assert cheap.objective == pytest.approx(2.9 - 0.05)
    # Half the labels wanted (3 of 6); recall 1, false discovery rate 1 / 3.
    assert cheap.confidence == pytest.approx(0.5 * (1.0 - 1.0 / 3.0))


def test_without_an_incident_there_is_nothing_to_learn() -> None:
    only_negatives = Outcomes.of([(79, 81, "false-positive", 1.0)])
    assert search_rule(_exceed(), only_negatives, **GRID) is None


RECORD = {
    "MinC": 2.0,
    "MaxC": 3.0,
    "MinC_low": -1.0,
    "MaxC_low": -1.5,
    "T_long_steps": 5,
    "T_short_steps": 3,
    "side": "both",
}


def test_confident_axes_use_the_learned_rule_the_others_keep_the_percentile_one() -> None:
    residual = _exceed() * 2.0  # exceed on the upper side = residual / MinC
    residual[30:33] = -0.4  # 0.4 x the lower MinC: below every multiplier
    records = {"a": RECORD, "b": RECORD, "c": RECORD}
    outcomes = {"a": OUTCOMES, "b": OUTCOMES}
    settings = {**GRID, "false_alarm_cost": 1.0, "min_confidence": 0.6}

    learned = apply_learned(
        records, {"a": residual, "b": residual}, outcomes, min_labels=3, **settings
    )
    unsure = apply_learned(records, {"a": residual}, outcomes, min_labels=6, **settings)

    a = learned["a"]
    assert a["threshold_source"] == "learned"
    # The percentile sustain (5) joins the grid, but 2 stays best.
    assert (a["MinC"], a["MaxC"], a["MinC_low"], a["MaxC_low"]) == (4.0, 6.0, -2.0, -3.0)
    assert (a["T_long_steps"], a["T_short_steps"]) == (2, 2)
    assert a["learned"]["reason"] == "confident" and a["learned"]["confidence"] == 1.0
    assert learned["c"]["threshold_source"] == "percentile"
    assert learned["c"]["learned"] == {
        "reason": "no residuals to learn from, or a threshold not beyond zero"
    }
    assert unsure["a"]["threshold_source"] == "percentile"
    assert unsure["a"]["MinC"] == 2.0 and unsure["a"]["T_long_steps"] == 5
    assert unsure["a"]["learned"]["reason"] == (
        "confidence below thresholds.learned.min_confidence (0.6)"
    )
    assert unsure["a"]["learned"]["confidence"] == 0.5
    assert unsure["b"]["threshold_source"] == "percentile"


def test_the_lower_side_alarms_as_a_multiple_of_its_own_threshold() -> None:
    residual = -_exceed()  # the same outcomes, below: exceed = residual / MinC_low (-1)
    learned = apply_learned(
        {"a": {**RECORD, "MinC": 50.0}},
        {"a": residual},
        {"a": OUTCOMES},
        **GRID,
        false_alarm_cost=1.0,
        min_labels=3,
        min_confidence=0.5,
    )
    assert (learned["a"]["MinC_low"], learned["a"]["T_long_steps"]) == (-2.0, 2)


def test_labelled_windows_become_row_ranges_of_their_axis_and_the_machine() -> None:
    t0 = pd.Timestamp("2026-01-05", tz="UTC")
    ts = pd.Series([t0 + pd.Timedelta(seconds=2 * i) for i in range(10)])
    windows = pd.DataFrame(
        {
            "start_ts": [t0 + pd.Timedelta(seconds=s) for s in (1, 4, 10, 30, 14)],
            "end_ts": [t0 + pd.Timedelta(seconds=s) for s in (5, 4, 12, 40, 16)],
            "axis": pd.Series(["a", None, "b", "*", None], dtype=object),
            "kind": ["confirmed", "false-positive", "confirmed", "ignore", "confirmed"],
            "severity": ["error", None, "alert", "high", "alert"],
        }
    )

    rows = outcome_rows(ts, windows, "a", {"error": 2.0})

    # 1-5 s holds rows 1-2 (2 s, 4 s); 4-4 s row 2; b's window is another axis; 30-40 s holds
    # no row; the machine-wide incident at 14-16 s excuses a's alarms (rows 7-8).
    assert rows.start.tolist() == [1, 2, 7] and rows.end.tolist() == [2, 2, 8]
    assert rows.kind.tolist() == ["confirmed", "false-positive", "ignore"]
    assert rows.weight.tolist() == [2.0, 1.0, 1.0]


def test_training_in_learned_mode_records_per_axis_which_thresholds_it_uses(
    sqlite_db: Db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(11)
    n = 3000
    t0 = pd.Timestamp("2026-01-05", tz="UTC")
    ts = [t0 + pd.Timedelta(seconds=i) for i in range(n)]
    a = 5.0 + rng.normal(0, 0.1, n)
    incidents = [200, 700, 1200, 1700, 2200, 2700]
    for first in incidents:
        a[first : first + 30] += 1.0
    for spike in (450, 950, 1450):  # short bumps nobody labelled: false alarms to avoid
        a[spike : spike + 2] += 0.45
    frame = pd.DataFrame({"ts": ts, "a": a, "b": 7.0 + rng.normal(0, 0.1, n)})
    columns = {"ts": sa.DateTime(timezone=True), "a": sa.Float(53), "b": sa.Float(53)}
    write_chunks(sqlite_db.engine, sqlite_db.target, "s", columns, [frame])
    labels = pd.DataFrame(
        {
            "start_ts": [ts[i] for i in incidents],
            "end_ts": [ts[i + 29] for i in incidents],
            "axis": "a",
            "severity": "alert",
        }
    )
    labels.to_sql("failures", sqlite_db.engine, index=False)
    monkeypatch.setenv("DB_URL", sqlite_db.url)
    common = [
        "data.table=s",
        "data.axes=[a, b]",
        "labels.table=failures",
        "model.type=constant",
        "model.machine=none",
        "thresholds.calibration=in_sample",
        "thresholds.side=upper",
        "plots.enabled=false",
    ]

    def thresholds(*extra: str) -> dict:
        result = run_training(load_config(make_project(tmp_path), [*common, *extra]))
        return json.loads((result.artifact_dir / "thresholds.json").read_text())

    percentile = thresholds()
    learned = thresholds("thresholds.mode=learned")

    a_rule, b_rule = learned["a"], learned["b"]
    assert a_rule["threshold_source"] == "learned"
    report = a_rule["learned"]
    assert (report["incidents"], report["found"], report["false_alarms"]) == (6, 6, 0)
    assert a_rule["MinC"] == pytest.approx(percentile["a"]["MinC"] * report["multiplier"])
    # The percentile rule waits 5 samples; the incidents stand out enough to alarm at once.
    assert (percentile["a"]["T_long_steps"], a_rule["T_long_steps"]) == (5, report["sustain"])
    assert report["sustain"] < 5 and report["mean_delay_samples"] == 0.0
    assert b_rule["threshold_source"] == "percentile"
    assert b_rule["learned"] == {"reason": "no labelled incident in the window"}
    assert b_rule["MinC"] == percentile["b"]["MinC"]


@pytest.mark.parametrize("calibration", ["holdout", "in_sample"])
def test_the_rule_is_searched_on_the_residuals_the_percentiles_were_calibrated_on(
    sqlite_db: Db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, calibration: str
) -> None:
    import Orchestration.orchestrator as orchestrator

    rng = np.random.default_rng(5)
    n, folds = 1000, 5  # calibration blocks of 200 rows
    t0 = pd.Timestamp("2026-01-05", tz="UTC")
    ts = [t0 + pd.Timedelta(seconds=i) for i in range(n)]
    a = 5.0 + rng.normal(0, 0.1, n) + np.repeat([0.0, 0.2, 0.4, 0.1, 0.3], 200)  # level per block
    incident = np.zeros(n, dtype=bool)
    for first in (100, 500, 900):
        a[first : first + 20] += 1.0
        incident[first : first + 20] = True
    frame = pd.DataFrame({"ts": ts, "a": a})
    columns = {"ts": sa.DateTime(timezone=True), "a": sa.Float(53)}
    write_chunks(sqlite_db.engine, sqlite_db.target, "s", columns, [frame])
    pd.DataFrame(
        {
            "start_ts": [ts[i] for i in (100, 500, 900)],
            "end_ts": [ts[i + 19] for i in (100, 500, 900)],
            "axis": "a",
            "severity": "alert",
        }
    ).to_sql("failures", sqlite_db.engine, index=False)
    monkeypatch.setenv("DB_URL", sqlite_db.url)
    searched: dict[str, np.ndarray] = {}
    apply = orchestrator.apply_learned

    def recording(records, residuals, outcomes, **kwargs):
        searched["a"] = np.asarray(residuals["a"])
        return apply(records, residuals, outcomes, **kwargs)

    monkeypatch.setattr(orchestrator, "apply_learned", recording)
    run_training(
        load_config(
            make_project(tmp_path),
            [
                "data.table=s",
                "data.axes=[a]",
                "labels.table=failures",
                "model.type=constant",
                "model.machine=none",
                f"model.folds={folds}",
                f"thresholds.calibration={calibration}",
                "thresholds.mode=learned",
                "plots.enabled=false",
            ],
        )
    )

    # The constant family fits the median of the rows it may use (not the incidents).
    final = a - np.median(a[~incident])
    if calibration == "in_sample":
        expected = final
    else:  # each block's rows against the median of the other blocks' usable rows
        block = np.arange(n) // 200
        expected = np.array(
            [a[i] - np.median(a[~incident & (block != block[i])]) for i in range(n)]
        )
        expected[incident] = final[incident]  # no fit saw them: the final model's residuals
    np.testing.assert_allclose(searched["a"], expected, rtol=0, atol=1e-12)
