"""Pure scoring core: levels, worst level, look-back, events, merge gap and cooldown."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

import Scoring
from Scoring import (
    EVENT_COLUMNS,
    LEVEL_DTYPE,
    EventsConfig,
    Level,
    ScoringInputError,
    assign_levels,
    extract_events,
    lookback_samples,
    parse_thresholds,
    score_frame,
)

NAN = math.nan
CODE_OF = {"i": Level.IDLE, "o": Level.OK, "a": Level.ALERT, "e": Level.ERROR}
LEVEL_OF_CODE = {int(level): level.label for level in Level}


def codes(pattern: str) -> np.ndarray:
    """``"ooae"`` → level codes; i = idle, o = ok, a = alert, e = error."""
    return np.array([CODE_OF[letter] for letter in pattern], dtype=np.int8)


def rule(minc=2.0, maxc=4.0, t_long=3, t_short=2) -> dict:
    return {
        "MinC": minc,
        "MaxC": maxc,
        "T_long_steps": t_long,
        "T_short_steps": t_short,
        "dt_seconds": 1.891,
        "method": "percentile",
    }


# --------------------------------------------------------------------------------------------
# Reference implementations: one sample / one event at a time, written for clarity only.
# --------------------------------------------------------------------------------------------


def reference_levels(values, residuals, minc, maxc, t_long, t_short) -> np.ndarray:
    n = len(values)

    def active(k):
        return not (values[k] == 0 or math.isnan(values[k]))

    def in_long_run(i, level, min_length):
        def above(k):
            return active(k) and residuals[k] > level

        if not above(i):
            return False
        first = last = i
        while first > 0 and above(first - 1):
            first -= 1
        while last < n - 1 and above(last + 1):
            last += 1
        return last - first + 1 >= min_length

    out = []
    for i in range(n):
        if in_long_run(i, maxc, t_short):
            out.append(Level.ERROR)
        elif in_long_run(i, minc, t_long):
            out.append(Level.ALERT)
        elif not active(i):
            out.append(Level.IDLE)
        else:
            out.append(Level.OK)
    return np.array(out, dtype=np.int8)


def reference_events(times, residuals, levels, thresholds, axes, merge_gap, cooldown) -> list:
    rows = []
    for axis in axes:
        for severity, level, threshold in (
            ("alert", Level.ALERT, thresholds[axis]["MinC"]),
            ("error", Level.ERROR, thresholds[axis]["MaxC"]),
        ):
            found = []
            i, n = 0, len(times)
            while i < n:
                if levels[axis][i] < level:
                    i += 1
                    continue
                j = i
                while j + 1 < n and levels[axis][j + 1] >= level:
                    j += 1
                peak = i + int(np.argmax(residuals[axis][i : j + 1]))
                found.append(
                    {
                        "axis": axis,
                        "severity": severity,
                        "first": i,
                        "last": j,
                        "samples": j - i + 1,
                        "peak": peak,
                        "peak_residual": residuals[axis][peak],
                        "threshold": threshold,
                    }
                )
                i = j + 1
            if merge_gap > 0:
                merged = []
                for event in found:
                    if merged and times[event["first"]] - times[merged[-1]["last"]] <= merge_gap:
                        previous = merged[-1]
                        previous["last"] = event["last"]
                        previous["samples"] += event["samples"]
                        if event["peak_residual"] > previous["peak_residual"]:
                            previous["peak"] = event["peak"]
                            previous["peak_residual"] = event["peak_residual"]
                    else:
                        merged.append(dict(event))
                found = merged
            if cooldown > 0:
                kept = []
                for event in found:
                    if kept and times[event["first"]] - times[kept[-1]["last"]] <= cooldown:
                        continue
                    kept.append(event)
                found = kept
            rows.extend(found)
    for row in rows:
        row["start"], row["end"] = times[row["first"]], times[row["last"]]
        row["duration_s"] = row["end"] - row["start"]
        row["starts_at_frame_start"] = row["first"] == 0
        row["ends_at_frame_end"] = row["last"] == len(times) - 1
        # Upper-side rules centred on 0: the peak is the largest residual, above its threshold.
        row["side"], row["peak_ts"] = "above", times[row["peak"]]
        row["ratio"] = row["peak_residual"] / row["threshold"]
        row["actual"] = row["expected"] = np.nan
        row["contributors"] = None
    rows.sort(key=lambda r: (r["first"], axes.index(r["axis"]), r["severity"]))
    return [{column: row[column] for column in EVENT_COLUMNS} for row in rows]


def random_axis(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Values with idle zeros and NaNs; small-integer residuals so ties with MinC/MaxC occur."""
    values = rng.choice([0.0, NAN, 1.0, 2.5], size=n, p=[0.08, 0.04, 0.44, 0.44])
    residuals = rng.integers(-1, 7, size=n).astype(float)
    residuals[(values == 0) | np.isnan(values)] = NAN
    return values, residuals


