"""The one table that maps a ``model.type`` name to a model family."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from .families import AxisModel, LinearTrend

__all__ = ["MODEL_FAMILIES", "UnknownModelError", "select_model"]


class UnknownModelError(ValueError):
    """``model.type`` (or a saved ``family``) names no registered model family."""


MODEL_FAMILIES: Mapping[str, type[AxisModel]] = MappingProxyType(
    {
        LinearTrend.family: LinearTrend,
    }
)
"""Read-only name → family class table. Add a family by adding one entry here."""


def select_model(name: str) -> type[AxisModel]:
    """Return the model family registered under ``name``.

    Parameters
    ----------
    name:
        Family name, exactly as listed in :data:`MODEL_FAMILIES` (case-sensitive).

    Returns
    -------
    type[AxisModel]
        The family class; calling it gives an unfitted model.

    Raises
    ------
    UnknownModelError
        If ``name`` is not registered; the message lists the valid names.
    """
    try:
        return MODEL_FAMILIES[name]
    except (KeyError, TypeError):
        valid = ", ".join(sorted(MODEL_FAMILIES))
        raise UnknownModelError(f"unknown model family {name!r}; valid families: {valid}") from None
