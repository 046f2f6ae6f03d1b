"""The fast scoring paths give what the straightforward formulas give.

Scoring works on the positions beyond each threshold instead of whole masks, sums the machine
channel block by block, measures event peaks only inside the runs and describes events channel
by channel, predicts in cache-sized blocks, and shares unsmoothed residuals with its input
instead of copying them. Each test here runs one of those paths against a plain reference —
whole-array NumPy or a loop over samples, written from the rule — on random data with
idle/missing samples, ties with the thresholds and windows longer than one block.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from test_scoring_core import reference_levels

from ModelSelection import ARModel, CrossAxis, PCAReconstruction, PiecewiseLinear
from ModelSelection._base import BLOCK_ROWS, usable
from Scoring import MACHINE_CHANNEL, Level, assign_levels, extract_events, score_frame
from Scoring.scorer import MachineShares
from Thresholding import row_runs, run_bounds, ssr_score, ssr_shares, sustained, sustained_rows

NAN = math.nan


# Error levels beyond the alert levels (the calibrated case), equal to them, and inside them
# (a hand-edited thresholds.json): the fast path looks for errors among the alerts only in the
# first two cases.
LEVELS = [(2.0, 4.0, -2.0, -4.0), (2.0, 2.0, -2.0, -2.0), (4.0, 2.0, -1.0, 1.0)]


@pytest.mark.parametrize("seed", range(30))
def test_assign_levels_on_both_sides_matches_a_loop_over_samples(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 150))
    values = rng.choice([0.0, NAN, 1.0, -2.5], size=n, p=[0.1, 0.05, 0.45, 0.4])
    residuals = rng.integers(-6, 7, size=n).astype(float)  # integers: ties with the levels
    residuals[rng.random(n) < 0.05] = NAN
    minc, maxc, minc_low, maxc_low = LEVELS[seed % len(LEVELS)]
    t_long, t_short = int(rng.integers(1, 5)), int(rng.integers(1, 5))
    upper = bool(seed % 4)  # every fourth case is lower-only
    got = assign_levels(
        values,
        residuals,
        minc=minc,
        maxc=maxc,
        t_long=t_long,
        t_short=t_short,
        minc_low=minc_low,
        maxc_low=maxc_low,
        upper=upper,
    )
    # One side at a time with the upper-side reference (the lower side on negated residuals);
    # the level is the worse of the two.
    expected = reference_levels(values, -residuals, -minc_low, -maxc_low, t_long, t_short)
    if upper:
        above = reference_levels(values, residuals, minc, maxc, t_long, t_short)
        expected = np.maximum(expected, above)
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("seed", range(20))
def test_runs_of_positions_match_runs_of_the_mask(seed):
    rng = np.random.default_rng(100 + seed)
    mask = rng.random(int(rng.integers(0, 300))) < rng.uniform(0.05, 0.95)
    rows = np.flatnonzero(mask)
    starts, ends = row_runs(rows)
    mask_starts, mask_ends = run_bounds(mask)
    np.testing.assert_array_equal(rows[starts], mask_starts)
    np.testing.assert_array_equal(rows[ends - 1] + 1, mask_ends)
    for length in (1, 2, 3, 7):
        np.testing.assert_array_equal(
            sustained_rows(rows, length), np.flatnonzero(sustained(mask, length))
        )


def _axes_with_gaps(rng: np.random.Generator, n: int, count: int) -> list[np.ndarray]:
    residuals = [rng.normal(0, rng.uniform(0.5, 3), n) for _ in range(count)]
    for residual in residuals:
        residual[rng.random(n) < 0.1] = NAN
    idle = rng.random(n) < 0.05  # rows where every axis is idle
    for residual in residuals:
        residual[idle] = NAN
    return residuals


@pytest.mark.parametrize("count", [1, 3, 8, 11])
def test_ssr_score_and_shares_match_the_whole_matrix_formula(count):
    rng = np.random.default_rng(count)
    n = 2 * BLOCK_ROWS + 123  # three blocks, the last one short
    residuals = _axes_with_gaps(rng, n, count)
    centers = rng.normal(0, 0.2, count).tolist()
    scales = rng.uniform(0.5, 2.0, count).tolist()
    squares = np.column_stack(
        [((r - c) / s) ** 2 for r, c, s in zip(residuals, centers, scales, strict=True)]
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        expected = np.nansum(squares, axis=1) / np.count_nonzero(np.isfinite(squares), axis=1)
        expected_shares = squares / np.nansum(squares, axis=1)[:, None]
    got = ssr_score(residuals, centers, scales)
    # The sum runs over the axes in order; NumPy's row sum pairs them from 8 axes on.
    np.testing.assert_allclose(got, expected, rtol=1e-14, atol=0)
    if count < 8:
        np.testing.assert_array_equal(got, expected)
    assert np.isnan(got[np.isnan(squares).all(axis=1)]).all()
    rows = rng.choice(n, size=50, replace=False)
    np.testing.assert_allclose(
        ssr_shares(residuals, centers, scales, rows), expected_shares[rows], rtol=1e-14, atol=0
    )
    shares = MachineShares(residuals, centers, scales)
    assert shares.shape == (n, count) and len(shares) == n
    np.testing.assert_array_equal(shares[int(rows[0])], shares[rows][0])
    np.testing.assert_array_equal(shares[-1], np.asarray(shares)[n - 1])


def _reference_events(times, residuals, codes, rules, values, raw, shares, merge_gap):
    """Events one run at a time, peaks by a loop, details per event (the rule as documented)."""

    def deviation(axis, row):
        rule, r = rules[axis], residuals[axis][row]
        candidates = []
        if rule["side"] in ("upper", "both"):
            candidates.append((r - rule["center"]) / (rule["MinC"] - rule["center"]))
        if rule["side"] in ("lower", "both"):
            candidates.append((r - rule["center"]) / (rule["MinC_low"] - rule["center"]))
        return max((c for c in candidates if not math.isnan(c)), default=-math.inf)

    rows = []
    for number, axis in enumerate(rules):
        for severity, level in (("alert", Level.ALERT), ("error", Level.ERROR)):
            found, i, n = [], 0, len(times)
            while i < n:
                if codes[axis][i] < level:
                    i += 1
                    continue
                j = i
                while j + 1 < n and codes[axis][j + 1] >= level:
                    j += 1
                peak = max(range(i, j + 1), key=lambda k: (deviation(axis, k), -k))
                found.append({"first": i, "last": j, "samples": j - i + 1, "peak": peak})
                i = j + 1
            merged = []
            for event in found:
                if merged and times[event["first"]] - times[merged[-1]["last"]] <= merge_gap:
                    previous = merged[-1]
                    previous["last"] = event["last"]
                    previous["samples"] += event["samples"]
                    if deviation(axis, event["peak"]) > deviation(axis, previous["peak"]):
                        previous["peak"] = event["peak"]
                else:
                    merged.append(dict(event))
            for event in merged:
                rule, row = rules[axis], event["peak"]
                r = residuals[axis][row]
                lower, upper = rule["side"] in ("lower", "both"), rule["side"] != "lower"
                below = lower and (not upper or r < rule["center"])
                key = ("MinC" if severity == "alert" else "MaxC") + ("_low" if below else "")
                distance = rule[key] - rule["center"]
                contributors = None
                if axis == MACHINE_CHANNEL:
                    part = np.nan_to_num(shares[row], nan=0.0)
                    top = np.argsort(-part, kind="stable")[:3]
                    names = [a for a in rules if a != MACHINE_CHANNEL]
                    contributors = json.dumps(
                        [{"axis": names[k], "share": round(float(part[k]), 4)} for k in top]
                    )
                known = axis in values
                rows.append(
                    {
                        "order": (event["first"], number, severity),
                        "axis": axis,
                        "severity": severity,
                        "samples": event["samples"],
                        "peak_ts": times[row],
                        "peak_residual": r,
                        "threshold": rule[key],
                        "side": "below" if below else "above",
                        "ratio": (r - rule["center"]) / distance if distance else math.inf,
                        "actual": values[axis][row] if known else NAN,
                        "expected": values[axis][row] - raw[axis][row] if known else NAN,
                        "contributors": contributors,
                    }
                )
    rows.sort(key=lambda row: row.pop("order"))
    return rows


@pytest.mark.parametrize("seed", range(25))
def test_events_on_both_sides_and_the_machine_channel_match_a_loop_over_runs(seed):
    rng = np.random.default_rng(500 + seed)
    n = int(rng.integers(2, 400))
    times = np.round(np.cumsum(rng.uniform(0.5, 3.0, n)), 3)
    axes = ["a", "b", "c"]
    rules = {
        "a": {"MinC": 1.0, "MaxC": 2.0, "center": 0.2, "side": "upper"},
        "b": {"MinC": 1.5, "MaxC": 2.5, "MinC_low": -1.0, "MaxC_low": -2.0, "side": "both"},
        "c": {"MinC": 3.0, "MaxC": 4.0, "MinC_low": -0.5, "MaxC_low": -1.5, "side": "lower"},
        MACHINE_CHANNEL: {"MinC": 1.0, "MaxC": 3.0, "side": "upper"},
    }
    for rule in rules.values():
        rule.update({"T_long_steps": 1, "T_short_steps": 1, "center": rule.get("center", 0.0)})
    residuals = {axis: np.round(rng.normal(0, 1.5, n), 1) for axis in axes}  # ties
    residuals["b"][rng.random(n) < 0.1] = NAN
    residuals[MACHINE_CHANNEL] = np.round(rng.exponential(1.0, n), 1)
    codes = {ch: rng.choice(np.arange(4, dtype=np.int8), size=n) for ch in rules}
    values = {axis: rng.normal(10, 1, n) for axis in axes[:2]}  # c: no actual value known
    raw = {axis: residuals[axis] + rng.normal(0, 0.1, n) for axis in axes}
    shares = rng.dirichlet(np.ones(3), size=n)
    shares[rng.random(n) < 0.1, 1] = NAN
    merge_gap = float(rng.choice([0.0, 2.0, 6.0]))
    got = extract_events(
        times,
        residuals,
        codes,
        rules,
        axes=list(rules),
        merge_gap_seconds=merge_gap,
        values=values,
        raw_residuals=raw,
        contributions=(axes, shares),
    )
    expected = _reference_events(times, residuals, codes, rules, values, raw, shares, merge_gap)
    columns = list(expected[0]) if expected else []
    assert len(got) == len(expected)
    for got_row, expected_row in zip(got[columns].to_dict("records"), expected, strict=True):
        # The frame shows a missing contributors entry (axis events) as NaN.
        assert pd.isna(got_row.pop("contributors")) == (expected_row["contributors"] is None)
        expected_row = {k: v for k, v in expected_row.items() if k != "contributors"}
        assert got_row == pytest.approx(expected_row, rel=1e-15, nan_ok=True)
    machine = got["axis"] == MACHINE_CHANNEL
    assert got.loc[machine, "contributors"].tolist() == [
        row["contributors"] for row in expected if row["axis"] == MACHINE_CHANNEL
    ]


def test_unsmoothed_residuals_are_shared_with_the_input_yet_independent_of_it():
    n = 6
    frame = pd.DataFrame(
        {
            "ts": np.arange(n, dtype=float),
            "a": [10.0, 10.0, 0.0, 10.0, 10.0, 10.0],
            "a_res": [0.0, 3.0, NAN, 3.0, 3.0, 0.5],
        }
    )
    rule = {"MinC": 1.0, "MaxC": 9.0, "T_long_steps": 2, "T_short_steps": 1}
    result = score_frame(frame, None, {"a": rule})
    column = result.frame["a_residual"]
    assert np.shares_memory(column.to_numpy(), frame["a_res"].to_numpy())  # no copy
    np.testing.assert_array_equal(result.expected["a"], [10.0, 7.0, NAN, 7.0, 7.0, 9.5])
    result.frame.loc[1, "a_residual"] = -1.0
    assert frame.loc[1, "a_res"] == 3.0
    frame.loc[3, "a_res"] = 99.0
    assert result.frame.loc[3, "a_residual"] == 3.0
    assert result.frame["a_level"].tolist() == ["ok", "ok", "idle", "alert", "alert", "ok"]


def _blocked_frame(rng: np.random.Generator) -> pd.DataFrame:
    """Three correlated axes over more than two prediction blocks, with idle and NaN readings."""
    n = 2 * BLOCK_ROWS + 77
    base = rng.normal(0, 1, n)
    frame = pd.DataFrame({"time_s": np.arange(n) * 1.9})
    for number, axis in enumerate(("a", "b", "c"), start=1):
        values = 5.0 * number + number * base + rng.normal(0, 0.3, n)
        values[rng.random(n) < 0.03] = 0.0
        values[rng.random(n) < 0.01] = NAN
        frame[axis] = values
    return frame


def _filled(array: np.ndarray, fill: float) -> np.ndarray:
    return np.where(usable(array), array, fill)


def test_blocked_predictions_equal_the_whole_window_formulas():
    rng = np.random.default_rng(7)
    frame = _blocked_frame(rng)
    fit = frame.iloc[:5000]
    a, b, c = (frame[axis].to_numpy() for axis in ("a", "b", "c"))

    pca = PCAReconstruction(components=2).fit(fit, "b")
    assert pca.columns_ == ("b", "a", "c")  # the axis first, then the others
    weights = pca.loadings_ @ pca.loadings_[0]
    standardised = np.zeros(len(frame))
    for values, mean, scale, weight in zip((b, a, c), pca.mean_, pca.scale_, weights, strict=True):
        standardised += weight * (_filled(values, mean) - mean) / scale
    np.testing.assert_array_equal(
        pca.predict(frame, "b"), pca.mean_[0] + pca.scale_[0] * standardised
    )

    spline = PiecewiseLinear(knots=3).fit(fit, "a")
    times = frame["time_s"].to_numpy()
    segment, right = spline._segments(times)
    expected = spline.coef_[segment] * (1.0 - right) + spline.coef_[segment + 1] * right
    np.testing.assert_array_equal(spline.predict(frame, "a"), expected)

    cross = CrossAxis().fit(fit, "c")
    inputs = np.column_stack([_filled(x, f) for x, f in zip((a, b), cross.fill_, strict=True)])
    np.testing.assert_allclose(
        cross.predict(frame, "c"), inputs @ cross.coef_ + cross.intercept_, rtol=1e-14
    )

    ar = ARModel(lags=3).fit(fit, "a")
    lagged = np.full((len(frame), 3), NAN)
    for lag in (1, 2, 3):
        lagged[lag:, lag - 1] = a[:-lag]
    lagged = np.where(usable(lagged), lagged, ar.fill_)
    np.testing.assert_allclose(
        ar.predict(frame, "a"), lagged @ ar.coef_ + ar.intercept_, rtol=1e-14
    )
