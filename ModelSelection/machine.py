"""Machine-level models: one anomaly score per sample from all axes together.

The machine channel (events on axis ``*``) scores how unusual a sample is as a whole, which
catches a shift that moves several axes together, each too little to alarm alone. Its score
is one of (``model.machine``):

- ``ssr`` (default): the mean of the squared standardised axis residuals (computed at scoring
  from the per-axis residuals and their thresholds' ``center``/``scale``; no model here);
- ``pca``: Hotelling's T² of the standardised axes on their first principal components
  (:class:`PCAMachine`);
- ``iforest``: the Isolation Forest anomaly score of the standardised axes (the seed's
  unsupervised model, :class:`IsolationForestMachine`), scored here in NumPy from the fitted
  trees, so the model round-trips through plain JSON.

Both models follow the family contract (``fit``/``score``/``to_dict``/``from_dict``, learned
state ending in ``_``); a sample where an axis is unusable uses that axis's training mean.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from ._base import (
    BLOCK_ROWS,
    ModelError,
    as_float_column,
    blocked_moments,
    check_fitted,
    number,
    usable,
)

__all__ = ["MACHINE_MODELS", "IsolationForestMachine", "PCAMachine", "machine_model"]


def _standardised(
    frame: pd.DataFrame, axes: Sequence[str], mean: np.ndarray, scale: np.ndarray
) -> np.ndarray:
    """Rows × axes of standardised values, an unusable reading at its training mean (0)."""
    columns = []
    for axis, m, s in zip(axes, mean, scale, strict=True):
        values = as_float_column(frame, axis)
        columns.append(np.where(usable(values), (values - m) / s, 0.0))
    return np.column_stack(columns)


def _fit_rows(frame: pd.DataFrame, axes: Sequence[str], where: np.ndarray | None) -> np.ndarray:
    rows = np.ones(len(frame), dtype=bool) if where is None else np.asarray(where, dtype=bool)
    for axis in axes:
        rows = rows & usable(as_float_column(frame, axis))
    return rows


def _axes_list(data: Mapping[str, Any], family: str) -> tuple[str, ...]:
    axes = data.get("axes")
    if not isinstance(axes, list) or not axes or not all(isinstance(a, str) for a in axes):
        raise ModelError(f"{family} machine model key 'axes' must be a list of axis names")
    return tuple(axes)


def _array(data: Mapping[str, Any], key: str, family: str, shape: tuple[int, ...]) -> np.ndarray:
    try:
        array = np.asarray(data.get(key), dtype=np.float64)
    except (TypeError, ValueError):
        array = np.asarray([np.nan])
    if array.shape != shape or not np.isfinite(array).all():
        raise ModelError(
            f"{family} machine model key {key!r} must hold finite numbers of shape {shape}; "
            "re-train to regenerate models.json"
        )
    return array


class PCAMachine:
    """Hotelling's T² of the standardised axes on their first ``components`` components.

    Parameters
    ----------
    components:
        Components kept; None (default) keeps the fewest that explain 90 % of the variance.
    """

    family: ClassVar[str] = "pca"

    def __init__(self, components: int | None = None) -> None:
        self.components = components

    def fit(
        self, frame: pd.DataFrame, axes: Sequence[str], where: np.ndarray | None = None
    ) -> PCAMachine:
        """Learn means, scales and components on rows where every axis is usable; ``self``.

        Raises
        ------
        ModelError
            With fewer than two axes, too few usable rows, or a bad component count.
        """
        axes = tuple(axes)
        if len(axes) < 2:
            raise ModelError("the pca machine channel needs at least two axes")
        rows = _fit_rows(frame, axes, where)
        if int(np.count_nonzero(rows)) < len(axes) + 2:
            raise ModelError(
                f"the pca machine channel needs at least {len(axes) + 2} rows where every axis "
                f"is usable, got {int(np.count_nonzero(rows))}"
            )
        arrays = [as_float_column(frame, a) for a in axes]

        def block(start: int, stop: int) -> np.ndarray:
            return np.column_stack([array[start:stop] for array in arrays])

        moments = blocked_moments(block, rows, len(axes))
        covariance = moments.comoment / max(moments.n - 1, 1)
        scale = np.sqrt(np.diag(covariance))
        scale[scale <= 0] = 1.0
        variance, vectors = np.linalg.eigh(covariance / np.outer(scale, scale))
        order = np.argsort(variance)[::-1]
        variance, vectors = np.clip(variance[order], 1e-12, None), vectors[:, order]
        if self.components is None:
            share = np.cumsum(variance) / variance.sum()
            components = int(min(len(axes), np.searchsorted(share, 0.9) + 1))
        elif (
            isinstance(self.components, bool)
            or not isinstance(self.components, int)
            or not (1 <= self.components <= len(axes))
        ):
            raise ModelError(
                f"pca machine channel: components must be an integer from 1 to {len(axes)}, "
                f"got {self.components!r}"
            )
        else:
            components = self.components
        self.axes_ = axes
        self.mean_ = moments.mean.copy()
        self.scale_ = scale
        self.loadings_ = vectors[:, :components]
        self.variance_ = variance[:components]
        return self

    def score(self, frame: pd.DataFrame) -> np.ndarray:
        """T² of every row (sum of squared scores over the component variances)."""
        check_fitted(self, "loadings_")
        out = np.empty(len(frame))
        weights = self.loadings_ / np.sqrt(self.variance_)
        for start in range(0, len(frame), BLOCK_ROWS):
            part = frame.iloc[start : start + BLOCK_ROWS]
            scores = _standardised(part, self.axes_, self.mean_, self.scale_) @ weights
            out[start : start + len(part)] = np.einsum("ij,ij->i", scores, scores)
        return out

    def to_dict(self) -> dict[str, Any]:
        check_fitted(self, "loadings_")
        return {
            "family": self.family,
            "components": self.loadings_.shape[1],
            "axes": list(self.axes_),
            "mean": self.mean_.tolist(),
            "scale": self.scale_.tolist(),
            "loadings": self.loadings_.tolist(),
            "variance": self.variance_.tolist(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PCAMachine:
        if not isinstance(data, Mapping) or data.get("family") != cls.family:
            raise ModelError(f"expected a {cls.family!r} machine model dict, got {data!r:.80}")
        axes = _axes_list(data, cls.family)
        components = int(number(data, "components", cls.family))
        model = cls(components)
        model.axes_ = axes
        model.mean_ = _array(data, "mean", cls.family, (len(axes),))
        model.scale_ = _array(data, "scale", cls.family, (len(axes),))
        model.loadings_ = _array(data, "loadings", cls.family, (len(axes), components))
        model.variance_ = _array(data, "variance", cls.family, (components,))
        return model


def _average_path_length(n: np.ndarray) -> np.ndarray:
    """c(n): the average path length of an unsuccessful binary-search-tree search (Liu et al.)."""
    n = np.asarray(n, dtype=np.float64)
    out = np.zeros_like(n)
    big = n > 2
    out[n == 2] = 1.0
    out[big] = 2.0 * (np.log(n[big] - 1.0) + np.euler_gamma) - 2.0 * (n[big] - 1.0) / n[big]
    return out


class IsolationForestMachine:
    """Isolation Forest score of the standardised axes (scikit-learn fits, NumPy scores).

    The score is ``2 ** (-mean path length / c(max_samples))`` as in Liu, Ting and Zhou (2008)
    and scikit-learn's ``score_samples`` (negated): near 1 for isolated samples, about 0.5 and
    below for ordinary ones.

    Parameters
    ----------
    trees:
        Number of trees (default 100).
    max_samples:
        Samples drawn per tree (default 256).
    seed:
        Random seed (default 0): the same data give the same forest.
    """

    family: ClassVar[str] = "iforest"

    def __init__(self, trees: int = 100, max_samples: int = 256, seed: int = 0) -> None:
        self.trees = trees
        self.max_samples = max_samples
        self.seed = seed

    def fit(
        self, frame: pd.DataFrame, axes: Sequence[str], where: np.ndarray | None = None
    ) -> IsolationForestMachine:
        """Fit the forest on rows where every axis is usable; ``self``.

        Raises
        ------
        ModelError
            On bad parameters or fewer than two usable rows.
        """
        from sklearn.ensemble import IsolationForest

        for name in ("trees", "max_samples"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 2:
                raise ModelError(f"iforest machine channel: {name} must be an integer >= 2")
        axes = tuple(axes)
        rows = _fit_rows(frame, axes, where)
        count = int(np.count_nonzero(rows))
        if count < 2:
            raise ModelError(
                f"the iforest machine channel needs at least 2 usable rows, got {count}"
            )
        data = np.column_stack([as_float_column(frame, a)[rows] for a in axes])
        self.axes_ = axes
        self.mean_ = data.mean(axis=0)
        scale = data.std(axis=0)
        scale[scale <= 0] = 1.0
        self.scale_ = scale
        forest = IsolationForest(
            n_estimators=self.trees,
            max_samples=min(self.max_samples, count),
            random_state=self.seed,
        ).fit((data - self.mean_) / self.scale_)
        self.samples_ = int(forest.max_samples_)
        self.trees_ = []
        for tree, features in zip(forest.estimators_, forest.estimators_features_, strict=True):
            nodes = tree.tree_
            self.trees_.append(
                {
                    "left": nodes.children_left.tolist(),
                    "right": nodes.children_right.tolist(),
                    "feature": features[np.maximum(nodes.feature, 0)].tolist(),
                    "threshold": nodes.threshold.tolist(),
                    "size": nodes.n_node_samples.tolist(),
                    "depth": int(tree.get_depth()),
                }
            )
        return self

    def score(self, frame: pd.DataFrame) -> np.ndarray:
        """Anomaly score of every row, in (0, 1]."""
        check_fitted(self, "trees_")
        data = _standardised(frame, self.axes_, self.mean_, self.scale_)
        rows = np.arange(len(frame))
        depth = np.zeros(len(frame))
        for tree in self.trees_:
            left, right = np.asarray(tree["left"]), np.asarray(tree["right"])
            feature, threshold = np.asarray(tree["feature"]), np.asarray(tree["threshold"])
            size = np.asarray(tree["size"])
            leaf = left < 0
            # A leaf points to itself, so every row takes the same number of steps.
            left, right = (
                np.where(leaf, np.arange(leaf.size), left),
                np.where(leaf, np.arange(leaf.size), right),
            )
            node = np.zeros(len(frame), dtype=np.int64)
            steps = np.zeros(len(frame))
            for _ in range(int(tree.get("depth", leaf.size))):
                inside = ~leaf[node]
                if not inside.any():
                    break
                steps += inside
                go_left = data[rows, feature[node]] <= threshold[node]
                node = np.where(go_left, left[node], right[node])
            depth += steps + _average_path_length(size[node])
        mean_depth = depth / len(self.trees_)
        return 2.0 ** (-mean_depth / _average_path_length(np.array([self.samples_]))[0])

    def to_dict(self) -> dict[str, Any]:
        check_fitted(self, "trees_")
        return {
            "family": self.family,
            "trees": self.trees,
            "max_samples": self.max_samples,
            "seed": self.seed,
            "axes": list(self.axes_),
            "mean": self.mean_.tolist(),
            "scale": self.scale_.tolist(),
            "samples": self.samples_,
            "forest": self.trees_,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> IsolationForestMachine:
        if not isinstance(data, Mapping) or data.get("family") != cls.family:
            raise ModelError(f"expected an {cls.family!r} machine model dict")
        axes = _axes_list(data, cls.family)
        model = cls(
            trees=int(number(data, "trees", cls.family)),
            max_samples=int(number(data, "max_samples", cls.family)),
            seed=int(number(data, "seed", cls.family)),
        )
        model.axes_ = axes
        model.mean_ = _array(data, "mean", cls.family, (len(axes),))
        model.scale_ = _array(data, "scale", cls.family, (len(axes),))
        model.samples_ = int(number(data, "samples", cls.family))
        forest = data.get("forest")
        keys = ("left", "right", "feature", "threshold", "size")
        if (
            not isinstance(forest, list)
            or not forest
            or not all(
                isinstance(t, Mapping) and all(isinstance(t.get(k), list) for k in keys)
                for t in forest
            )
        ):
            raise ModelError("iforest machine model key 'forest' is malformed; re-train")
        model.trees_ = [dict(tree) for tree in forest]
        return model


MACHINE_MODELS: Mapping[str, type] = {
    PCAMachine.family: PCAMachine,
    IsolationForestMachine.family: IsolationForestMachine,
}
"""Machine-level models by ``model.machine`` name (``ssr`` and ``none`` need no model)."""


def machine_model(name: str) -> type | None:
    """The model class of a machine channel, None for ``ssr``/``none``.

    Raises
    ------
    ModelError
        If ``name`` is not a machine channel; the message lists the valid names.
    """
    if name in ("ssr", "none"):
        return None
    try:
        return MACHINE_MODELS[name]
    except KeyError:
        valid = ", ".join(["none", "ssr", *sorted(MACHINE_MODELS)])
        raise ModelError(f"unknown machine channel {name!r}; valid: {valid}") from None
