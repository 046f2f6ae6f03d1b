"""ModelRegistry.jsontext.json_text: json.dumps(indent=2)'s text, written faster."""

from __future__ import annotations

import enum
import json
import math
import random
import struct
from collections import OrderedDict
from typing import Any

import numpy as np
import pytest

from ModelRegistry.jsontext import json_text


class Level(enum.IntEnum):
    LOW = 1


class Name(str):
    pass


def _double(rng: random.Random) -> float:
    if rng.random() < 0.3:
        return rng.choice([0.0, -0.0, math.nan, math.inf, -math.inf, 1e16, 5e-324, 0.1, 1e-05])
    value = struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))[0]
    return value if math.isfinite(value) else math.nan


def _value(rng: random.Random, depth: int) -> Any:
    roll = rng.random()
    if depth <= 0 or roll < 0.45:
        return rng.choice(
            [
                _double(rng),
                rng.randrange(-(2**70), 2**70),
                None,
                True,
                False,
                "",
                "plain",
                'quote " and \\ back',
                "ünïcode ✓ \u2028",
                "tab\tnew\nline",
                Name("sub"),
                Level.LOW,
                np.float64(2.5),
            ]
        )
    if roll < 0.65:
        items = [_value(rng, depth - 1) for _ in range(rng.randrange(4))]
        return tuple(items) if rng.random() < 0.2 else items
    keys = ["a", "MinC", "ü", "", 3, -1, 2.5, math.nan, math.inf, True, False, None, Name("k")]
    made = {rng.choice(keys): _value(rng, depth - 1) for _ in range(rng.randrange(5))}
    return OrderedDict(made) if rng.random() < 0.1 else made


@pytest.mark.parametrize("seed", range(200))
def test_the_text_is_json_dumps_indent_2(seed: int) -> None:
    value = _value(random.Random(seed), 5)
    assert json_text(value) == json.dumps(value, indent=2)


def test_a_thresholds_like_document_and_its_spelling() -> None:
    document = {"axis1": {"MinC": 1.5, "T": 3, "n": None, "ok": True, "xs": [0.5, 2], "e": {}}}
    assert json_text(document) == (
        '{\n  "axis1": {\n    "MinC": 1.5,\n    "T": 3,\n    "n": null,\n    "ok": true,\n'
        '    "xs": [\n      0.5,\n      2\n    ],\n    "e": {}\n  }\n}'
    )
    assert json_text([math.nan, -math.inf, []]) == "[\n  NaN,\n  -Infinity,\n  []\n]"


def test_what_json_refuses_is_refused_the_same_way() -> None:
    with pytest.raises(TypeError, match="not JSON serializable"):
        json_text({"a": {1, 2}})
    with pytest.raises(TypeError, match="keys must be"):
        json_text({(1, 2): 3})
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(ValueError, match="Circular reference"):
        json_text(loop)
