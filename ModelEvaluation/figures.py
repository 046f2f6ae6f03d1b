"""Drawing a plot's figure with matplotlib: the only module of the pipeline that imports it.

:mod:`ModelEvaluation.plots` computes what a figure shows (a ``PlotSpec``); this module
draws it. Importing matplotlib costs 0.2-1.5 s, so :mod:`~ModelEvaluation.plots` imports this
module on the first figure drawn: commands that draw none (scoring) never pay for it.
No pyplot state is used: drawing is backend-independent and safe in any thread or process
(a :class:`Painter` belongs to one caller; it is not shared).

Speed (see the README, "Performance"): a :class:`Painter` draws a series of figures on one
figure and axes, replacing the plotted artists each time, so the axes, their ticks and grid
lines are built once rather than once per figure (the same pixels as a new figure: every draw
starts from the same limits and makes the same calls); the PNG is written unfiltered with
zlib level 1 (Pillow's adaptive row filters took most of the encoding time and made these
mostly-white images larger, not smaller).
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure

from .plots import PALETTE

if TYPE_CHECKING:
    from .plots import PlotSpec

__all__ = ["DPI", "Painter", "draw", "render_png", "save_png"]

DPI = 100
FIGSIZE = (10.0, 4.5)
DATA_COLOUR = PALETTE["data"]
FIT_COLOUR = PALETTE["expected"]
PNG_COMPRESS_LEVEL = 1
"""zlib level of the PNG data: unfiltered rows at level 1 are the fastest to write and, for
these plots, smaller than Pillow's filtered level 3 (~120 kB against ~150 kB)."""
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


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

    def render_png(self, spec: PlotSpec) -> bytes:
        """Draw ``spec`` and return the PNG bytes."""
        buffer = io.BytesIO()
        save_png(self.draw(spec), buffer)
        return buffer.getvalue()


def draw(spec: PlotSpec) -> Figure:
    """Draw ``spec`` on a new figure: points, optional line, dashed levels, legend, notes."""
    return Painter().draw(spec)


def _png(pixels: np.ndarray) -> bytes:
    """PNG bytes of an RGBA image: RGB when it is opaque, unfiltered rows, :data:`DPI` set."""
    height, width = pixels.shape[:2]
    opaque = bool((pixels[..., 3] == 255).all())
    channels = pixels[..., :3] if opaque else pixels
    rows = np.empty((height, 1 + width * channels.shape[2]), dtype=np.uint8)
    rows[:, 0] = 0  # filter type "none"
    rows[:, 1:] = channels.reshape(height, -1)
    per_metre = round(DPI / 0.0254)

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2 if opaque else 6, 0, 0, 0)
    return b"".join(
        (
            _PNG_SIGNATURE,
            chunk(b"IHDR", header),
            chunk(b"pHYs", struct.pack(">IIB", per_metre, per_metre, 1)),
            chunk(b"IDAT", zlib.compress(rows.data, PNG_COMPRESS_LEVEL)),
            chunk(b"IEND", b""),
        )
    )


def save_png(fig: Figure, target: Path | io.BytesIO) -> None:
    """Write ``fig`` as a PNG at :data:`DPI` (no metadata: the bytes depend only on the pixels)."""
    original_canvas, original_dpi = fig.canvas, fig.dpi
    agg = isinstance(original_canvas, FigureCanvasAgg)
    canvas = original_canvas if agg else FigureCanvasAgg(fig)  # as savefig: for this save only
    try:
        if original_dpi != DPI:
            fig.set_dpi(DPI)
        canvas.draw()
        image = _png(np.asarray(canvas.buffer_rgba()))
    finally:
        if fig.dpi != original_dpi:
            fig.set_dpi(original_dpi)
        if canvas is not original_canvas:
            fig.set_canvas(original_canvas)
    if isinstance(target, io.BytesIO):
        target.write(image)
    else:
        Path(target).write_bytes(image)


def render_png(spec: PlotSpec) -> bytes:
    """Draw ``spec`` on a new figure and return the PNG bytes."""
    return Painter().render_png(spec)
