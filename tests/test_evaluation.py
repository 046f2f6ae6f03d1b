"""Model evaluation: metrics, subsampling, file stems and the fit/residual plots."""

from __future__ import annotations

import itertools
import logging
import math
import os
import random
import struct
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from pydantic import ValidationError
from sklearn.metrics import r2_score

from ModelEvaluation import (
    EvaluationError,
    PlotConfig,
    axis_metrics,
    axis_plot_data,
    evaluate,
    metrics_csv,
    metrics_frame,
    plot_file_stems,
    plot_fit,
    plot_residuals,
    safe_file_stem,
    save_figure,
    subsample_extremes,
    write_plots,
)
from ModelEvaluation.evaluator import METRIC_COLUMNS
from ModelSelection import LinearTrend
from ModelTraining import AxisModelSet

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _predicted_frame(value, pred) -> pd.DataFrame:
    value = np.asarray(value, dtype=float)
    pred = np.asarray(pred, dtype=float)
    residual = np.where(np.isnan(value) | (value == 0), np.nan, value - pred)
    return pd.DataFrame(
        {
            "time_s": np.arange(value.size, dtype=float),
            "a": value,
            "a_pred": pred,
            "a_res": residual,
        }
    )


def _png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    return struct.unpack(">II", data[16:24])


@pytest.fixture
def predicted() -> pd.DataFrame:
    rng = np.random.default_rng(5)
    n = 3000
    t = np.arange(n) * 1.891
    frame = pd.DataFrame(
        {
            "ts": pd.to_datetime(1_700_000_000 + t, unit="s", utc=True),
            "time_s": t,
            "axis1": 10 + 0.002 * t + rng.normal(0, 1, n),
            "Axis #1": 5 - 0.001 * t + rng.normal(0, 0.5, n),
        }
    )
    frame.loc[100:200, "axis1"] = 0.0
    frame.loc[300:310, "Axis #1"] = np.nan
    return AxisModelSet(LinearTrend, ["axis1", "Axis #1"]).fit(frame).predict(frame)


# --- metrics ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "pred", "n", "mae", "rmse"),
    [
        ([2.0, 1.0, 4.0, 3.0], [1.0, 2.0, 3.0, 4.0], 4, 1.0, 1.0),
        ([3.0, 0.0, 5.0, np.nan], [1.0, 1.0, 1.0, 1.0], 2, 3.0, np.sqrt(10.0)),
        ([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], 3, 0.0, 0.0),
    ],
)
def test_metrics_hand_checked(value, pred, n, mae, rmse):
    metrics = evaluate(_predicted_frame(value, pred), ["a"])
    row = metrics.iloc[0]
    assert row["n"] == n
    assert row["mae"] == pytest.approx(mae)
    assert row["rmse"] == pytest.approx(rmse)


@pytest.mark.parametrize(
    ("value", "pred"),
    [
        ([2.0, 1.0, 4.0, 3.0], [1.0, 2.0, 3.0, 4.0]),
        ([3.0, 3.0, 3.0], [3.0, 3.0, 3.0]),
        ([3.0, 3.0, 3.0], [2.0, 3.0, 3.0]),
        ([1.0, 5.0, 2.0, 8.0, 0.0], [1.5, 4.0, 2.5, 7.0, 9.0]),
    ],
)
def test_r2_matches_sklearn_on_rows_with_residuals(value, pred):
    frame = _predicted_frame(value, pred)
    keep = frame["a_res"].notna()
    expected = r2_score(frame.loc[keep, "a"], frame.loc[keep, "a_pred"])
    assert evaluate(frame, ["a"]).loc[0, "r2"] == pytest.approx(expected)


def test_metrics_frame_layout(predicted):
    metrics = evaluate(predicted, ["Axis #1", "axis1"])
    assert list(metrics.columns) == ["axis", "n", "r2", "mae", "rmse"]
    assert list(metrics["axis"]) == ["Axis #1", "axis1"]
    assert metrics["n"].tolist() == [3000 - 11, 3000 - 101]
    assert metrics["n"].dtype == np.int64
    residual = predicted["axis1_res"].dropna().to_numpy()
    assert metrics.loc[1, "rmse"] == pytest.approx(np.sqrt(np.mean(residual**2)))
    assert 0.9 < metrics.loc[1, "r2"] <= 1.0


