"""Errors of the labels stage."""

from __future__ import annotations

__all__ = ["LabelsError"]


class LabelsError(ValueError):
    """The labels table is missing, malformed, or cannot be matched with the scored data."""
