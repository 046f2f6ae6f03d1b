"""Exact medians and percentiles of large arrays, without copying or partitioning all of them.

``np.median`` and ``np.percentile`` copy their input and partition all of it: on 10 M residuals
that is a fresh 80 MB array and a few hundred milliseconds per statistic, and calibration
takes several per axis. Here a seeded random sample of the values brackets each wanted rank;
one blocked pass counts the values below each bracket and gathers those inside it (a few per
cent of them), and only those are partitioned. An order statistic is one value whatever the
method, so the result is NumPy's to the last bit: medians average the two middle values as
``np.median`` does, and percentiles interpolate them as ``np.percentile``'s default
``"linear"`` method does (``tests/test_fast_training_equivalence.py`` checks both against
NumPy). A bracket that misses its rank (it takes a very unlucky sample) falls back to
partitioning all the values.

The values are given as a *domain*: a function of a row index (a slice or an array of rows)
that returns the finite values of those rows, e.g. the positive residuals, or the absolute
deviations from a median, so that no full-length array of them is ever built.

Up to :data:`SMALL` values the opposite holds: NumPy's vectorised selection of one rank (or
its sort, for several) costs a quarter of the partition at two ranks ``np.median`` and
``np.percentile`` run (and of their fixed cost per call), so :func:`median_of`,
:func:`quantiles_of` and :func:`percentiles_of` select the ranks they need and interpolate
them with NumPy's arithmetic. Zeros of both signs are the exception: they compare equal, so
which of them a rank holds depends on the algorithm; when a percentile reads a zero and the
values hold both, NumPy computes it (a median has no such case: NumPy's turns -0.0 into 0.0).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

__all__ = [
    "Domain",
    "domain_median",
    "domain_percentiles",
    "median_of",
    "percentiles_of",
    "quantiles_of",
]

Domain = Callable[[slice | np.ndarray], np.ndarray]
"""Rows → the finite values of those rows (any number of them, in any order)."""

BLOCK_ROWS = 1 << 15
"""Rows per block of the counting pass: its temporaries stay in the CPU cache."""

SMALL = 1 << 17
"""Up to this many values are gathered and handed to a partition or a sort."""

SAMPLE = 1 << 16
"""Rows sampled to place the brackets."""

MARGIN = 0.005
"""Extra share of the values on each side of a bracket, beyond the sampling error."""


def _gather(domain: Domain, rows: int) -> np.ndarray:
    return np.concatenate(
        [domain(slice(start, start + BLOCK_ROWS)) for start in range(0, rows, BLOCK_ROWS)]
    )


def _order_statistics(domain: Domain, rows: int, count: int, ranks: Sequence[int]) -> list[float]:
    """The ``ranks``-th smallest (0-based) of the ``count`` values of ``domain`` over ``rows``."""
    wanted = sorted(set(ranks))
    sample = np.sort(domain(np.random.default_rng(0).integers(0, rows, SAMPLE)))
    found: dict[int, float] = {}
    if sample.size >= 1000:
        width = MARGIN + 4.0 / math.sqrt(sample.size)
        brackets: list[list[float]] = []  # [low, high], low < high, merged where they overlap
        for rank in wanted:
            share = rank / count
            low_at = math.floor((share - width) * sample.size)
            high_at = math.ceil((share + width) * sample.size)
            low = sample[min(low_at, sample.size - 1)] if low_at >= 0 else -math.inf
            high = sample[max(high_at, 0)] if high_at < sample.size else math.inf
            if brackets and low <= brackets[-1][1]:
                brackets[-1][1] = max(brackets[-1][1], high)
            else:
                brackets.append([low, high])
        below = [0] * len(brackets)
        inside: list[list[np.ndarray]] = [[] for _ in brackets]
        for start in range(0, rows, BLOCK_ROWS):
            values = domain(slice(start, start + BLOCK_ROWS))
            for number, (low, high) in enumerate(brackets):
                below[number] += int(np.count_nonzero(values < low))
                inside[number].append(values[(values >= low) & (values <= high)])
        for number in range(len(brackets)):
            candidates = np.concatenate(inside[number])
            mine = [r for r in wanted if below[number] <= r < below[number] + candidates.size]
            if mine:
                candidates.partition([r - below[number] for r in mine])
                found.update({r: float(candidates[r - below[number]]) for r in mine})
    missing = [r for r in wanted if r not in found]
    if missing:
        everything = _gather(domain, rows)
        everything.partition(missing)
        found.update({r: float(everything[r]) for r in missing})
    return [found[r] for r in ranks]


def _mixed_zeros(values: np.ndarray) -> bool:
    """Whether ``values`` hold both 0.0 and -0.0. They compare equal, so which of them lands on
    a rank depends on the algorithm (NumPy's vectorised sort and partition may even turn one
    into the other); with zeros of one sign, every algorithm leaves that sign."""
    negative = np.signbit(values[values == 0])
    return bool(negative.any()) and not bool(negative.all())


def _ranked(values: np.ndarray, ranks: Sequence[int]) -> dict[int, float]:
    """The ``ranks``-th smallest (0-based) of ``values`` (not modified). One rank, or two
    adjacent ones (a median, a percentile): a partition of a copy at the first (NumPy's
    vectorised selection, with one rank half the cost of a sort) and the smallest value to its
    right. More: a sorted copy."""
    wanted = sorted(set(ranks))
    first = wanted[0]
    if wanted[-1] - first > 1:
        ordered = np.sort(values)
        return {rank: float(ordered[rank]) for rank in wanted}
    parted = np.partition(values, first)
    found = {first: float(parted[first])}
    if len(wanted) == 2:
        found[first + 1] = float(parted[first + 1 :].min())
    return found


def _linear(values: np.ndarray, quantiles: Sequence[float]) -> tuple[list[float], bool]:
    """``np.quantile`` (method ``"linear"``) of the finite ``values`` (at least one) at each of
    ``quantiles`` (0-1), with NumPy's arithmetic to the last bit: the virtual index
    ``(n - 1) * q`` between its floor and the next rank, the last rank (index -1) beyond
    ``n - 1``, and the two-sided interpolation of ``numpy.lib._function_base_impl._lerp``; and
    whether a rank it read holds a zero (with zeros of both signs among the values, NumPy's
    pick may not be this one).
    """
    size = values.size
    bounds = []
    for quantile in quantiles:
        virtual = (size - 1) * float(quantile)
        previous = -1 if virtual >= size - 1 else math.floor(virtual)
        bounds.append((virtual, previous))
    # NumPy's index -1 is the last rank.
    ranks = [size - 1 if p < 0 else r for _, p in bounds for r in (p, p + 1)]
    found = _ranked(values, ranks)
    out = []
    zero = False
    for virtual, previous in bounds:
        gamma = virtual - previous
        rank = size - 1 if previous < 0 else previous
        low, high = found[rank], found[rank if previous < 0 else rank + 1]
        zero = zero or low == 0.0 or high == 0.0
        difference = high - low
        if gamma >= 0.5:
            out.append(high - difference * (1 - gamma))
        else:
            out.append(low + difference * gamma)
    return out, zero


def median_of(values: np.ndarray) -> float:
    """``np.median`` of the finite 1-D ``values`` (not modified), to the last bit; NaN when
    empty. Up to :data:`SMALL` values, selected from a copy: the middle value, or the two
    middle values' sum over 2, as ``np.median`` computes their mean."""
    size = values.size
    if size == 0:
        return math.nan
    if size > SMALL:
        return float(np.median(values))
    half = size // 2
    # NumPy's mean of the middle value(s) adds them to 0.0: a zero comes out as 0.0, whatever
    # its sign.
    if size % 2:
        return _ranked(values, [half])[half] + 0.0
    found = _ranked(values, [half - 1, half])
    return (found[half - 1] + found[half] + 0.0) / 2