def random_frame(rng: np.random.Generator, n: int, axes=("a1", "a2", "a3")):
    """A float-epoch frame with ``{axis}_res`` columns and random per-axis run lengths."""
    ts = 1.7e9 + np.cumsum(rng.uniform(1.5, 2.3, size=n))
    frame = pd.DataFrame({"ts": ts})
    thresholds = {}
    for axis in axes:
        values, residuals = random_axis(rng, n)
        frame[axis], frame[f"{axis}_res"] = values, residuals
        thresholds[axis] = rule(
            minc=2.0,
            maxc=4.0,
            t_long=int(rng.integers(1, 7)),
            t_short=int(rng.integers(1, 7)),
        )
    return frame, thresholds


def window_codes(result) -> dict[str, np.ndarray]:
    return {**result.level_codes, "level": result.worst_codes}


# --------------------------------------------------------------------------------------------
# Levels
# --------------------------------------------------------------------------------------------


def test_levels_are_ordered_small_ints_with_names():
    assert [int(level) for level in Level] == [0, 1, 2, 3, 4]
    assert Level.IDLE < Level.OK < Level.SENSOR < Level.ALERT < Level.ERROR
    assert [level.label for level in Level] == ["idle", "ok", "sensor", "alert", "error"]
    assert list(LEVEL_DTYPE.categories) == ["idle", "ok", "sensor", "alert", "error"]
    assert LEVEL_DTYPE.ordered


LEVEL_CASES = [
    # id, values, residuals, (minc, maxc, t_long, t_short), expected
    ("alert run shorter than T_long", [1] * 4, [0, 3, 3, 0], (2, 9, 3, 2), "oooo"),
    ("alert run equal to T_long", [1] * 4, [3, 3, 3, 0], (2, 9, 3, 2), "aaao"),
    ("alert run longer than T_long", [1] * 6, [0, 3, 3, 3, 3, 3], (2, 9, 3, 2), "oaaaaa"),
    ("residual equal to MinC is not above", [1] * 3, [2, 2, 2], (2, 9, 3, 2), "ooo"),
    ("just above MinC counts", [1] * 3, [2.000001] * 3, (2, 9, 3, 2), "aaa"),
    ("residual equal to MaxC is not above", [1] * 3, [4, 4, 4], (2, 4, 3, 2), "aaa"),
    ("error run shorter than T_short", [1] * 3, [0, 5, 0], (2, 4, 3, 2), "ooo"),
    ("error run equal to T_short", [1] * 4, [0, 5, 5, 0], (2, 4, 3, 2), "oeeo"),
    ("error inside alert", [1] * 7, [0, 3, 5, 5, 3, 3, 0], (2, 4, 3, 2), "oaeeaao"),
    ("short spike inside alert stays alert", [1] * 4, [3, 5, 3, 0], (2, 4, 3, 2), "aaao"),
    ("error without a long enough alert run", [1] * 4, [5, 5, 0, 0], (2, 4, 5, 2), "eeoo"),
    ("idle zeros", [0, 1, 0, 1], [NAN, 0, NAN, 0], (2, 4, 3, 2), "ioio"),
    ("NaN values are idle", [NAN, 1, NAN], [NAN, 0, NAN], (2, 4, 3, 2), "ioi"),
    ("idle sample breaks a run", [1, 1, 0, 1, 1], [3, 3, NAN, 3, 3], (2, 4, 3, 2), "ooioo"),
    ("idle sample ignores its residual", [1, 1, 0, 1, 1], [3, 3, 9, 3, 3], (2, 4, 3, 2), "ooioo"),
    ("NaN residual breaks a run", [1] * 5, [3, 3, NAN, 3, 3], (2, 4, 3, 2), "ooooo"),
    ("negative residuals never alert", [1] * 3, [-9, -9, -9], (2, 4, 1, 1), "ooo"),
    ("T of one: every sample above counts", [1] * 3, [3, 0, 5], (2, 4, 1, 1), "aoe"),
    ("run at the very end", [1] * 5, [0, 0, 3, 3, 3], (2, 4, 3, 2), "ooaaa"),
    ("empty", [], [], (2, 4, 3, 2), ""),
]


@pytest.mark.parametrize(
    ("values", "residuals", "params", "expected"),
    [case[1:] for case in LEVEL_CASES],
    ids=[case[0] for case in LEVEL_CASES],
)
def test_assign_levels_table(values, residuals, params, expected):
    minc, maxc, t_long, t_short = params
    got = assign_levels(
        np.array(values, dtype=float),
        np.array(residuals, dtype=float),
        minc=minc,
        maxc=maxc,
        t_long=t_long,
        t_short=t_short,
    )
    assert got.dtype == np.int8
    np.testing.assert_array_equal(got, codes(expected))


