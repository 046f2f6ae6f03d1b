"""Command-line and config mistakes: exit 2 (invalid-config), one line saying what and where.

Also the limits that keep a hostile or broken config cheap: YAML aliases may not expand a
document without bound ("billion laughs"), and error text stays small however many problems
or however long the values.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from clitools import make_project, run_cli

from Orchestration import ConfigError, load_config
from Orchestration.config import MAX_ALIAS_EXPANSION, MAX_PROBLEMS_SHOWN


def _alias_bomb(levels: int) -> str:
    """``levels`` lines, each a list of 10 aliases of the line above: 10**levels values."""
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for level in range(1, levels):
        lines.append(f"a{level}: &a{level} [{', '.join([f'*a{level - 1}'] * 10)}]")
    return "\n".join(lines) + "\n"


def _single_problem(run_code: int, status: dict[str, str], stderr: str) -> str:
    """The detail of a refused run, checked to be one line, logged once, without traceback."""
    assert run_code == 2, stderr
    assert status["code"] == "invalid-config"
    detail = status["detail"]
    assert "\n" not in detail
    errors = [line for line in stderr.splitlines() if " ERROR " in line]
    assert len(errors) == 1 and errors[0].endswith(f" ERROR Orchestration.cli: {detail}"), stderr
    assert "Traceback" not in stderr
    return detail


@pytest.mark.parametrize(
    ("args", "config_text", "expected"),
    [
        pytest.param(
            ["profile", "--set", "data.train_start=2026-02-30"],
            "",
            "invalid configuration ({config}): data.train_start: Input should be a valid "
            "datetime or date, day value is outside expected range, got '2026-02-30' (from --set)",
            id="invalid-date-in-set",
        ),
        pytest.param(
            ["profile"],
            "data: {train_end: 2026-13-01}\n",
            "invalid configuration ({config}): data.train_end: Input should be a valid datetime "
            "or date, month value is outside expected range of 1-12, got '2026-13-01'",
            id="invalid-date-in-config",
        ),
        pytest.param(
            ["demo-db", "--rows", "0"],
            "",
            "demo-db --rows 0: the demo database needs at least 1000 rows, got 0",
            id="demo-db-rows-0",
        ),
        pytest.param(
            ["demo-db", "--rows", "1"],
            "",
            "demo-db --rows 1: the demo database needs at least 1000 rows, got 1",
            id="demo-db-rows-1",
        ),
        pytest.param(
            ["profile", "--log-file", "{folder}"],
            "",
            "--log-file {folder} is a folder; give the path of a file in a folder you can write "
            "to, e.g. --log-file out/logs/run.log",
            id="log-file-is-a-folder",
        ),
        pytest.param(
            ["profile", "--log-file", "{config}/logs/run.log"],
            "",
            "--log-file {config}/logs/run.log cannot be created: {config} is a file, not a "
            "folder; give the path of a file in a folder you can write to, e.g. --log-file "
            "out/logs/run.log",
            id="log-file-under-a-file",
        ),
        pytest.param(
            ["profile", "--log-file", "{folder}/loop.log"],
            "",
            "--log-file {folder}/loop.log cannot be opened for appending (Too many levels of "
            "symbolic links); give the path of a file in a folder you can write to, e.g. "
            "--log-file out/logs/run.log",
            id="log-file-unopenable",  # a symlink to itself: refused even for root
        ),
        pytest.param(
            ["score", "--start", "2026-01-06T00:00:00Z", "--end", "2026-01-05T23:00:00+01:00"],
            "",
            "--end 2026-01-05T22:00:00+00:00 must be after --start 2026-01-06T00:00:00+00:00 "
            "(the window is [start, end))",
            id="end-before-start",
        ),
    ],
)
def test_a_command_line_mistake_is_exit_2_with_one_line(
    tmp_path: Path, args: list[str], config_text: str, expected: str
) -> None:
    config = make_project(tmp_path / "project", config_text)
    (tmp_path / "loop.log").symlink_to(tmp_path / "loop.log")
    names = {"config": str(config), "folder": str(tmp_path)}
    run = run_cli("orchestrate.py", "--json", *(a.format(**names) for a in args), config=config)
    detail = _single_problem(run.code, run.json()["status"], run.stderr)
    assert detail == expected.format(**names)
    assert sorted(p.name for p in config.parent.iterdir()) == ["config.yaml"]  # nothing written


def test_a_yaml_alias_bomb_is_refused_at_once_naming_the_file(tmp_path: Path) -> None:
    config = tmp_path / "bomb.yaml"
    # 10**6 values from 6 short lines. (The 9 levels, 10**9 values, took minutes and
    # 16 GB before the fix; 6 keep this test cheap should the check ever break.)
    config.write_text(_alias_bomb(6), encoding="utf-8")
    run = run_cli("main.py", "--json", config=config)
    detail = _single_problem(run.code, run.json()["status"], run.stderr)
    assert detail == (
        f"invalid configuration ({config}): YAML aliases (*name) would expand the document by "
        "1,234,550 values (at most 10,000 allowed); write the repeated parts out or use "
        "fewer aliases"
    )
    assert len(run.stderr) < 1000


@pytest.mark.parametrize(
    ("text", "overrides", "expected"),
    [
        (
            "",
            ["data.axes=&self [axis1, *self]"],
            "--set data.axes: the YAML alias at line 1 contains itself; write the value out "
            "instead",
        ),
        ("data: {axes: &me [axis1, *me]}\n", [], "the YAML alias at line 1 contains itself"),
        ("data:" + " [" * 2000 + "\n", [], "the YAML is nested too deeply"),
    ],
    ids=["recursive-alias-in-set", "recursive-alias-in-file", "nested-too-deeply"],
)
def test_yaml_that_would_expand_without_bound_is_refused(
    tmp_path: Path, text: str, overrides: list[str], expected: str
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match="invalid configuration") as caught:
        load_config(config, overrides)
    assert expected in str(caught.value)
    assert len(str(caught.value)) < 400


def test_aliases_within_the_limit_still_work(tmp_path: Path) -> None:
    names = ", ".join(f"axis{k}" for k in range(1, 9))
    config = tmp_path / "config.yaml"
    config.write_text(
        f"data: {{axes: &axes [{names}], table: &t plant_a}}\nevents: {{table: *t}}\n"
        f"x-unused: &big [{', '.join(['*axes'] * (MAX_ALIAS_EXPANSION // 10))}]\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match=r"x-unused: unknown key; valid keys here: data, ") as c:
        load_config(config)  # 8,000 values from aliases: parsed, then reported as one problem
    assert len(c.value.problems) == 1 and len(str(c.value)) < 400
    config.write_text(
        f"data: {{axes: &axes [{names}], table: &t plant_a}}\nevents: {{table: *t}}\n",
        encoding="utf-8",
    )
    loaded = load_config(config)
    assert loaded.config.events.table == loaded.config.data.table == "plant_a"


def test_many_problems_show_the_first_few_and_count_the_rest(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    keys = 20_000
    config.write_text(
        "data: {" + ", ".join(f"k{i}: 1" for i in range(keys)) + "}\n", encoding="utf-8"
    )  # ~250 KB; before the cap every key printed a line with all valid keys (~2.6 MB)
    with pytest.raises(ConfigError, match=r"data\.k0: unknown key") as caught:
        load_config(config, ["thresholds.bogus=1"])
    message = str(caught.value)
    lines = message.splitlines()
    assert lines[0] == f"invalid configuration ({config}):"
    assert lines[1] == (
        "  - data.k0: unknown key; valid keys here: asset_col, assets, axes, axis_id_col, "
        "duplicates, table, time_col, train_end, train_start, units, value_col"
    )
    assert lines[-1] == (
        f"  - ... and {keys + 1 - MAX_PROBLEMS_SHOWN} more problems (fix those above and run again)"
    )
    assert len(lines) == 1 + MAX_PROBLEMS_SHOWN + 1
    assert len(message) < 2000


@pytest.mark.parametrize(
    ("override", "start", "end"),
    [
        (
            "data.time_col=" + "x;" * 100_000,
            "invalid configuration (built-in defaults): data.time_col: column name 'x;x;x;",
            "x;' is longer than 63 characters (from --set)",
        ),
        (
            "thresholds.minc_percentile=[" + ", ".join(map(str, range(20_000))) + "]",
            "invalid configuration (built-in defaults): thresholds.minc_percentile: Input "
            "should be a valid number, got [0, 1, 2, 3, 4, 5, ...] (from --set)",
            "(from --set)",
        ),
        (
            "k" * 200_000 + "=1",
            "invalid configuration (built-in defaults): kkkk",
            "kkkkkkkkkk: unknown key; valid keys here: data, database, drift, events, fleet, "
            "health, labels, model, plots, predictor, prep, registry, report, schedule, scoring, "
            "thresholds, tracking (from --set)",
        ),
    ],
    ids=["long-text", "long-list", "long-key"],
)
def test_a_huge_value_is_echoed_shortened(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, override: str, start: str, end: str
) -> None:
    monkeypatch.chdir(tmp_path)  # no config.yaml here: the built-in defaults
    with pytest.raises(ConfigError, match="invalid configuration") as caught:
        load_config(None, [override])
    message = str(caught.value)
    assert message.startswith(start)
    assert message.endswith(end)
    assert len(message) < 700
