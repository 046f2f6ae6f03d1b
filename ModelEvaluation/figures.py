"""Drawing a plot's figure with matplotlib: the only module of the pipeline that imports it.

:mod:`ModelEvaluation.plots` computes what a figure shows (a ``PlotSpec``); this module
draws it. Importing matplotlib costs 0.2-1.5 s, so :mod:`~ModelEvaluation.plots` imports this
module on the first figure drawn: commands that draw none (scoring) never pay for it.
No pyplot state is used: drawing is backend-independent and safe in any thread or process
(a :class:`Painter` belongs to one caller; it is not shared).

Speed (see the README, "Performance"; ``bench/bench_plots.py``): a :class:`Painter` draws a
series of figures on one figure and axes, replacing the plotted artists each time, so the
axes, their ticks and grid lines are built once rather than once per figure (the same pixels
as a new figure: every draw starts from the same limits and makes the same calls), and
locates and formats date ticks once per time range; a long fitted line is drawn as its
per-column envelope, in pieces (:func:`_column_envelope`, :func:`_line_pieces`); Pillow
writes the PNG at zlib level 1, and :meth:`Painter.render_pngs` has it encode each figure's
pixels on a thread of its own while the next figure is drawn (Pillow's zlib encoder releases
the GIL; the bytes are ``savefig``'s).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure
from matplotlib.ticker import FixedFormatter, FixedLocator

from .plots import PALETTE

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from .plots import PlotSpec

__all__ = ["DPI", "Painter", "draw", "render_png", "save_png"]

DPI = 100
FIGSIZE = (10.0, 4.5)
DATA_COLOUR = PALETTE["data"]
FIT_COLOUR = PALETTE["expected"]
PNG_COMPRESS_LEVEL = 1
"""zlib level Pillow writes the PNG with: level 1 takes half the time of the default 6 on
these mostly-white plots (~18 ms against ~38), at a somewhat larger file."""


class Painter:
    """Draws figures one after another on one reused :class:`~matplotlib.figure.Figure`.

    :meth:`draw` returns that figure, valid until the next call; :meth:`render_png` its PNG
    bytes. Each figure looks exactly as if drawn on a new figure: the previous figure's
    artists are removed and the data limits reset before the same calls are made. A figure
    with no points, or an x axis of the other kind (datetime or seconds) than the previous
    figure's, is drawn on a new figure (the axes keep their x unit and, without data, their
    last limits).
    """

    def __init__(self) -> None:
        self._figure: Figure | None = None
        self._x_is_time: bool | None = None
        # x limits -> date tick positions, labels and offset: the figures of a series mostly
        # share their time range, and locating and formatting date ticks is not cheap.
        self._date_ticks: dict[tuple[float, float], tuple[list[float], list[str], str]] = {}

    def _new_figure(self) -> Figure:
        fig = Figure(figsize=FIGSIZE, dpi=DPI)
        FigureCanvasAgg(fig)
        # Fixed margins instead of a layout engine: the layout pass costs ~40% of a render.
        fig.subplots_adjust(left=0.08, right=0.985, bottom=0.13, top=0.91)
        ax = fig.add_subplot()
        ax.grid(True, alpha=0.3)
        return fig

    def _blank(self, spec: PlotSpec) -> Figure:
        """The figure to draw ``spec`` on, emptied of the previous figure's artists."""
        fig = self._figure
        if fig is None or spec.points_y.size == 0 or spec.x_is_time != self._x_is_time:
            fig = self._figure = self._new_figure()
            self._x_is_time = spec.x_is_time if spec.points_y.size else None
            return fig
        ax = fig.axes[0]
        for artist in [*ax.lines, *ax.texts, *fig.texts]:
            artist.remove()
        ax.relim()  # no artists left: empty data limits, as on a new figure
        if spec.x_is_time:  # a date locator, as on a new figure (it widens a single time)
            ax.xaxis.set_major_locator(AutoDateLocator())
        return fig

    def draw(self, spec: PlotSpec) -> Figure:
        """Draw ``spec``: points, optional line, dashed levels, legend, notes."""
        fig = self._blank(spec)
        ax = fig.axes[0]
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
            envelope = _column_envelope(spec.line_x, spec.line_y)
            for number, (line_x, line_y) in enumerate(_line_pieces(*envelope)):
                label = spec.line_label if number == 0 else "_fitted model, continued"
                ax.plot(line_x, line_y, color=FIT_COLOUR, linewidth=2, label=label)
        for level, label, colour in spec.levels:
            ax.axhline(level, color=colour, linestyle="--", linewidth=1.2, label=label)
        if spec.x_is_time:
            self._set_date_ticks(ax)
        ax.set_title(spec.title, loc="left", y=1.0)  # a fixed place: no overlap search
        ax.set_xlabel(spec.x_label)
        ax.set_ylabel(spec.y_label)
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

    def _set_date_ticks(self, ax: Axes) -> None:
        """Date ticks and labels as ``AutoDateLocator`` and ``ConciseDateFormatter`` give them
        for the axes' x limits (computed once per limits), set as fixed ticks and labels."""
        locator = AutoDateLocator()
        ax.xaxis.set_major_locator(locator)  # the x limits are computed with it, as before
        limits = ax.get_xlim()
        ticks = self._date_ticks.get(limits)
        if ticks is None:
            formatter = ConciseDateFormatter(locator)
            positions = list(locator())
            labels = formatter.format_ticks(positions)
            ticks = self._date_ticks[limits] = (positions, labels, formatter.get_offset())
        positions, labels, offset = ticks
        fixed = FixedFormatter(labels)
        fixed.set_offset_string(offset)
        ax.xaxis.set_major_locator(FixedLocator(positions))
        ax.xaxis.set_major_formatter(fixed)

    def render_png(self, spec: PlotSpec) -> bytes:
        """Draw ``spec`` and return the PNG bytes."""
        buffer = io.BytesIO()
        save_png(self.draw(spec), buffer)
        return buffer.getvalue()

    def render_pngs(self, specs: Sequence[PlotSpec]) -> list[bytes]:
        """The PNG bytes of every spec, in order: each figure is drawn here, its pixels copied
        and encoded on one encoding thread while the next figure is drawn (the same bytes as
        :meth:`render_png`)."""
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="png") as encoder:
            encoded = []
            for spec in specs:
                canvas = self.draw(spec).canvas
                canvas.draw()
                # A copy: the next figure is drawn on this canvas while this one is encoded.
                encoded.append(encoder.submit(_encode_png, np.array(canvas.buffer_rgba())))
            return [future.result() for future in encoded]