@pytest.mark.parametrize("seed", range(40))
def test_assign_levels_matches_reference_loop_on_random_data(seed):
    rng = np.random.default_rng(seed)
    values, residuals = random_axis(rng, int(rng.integers(0, 250)))
    params = {
        "minc": 2.0,
        "maxc": float(rng.choice([3.0, 4.0, 5.0])),
        "t_long": int(rng.integers(1, 8)),
        "t_short": int(rng.integers(1, 8)),
    }
    expected = reference_levels(values, residuals, **params)
    np.testing.assert_array_equal(assign_levels(values, residuals, **params), expected)


def test_assign_levels_does_not_modify_its_inputs():
    values, residuals = np.array([1.0, 0.0, 1.0]), np.array([5.0, NAN, 5.0])
    assign_levels(values, residuals, minc=2, maxc=4, t_long=1, t_short=1)
    np.testing.assert_array_equal(values, [1.0, 0.0, 1.0])
    np.testing.assert_array_equal(residuals, [5.0, NAN, 5.0])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"t_long": 0}, r"t_long must be an integer >= 1 \(samples\), got 0"),
        ({"t_short": 1.5}, r"t_short must be an integer >= 1 \(samples\), got 1.5"),
        ({"minc": NAN}, r"minc must be a finite number, got nan"),
        ({"maxc": "4"}, r"maxc must be a finite number, got '4'"),
        ({"residuals": np.zeros(2)}, r"equal length, got shapes \(3,\) and \(2,\)"),
    ],
)
def test_assign_levels_rejects_bad_parameters(kwargs, message):
    arguments = {
        "values": np.ones(3),
        "residuals": np.zeros(3),
        "minc": 2.0,
        "maxc": 4.0,
        "t_long": 3,
        "t_short": 2,
        **kwargs,
    }
    with pytest.raises(ScoringInputError, match=message):
        assign_levels(**arguments)


# --------------------------------------------------------------------------------------------
# score_frame
# --------------------------------------------------------------------------------------------


def two_axis_frame() -> tuple[pd.DataFrame, dict]:
    ts = pd.date_range("2024-05-01", periods=8, freq="1891ms", tz="UTC")
    frame = pd.DataFrame(
        {
            "ts": ts,
            "j1": [1, 1, 1, 1, 0, 1, 1, 1.0],
            "j2": [1, 1, 1, 1, 0, 0, 1, 1.0],
            "j1_res": [0, 3, 3, 3, NAN, 5, 5, 0],
            "j2_res": [5, 5, 0, 0, NAN, NAN, 3, 3],
        }
    )
    return frame, {"j1": rule(t_long=3, t_short=2), "j2": rule(t_long=2, t_short=2)}


def test_score_frame_output_columns_levels_and_worst_level():
    frame, thresholds = two_axis_frame()
    result = score_frame(frame, None, thresholds)
    out = result.frame
    assert list(out.columns) == [
        "ts",
        "j1_residual",
        "j1_level",
        "j2_residual",
        "j2_level",
        "level",
    ]
    assert out["ts"].equals(frame["ts"])
    assert list(out["j1_level"]) == [
        "ok",
        "alert",
        "alert",
        "alert",
        "idle",
        "error",
        "error",
        "ok",
    ]
    assert list(out["j2_level"]) == ["error", "error", "ok", "ok", "idle", "idle", "alert", "alert"]
    assert list(out["level"]) == [
        "error",
        "error",
        "alert",
        "alert",
        "idle",
        "error",
        "error",
        "alert",
    ]
    for column in ("j1_level", "j2_level", "level"):
        assert out[column].dtype == LEVEL_DTYPE
    np.testing.assert_array_equal(out["j1_residual"], frame["j1_res"])
    np.testing.assert_array_equal(result.worst_codes, codes("eeaaieea"))
    assert result.axes == ("j1", "j2")
    assert (result.context_before, result.context_after) == (0, 0)


def test_worst_level_is_idle_only_when_every_axis_is_idle():
    frame, thresholds = two_axis_frame()
    frame.loc[4:5, ["j1", "j2"]] = 0.0
    frame.loc[4:5, ["j1_res", "j2_res"]] = NAN
    out = score_frame(frame, None, thresholds).frame
    assert list(out["level"][3:6]) == ["alert", "idle", "idle"]


def test_score_frame_accepts_a_separate_residual_frame_and_does_not_modify_inputs():
    frame, thresholds = two_axis_frame()
    residuals = frame[["j1_res", "j2_res"]].copy()
    values = frame.drop(columns=["j1_res", "j2_res"])
    before = (values.copy(), residuals.copy())
    separate = score_frame(values, residuals, thresholds).frame
    together = score_frame(frame, None, thresholds).frame
    pd.testing.assert_frame_equal(separate, together)
    pd.testing.assert_frame_equal(values, before[0])
    pd.testing.assert_frame_equal(residuals, before[1])


