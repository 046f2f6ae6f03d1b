"""Tests for ModelRegistry._meta: meta.yaml's text, remembered key by key, is byte for byte the
dump of the whole document; a remembered text never lets a secret or a changed value through."""

from __future__ import annotations

import math
import random
import struct
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest
import yaml

from ModelRegistry import MetadataError
from ModelRegistry._meta import _text_of, _texts, check_meta, dump_meta

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


_SHORT_STRINGS = [
    "axis1",
    "p5",
    "y",
    "n",
    "yes",
    "No",
    "on",
    "OFF",
    "~",
    "-",
    "--",
    "0x1f",
    "0o17",
    "1_000",
    "1:20",
    ".5",
    "+1",
    "-1",
    "1e3",
    "1.0e+3",
    ".nan",
    ".inf",
    "<<",
    "=",
    "!",
    "!tag",
    "&a",
    "*a",
    "%x",
    "@x",
    "`x",
    "?",
    "?x",
    ":",
    ":x",
    "x:",
    "{",
    "[",
    "]",
    ",",
    "#x",
    "x#y",
    "é",
    "a\\b",
    "'",
    '"',
    "null",
    "Null",
    "true",
    "2026-01-01",
    "12:30:00",
    "0",
    "007",
    "x" * 61,
    "x" * 60,
    "-x",
    "--- ",
    "...",
]


def _number(rng: random.Random) -> float:
    """A double of any magnitude and sign (from random bits), or a special one."""
    special = [0.0, -0.0, 1e16, 1e17, 123456789012345678.0, 5e-324, 1e-05, float("nan")]
    if rng.random() < 0.2:
        return rng.choice(special)
    value = struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))[0]
    return value if math.isfinite(value) else rng.choice([float("inf"), float("-inf")])


def _numbers_document(rng: random.Random, depth: int) -> Any:
    """Mostly mappings of numbers, as the per-asset keys of meta.yaml, with every other
    shape now and then."""
    roll = rng.random()
    if depth <= 0 or roll < 0.35:
        pick = rng.random()
        if pick < 0.5:
            return _number(rng)
        if pick < 0.6:
            return rng.choice([None, True, False, 0, -3, 2**64])
        if pick < 0.85:
            return rng.choice(_SHORT_STRINGS)
        return _random_value(rng, 0)
    if roll < 0.55:
        return [_numbers_document(rng, depth - 1) for _ in range(rng.randrange(4))]
    keys = [*_SHORT_STRINGS, "residual median", 3, 2.5, None, True]
    return {rng.choice(keys): _numbers_document(rng, depth - 1) for _ in range(rng.randrange(6))}


@pytest.mark.parametrize("seed", range(300))
def test_the_block_text_written_here_is_pyyaml_s(seed: int) -> None:
    rng = random.Random(seed)
    document = {rng.choice([*_SHORT_STRINGS, 7, "a key"]): _numbers_document(rng, 4)}
    assert _text_of(document) == dump_meta(document)


def test_a_mapping_of_numbers_is_written_with_no_help_from_pyyaml(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The per-asset figures (a mapping of mappings of numbers) never reach PyYAML: its text is
    spelled here, as PyYAML would (checked against it with PyYAML back)."""
    document = {
        "insights": {"axis1": {"p5": 12.5, "std": 1e-05, "change_share": None, "days": 2}},
        "ranges": {"axis1": [0.0, 15.358264360394312], "axis2": []},
        "health": {"axis1": {"grade": "high", "findings": []}},
    }
    expected = dump_meta(document)
    _text_of(document)  # the strings checked with PyYAML once
    import ModelRegistry._meta as meta_module

    def refuse(_: Any) -> str:
        raise AssertionError("PyYAML asked")

    monkeypatch.setattr(meta_module, "dump_meta", refuse)
    assert _text_of(document) == expected
    assert expected == (
        "insights:\n  axis1:\n    p5: 12.5\n    std: 1.0e-05\n    change_share: null\n"
        "    days: 2\nranges:\n  axis1:\n  - 0.0\n  - 15.358264360394312\n  axis2: []\n"
        "health:\n  axis1:\n    grade: high\n    findings: []\n"
    )


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
