"""What the models see of a frame (trainer.model_view): the frame itself where that gives the
same models, else ``frame[["time_s", *axes]]``."""

import numpy as np
import pandas as pd
import pytest

from ModelTraining import AxisModelSet
from ModelTraining.trainer import model_view


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


def test_a_prepared_window_is_its_own_view():
    frame = _frame()
    assert model_view(frame, ["b", "a", "c"]) is frame


@pytest.mark.parametrize(
    "axes",
    [["c", "a", "b"], ["b", "c"], ["b", "a"]],
    ids=["another-order", "a-float-column-more", "two-more"],
)
def test_other_float_columns_or_another_order_take_the_sub_frame(axes):
    frame = _frame()
    got = model_view(frame, axes)
    expected = frame[["time_s", *axes]]
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    assert list(got.columns) == ["time_s", *axes]
    assert got.index.equals(expected.index)


def test_a_float_time_column_is_not_shown_to_the_models():
    frame = _frame().assign(ts=lambda f: f["time_s"] + 1.7e9)  # epoch seconds: a float
    got = model_view(frame, ["b", "a", "c"])
    assert list(got.columns) == ["time_s", "b", "a", "c"]


def test_a_missing_name_raises_as_pandas():
    with pytest.raises(KeyError):
        model_view(_frame(), ["b", "nope"])


def test_duplicate_labels_go_through_pandas():
    frame = _frame()
    frame.columns = ["ts", "time_s", "b", "b", "c"]
    got = model_view(frame, ["b"])
    pd.testing.assert_frame_equal(got, frame[["time_s", "b"]], check_exact=True)
    assert got.shape[1] == 3


def test_cross_models_are_the_same_with_or_without_the_view():
    """``cross`` takes every other float column: with the frame itself (a datetime ts
    besides) it takes the same ones, in the same order, as with the sub-frame."""
    frame = _frame()
    frame["a"] = frame["a"].astype(np.float64)
    axes = ["b", "a", "c"]
    whole = AxisModelSet(axes=axes, families={axis: ("cross", {}) for axis in axes})
    whole.fit(frame)
    sub = AxisModelSet(axes=axes, families={axis: ("cross", {}) for axis in axes})
    sub.fit(frame[["time_s", *axes]])
    assert whole.to_dict() == sub.to_dict()
    assert whole.to_dict()["models"]["b"]["others"] == ["a", "c"]
