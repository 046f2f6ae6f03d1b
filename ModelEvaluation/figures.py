"""Drawing a plot's figure with matplotlib: the only module of the pipeline that imports it.

:mod:`ModelEvaluation.plots` computes what a figure shows (a ``PlotSpec``); this module
draws it. Importing matplotlib costs ~0.2 s, so it happens only where figures are drawn:
in the plot worker processes, or on the first ``plot_fit`` call.
No pyplot state is used: drawing is backend-independent and safe in any thread or process.

Run as a script, this file is a plot worker (:func:`serve`): it imports numpy and matplotlib
only, and none of the pipeline or of the caller's code.
"""

from __future__ import annotations

import io
import os
import pickle
import signal
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, BinaryIO

import numpy as np
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure

if TYPE_CHECKING:
    from .plots import PlotSpec

__all__ = ["DPI", "draw", "render_png", "save_png", "serve"]

DPI = 100
FIGSIZE = (10.0, 4.5)
DATA_COLOUR = "tab:blue"
FIT_COLOUR = "tab:red"
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


def _warm_up() -> None:
    """Draw one small figure of each kind, so the first real one pays no loading."""
    x = np.arange("2026-01-01T00", "2026-01-01T04", dtype="datetime64[h]").astype("M8[ns]")
    y = np.arange(x.size, dtype=np.float64)
    common = {"title": "warm-up", "x_label": "time", "y_label": "y", "x_is_time": True}
    fit = SimpleNamespace(
        **common, points_x=x, points_y=y, points_label="data", n_total=x.size + 1,
        line_x=x, line_y=y, line_label="fit", levels=(),
    )  # fmt: skip
    residual = SimpleNamespace(
        **common, points_x=x, points_y=y, points_label="residual", n_total=x.size,
        line_x=None, line_y=None, line_label="", levels=((0.0, "zero", "black"),),
    )  # fmt: skip
    for spec in (fit, residual):
        render_png(spec)  # type: ignore[arg-type]


def serve(requests: BinaryIO, replies: BinaryIO) -> None:
    """The plot worker's loop (see ``ModelEvaluation.plots.PlotRenderer``).

    Reads pickled spec fields (a dict) from ``requests`` until end of file; answers each with
    a pickled ``(True, png_bytes)``, or ``(False, "Error: message")`` when drawing failed.
    """
    _warm_up()
    while True:
        try:
            fields = pickle.load(requests)
        except EOFError:
            return
        reply: tuple[bool, bytes | str]
        try:
            reply = (True, render_png(SimpleNamespace(**fields)))  # type: ignore[arg-type]
        except Exception as exc:  # the parent draws this figure itself, and raises there
            reply = (False, f"{type(exc).__name__}: {exc}")
        pickle.dump(reply, replies, protocol=pickle.HIGHEST_PROTOCOL)
        replies.flush()


if __name__ == "__main__":
    # A plot worker, started by PlotRenderer. Ctrl-C is for the training process, which then
    # ends the worker's input. Replies go to the original stdout; anything else that writes
    # to stdout (a library's print) goes to stderr instead.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _replies = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    serve(sys.stdin.buffer, _replies)