def test_score_frame_output_is_independent_of_its_result_arrays():
    frame, thresholds = two_axis_frame()
    result = score_frame(frame, None, thresholds)
    result.frame.loc[0, "j1_level"] = "error"
    result.frame.loc[0, "j1_residual"] = 99.0
    assert result.level_codes["j1"][0] == Level.OK
    assert frame.loc[0, "j1_res"] == 0.0
    assert not result.level_codes["j1"].flags.writeable


def test_score_frame_window_drops_look_back_rows_but_uses_them():
    frame, thresholds = two_axis_frame()
    result = score_frame(frame, None, thresholds, window_start=frame["ts"][2])
    assert result.context_before == 2
    assert list(result.frame["j1_level"]) == ["alert", "alert", "idle", "error", "error", "ok"]
    assert result.frame["ts"].iloc[0] == frame["ts"][2]
    assert list(result.frame.index) == list(range(6))


def test_score_frame_window_bounds_accept_naive_strings_as_utc_and_end_is_exclusive():
    frame, thresholds = two_axis_frame()
    result = score_frame(
        frame,
        None,
        thresholds,
        window_start="2024-05-01 00:00:03.782",
        window_end=pd.Timestamp("2024-05-01 00:00:11.346", tz="UTC"),
    )
    assert list(result.frame["ts"]) == list(frame["ts"][2:6])
    assert (result.context_before, result.context_after) == (2, 2)


def test_score_frame_with_float_epoch_seconds():
    frame, thresholds = two_axis_frame()
    frame["ts"] = 1.7e9 + 1.891 * np.arange(len(frame))
    result = score_frame(frame, None, thresholds, window_start=1.7e9 + 1.891 * 5)
    assert result.frame["ts"].dtype == np.float64
    assert list(result.frame["level"]) == ["error", "error", "alert"]


def test_score_frame_reports_every_missing_column_at_once():
    frame, thresholds = two_axis_frame()
    broken = frame.drop(columns=["j1", "j2_res"])
    with pytest.raises(
        ScoringInputError, match=r"missing column 'j1'; frame: missing column 'j2_res'"
    ):
        score_frame(broken, None, thresholds)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f.assign(j1=["x"] * len(f)), r"frame\.j1: expected floats, got dtype str"),
        (lambda f: f.iloc[::-1], r"frame\.ts must be sorted ascending"),
        (lambda f: f.assign(ts=[1.0, NAN, *range(2, 8)]), r"frame\.ts has 1 missing value"),
        (lambda f: f.assign(ts=["a"] * len(f)), r"frame\.ts must hold datetimes \(UTC\) or float"),
    ],
)
def test_score_frame_rejects_bad_frames(change, message):
    frame, thresholds = two_axis_frame()
    with pytest.raises(ScoringInputError, match=message):
        score_frame(change(frame), None, thresholds)


def test_score_frame_rejects_misaligned_residuals_and_bad_window_bounds():
    frame, thresholds = two_axis_frame()
    residuals = frame[["j1_res", "j2_res"]].iloc[::-1]
    with pytest.raises(ScoringInputError, match="residuals are not aligned with frame"):
        score_frame(frame, residuals, thresholds)
    with pytest.raises(ScoringInputError, match=r"window_end .* is before window_start"):
        score_frame(frame, None, thresholds, window_start=frame["ts"][3], window_end=frame["ts"][1])
    with pytest.raises(ScoringInputError, match="window_start must be a timestamp"):
        score_frame(frame, None, thresholds, window_start="yesterday-ish")
    naive = frame.assign(ts=frame["ts"].dt.tz_localize(None))
    with pytest.raises(ScoringInputError, match="has a time zone but ts holds naive datetimes"):
        score_frame(naive, None, thresholds, window_start="2024-05-01T00:00:00+00:00")


def test_thresholds_problems_are_reported_together_with_key_paths():
    thresholds = {
        "j1": {"MinC": "high", "MaxC": 4.0, "T_long_steps": 0, "T_short_steps": 2},
        "j2": {"MinC": 2.0, "T_long_steps": 3, "T_short_steps": 2},
        "j3": "not a mapping",
    }
    with pytest.raises(
        ScoringInputError,
        match=r"^invalid thresholds:\n  thresholds\.j1\.MinC: Input should be a valid number",
    ) as caught:
        parse_thresholds(thresholds)
    message = str(caught.value)
    for path in ("thresholds.j1.MinC", "thresholds.j1.T_long_steps", "thresholds.j2.MaxC"):
        assert path in message
    assert "thresholds.j3: expected a mapping, got str" in message
    with pytest.raises(ScoringInputError, match=r"thresholds\.j9: missing; the thresholds cover"):
        parse_thresholds({"j1": rule()}, ["j9"])
    with pytest.raises(ScoringInputError, match="thresholds has no axes"):
        lookback_samples({})


