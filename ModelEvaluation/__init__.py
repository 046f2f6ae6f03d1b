"""Model evaluation: fit metrics per axis and the fit/residual plots."""

from .config import PlotConfig
from .evaluator import (
    EvaluationError,
    MetricsRow,
    axis_metrics,
    evaluate,
    metrics_csv,
    metrics_frame,
)
from .insights import (
    AxisInsight,
    axis_insight,
    compare_assets,
    correlated_pairs,
    insight_sentences,
)
from .plots import (
    PALETTE,
    THRESHOLD_KEYS,
    AxisPlotData,
    PlotSpec,
    axis_plot_data,
    plot_file_stems,
    plot_fit,
    plot_residuals,
    safe_file_stem,
    save_figure,
    threshold_label,
    write_plots,
)
from .subsample import subsample_extremes

__all__ = [
    "PALETTE",
    "THRESHOLD_KEYS",
    "AxisInsight",
    "AxisPlotData",
    "EvaluationError",
    "MetricsRow",
    "PlotConfig",
    "PlotSpec",
    "axis_insight",
    "axis_metrics",
    "axis_plot_data",
    "compare_assets",
    "correlated_pairs",
    "evaluate",
    "insight_sentences",
    "metrics_csv",
    "metrics_frame",
    "plot_file_stems",
    "plot_fit",
    "plot_residuals",
    "safe_file_stem",
    "save_figure",
    "subsample_extremes",
    "threshold_label",
    "write_plots",
]
