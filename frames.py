"""A DataFrame column as a float64 NumPy array, without building a Series on the way.

``frame[name].to_numpy(dtype=np.float64, na_value=np.nan)`` costs ~10 µs in pandas 3: the
look-up builds a new Series (copy-on-write keeps no column cache), and converting it runs
pandas' generic checks. A fleet's training reads about a hundred columns per asset that way,
~1 ms of each asset's ~25 ms. :func:`float_column` hands out the column's own float64 block
read-only — the same values and the same read-only view that ``to_numpy`` gives under
copy-on-write — in ~1 µs, and takes pandas' public path for anything else (a duplicated name,
an integer, nullable or Arrow column).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["float_column"]


def float_column(frame: pd.DataFrame, name: str) -> np.ndarray:
    """``frame[name].to_numpy(dtype=np.float64, na_value=np.nan)``: the same values, read-only.

    Raises:
        KeyError: no column ``name`` (as ``frame[name]``).
        TypeError, ValueError: the column cannot be converted to float64 (as ``to_numpy``).
    """
    position = frame.columns.get_loc(name)
    if type(position) is int:
        # pandas' own accessor of one column's values (DataFrame._get_column_array): the
        # block's array, no Series. Where a pandas version lacks it, the public path below.
        get = getattr(frame, "_get_column_array", None)
        values = None if get is None else get(position)
        if type(values) is np.ndarray and values.dtype == np.float64 and values.ndim == 1:
            view = values.view()
            view.flags.writeable = False
            return view
    return frame[name].to_numpy(dtype=np.float64, na_value=np.nan)
