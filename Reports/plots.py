"""The digest's figures: the data around an event, and the fleet overview heat map.

Each figure is computed as a small spec, then drawn with matplotlib (imported on the first
figure drawn) into PNG bytes for embedding. Colours and threshold labels are the training
plots' (:data:`ModelEvaluation.PALETTE`, :func:`ModelEvaluation.threshold_label`): "alert
(MinC)", "error (MaxC)" and their lower counterparts, the same in every figure.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ModelEvaluation import PALETTE, THRESHOLD_KEYS, threshold_label

__all__ = ["EventPlot", "draw_event", "draw_overview", "event_plot", "overview_matrix"]

EVENT_FIGSIZE = (7.2, 4.2)
DPI = 100
MAX_POINTS = 3000


@dataclass(frozen=True, eq=False)
class EventPlot:
    """What one event's figure shows: the data and expected line above, the residual with
    the threshold levels below, the event shaded in both."""

    title: str
    y_label: str
    ts: np.ndarray
    actual: np.ndarray
    expected: np.ndarray
    levels: tuple[tuple[str, str, float], ...]
    """(threshold key, label, value) of every threshold the axis has."""
    shade: tuple[pd.Timestamp, pd.Timestamp]
    severity: str

    @property
    def residual(self) -> np.ndarray:
        """Actual minus expected (NaN where the value is idle or missing)."""
        return self.actual - self.expected


def event_plot(
    frame: pd.DataFrame,
    axis: str,
    event: Mapping[str, Any],
    thresholds: Mapping[str, Any],
    *,
    unit: str | None = None,
) -> EventPlot:
    """The figure of ``event`` drawn on ``axis`` of ``frame``.

    Args:
        frame: ``ts`` (UTC), ``axis`` and ``{axis}_pred`` (the version's expected value) around
            the event; idle (0) and missing values are not drawn.
        axis: the axis drawn (a machine event draws its top contributor).
        event: an :func:`Scoring.event_records` record (``asset``, ``axis``, ``severity``,
            ``start``, ``end``, ``ratio``).
        thresholds: the axis's record of ``thresholds.json``; each of MinC, MaxC, MinC_low,
            MaxC_low it holds is drawn as a level of the residual.
        unit: the axis's unit (``data.units``), shown on the y axes.
    """
    ts = pd.to_datetime(frame["ts"], utc=True).dt.tz_convert(None).to_numpy()
    actual = frame[axis].to_numpy(dtype=float, na_value=np.nan)
    expected = frame[f"{axis}_pred"].to_numpy(dtype=float, na_value=np.nan)
    actual = np.where(np.isfinite(actual) & (actual != 0.0), actual, np.nan)
    if ts.size > MAX_POINTS:
        step = int(np.ceil(ts.size / MAX_POINTS))
        ts, actual, expected = ts[::step], actual[::step], expected[::step]
    levels = tuple(
        (key, threshold_label(key), float(thresholds[key]))
        for key in THRESHOLD_KEYS
        if thresholds.get(key) is not None
    )
    ratio = event.get("ratio")
    where = f"{event['asset']} " if event.get("asset") else ""
    channel = event["axis"] if event["axis"] == axis else f"machine event, shown on {axis}"
    title = f"{where}{channel}: {event['severity']}" + (
        "" if ratio is None else f", ratio {ratio:.2f}"
    )
    return EventPlot(
        title=title,
        y_label=f"{axis} [{unit}]" if unit else str(axis),
        ts=ts,
        actual=actual,
        expected=expected,
        levels=levels,
        shade=(_naive(event["start"]), _naive(event["end"])),
        severity=str(event["severity"]),
    )


def _naive(iso: str) -> pd.Timestamp:
    return pd.Timestamp(iso).tz_convert("UTC").tz_localize(None)


def draw_event(spec: EventPlot) -> bytes:
    """Draw an :class:`EventPlot` and return its PNG bytes."""
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
    from matplotlib.figure import Figure

    fig = Figure(figsize=EVENT_FIGSIZE, dpi=DPI)
    fig.subplots_adjust(left=0.1, right=0.985, bottom=0.1, top=0.83, hspace=0.12)
    data_ax, residual_ax = fig.subplots(2, 1, sharex=True)
    shade = PALETTE["error"] if spec.severity == "error" else PALETTE["alert"]
    dots = {"linestyle": "none", "marker": "o", "markersize": 2, "markeredgewidth": 0}
    for ax in (data_ax, residual_ax):
        ax.axvspan(spec.shade[0], spec.shade[1], color=shade, alpha=0.15, label="event")
        ax.grid(True, alpha=0.3)
        ax.tick_params(labelsize=8)
    data_ax.plot(spec.ts, spec.actual, color=PALETTE["data"], label="data", **dots)
    data_ax.plot(spec.ts, spec.expected, color=PALETTE["expected"], linewidth=1, label="expected")
    data_ax.set_ylabel(spec.y_label, fontsize=9)
    residual_ax.plot(spec.ts, spec.residual, color=PALETTE["data"], label="residual", **dots)
    residual_ax.axhline(0.0, color=PALETTE["zero"], linewidth=0.8)
    for key, label, value in spec.levels:
        style = "--" if key in {"MinC", "MinC_low"} else "-."
        residual_ax.axhline(value, color=PALETTE[key], linestyle=style, linewidth=1.2, label=label)
    residual_ax.set_ylabel("data − expected", fontsize=9)
    locator = AutoDateLocator()
    residual_ax.xaxis.set_major_locator(locator)
    residual_ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    residual_ax.set_xlabel("time (UTC)", fontsize=9)
    fig.text(0.01, 0.975, spec.title, fontsize=10, weight="bold", va="top")
    handles, labels = data_ax.get_legend_handles_labels()
    extra = residual_ax.get_legend_handles_labels()
    keep = [i for i, label in enumerate(extra[1]) if label not in {"event", "residual"}]
    fig.legend(
        handles + [extra[0][i] for i in keep],
        labels + [extra[1][i] for i in keep],
        loc="upper left",
        bbox_to_anchor=(0.09, 0.945),
        ncols=4,
        markerscale=3,
        frameon=False,
        fontsize=7.5,
    )
    return _png(fig)


def overview_matrix(
    events: pd.DataFrame, assets: Sequence[str], axes: Sequence[str], limit: int
) -> pd.DataFrame:
    """Alert events (episodes) per asset and axis: the heat map's numbers.

    Rows are the assets with the most alert events first (then by name), at most ``limit``;
    columns ``axes`` and the machine channel ``*`` when an event names it.
    """
    alerts = events[events["severity"] == "alert"] if not events.empty else events
    columns = list(axes)
    if not alerts.empty and "*" in set(alerts["axis"]) and "*" not in columns:
        columns.append("*")
    counts = (
        alerts.groupby(["asset", "axis"]).size().unstack(fill_value=0)
        if not alerts.empty
        else pd.DataFrame()
    )
    matrix = counts.reindex(index=list(assets), columns=columns, fill_value=0).fillna(0)
    matrix = matrix.astype(int)
    totals = matrix.sum(axis=1)
    order = sorted(matrix.index, key=lambda a: (-int(totals[a]), str(a)))
    return matrix.loc[order[:limit]]


def draw_overview(matrix: pd.DataFrame, title: str) -> bytes:
    """Draw the heat map of :func:`overview_matrix` (counts written in the cells)."""
    from matplotlib.figure import Figure

    rows, cols = matrix.shape
    fig = Figure(figsize=(1.6 + 0.55 * max(cols, 1), 1.1 + 0.28 * max(rows, 1)), dpi=DPI)
    ax = fig.add_subplot()
    values = matrix.to_numpy(dtype=float)
    image = ax.imshow(values, cmap="YlOrRd", aspect="auto", vmin=0, vmax=max(values.max(), 1))
    ax.set_xticks(range(cols), [str(c) for c in matrix.columns], fontsize=8)
    ax.set_yticks(range(rows), [str(i) for i in matrix.index], fontsize=8)
    ax.set_title(title, loc="left", fontsize=10)
    for (row, col), value in np.ndenumerate(values):
        if value:
            dark = value > 0.6 * values.max()
            ax.text(
                col,
                row,
                f"{value:g}",
                ha="center",
                va="center",
                fontsize=7,
                color="white" if dark else "black",
            )
    fig.colorbar(image, ax=ax, fraction=0.04, pad=0.02).ax.tick_params(labelsize=7)
    fig.tight_layout()
    return _png(fig)


def _png(fig: Any) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()