LINE_COLUMNS = 2 * round(FIGSIZE[0] * DPI)
"""Columns of a long fitted line's envelope: two per pixel of the figure's width."""


def _column_envelope(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The line through ``(x, y)`` reduced to what the figure can show: the x range cut into
    :data:`LINE_COLUMNS` columns and, in each, its first, lowest, highest and last point, in
    their order (the "M4" reduction: the same columns covered, the same extremes drawn).

    A line of at most ``4 * LINE_COLUMNS`` points, not in increasing x order or not finite
    is returned unchanged.
    """
    if x.size <= 4 * LINE_COLUMNS:
        return x, y
    numbers = x.view(np.int64) if np.issubdtype(x.dtype, np.datetime64) else x
    if not (np.isfinite(y).all() and np.isfinite(numbers).all()):
        return x, y
    span = numbers[-1] - numbers[0]
    if span <= 0 or (np.diff(numbers) < 0).any():
        return x, y
    scaled = (numbers - numbers[0]) * (LINE_COLUMNS / float(span))
    columns = np.minimum(scaled.astype(np.int64), LINE_COLUMNS - 1)
    starts = np.flatnonzero(np.r_[True, columns[1:] != columns[:-1]])
    ends = np.r_[starts[1:], columns.size] - 1
    by_y = np.lexsort((y, columns))  # columns are consecutive runs; within one, lowest first
    keep = np.unique(np.concatenate((starts, ends, by_y[starts], by_y[ends])))
    return x[keep], y[keep]


LINE_CHUNK = 500
"""Points per piece of a long fitted line (consecutive pieces share their end point)."""


def _line_pieces(x: np.ndarray, y: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """The line through ``(x, y)`` cut into pieces of at most :data:`LINE_CHUNK` points, each
    piece starting at the previous one's last point (no gap between pieces).

    Agg rasterizes a line as one polygon: a fitted model that follows a fast cycle makes it
    zigzag across its whole band, and sorting the coverage of 20,000 such segments at once
    took 100-400 ms of a figure; in pieces (each covering a short stretch of x) it takes a
    fraction of that, and the pixels differ only where two pieces meet (their ends are capped
    instead of joined). The same idea as matplotlib's ``agg.path.chunksize``, which is a
    global setting and drops the segments between chunks.
    """
    if x.size <= LINE_CHUNK:
        return [(x, y)]
    step = LINE_CHUNK - 1
    return [(x[i : i + LINE_CHUNK], y[i : i + LINE_CHUNK]) for i in range(0, x.size - 1, step)]


def draw(spec: PlotSpec) -> Figure:
    """Draw ``spec`` on a new figure: points, optional line, dashed levels, legend, notes."""
    return Painter().draw(spec)


def save_png(fig: Figure, target: Path | io.BytesIO) -> None:
    """Write ``fig`` as a PNG at :data:`DPI` (no software tag: the bytes depend only on it)."""
    fig.savefig(
        target,
        format="png",
        dpi=DPI,
        metadata={"Software": None},
        pil_kwargs={"compress_level": PNG_COMPRESS_LEVEL},
    )


def _encode_png(rgba: np.ndarray) -> bytes:
    """The PNG of an RGBA pixel array as :func:`save_png` writes a figure: matplotlib's
    ``imsave`` call of Pillow (a ``dpi`` chunk, no text chunk as ``Software`` is None)."""
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    height, width = rgba.shape[:2]
    image = Image.frombuffer("RGBA", (width, height), rgba, "raw", "RGBA", 0, 1)
    buffer = io.BytesIO()
    image.save(
        buffer,
        format="png",
        dpi=(DPI, DPI),
        pnginfo=PngInfo(),
        compress_level=PNG_COMPRESS_LEVEL,
    )
    return buffer.getvalue()


def render_png(spec: PlotSpec) -> bytes:
    """Draw ``spec`` on a new figure and return the PNG bytes."""
    return Painter().render_png(spec)