def quantiles_of(values: np.ndarray, quantiles: Sequence[float]) -> list[float]:
    """``np.quantile`` (method ``"linear"``) of the finite 1-D ``values`` (not modified) at each
    of ``quantiles`` (0-1), to the last bit; NaN when empty. Up to :data:`SMALL` values,
    selected from a copy."""
    if values.size == 0:
        return [math.nan] * len(quantiles)
    if values.size <= SMALL:
        found, zero = _linear(values, quantiles)
        if not (zero and _mixed_zeros(values)):
            return found
    return [float(q) for q in np.quantile(values, list(quantiles))]


def _quantiles(percentiles: Sequence[float]) -> list[float]:
    """The percentiles over 100, as NumPy turns them into quantiles."""
    return [float(p) / 100 for p in percentiles]


def percentiles_of(values: np.ndarray, percentiles: Sequence[float]) -> list[float]:
    """``np.percentile`` (method ``"linear"``) of the finite 1-D ``values`` (not modified) at
    each of ``percentiles`` (0-100), as :func:`quantiles_of` takes quantiles."""
    if values.size > SMALL:
        return [float(p) for p in np.percentile(values, list(percentiles))]
    return quantiles_of(values, _quantiles(percentiles))


def domain_median(domain: Domain, rows: int, count: int) -> float:
    """``np.median`` of the ``count`` values of ``domain`` over ``rows`` (NaN when none)."""
    if count == 0:
        return math.nan
    if count <= SMALL:
        return median_of(_gather(domain, rows))
    half = count // 2
    ranks = [half] if count % 2 else [half - 1, half]
    # The mean of the middle value(s), computed as np.median computes it.
    return float(np.mean(np.array(_order_statistics(domain, rows, count, ranks))))


