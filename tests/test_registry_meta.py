"""Tests for ModelRegistry._meta: meta.yaml's text, remembered key by key, is byte for byte the
dump of the whole document; a remembered text never lets a secret or a changed value through."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest
import yaml

from ModelRegistry import MetadataError
from ModelRegistry._meta import _texts, check_meta, dump_meta

WHEN = datetime(2024, 1, 2, 3, 4, 5, 678901, tzinfo=timezone.utc)
CONFIG = {
    "database": {"url_env": "DB_URL", "connect_timeout_s": 10, "password": None},
    "data": {"table": "fp_fleet", "train_end": "-5m", "units": {}, "assets": []},
    "registry": {"root_dir": "/tmp/r", "version_tag": "auto", "max_alarm_increase": 0.5},
}


def _whole(meta: dict[Any, Any]) -> str:
    """What meta.yaml held before texts were remembered: the dump of the whole document."""
    return dump_meta(meta) if meta else ""


def _random_value(rng: random.Random, depth: int) -> Any:
    scalars = [
        None,
        True,
        False,
        0,
        1,
        -7,
        2**70,
        0.0,
        -0.0,
        1.0,
        1e-05,
        1e300,
        float("inf"),
        float("-inf"),
        0.1 + 0.2,
        "",
        "plain",
        "yes",
        "null",
        "1.0",
        "-300s",
        "2024-01-01T00:00:00+00:00",
        "ünïcode ✓",
        "a: b # c",
        "two\nlines",
        "trailing space ",
        " leading",
        "'quoted' \"double\"",
        "- dash",
        "word " * 30,
        "x" * 200,
        "tab\there",
        "\u2028 line separator",
    ]
    if depth <= 0 or rng.random() < 0.4:
        return rng.choice(scalars)
    if rng.random() < 0.5:
        return [_random_value(rng, depth - 1) for _ in range(rng.randrange(4))]
    keys = ["a", "B", "long key with spaces", "ü", "1", "true", 3, 2.5, None, False]
    return {rng.choice(keys): _random_value(rng, depth - 1) for _ in range(rng.randrange(5))}


@pytest.mark.parametrize("seed", range(40))
def test_the_text_remembered_key_by_key_is_the_dump_of_the_whole_document(seed: int) -> None:
    rng = random.Random(seed)
    meta = {f"key{i}": _random_value(rng, 4) for i in range(rng.randrange(1, 8))}
    meta[rng.choice([7, True, None, 1.5])] = _random_value(rng, 3)
    first = check_meta(meta)[1]
    assert all(_texts[key][1] == dump_meta({key: value}) for key, value in meta.items())
    again = check_meta(meta)[1]  # now from the remembered texts
    assert first == again == _whole(meta)
    assert "&id" not in first and "*id" not in first
    assert yaml.safe_load(first) == yaml.safe_load(_whole(meta))


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (1, True),
        (True, 1),
        (1, 1.0),
        (0.0, -0.0),
        ({"a": 1, "b": 2}, {"b": 2, "a": 1}),
        ([1, [2]], [1, (2,)]),
        ("1", 1),
        (None, "null"),
        ({"x": [1, 2]}, {"x": [1, 2, 3]}),
    ],
    ids=repr,
)
def test_a_value_equal_but_written_differently_is_dumped_again(before: Any, after: Any) -> None:
    """1, True and 1.0 are equal in Python, so are dicts in another order: a remembered text is
    reused only for a value of the same types, order and content."""
    for value in (before, after, before):
        meta = {"config": CONFIG, "value": value, "rows": 3}
        assert check_meta(meta)[1] == _whole(check_meta(meta)[0])
    assert check_meta({"value": after})[1] == dump_meta({"value": after})


def test_a_secret_is_refused_even_after_the_same_key_was_remembered() -> None:
    clean = {"config": CONFIG, "tracking": {"uri": "http://host/mlflow"}}
    check_meta(clean)
    leaked = {"config": CONFIG, "tracking": {"uri": "http://user:hunter2@host/mlflow"}}
    for _ in range(2):  # a refused value is never remembered
        with pytest.raises(MetadataError, match=r"^meta\.tracking\.uri looks like a password"):
            check_meta(leaked)
    password = {**CONFIG, "database": {**CONFIG["database"], "password": "hunter2"}}
    with pytest.raises(MetadataError, match=r"^meta\.config\.database\.password looks like"):
        check_meta({"config": password})
    with pytest.raises(MetadataError, match=r"^meta\.password looks like"):
        check_meta({"config": CONFIG, "password": "x"})


def test_a_date_appearing_twice_keeps_the_anchor_of_the_whole_document() -> None:
    """The representer writes an object met twice once, with an anchor: split key by key, the
    anchor would move or vanish, so such a document is dumped whole, as before."""
    day = date(2024, 1, 2)
    meta = {"config": CONFIG, "start": WHEN, "data": {"end": WHEN, "day": day}, "day": day}
    text = check_meta(meta)[1]
    assert "&id001" in text and "*id001" in text
    assert text == _whole(meta)


@pytest.mark.parametrize(
    "meta",
    [
        {"config": CONFIG, "start": WHEN, "end": WHEN + timedelta(hours=1)},
        {"config": CONFIG, "days": [date(2024, 1, 1), date(2024, 1, 2)]},
        {"config": CONFIG, "blob": b"\x00\x01binary", "rows": 3},
        {"config": CONFIG, "tags": {"b", "a"}},
        {"config": CONFIG, (1, 2): "tuple key"},
    ],
    ids=["datetimes", "dates", "bytes", "set", "tuple key"],
)
def test_other_leaves_are_dumped_as_before(meta: dict[Any, Any]) -> None:
    for _ in range(2):
        assert check_meta(meta)[1] == _whole(check_meta(meta)[0])


def test_texts_are_remembered_for_a_bounded_number_of_keys() -> None:
    for i in range(200):
        assert check_meta({f"key{i}": i, "config": CONFIG})[1] == _whole(
            {f"key{i}": i, "config": CONFIG}
        )
    assert len(_texts) <= 65


def test_an_unstorable_value_is_named_after_remembered_keys() -> None:
    check_meta({"config": CONFIG})
    with pytest.raises(MetadataError, match=r"^meta\.data\.when has type complex"):
        check_meta({"config": CONFIG, "data": {"when": 1j}})
