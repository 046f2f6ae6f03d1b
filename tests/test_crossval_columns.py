"""The column selection of out_of_fold (positions looked up in a dict) gives ``frame[names]``."""

import numpy as np
import pandas as pd
import pytest

from ModelTraining.crossval import _columns


def _frame() -> pd.DataFrame:
    n = 50
    rng = np.random.default_rng(3)
    return pd.DataFrame(
        {
            "ts": pd.date_range("2024-01-01", periods=n, freq="s", tz="UTC"),
            "time_s": np.arange(n, dtype=float),
            "b": rng.normal(size=n),
            "a": rng.normal(size=n).astype(np.float32),
            "c": rng.normal(size=n),
        }
    ).iloc[10:]


def test_columns_equal_frame_selection_in_the_asked_order():
    frame = _frame()
    names = ["time_s", "c", "a", "b"]
    got = _columns(frame, names)
    expected = frame[names]
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    assert list(got.columns) == names
    assert got.columns.dtype == expected.columns.dtype
    assert got["a"].dtype == np.float32
    assert got.index.equals(expected.index)


def test_columns_missing_name_raises_as_pandas():
    with pytest.raises(KeyError):
        _columns(_frame(), ["time_s", "nope"])


def test_columns_duplicate_labels_go_through_pandas():
    frame = _frame()
    frame.columns = ["ts", "time_s", "b", "b", "c"]
    got = _columns(frame, ["time_s", "b"])
    pd.testing.assert_frame_equal(got, frame[["time_s", "b"]], check_exact=True)
    assert got.shape[1] == 3