@pytest.mark.parametrize("count", [0, 1, 3])
def test_metrics_frame_equals_the_frame_of_its_records(count):
    rows = [("a", 5, 0.5, 1.0, 2.0), ("b", 0, np.nan, np.nan, np.nan), ("c", 7, -1.0, 3.0, 4.5)]
    records = pd.DataFrame.from_records(rows[:count], columns=list(METRIC_COLUMNS))
    typed = records.astype({"axis": str, "n": np.int64, "r2": float, "mae": float, "rmse": float})

    metrics = metrics_frame(rows[:count])

    pd.testing.assert_frame_equal(metrics, typed, check_exact=True)
    assert metrics.columns.dtype == typed.columns.dtype
    assert metrics.to_csv() == typed.to_csv()


def test_axis_metrics_from_residuals_equal_evaluate(predicted):
    rows = [
        axis_metrics(axis, predicted[axis].to_numpy(), predicted[f"{axis}_res"].to_numpy())
        for axis in ["axis1", "Axis #1"]
    ]
    from_residuals = metrics_frame(rows)
    pd.testing.assert_frame_equal(from_residuals, evaluate(predicted, ["axis1", "Axis #1"]))
    assert rows[0][:2] == ("axis1", 3000 - 101)
    with pytest.raises(EvaluationError, match=r"axis 'a': values and residuals must be 1-D"):
        axis_metrics("a", np.zeros(3), np.zeros(2))


# Several 32,768-row blocks and a partial one: the blocked sums must merge exactly.
LONG_N = 3 * 32_768 + 12_345


def test_metrics_over_many_blocks_match_closed_form():
    # actual = 0, 1, ..., N-1 and residuals ±c: mean |res| = rms res = c, Σres² = N c²,
    # Σ(actual - mean)² = N (N² - 1) / 12, so R² = 1 - 12 c² / (N² - 1) (about 0.25 here).
    n, c = LONG_N, LONG_N / 4
    actual = np.arange(n, dtype=np.float64)
    residual = np.where(np.arange(n) % 2 == 0, c, -c)
    axis, rows, r2, mae, rmse = axis_metrics("a", actual, residual)
    assert (axis, rows) == ("a", n)
    assert r2 == pytest.approx(1 - 12 * c**2 / (n**2 - 1), rel=1e-12)
    assert mae == pytest.approx(c, rel=1e-12)
    assert rmse == pytest.approx(c, rel=1e-12)


def test_metrics_over_many_blocks_with_gaps_match_a_float64_reference():
    # Far from zero (1e6) with idle and missing stretches that cross block edges: the
    # reference is the textbook two-pass formula on the kept rows.
    rng = np.random.default_rng(7)
    t = np.arange(LONG_N, dtype=np.float64)
    actual = 1e6 + 0.01 * t + rng.normal(0, 3, LONG_N)
    predicted = 1e6 + 0.01 * t
    actual[30_000:40_000] = 0.0  # idle across the first block edge
    actual[70_000:70_500] = np.nan
    frame = _predicted_frame(actual, predicted)
    kept = frame["a_res"].notna().to_numpy()
    value, residual = actual[kept], (actual - predicted)[kept]
    expected_r2 = 1 - np.sum(residual**2) / np.sum((value - value.mean()) ** 2)
    for metrics in (
        evaluate(frame, ["a"]).iloc[0],
        metrics_frame([axis_metrics("a", frame["a"], frame["a_res"])]).iloc[0],
    ):
        assert metrics["n"] == LONG_N - 10_000 - 500
        assert metrics["r2"] == pytest.approx(expected_r2, rel=1e-9)
        assert metrics["mae"] == pytest.approx(np.mean(np.abs(residual)), rel=1e-12)
        assert metrics["rmse"] == pytest.approx(np.sqrt(np.mean(residual**2)), rel=1e-12)
    assert expected_r2 == pytest.approx(r2_score(value, predicted[kept]), rel=1e-9)


