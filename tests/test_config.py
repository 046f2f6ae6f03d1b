"""Config loading: every problem reported together with its key path; overrides; BOM."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

from Orchestration import ConfigError, load_config


def _write(tmp_path: Path, text: str, *, bom: bool = False) -> Path:
    path = tmp_path / "config.yaml"
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    return path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "thresholds: {minc_percentile: 120}",
            "thresholds.minc_percentile: must be between 0 and 100, got 120",
        ),
        (
            "thresholds: {alert_quantile: 1.5}",
            "thresholds.alert_quantile: must be between 0 and 1, got 1.5",
        ),
        (
            "thresholds: {trim_top_ratio: 0.5}",
            "thresholds.trim_top_ratio: must be at least 0 and less than 0.5, got 0.5",
        ),
        (
            "thresholds: {alert_seconds_default: -1}",
            "thresholds.alert_seconds_default: must be at least 0, got -1",
        ),
        (
            "thresholds: {minc_percentile: abc}",
            "thresholds.minc_percentile: Input should be a valid number",
        ),
        ("data: {axes: []}", "data.axes: must be a non-empty list"),
        (
            "data: {axes: [axis1, 2]}",
            "data.axes: must be all strings (WIDE column names) or all integers",
        ),
        (
            "data: {train_start: 2026-01-02, train_end: 2026-01-01}",
            "data.train_end: must be after train_start",
        ),
        ("data: {tabel: x}", "data.tabel: unknown key (did you mean 'table'?)"),
        ("extra_section: {}", "extra_section: unknown key; valid keys here: data, database"),
        ("model: {type: forest}", "model.type: unknown model family 'forest'"),
        ("registry: {version_tag: ../evil}", "registry.version_tag:"),
        (
            "data: {table: 'robot; DROP TABLE x'}",
            "data.table: table name 'robot; DROP TABLE x' is not a safe SQL identifier",
        ),
        (
            "database: {url_env: 'postgresql://u:p@h/db'}",
            "database.url_env: must be the name of an environment variable (letters, digits, _), "
            "got a URL; put the URL itself in .env",
        ),
        ("prep: {interpolate: maybe}", "prep.interpolate: Input should be a valid boolean"),
    ],
)
def test_invalid_values_are_reported_with_their_key_path(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)) as caught:
        load_config(_write(tmp_path, text))
    assert any(problem.startswith(message) for problem in caught.value.problems), (
        caught.value.problems
    )


def test_all_problems_are_reported_together(tmp_path: Path) -> None:
    text = "thresholds: {minc_percentile: 120, error_quantile: -0.1}\ndata: {axes: []}\nbogus: 1"
    with pytest.raises(
        ConfigError,
        match=r"invalid configuration \(.*config\.yaml\):\n  - data\.axes: must be a non-empty list"
        r".*\n  - thresholds\.minc_percentile: must be between 0 and 100, got 120"
        r"\n  - thresholds\.error_quantile: must be between 0 and 1, got -0\.1"
        r"\n  - bogus: unknown key",
    ) as caught:
        load_config(_write(tmp_path, text))
    assert len(caught.value.problems) == 4
    assert str(caught.value).count("\n  - ") == 4


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    loaded = load_config(_write(tmp_path, "data:\n  table: robot_a\n", bom=True))
    assert loaded.config.data.table == "robot_a"


def test_overrides_parse_yaml_and_win_over_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "data: {table: robot_a}\n")
    loaded = load_config(
        path, ["data.table=robot_b", "data.axes=[1, 2, 3]", "thresholds.maxc_percentile=99.5"]
    )
    assert loaded.config.data.table == "robot_b"
    assert loaded.config.data.axes == [1, 2, 3]
    assert loaded.config.data.layout == "long"
    assert loaded.config.data.axis_columns == ["axis1", "axis2", "axis3"]
    assert loaded.config.thresholds.maxc_percentile == 99.5


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("data.table", "--set 'data.table': expected KEY.PATH=VALUE"),
        ("data.tabel=x", "data.tabel: unknown key"),
        ("data.table.name=x", "--set data.table.name: data.table is not a section"),
        ("prep.interpolate=true", ""),
    ],
)
def test_bad_overrides(tmp_path: Path, override: str, message: str) -> None:
    if not message:  # a valid override onto a key the file sets, for contrast
        loaded = load_config(_write(tmp_path, "prep: {interpolate: false}"), [override])
        assert loaded.config.prep.interpolate is True
        return
    with pytest.raises(ConfigError, match=re.escape(message)) as caught:
        load_config(_write(tmp_path, "data: {table: a}"), ["data.table=b", override])
    assert any(p.startswith(message) for p in caught.value.problems), caught.value.problems


def test_relative_paths_resolve_against_the_config_folder(tmp_path: Path) -> None:
    loaded = load_config(_write(tmp_path, "registry: {root_dir: reg}"))
    assert loaded.path(loaded.config.registry.root_dir) == (tmp_path / "reg").resolve()


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"YAML syntax error at line 2, column 8: mapping"):
        load_config(_write(tmp_path, "data: {table: x}\nprep: a: b\n"))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.yaml")


def test_shipped_config_equals_the_defaults_except_for_the_demo() -> None:
    loaded = load_config(Path(__file__).resolve().parents[1] / "config.yaml")
    defaults = type(loaded.config)().model_dump()
    assert defaults["database"]["embedded_demo"] is False  # a missing URL is an error...
    defaults["database"]["embedded_demo"] = True  # ...unless the config asks for the demo
    # The demo's own window and labels: train on its first 80 %, evaluate on its anomalies.
    assert (defaults["data"]["train_end"], defaults["labels"]["table"]) == (None, None)
    defaults["data"]["train_end"] = dt.datetime(2026, 1, 10, 14, tzinfo=dt.UTC)
    defaults["labels"]["table"] = "demo_injected_anomalies"
    # Dead sensors: marked by the shipped config, off for configs without the key (their levels
    # and look-ahead stay as they were).
    assert defaults["scoring"]["sensor_steps"] is None
    defaults["scoring"]["sensor_steps"] = 60
    assert loaded.config.model_dump() == defaults


def test_the_seed_preset_is_the_seed_mode() -> None:
    loaded = load_config(Path(__file__).resolve().parents[1] / "configs" / "seed.yaml")
    config = loaded.config
    assert (config.model.type, config.model.machine) == ("linear", "none")
    policy = config.thresholds
    assert (policy.calibration, policy.side, policy.pooling) == ("in_sample", "upper", "axis")
    assert (policy.minc_percentile, policy.maxc_percentile) == (75.0, 95.0)
    assert (policy.trim_top_ratio, policy.min_pos_for_trim) == (0.02, 20)
    assert (policy.alert_min_steps, policy.error_min_steps) == (1, 1)
    assert policy.smoothing.method == "none" and policy.max_events_per_day is None
    assert config.labels.table is None  # the seed masked nothing


def test_a_url_put_in_url_env_is_never_echoed(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError,
        match=r"database\.url_env: must be the name of an environment variable .*got a URL",
    ) as caught:
        load_config(_write(tmp_path, "database: {url_env: 'postgresql://u:Pw-Secret-9@h/db'}"))
    assert "Pw-Secret-9" not in str(caught.value)


def test_a_section_with_every_key_commented_out_means_defaults(tmp_path: Path) -> None:
    loaded = load_config(_write(tmp_path, "data:\n  # table: robot_a\nthresholds:\n"))
    assert loaded.config.data.table == "robot_samples"


def test_a_folder_as_config_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the file: Is a directory"):
        load_config(tmp_path)