# --------------------------------------------------------------------------------------------
# Look-back: back-to-back windows equal their union
# --------------------------------------------------------------------------------------------


def test_lookback_samples_is_longest_run_rule_minus_one():
    thresholds = {
        "a": rule(t_long=3, t_short=2),
        "b": rule(t_long=4, t_short=7),
        "c": rule(t_long=1, t_short=1),
    }
    assert lookback_samples(thresholds) == 6
    assert lookback_samples({"a": rule(t_long=1, t_short=1)}) == 0


def score_window(frame, thresholds, first, stop, *, before, after):
    """Score rows [first, stop) of ``frame`` given ``before``/``after`` rows of context."""
    n = len(frame)
    ts = frame["ts"]
    part = frame.iloc[max(0, first - before) : min(n, stop + after)]
    return score_frame(
        part,
        None,
        thresholds,
        window_start=ts.iloc[first],
        window_end=ts.iloc[stop] if stop < n else None,
    )


def random_boundaries(rng, n):
    cuts = rng.choice(np.arange(1, n), size=int(rng.integers(1, 12)), replace=False)
    return [0, *sorted(int(cut) for cut in cuts), n]


@pytest.mark.parametrize("seed", range(30))
def test_back_to_back_windows_with_look_back_equal_the_union_up_to_each_window_end(seed):
    rng = np.random.default_rng(seed)
    frame, thresholds = random_frame(rng, int(rng.integers(40, 300)))
    lookback = lookback_samples(thresholds)
    edges = random_boundaries(rng, len(frame))
    for first, stop in itertools.pairwise(edges):
        window = score_window(frame, thresholds, first, stop, before=lookback, after=0)
        union_so_far = score_frame(frame.iloc[:stop], None, thresholds)
        for name, got in window_codes(window).items():
            np.testing.assert_array_equal(got, window_codes(union_so_far)[name][first:stop])
    # The last window ends where the union ends, so it equals the union outright.
    union = score_frame(frame, None, thresholds)
    np.testing.assert_array_equal(window.worst_codes, union.worst_codes[first:])


@pytest.mark.parametrize("seed", range(30))
def test_earlier_windows_are_provisional_only_in_their_last_lookback_rows(seed):
    rng = np.random.default_rng(1000 + seed)
    frame, thresholds = random_frame(rng, int(rng.integers(40, 300)))
    lookback = lookback_samples(thresholds)
    union = window_codes(score_frame(frame, None, thresholds))
    edges = random_boundaries(rng, len(frame))
    for first, stop in itertools.pairwise(edges):
        window = window_codes(
            score_window(frame, thresholds, first, stop, before=lookback, after=0)
        )
        for name, got in window.items():
            final = union[name][first:stop]
            assert (got <= final).all(), "a later window can only raise levels"
            settled = max(0, (stop - first) - lookback)
            np.testing.assert_array_equal(got[:settled], final[:settled])


@pytest.mark.parametrize("seed", range(30))
def test_back_to_back_windows_with_look_back_and_look_ahead_concatenate_to_the_union(seed):
    rng = np.random.default_rng(2000 + seed)
    frame, thresholds = random_frame(rng, int(rng.integers(40, 300)))
    context = lookback_samples(thresholds)
    edges = random_boundaries(rng, len(frame))
    windows = [
        score_window(frame, thresholds, first, stop, before=context, after=context)
        for first, stop in itertools.pairwise(edges)
    ]
    union = score_frame(frame, None, thresholds)
    for name, expected in window_codes(union).items():
        stitched = np.concatenate([window_codes(window)[name] for window in windows])
        np.testing.assert_array_equal(stitched, expected)
    pd.testing.assert_frame_equal(
        pd.concat([window.frame for window in windows], ignore_index=True), union.frame
    )


def test_one_row_less_look_back_is_not_enough():
    # A run of exactly T = 4 samples above MinC whose last sample is the window's first row.
    thresholds = {"a": rule(t_long=4, t_short=4)}
    frame = pd.DataFrame(
        {
            "ts": np.arange(10.0),
            "a": np.ones(10),
            "a_res": [0, 0, 3, 3, 3, 3, 0, 0, 0, 0.0],
        }
    )
    start = 5
    lookback = lookback_samples(thresholds)
    assert lookback == 3
    enough = score_window(frame, thresholds, start, 10, before=lookback, after=0)
    too_few = score_window(frame, thresholds, start, 10, before=lookback - 1, after=0)
    assert enough.frame["a_level"].iloc[0] == "alert"
    assert too_few.frame["a_level"].iloc[0] == "ok"


