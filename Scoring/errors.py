"""Errors raised by the scoring core.

``ScoringInputError`` is the only error of the pure scoring functions: the frame, the residuals,
the thresholds or a parameter is not what the function needs. It subclasses ``ValueError`` so
callers that already catch bad values keep working; the message says what is wrong, where (the
column, the threshold key path, the parameter) and how to fix it.
"""

from __future__ import annotations

__all__ = ["ScoringInputError"]


class ScoringInputError(ValueError):
    """The data or parameters given to a scoring function are unusable."""
