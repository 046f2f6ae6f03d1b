"""frames.float_column: pandas' ``to_numpy(float64, na_value=nan)`` without a Series."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from frames import float_column


def test_a_float_column_is_its_own_block_read_only():
    frame = pd.DataFrame({"ts": [1, 2, 3], "a": [1.5, np.nan, -2.0], "b": [0.0, 1.0, 2.0]})
    values = float_column(frame, "a")
    np.testing.assert_array_equal(values, [1.5, np.nan, -2.0])
    assert values.dtype == np.float64
    assert not values.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        values[0] = 9.0
    assert frame["a"].iloc[0] == 1.5
    # The same memory pandas' own to_numpy hands out: no copy.
    assert np.shares_memory(values, frame["a"].to_numpy(dtype=np.float64))


@pytest.mark.parametrize(
    ("column", "expected"),
    [
        (pd.Series([1, 2, 3], dtype="int64"), [1.0, 2.0, 3.0]),
        (pd.Series([1.0, None, 3.0], dtype="Float64"), [1.0, np.nan, 3.0]),
        (pd.Series([1.0, 2.0, 3.0], dtype="float32"), [1.0, 2.0, 3.0]),
    ],
)
def test_other_columns_take_pandas_path_with_the_same_answer(column, expected):
    frame = pd.DataFrame({"x": column})
    values = float_column(frame, "x")
    assert values.dtype == np.float64
    np.testing.assert_array_equal(values, expected)
    np.testing.assert_array_equal(values, frame["x"].to_numpy(dtype=np.float64, na_value=np.nan))


def test_a_missing_column_raises_key_error_and_text_cannot_convert():
    frame = pd.DataFrame({"a": [1.0], "s": ["x"]})
    with pytest.raises(KeyError, match="nope"):
        float_column(frame, "nope")
    with pytest.raises(ValueError):
        float_column(frame, "s")


def test_a_duplicated_name_behaves_as_pandas():
    frame = pd.DataFrame([[1.0, 2.0]], columns=["a", "a"])
    # frame["a"] is a two-column frame: the public path, as before.
    np.testing.assert_array_equal(float_column(frame, "a"), [[1.0, 2.0]])