def test_axis_without_residuals_gets_nan_metrics(caplog):
    frame = _predicted_frame([0.0, np.nan], [1.0, 1.0])
    with caplog.at_level(logging.WARNING, logger="ModelEvaluation.evaluator"):
        row = evaluate(frame, ["a"]).iloc[0]
    assert row["n"] == 0
    assert np.isnan([row["r2"], row["mae"], row["rmse"]]).all()
    assert "axis 'a' has no finite residuals" in caplog.text


def test_evaluate_names_missing_columns(predicted):
    with pytest.raises(EvaluationError, match=r"'axis2', 'axis2_pred', 'axis2_res', missing"):
        evaluate(predicted, ["axis1", "axis2"])


# --- config -----------------------------------------------------------------------------


def test_plot_config():
    config = PlotConfig()
    assert (config.dir, config.enabled, config.max_points) == ("out/plots", True, 20000)
    with pytest.raises(ValidationError, match="greater than or equal to 100"):
        PlotConfig(max_points=50)
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        PlotConfig(format="svg")
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        PlotConfig(workers=2)  # figures are drawn in the training process


# --- subsampling and file names ---------------------------------------------------------


@pytest.mark.parametrize("n", [0, 1, 100])
def test_short_series_are_not_subsampled(n):
    np.testing.assert_array_equal(subsample_extremes(np.arange(n, dtype=float), 100), np.arange(n))