def domain_percentiles(
    domain: Domain,
    rows: int,
    count: int,
    percentiles: Sequence[float],
    smallest: int | None = None,
) -> list[float]:
    """``np.percentile`` (method ``"linear"``) of the ``count`` values of ``domain`` over
    ``rows`` — or of their ``smallest`` smallest only — at each of ``percentiles`` (0-100);
    NaN when there are no values."""
    size = count if smallest is None else smallest
    if size == 0:
        return [math.nan] * len(percentiles)
    if count <= SMALL:
        values = _gather(domain, rows)
        if size == count:
            return percentiles_of(values, percentiles)
        # The `size` smallest values; NumPy picks them by partitioning (with zeros of both
        # signs at the cut, perhaps others).
        found, zero = _linear(np.partition(values, size - 1)[:size], _quantiles(percentiles))
        if not (zero and _mixed_zeros(values)):
            return found
        kept = np.partition(values, size - 1)[:size]
        return [float(p) for p in np.percentile(kept, list(percentiles), overwrite_input=True)]
    # NumPy's "linear" method: virtual index (n - 1) * q between its floor and the next rank,
    # clipped to the ends, and its two-sided interpolation (numpy.lib._function_base_impl).
    # The k-th smallest of the `size` smallest values is the k-th smallest of all of them.
    quantiles = np.true_divide(np.asarray(percentiles, dtype=np.float64), 100)
    virtual = (size - 1) * quantiles
    last = virtual >= size - 1
    previous = np.where(virtual < 0, 0.0, np.floor(virtual))
    following = previous + 1
    previous[last] = following[last] = size - 1
    gamma = virtual - np.where(last, -1.0, previous)  # NumPy marks the last rank as -1
    ranks = [int(r) for r in (*previous, *following)]
    values = _order_statistics(domain, rows, count, ranks)
    low = np.array(values[: len(percentiles)])
    high = np.array(values[len(percentiles) :])
    difference = high - low
    result = low + difference * gamma
    np.subtract(high, difference * (1 - gamma), out=result, where=gamma >= 0.5)
    return [float(r) for r in result]
