"""Scoring both sides, smoothing and the machine channel; events that explain themselves."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from Scoring import (
    MACHINE_CHANNEL,
    Level,
    ScoringInputError,
    assign_levels,
    lookahead_samples,
    lookback_samples,
    score_frame,
)


def _rule(**extra):
    return {"MinC": 1.0, "MaxC": 3.0, "T_long_steps": 2, "T_short_steps": 1, **extra}


BOTH = _rule(MinC_low=-1.0, MaxC_low=-3.0, side="both")


def test_the_lower_side_alarms_on_a_drop():
    values = np.ones(8)
    residuals = np.array([0, -1.5, -1.5, 0, -4, 0, 1.5, 1.5])
    codes = assign_levels(
        values, residuals, minc=1.0, maxc=3.0, t_long=2, t_short=1, minc_low=-1.0, maxc_low=-3.0
    )
    o, a, e = Level.OK, Level.ALERT, Level.ERROR
    assert codes.tolist() == [o, a, a, o, e, o, a, a]
    upper_only = assign_levels(values, residuals, minc=1.0, maxc=3.0, t_long=2, t_short=1)
    assert upper_only.tolist() == [o, o, o, o, o, o, a, a]


def test_a_run_must_stay_on_one_side():
    # +1.5, -1.5 alternate: beyond MinC every sample, but never twice in a row on one side.
    residuals = np.array([1.5, -1.5, 1.5, -1.5])
    codes = assign_levels(
        np.ones(4), residuals, minc=1.0, maxc=3.0, t_long=2, t_short=2, minc_low=-1.0, maxc_low=-3.0
    )
    assert codes.tolist() == [Level.OK] * 4


def _frame(residuals: dict[str, list[float]], values: dict[str, list[float]] | None = None):
    n = len(next(iter(residuals.values())))
    frame = pd.DataFrame({"ts": np.arange(n, dtype=float)})
    for axis, column in residuals.items():
        frame[axis] = (values or {}).get(axis, [10.0] * n)
        frame[f"{axis}_res"] = column
    return frame


def test_events_report_peak_time_side_actual_expected_and_ratio():
    frame = _frame({"a": [0, -1.5, -2.5, -1.2, 0, 0]}, {"a": [10, 8.5, 7.5, 8.8, 10, 10]})
    result = score_frame(frame, None, {"a": BOTH})
    events = result.events()
    assert len(events) == 1
    event = events.iloc[0]
    assert (event["severity"], event["start"], event["end"], event["samples"]) == (
        "alert",
        1.0,
        3.0,
        3,
    )
    assert (event["side"], event["peak_ts"], event["peak_residual"]) == ("below", 2.0, -2.5)
    assert (event["actual"], event["expected"]) == (7.5, 10.0)
    assert event["threshold"] == -1.0 and event["ratio"] == pytest.approx(2.5)
    assert event["contributors"] is None


def test_the_ratio_is_measured_from_the_center():
    frame = _frame({"a": [0.5, 3.5, 3.5, 0.5]})
    rule = _rule(MinC=2.0, MaxC=5.0, center=0.5)
    event = score_frame(frame, None, {"a": rule}).events().iloc[0]
    assert event["ratio"] == pytest.approx((3.5 - 0.5) / (2.0 - 0.5))


def test_the_machine_channel_scores_the_mean_squared_standardised_residual():
    # a: z = 1.5 then 0; b: z = 1.5 (scale 2) then 0. ssr = 2.25 on rows 1-3.
    frame = _frame({"a": [0, 1.5, 1.5, 1.5, 0], "b": [0, 3.0, 3.0, 3.0, 0]})
    thresholds = {
        "a": _rule(MinC=10.0, MaxC=20.0),
        "b": _rule(MinC=10.0, MaxC=20.0, scale=2.0),
        MACHINE_CHANNEL: _rule(MinC=2.0, MaxC=9.0, T_long_steps=3),
    }
    result = score_frame(frame, None, thresholds)
    np.testing.assert_allclose(result.frame["machine_score"], [0, 2.25, 2.25, 2.25, 0])
    assert result.frame["machine_level"].tolist() == ["ok", "alert", "alert", "alert", "ok"]
    assert result.frame["a_level"].tolist() == ["ok"] * 5  # no axis alone crosses
    assert result.frame["level"].tolist() == ["ok", "alert", "alert", "alert", "ok"]
    event = result.events().iloc[0]
    assert (event["axis"], event["samples"], event["ratio"]) == ("*", 3, pytest.approx(1.125))
    shares = json.loads(event["contributors"])
    assert shares == [{"axis": "a", "share": 0.5}, {"axis": "b", "share": 0.5}]


def test_a_machine_model_score_is_used_when_given_and_idle_rows_are_idle():
    frame = _frame({"a": [0.0, 0.0, 0.0, 0.0]}, {"a": [5.0, 5.0, 0.0, 5.0]})
    thresholds = {"a": _rule(), MACHINE_CHANNEL: _rule(MinC=2.0, MaxC=9.0, T_long_steps=1)}
    result = score_frame(frame, None, thresholds, machine_scores=np.array([1.0, 3.0, 3.0, 3.0]))
    assert result.frame["machine_level"].tolist() == ["ok", "alert", "idle", "alert"]
    with pytest.raises(ScoringInputError, match="machine_scores has 2 entries but frame has 4"):
        score_frame(frame, None, thresholds, machine_scores=np.ones(2))


def test_smoothing_is_applied_before_the_comparison():
    residuals = [0.0, 0.0, 4.0, 0.0, 0.0, 0.0]
    rule = _rule(
        MinC=1.5, MaxC=9.0, T_long_steps=1, smoothing={"method": "ewma", "alpha": 0.5, "window": 2}
    )
    result = score_frame(_frame({"a": residuals}), None, {"a": rule})
    # weights 0.5, 0.25 renormalised to 2/3, 1/3: row 2 = 8/3, row 3 = 4/3.
    np.testing.assert_allclose(result.frame["a_residual"], [0, 0, 8 / 3, 4 / 3, 0, 0])
    assert result.frame["a_level"].tolist() == ["ok", "ok", "alert", "ok", "ok", "ok"]


def test_context_counts_runs_smoothing_and_model_look_back():
    thresholds = {
        "a": _rule(T_long_steps=4, smoothing={"method": "ewma", "alpha": 0.5, "window": 5}),
        MACHINE_CHANNEL: _rule(T_long_steps=6),
    }
    # The longest run (6, the machine's) less one, the widest smoothing span (5) less one: the
    # machine channel reads the smoothed residuals, so both add up.
    assert lookback_samples(thresholds) == 9
    assert lookback_samples(thresholds, model_lookback=3) == 12
    assert lookahead_samples(thresholds) == 5


@pytest.mark.parametrize("seed", range(6))
def test_back_to_back_windows_with_smoothing_and_both_sides_equal_the_union(seed):
    rng = np.random.default_rng(seed)
    n = 300
    frame = _frame(
        {"a": rng.normal(0, 1.2, n), "b": rng.normal(0, 1.2, n)},
        {"a": np.where(rng.random(n) < 0.05, 0.0, 5.0), "b": [5.0] * n},
    )
    smoothing = {"method": "ewma", "alpha": 0.4, "window": 4}
    thresholds = {
        "a": {**BOTH, "smoothing": smoothing},
        "b": {**BOTH, "T_long_steps": 3},
        MACHINE_CHANNEL: _rule(MinC=1.2, MaxC=3.0, T_long_steps=2),
    }
    before, after = lookback_samples(thresholds), lookahead_samples(thresholds)
    whole = score_frame(frame, None, thresholds).frame
    cuts = sorted(rng.choice(np.arange(1, n), size=4, replace=False).tolist())
    parts = []
    for lo, hi in zip([0, *cuts], [*cuts, n], strict=True):
        piece = frame.iloc[max(0, lo - before) : min(n, hi + after)]
        parts.append(
            score_frame(piece, None, thresholds, window_start=float(lo), window_end=float(hi)).frame
        )
    pd.testing.assert_frame_equal(pd.concat(parts, ignore_index=True), whole)