def test_run_open_at_a_window_end_is_raised_by_the_next_window():
    thresholds = {"a": rule(t_long=3, t_short=9)}
    frame = pd.DataFrame(
        {"ts": np.arange(8.0), "a": np.ones(8), "a_res": [0, 0, 0, 3, 3, 3, 0, 0.0]}
    )
    lookback = lookback_samples(thresholds)
    earlier = score_window(frame, thresholds, 0, 5, before=lookback, after=0)
    later = score_window(frame, thresholds, 5, 8, before=lookback, after=0)
    union = score_frame(frame, None, thresholds)
    assert list(earlier.frame["a_level"]) == ["ok"] * 5
    assert list(later.frame["a_level"]) == ["alert", "ok", "ok"]
    assert list(union.frame["a_level"]) == ["ok", "ok", "ok", "alert", "alert", "alert", "ok", "ok"]


# --------------------------------------------------------------------------------------------
# Events
# --------------------------------------------------------------------------------------------


def events_from_codes(pattern_by_axis, residuals_by_axis=None, ts=None, **options):
    n = len(next(iter(pattern_by_axis.values())))
    ts = np.arange(float(n)) if ts is None else ts
    axes = list(pattern_by_axis)
    residuals_by_axis = residuals_by_axis or {axis: np.arange(float(n)) for axis in axes}
    return extract_events(
        ts,
        residuals_by_axis,
        {axis: codes(pattern) for axis, pattern in pattern_by_axis.items()},
        {axis: rule(minc=2.0, maxc=4.0) for axis in axes},
        axes=axes,
        **options,
    )


def event_tuples(events, *columns):
    columns = columns or ("axis", "severity", "start", "end", "samples")
    return [tuple(row) for row in events[list(columns)].itertuples(index=False)]


def test_injected_anomalies_are_found_with_exact_timestamps():
    n = 600
    ts = pd.Series(pd.date_range("2024-05-01", periods=n, freq="1891ms", tz="UTC"))
    rng = np.random.default_rng(7)
    frame = pd.DataFrame({"ts": ts, "j1": 5.0, "j2": 5.0})
    frame["j1_res"] = rng.uniform(-1.0, 1.5, n)
    frame["j2_res"] = rng.uniform(-1.0, 1.5, n)
    frame.loc[100:109, "j1_res"] = 8.0  # sustained error (inside an alert episode)
    frame.loc[300:302, "j2_res"] = 3.0  # alert only, exactly T_long samples
    frame.loc[450, "j2_res"] = 9.0  # a lone spike: neither
    frame.loc[500:509, "j1"] = 0.0  # idle, whatever the residual says
    frame.loc[500:509, "j1_res"] = 9.0
    frame.loc[[120, 121], "j2_res"] = [5.0, 5.0]  # error run of exactly T_short, no alert run
    thresholds = {"j1": rule(t_long=3, t_short=2), "j2": rule(t_long=3, t_short=2)}
    events = score_frame(frame, None, thresholds).events()
    assert event_tuples(events) == [
        ("j1", "alert", ts[100], ts[109], 10),
        ("j1", "error", ts[100], ts[109], 10),
        ("j2", "alert", ts[120], ts[121], 2),
        ("j2", "error", ts[120], ts[121], 2),
        ("j2", "alert", ts[300], ts[302], 3),
    ]
    assert events["duration_s"].tolist() == pytest.approx(
        [9 * 1.891, 9 * 1.891, 1.891, 1.891, 3.782]
    )
    assert events["peak_residual"].tolist() == [8.0, 8.0, 5.0, 5.0, 3.0]
    assert events["threshold"].tolist() == [2.0, 4.0, 2.0, 4.0, 2.0]
    assert events["start"].dtype == ts.dtype
    assert not events["starts_at_frame_start"].any()
    assert not events["ends_at_frame_end"].any()


def test_error_inside_alert_gives_an_alert_episode_and_a_nested_error_event():
    residuals = {"a": np.array([0, 3.0, 5.0, 7.0, 3.5, 0])}
    events = events_from_codes({"a": "oaeeao"}, residuals)
    assert event_tuples(
        events, "severity", "start", "end", "samples", "peak_residual", "threshold"
    ) == [
        ("alert", 1.0, 4.0, 4, 7.0, 2.0),
        ("error", 2.0, 3.0, 2, 7.0, 4.0),
    ]


def test_event_columns_and_dtypes_also_when_there_are_no_events():
    empty = events_from_codes({"a": "ooiio"})
    assert list(empty.columns) == list(EVENT_COLUMNS)
    assert len(empty) == 0
    some = events_from_codes({"a": "oaaao"})
    pd.testing.assert_series_equal(empty.dtypes, some.dtypes)
    assert some.dtypes.to_dict() == {
        "axis": "str",
        "severity": "str",
        "start": np.float64,
        "end": np.float64,
        "duration_s": np.float64,
        "samples": np.int64,
        "peak_residual": np.float64,
        "threshold": np.float64,
        "side": "str",
        "peak_ts": np.float64,
        "actual": np.float64,
        "expected": np.float64,
        "ratio": np.float64,
        "contributors": object,
        "starts_at_frame_start": bool,
        "ends_at_frame_end": bool,
    }