@pytest.mark.parametrize(("n", "max_points"), [(1001, 100), (10_000, 100), (123_457, 2000)])
def test_subsampling_keeps_extremes_and_is_deterministic(n, max_points):
    rng = np.random.default_rng(n)
    values = rng.normal(0, 1, n)
    values[n // 3] = 50.0
    values[n // 3 + 1] = -50.0
    picked = subsample_extremes(values, max_points)
    assert picked.size <= max_points
    assert np.all(np.diff(picked) > 0)
    assert values[picked].max() == values.max() == 50.0
    assert values[picked].min() == values.min() == -50.0
    np.testing.assert_array_equal(picked, subsample_extremes(values.copy(), max_points))


def test_subsampling_rejects_tiny_budget():
    with pytest.raises(EvaluationError, match="max_points must be at least 4, got 3"):
        subsample_extremes(np.arange(10.0), 3)


@pytest.mark.parametrize(
    ("name", "stem"),
    [
        ("axis1", "axis1"),
        ("Axis #1", "Axis_1"),
        ("Joint current (A) #3", "Joint_current_A_3"),
        ("../../etc/passwd", "etc_passwd"),
        (".hidden", "hidden"),
        ("###", "axis"),
        ("Motor-2.temp", "Motor-2.temp"),
        ("x" * 200, "x" * 80),
    ],
)
def test_safe_file_stem(name, stem):
    assert safe_file_stem(name) == stem


def test_plot_file_stems_resolve_collisions_order_independently():
    stems = plot_file_stems(["Axis #1", "Axis_1", "axis 2", "AXIS_2", "axis3"])
    assert stems["axis3"] == "axis3"
    assert len({s.lower() for s in stems.values()}) == 5
    assert stems["Axis #1"].startswith("Axis_1-") and len(stems["Axis #1"]) == len("Axis_1-") + 8
    assert stems == plot_file_stems(["axis3", "AXIS_2", "axis 2", "Axis_1", "Axis #1"])
    assert plot_file_stems(["Axis #1", "Axis #2"]) == {"Axis #1": "Axis_1", "Axis #2": "Axis_2"}


# --- figures ----------------------------------------------------------------------------


def _legend_labels(fig: Figure) -> list[str]:
    return [text.get_text() for text in fig.axes[0].get_legend().get_texts()]


def test_plot_fit_draws_points_and_line(predicted):
    fig = plot_fit(predicted, "axis1", max_points=20000)
    ax = fig.axes[0]
    assert isinstance(fig, Figure)
    assert "axis1" in ax.get_title(loc="left")
    assert ax.get_xlabel() == "time (UTC)"
    assert ax.get_ylabel() == "axis1"
    points, *pieces = ax.get_lines()
    assert points.get_linestyle() == "None" and points.get_marker() == "o"
    assert len(points.get_ydata()) == 3000 - 101  # idle rows are not drawn
    # The fitted line is drawn in pieces of at most 500 points (cheaper for Agg to stroke),
    # each starting at the previous piece's last point: together, every point, no gap.
    assert len(pieces) == 6
    assert all(len(piece.get_ydata()) <= 500 for piece in pieces)
    for before, after in itertools.pairwise(pieces):
        assert before.get_xdata()[-1] == after.get_xdata()[0]
        assert before.get_ydata()[-1] == after.get_ydata()[0]
    joined = np.concatenate([pieces[0].get_ydata()] + [p.get_ydata()[1:] for p in pieces[1:]])
    np.testing.assert_array_equal(joined, predicted["axis1_pred"][predicted["axis1"] != 0])
    assert {piece.get_linestyle() for piece in pieces} == {"-"}
    assert {to_rgba(piece.get_color()) for piece in pieces} == {to_rgba("tab:red")}
    assert to_rgba(points.get_color()) != to_rgba(pieces[0].get_color())
    assert _legend_labels(fig) == ["data (idle and missing rows hidden)", "fitted model"]


def test_plot_fit_from_residuals_alone_draws_the_same_model(predicted):
    with_prediction = plot_fit(predicted, "axis1", max_points=400).axes[0].get_lines()
    residual_only = predicted.drop(columns=["axis1_pred", "Axis #1_pred"])
    without = plot_fit(residual_only, "axis1", max_points=400).axes[0].get_lines()
    for drawn, reference in zip(without, with_prediction, strict=True):
        np.testing.assert_array_equal(drawn.get_xdata(), reference.get_xdata())
        np.testing.assert_allclose(drawn.get_ydata(), reference.get_ydata(), rtol=1e-14)
    points, line = without
    assert len(points.get_ydata()) == len(line.get_ydata()) <= 400  # one piece: <= 500 points


def test_plot_fit_uses_time_since_t0_without_datetime_ts(predicted):
    frame = predicted.assign(ts=predicted["time_s"] + 1.7e9)
    assert plot_fit(frame, "axis1").axes[0].get_xlabel() == "time since t0 [s]"
    assert plot_fit(frame.drop(columns="ts"), "axis1").axes[0].get_xlabel() == "time since t0 [s]"


def test_plot_residuals_draws_threshold_lines(predicted):
    fig = plot_residuals(predicted, "Axis #1", minc=0.4, maxc=1.2)
    ax = fig.axes[0]
    points, zero, minc, maxc = ax.get_lines()
    assert points.get_marker() == "o"
    assert list(zero.get_ydata()) == [0.0, 0.0]
    assert list(minc.get_ydata()) == [0.4, 0.4] and list(maxc.get_ydata()) == [1.2, 1.2]
    assert all(line.get_linestyle() == "--" for line in (zero, minc, maxc))
    colours = {to_rgba(line.get_color()) for line in (points, zero, minc, maxc)}
    assert len(colours) == 4
    assert _legend_labels(fig) == ["residual", "zero", "alert (MinC) = 0.4", "error (MaxC) = 1.2"]
    assert ax.get_ylabel() == "Axis #1 residual"
    assert len(plot_residuals(predicted, "Axis #1").axes[0].get_lines()) == 2


def test_subsampled_plot_says_so(predicted):
    fig = plot_residuals(predicted, "axis1", max_points=400)
    notes = [text.get_text() for text in fig.texts]
    assert notes == [
        f"subsampled: {len(fig.axes[0].get_lines()[0].get_ydata())} of 2899 points "
        "(bucket min, max, first, middle)"
    ]
    assert plot_residuals(predicted, "axis1").texts == []


def test_plot_of_an_all_idle_axis(tmp_path):
    frame = _predicted_frame([0.0, 0.0, np.nan], [1.0, 1.0, 1.0])
    fig = plot_fit(frame, "a")
    assert "no usable samples" in [t.get_text() for t in fig.axes[0].texts]
    assert save_figure(fig, tmp_path / "idle.png").stat().st_size > 1000


def test_plot_names_missing_columns(predicted):
    with pytest.raises(EvaluationError, match=r"the fit plot needs column\(s\) 'axis9'"):
        plot_fit(predicted, "axis9")
    with pytest.raises(EvaluationError, match="datetime 'ts' column or a 'time_s' column"):
        plot_residuals(predicted.drop(columns=["ts", "time_s"]), "axis1")


def test_save_figure_writes_png(tmp_path, predicted):
    path = save_figure(plot_fit(predicted, "axis1"), tmp_path / "nested" / "fit.png")
    assert path == tmp_path / "nested" / "fit.png"
    assert _png_size(path) == (1000, 450)


def _write_both(predicted, out_dir, thresholds=None, max_points=1000):
    data = [axis_plot_data(predicted, axis, max_points=max_points) for axis in ["axis1", "Axis #1"]]
    return write_plots(data, thresholds, out_dir)


def test_write_plots_writes_every_file(tmp_path, predicted):
    paths = _write_both(predicted, tmp_path, {"axis1": {"MinC": 0.7, "MaxC": 1.6}})
    assert [p.name for p in paths] == [
        "axis1_fit.png",
        "axis1_residual.png",
        "Axis_1_fit.png",
        "Axis_1_residual.png",
    ]
    for path in paths:
        assert path.parent == tmp_path
        assert _png_size(path) == (1000, 450)
        assert 10_000 < path.stat().st_size < 2_000_000


def test_write_plots_draws_the_same_bytes_every_time(tmp_path, predicted):
    first = _write_both(predicted, tmp_path / "first", max_points=500)
    again = _write_both(predicted, tmp_path / "again", max_points=500)
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in again]
    drawn = save_figure(plot_fit(predicted, "axis1", max_points=500), tmp_path / "fit.png")
    assert drawn.read_bytes() == first[0].read_bytes()  # the same figure as plot_fit's


def test_a_figure_that_cannot_be_drawn_raises_here_and_writes_nothing(tmp_path, predicted):
    good = axis_plot_data(predicted, "axis1", max_points=500)
    fit = good.fit
    broken = replace(good, axis="axis2", fit=replace(fit, points_y=fit.points_y[:-1]))  # y < x
    with pytest.raises(ValueError, match="x and y must have same first dimension"):
        write_plots([good, broken], None, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_plot_data_checks_columns_before_anything_is_drawn(predicted):
    with pytest.raises(EvaluationError, match=r"plots needs column\(s\) 'axis2', 'axis2_res'"):
        axis_plot_data(predicted, "axis2")


def test_threshold_lines_are_named_alert_and_error_on_both_sides_with_units(predicted):
    from ModelEvaluation.plots import _levels, _with_unit

    record = {"MinC": 0.7, "MaxC": 1.6, "MinC_low": -0.5, "MaxC_low": -1.25, "T_long_steps": 3}
    spec = _with_unit(_levels(axis_plot_data(predicted, "axis1").residual, record), "A")
    assert [(label, colour) for _, label, colour in spec.levels] == [
        ("zero", "black"),
        ("alert (MinC) = 0.7", "tab:orange"),
        ("error (MaxC) = 1.6", "tab:purple"),
        ("alert low (MinC_low) = -0.5", "tab:orange"),
        ("error low (MaxC_low) = -1.25", "tab:purple"),
    ]
    assert spec.y_label == "axis1 residual [A]"
    assert _with_unit(spec, None) is spec


def test_write_plots_draws_each_figure_as_if_alone(tmp_path, predicted):
    """write_plots reuses one figure for the series: every PNG equals the figure drawn alone,
    across datetime and seconds axes, an empty axis, a single point and levels off the data."""
    from ModelEvaluation.figures import render_png
    from ModelEvaluation.plots import _levels

    dated = axis_plot_data(predicted, "axis1", max_points=400)
    seconds = axis_plot_data(predicted.drop(columns="ts"), "Axis #1", max_points=400)
    empty = axis_plot_data(predicted.assign(axis1=0.0, axis1_res=np.nan), "axis1")
    single = axis_plot_data(predicted.iloc[:1], "axis1")
    far = _levels(dated.residual, {"MinC": 25.0, "MaxC": 40.0, "MinC_low": -0.1})
    series = [
        dated,
        replace(single, axis="single"),
        replace(dated, axis="far", residual=far),
        replace(seconds, axis="seconds"),
        replace(empty, axis="empty"),
        replace(dated, axis="again"),
    ]
    paths = write_plots(series, None, tmp_path)
    alone = [render_png(spec) for item in series for spec in (item.fit, item.residual)]
    assert [path.read_bytes() for path in paths] == alone


def test_a_long_fitted_line_keeps_every_columns_extremes():
    from ModelEvaluation.figures import LINE_COLUMNS, _column_envelope

    rng = np.random.default_rng(3)
    x = np.arange(20 * LINE_COLUMNS, dtype=float)
    y = np.sin(x / 3.0) + rng.normal(0, 0.1, x.size)
    kept_x, kept_y = _column_envelope(x, y)
    assert 2 * LINE_COLUMNS <= kept_x.size <= 4 * LINE_COLUMNS
    assert np.all(np.diff(kept_x) > 0)  # a subset, in order
    np.testing.assert_array_equal(kept_y, y[np.searchsorted(x, kept_x)])
    column = np.minimum((x * (LINE_COLUMNS / x[-1])).astype(int), LINE_COLUMNS - 1)
    kept_column = column[np.searchsorted(x, kept_x)]
    for c in (0, 1, LINE_COLUMNS // 2, LINE_COLUMNS - 1):
        inside = column == c
        assert set(kept_y[kept_column == c]) >= {
            y[inside][0],
            y[inside][-1],
            y[inside].min(),
            y[inside].max(),
        }
    short = np.arange(100.0)
    assert _column_envelope(short, short)[0] is short  # short lines are drawn as they are
    backwards = x[::-1].copy()
    assert _column_envelope(backwards, y)[0] is backwards  # not in x order: unchanged


def test_save_figure_of_another_figure_keeps_its_canvas(tmp_path):
    fig = Figure(figsize=(2, 1), dpi=50)
    fig.add_subplot().plot([0, 1], [1, 0])
    canvas = fig.canvas
    path = save_figure(fig, tmp_path / "other.png")
    assert _png_size(path) == (200, 100)  # written at 100 dpi
    assert fig.canvas is canvas and fig.dpi == 50


def _random_double(rng: random.Random) -> float:
    special = [0.0, -0.0, float("nan"), float("inf"), -float("inf"), 1e16, 5e-324, 0.1, 1 / 3]
    if rng.random() < 0.2:
        return rng.choice(special)
    value = struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))[0]
    return value if math.isfinite(value) else math.nan


@pytest.mark.parametrize("seed", range(50))
def test_metrics_csv_is_pandas_to_csv(seed: int) -> None:
    rng = random.Random(seed)
    rows = [
        (
            rng.choice(["axis1", "b,c", 'q"x', "é", "*", " s ", ""]),
            rng.randrange(-5, 10**12),
            _random_double(rng),
            _random_double(rng),
            _random_double(rng),
        )
        for _ in range(rng.randrange(0, 9))
    ]
    frame = metrics_frame(rows)
    assert metrics_csv(frame) == frame.to_csv(index=False)


def test_metrics_csv_of_other_columns_goes_through_pandas() -> None:
    frame = pd.DataFrame({"axis": ["a", None], "ok": [True, False], "x": [1.5, None]})
    assert metrics_csv(frame) == frame.to_csv(index=False) == "axis,ok,x\na,True,1.5\n,False,\n"
    assert metrics_csv(metrics_frame([("a", 3, 0.5, 1e-05, math.nan)])) == (
        "axis,n,r2,mae,rmse\na,3,0.5,1e-05,\n"
    )


def test_metrics_csv_ends_lines_as_pandas_does(monkeypatch: pytest.MonkeyPatch) -> None:
    frame = metrics_frame([("a", 3, 0.5, 1e-05, math.nan)])
    monkeypatch.setattr(os, "linesep", "\r\n")  # as on Windows
    assert (
        metrics_csv(frame)
        == frame.to_csv(index=False)
        == ("axis,n,r2,mae,rmse\r\na,3,0.5,1e-05,\r\n")
    )
