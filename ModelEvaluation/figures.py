"""Drawing a plot's figure with matplotlib: the only module of the pipeline that imports it.

:mod:`ModelEvaluation.plots` computes what a figure shows (a ``PlotSpec``); this module
draws it. Importing matplotlib costs 0.2-1.5 s, so :mod:`~ModelEvaluation.plots` imports this
module on the first figure drawn: commands that draw none (scoring) never pay for it.
No pyplot state is used: drawing is backend-independent and safe in any thread or process.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure

from .plots import PALETTE

if TYPE_CHECKING:
    from .plots import PlotSpec

__all__ = ["DPI", "draw", "render_png", "save_png"]

DPI = 100
FIGSIZE = (10.0, 4.5)
DATA_COLOUR = PALETTE["data"]
FIT_COLOUR = PALETTE["expected"]
# zlib level 3 writes these plots ~20% faster than the default 6, at the same size.
PNG_COMPRESS_LEVEL = 3


def draw(spec: PlotSpec) -> Figure:
    """Draw ``spec`` on a new figure: points, optional line, dashed levels, legend, notes."""
    fig = Figure(figsize=FIGSIZE, dpi=DPI)
    # Fixed margins instead of a layout engine: the layout pass costs ~40% of a render.
    fig.subplots_adjust(left=0.08, right=0.985, bottom=0.13, top=0.91)
    ax = fig.add_subplot()
    ax.plot(
        spec.points_x,
        spec.points_y,
        linestyle="none",
        marker="o",
        markersize=2,
        markeredgewidth=0,
        alpha=0.6,
        color=DATA_COLOUR,
        label=spec.points_label,
    )
    if spec.line_x is not None and spec.line_y is not None:
        ax.plot(spec.line_x, spec.line_y, color=FIT_COLOUR, linewidth=2, label=spec.line_label)
    for level, label, colour in spec.levels:
        ax.axhline(level, color=colour, linestyle="--", linewidth=1.2, label=label)
    if spec.x_is_time:
        locator = AutoDateLocator()
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    ax.set_title(spec.title, loc="left", y=1.0)  # a fixed place: no overlap search
    ax.set_xlabel(spec.x_label)
    ax.set_ylabel(spec.y_label)
    ax.grid(True, alpha=0.3)
    # Legend in one row above the axes, so it never hides data.
    ax.legend(
        loc="lower right",
        bbox_to_anchor=(1.0, 1.0),
        ncols=len(ax.get_legend_handles_labels()[1]),
        markerscale=4,
        frameon=False,
        fontsize="small",
    )
    shown = spec.points_y.size
    if spec.n_total == 0:
        ax.text(0.5, 0.5, "no usable samples", transform=ax.transAxes, ha="center")
    elif shown < spec.n_total:
        fig.text(
            0.005,
            0.005,
            f"subsampled: {shown} of {spec.n_total} points (bucket min, max, first, middle)",
            ha="left",
            va="bottom",
            fontsize="small",
            color="dimgray",
        )
    return fig


def save_png(fig: Figure, target: Path | io.BytesIO) -> None:
    """Write ``fig`` as a PNG at :data:`DPI` (no software tag: the bytes depend only on it)."""
    fig.savefig(
        target,
        format="png",
        dpi=DPI,
        metadata={"Software": None},
        pil_kwargs={"compress_level": PNG_COMPRESS_LEVEL},
    )


def render_png(spec: PlotSpec) -> bytes:
    """Draw ``spec`` and return the PNG bytes."""
    buffer = io.BytesIO()
    save_png(draw(spec), buffer)
    return buffer.getvalue()