def test_frame_edge_flags():
    events = events_from_codes({"a": "aaoaeoaa", "b": "oooooooo", "c": "eeeeeeee"})
    assert event_tuples(
        events, "axis", "severity", "start", "starts_at_frame_start", "ends_at_frame_end"
    ) == [
        ("a", "alert", 0.0, True, False),
        ("c", "alert", 0.0, True, True),
        ("c", "error", 0.0, True, True),
        ("a", "alert", 3.0, False, False),
        ("a", "error", 4.0, False, False),
        ("a", "alert", 6.0, False, True),
    ]


def test_window_event_flags_let_a_writer_extend_instead_of_duplicating():
    frame = pd.DataFrame(
        {"ts": np.arange(10.0), "a": np.ones(10), "a_res": [0, 0, 3, 3, 3, 3, 3, 0, 0, 0.0]}
    )
    thresholds = {"a": rule(t_long=3, t_short=2)}
    lookback = lookback_samples(thresholds)
    earlier = score_window(frame, thresholds, 0, 5, before=lookback, after=0).events()
    later = score_window(frame, thresholds, 5, 10, before=lookback, after=0).events()
    assert event_tuples(earlier, "start", "end", "samples", "ends_at_frame_end") == [
        (2.0, 4.0, 3, True)
    ]
    assert event_tuples(later, "start", "end", "samples", "starts_at_frame_start") == [
        (5.0, 6.0, 2, True)
    ]


@pytest.mark.parametrize(
    ("merge_gap", "expected"),
    [
        (0.0, [(0.0, 1.0, 2, 1.0), (4.0, 5.0, 2, 5.0), (11.0, 12.0, 2, 12.0)]),
        (2.9, [(0.0, 1.0, 2, 1.0), (4.0, 5.0, 2, 5.0), (11.0, 12.0, 2, 12.0)]),
        (3.0, [(0.0, 5.0, 4, 5.0), (11.0, 12.0, 2, 12.0)]),
        (6.0, [(0.0, 12.0, 6, 12.0)]),
    ],
)
def test_merge_gap_joins_events_whose_gap_is_at_most_the_setting(merge_gap, expected):
    events = events_from_codes({"a": "aaooaaoooooaa"}, merge_gap_seconds=merge_gap)
    assert event_tuples(events, "start", "end", "samples", "peak_residual") == expected
    assert events["duration_s"].tolist() == [end - start for start, end, _, _ in expected]


def test_merge_gap_keeps_axes_and_severities_apart():
    events = events_from_codes({"a": "eoaoeo", "b": "oaoooo"}, merge_gap_seconds=10.0)
    assert event_tuples(events, "axis", "severity", "start", "end", "samples") == [
        ("a", "alert", 0.0, 4.0, 3),
        ("a", "error", 0.0, 4.0, 2),
        ("b", "alert", 1.0, 1.0, 1),
    ]


@pytest.mark.parametrize(
    ("cooldown", "expected_starts"),
    [
        (0.0, [0.0, 3.0, 5.0, 7.0]),
        (1.9, [0.0, 3.0, 5.0, 7.0]),
        (2.0, [0.0, 5.0]),  # 3 - 1 = 2 <= 2: dropped; 5 - 1 = 4: kept; 7 - 5 = 2: dropped
        (2.5, [0.0, 5.0]),  # measured from the previous *kept* event, not the dropped one
        (6.0, [0.0]),
    ],
)
def test_cooldown_drops_events_starting_soon_after_the_previous_kept_end(cooldown, expected_starts):
    events = events_from_codes({"a": "aaoaoaoa"}, cooldown_seconds=cooldown)
    assert events["start"].tolist() == expected_starts


def test_merge_happens_before_cooldown():
    pattern = {"a": "aaoaoooooaoa"}
    merged_only = events_from_codes(pattern, merge_gap_seconds=2.0)
    assert event_tuples(merged_only, "start", "end") == [(0.0, 3.0), (9.0, 11.0)]
    # Cooldown first would keep (0, 1) and (9, 9); merging first measures from the merged end 3.
    both = events_from_codes(pattern, merge_gap_seconds=2.0, cooldown_seconds=5.9)
    assert event_tuples(both, "start", "end", "samples") == [(0.0, 3.0, 3), (9.0, 11.0, 2)]
    both = events_from_codes(pattern, merge_gap_seconds=2.0, cooldown_seconds=6.0)
    assert event_tuples(both, "start", "end", "samples") == [(0.0, 3.0, 3)]


