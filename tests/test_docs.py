"""The reference pages stay true: the configuration page is the code's own field descriptions."""

from __future__ import annotations

from Orchestration.reference import BEGIN, END, PAGE, config_reference


def test_the_configuration_page_lists_every_key_as_the_code_describes_it():
    text = PAGE.read_text(encoding="utf-8")
    table = text.split(BEGIN, 1)[1].split(END, 1)[0].strip()
    assert table == config_reference(), (
        "docs/configuration.md is out of date: run `python -m Orchestration.reference --write`"
    )
    assert "`thresholds.minc_percentile` | `99.0` |" in table
    assert "`model.type` | `auto` |" in table
