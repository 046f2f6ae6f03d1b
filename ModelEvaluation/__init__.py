"""Model evaluation: fit metrics per axis and the fit/residual plots."""

from .config import PlotConfig
from .evaluator import EvaluationError, MetricsRow, axis_metrics, evaluate, metrics_frame
from .plots import (
    AxisPlotData,
    PlotRenderer,
    PlotSpec,
    axis_plot_data,
    plot_file_stems,
    plot_fit,
    plot_residuals,
    render_plots,
    safe_file_stem,
    save_figure,
    subsample_extremes,
    write_plots,
)

__all__ = [
    "AxisPlotData",
    "EvaluationError",
    "MetricsRow",
    "PlotConfig",
    "PlotRenderer",
    "PlotSpec",
    "axis_metrics",
    "axis_plot_data",
    "evaluate",
    "metrics_frame",
    "plot_file_stems",
    "plot_fit",
    "plot_residuals",
    "render_plots",
    "safe_file_stem",
    "save_figure",
    "subsample_extremes",
    "write_plots",
]
