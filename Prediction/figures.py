"""Plots of a predictor: confusion matrix, ROC curve, feature importance (PNG bytes).

Like ``ModelEvaluation.figures``, no pyplot state: figures are drawn on ``Figure`` objects, safe
in any thread; importing matplotlib is slow, so the caller imports this module only to draw."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

__all__ = ["predictor_plots"]


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=90)
    return buffer.getvalue()


def _axes(width: float, height: float) -> tuple[Figure, object]:
    fig = Figure(figsize=(width, height))
    return fig, fig.subplots()


def predictor_plots(
    confusion: list[list[int]],
    label: np.ndarray,
    probability: np.ndarray,
    importances: pd.Series,
    top: int = 20,
) -> dict[str, bytes]:
    """``confusion.png``, ``roc.png`` (when both classes were tested) and ``importance.png``."""
    from sklearn.metrics import roc_curve

    plots: dict[str, bytes] = {}
    fig, ax = _axes(3.6, 3.2)
    ax.imshow(np.asarray(confusion), cmap="Blues")
    for (row, col), value in np.ndenumerate(np.asarray(confusion)):
        ax.text(col, row, str(value), ha="center", va="center")
    ax.set_xticks([0, 1], ["no warning", "warning"])
    ax.set_yticks([0, 1], ["no incident", "incident ahead"])
    ax.set_title("out-of-fold confusion matrix")
    plots["confusion.png"] = _png(fig)
    tested = np.isfinite(probability) & np.isfinite(label)
    if np.unique(label[tested]).size == 2:
        fpr, tpr, _ = roc_curve(label[tested], probability[tested])
        fig, ax = _axes(3.6, 3.2)
        ax.plot(fpr, tpr)
        ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=0.8)
        ax.set_xlabel("false positive rate")
        ax.set_ylabel("true positive rate")
        ax.set_title("out-of-fold ROC")
        plots["roc.png"] = _png(fig)
    shown = importances.head(top)[::-1]
    fig, ax = _axes(6, 0.25 * len(shown) + 1)
    ax.barh(shown.index, shown.to_numpy())
    ax.set_title("feature importance")
    plots["importance.png"] = _png(fig)
    return plots