def test_merge_gap_and_cooldown_in_seconds_with_datetime_timestamps():
    ts = pd.date_range("2024-05-01", periods=6, freq="1891ms", tz="UTC")
    merged = events_from_codes({"a": "aooaoa"}, ts=ts, merge_gap_seconds=3 * 1.891)
    assert event_tuples(merged, "start", "end", "samples") == [(ts[0], ts[5], 3)]
    cooled = events_from_codes({"a": "aooaoa"}, ts=ts, cooldown_seconds=2 * 1.891 + 0.001)
    assert event_tuples(cooled, "start", "end") == [(ts[0], ts[0]), (ts[3], ts[3])]


@pytest.mark.parametrize("seed", range(40))
def test_extract_events_matches_reference_loop_on_random_data(seed):
    rng = np.random.default_rng(4000 + seed)
    n = int(rng.integers(1, 200))
    axes = ["a", "b"]
    times = np.round(np.cumsum(rng.uniform(0.5, 3.0, n)), 3)
    levels = {axis: rng.choice(np.arange(5, dtype=np.int8), size=n) for axis in axes}
    residuals = {axis: rng.normal(size=n) for axis in axes}
    thresholds = {"a": rule(minc=1.0, maxc=2.0), "b": rule(minc=0.5, maxc=1.5)}
    merge_gap = float(rng.choice([0.0, 2.0, 5.0]))
    cooldown = float(rng.choice([0.0, 3.0, 10.0]))
    got = extract_events(
        times,
        residuals,
        levels,
        thresholds,
        axes=axes,
        merge_gap_seconds=merge_gap,
        cooldown_seconds=cooldown,
    )
    expected = reference_events(times, residuals, levels, thresholds, axes, merge_gap, cooldown)
    assert len(got) == len(expected)
    for got_row, expected_row in zip(got.to_dict("records"), expected, strict=True):
        assert got_row == pytest.approx(expected_row, nan_ok=True)


def test_extract_events_accepts_level_names_and_categoricals():
    names = {"a": np.array(["ok", "alert", "alert", "idle"], dtype=object)}
    by_name = extract_events(np.arange(4.0), {"a": np.ones(4)}, names, {"a": rule()}, axes=["a"])
    categorical = {"a": pd.Series(pd.Categorical(names["a"], dtype=LEVEL_DTYPE))}
    by_category = extract_events(
        np.arange(4.0), {"a": np.ones(4)}, categorical, {"a": rule()}, axes=["a"]
    )
    assert event_tuples(by_name) == [("a", "alert", 1.0, 2.0, 2)]
    pd.testing.assert_frame_equal(by_name, by_category)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"merge_gap_seconds": -1.0}, r"merge_gap_seconds must be a number >= 0 \(seconds\)"),
        ({"cooldown_seconds": NAN}, r"cooldown_seconds must be a number >= 0 \(seconds\)"),
        ({"axes": ["a", "zz"]}, r"thresholds\.zz: missing"),
        ({"axes": "a"}, "axes must be a sequence of axis names"),
        ({"levels": {"a": np.array(["ok", "warn", "ok"])}}, r"levels\['a'\] holds values"),
        ({"levels": {"a": np.array([0, 5, 1])}}, r"levels\['a'\] holds values"),
        ({"residuals": {"a": np.ones(2)}}, r"residuals\['a'\] has 2 entries but ts has 3"),
        ({"residuals": {}}, "residuals has no entry for axis 'a'"),
    ],
)
def test_extract_events_rejects_bad_input(kwargs, message):
    arguments = {
        "ts": np.arange(3.0),
        "residuals": {"a": np.ones(3)},
        "levels": {"a": codes("oao")},
        "thresholds": {"a": rule()},
        "axes": ["a"],
        **kwargs,
    }
    with pytest.raises(ScoringInputError, match=message):
        extract_events(**arguments)


# --------------------------------------------------------------------------------------------
# Config and public surface
# --------------------------------------------------------------------------------------------


def test_events_config_defaults_and_validation():
    config = EventsConfig()
    assert (config.table, config.merge_gap_seconds, config.cooldown_seconds) == (
        "anomaly_events",
        300.0,
        0.0,
    )
    assert EventsConfig.model_validate({"merge_gap_seconds": 30}).merge_gap_seconds == 30.0
    with pytest.raises(ValidationError, match="greater than or equal to 0"):
        EventsConfig(cooldown_seconds=-1)
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        EventsConfig.model_validate({"merge_gap": 5})
    with pytest.raises(ValidationError, match="frozen"):
        config.table = "other"
    for field in EventsConfig.model_fields.values():
        assert field.description


def test_public_surface():
    for name in Scoring.__all__:
        assert hasattr(Scoring, name), name
    assert len(set(Scoring.__all__)) == len(Scoring.__all__)
