"""``00_Main.ipynb`` runs headless, top to bottom, into ``tmp_path`` and registers ``v1``.

The notebook reads its config path and overrides from ``MLBOX_NB_CONFIG`` / ``MLBOX_NB_SET``;
the kernel inherits this process's environment, so the test points it at a config whose demo
database, registry and plots all live under ``tmp_path`` and never touches the repo's ``out/``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pandas as pd
import pytest
import yaml

from Database import build_demo_database, demo_data
from ModelRegistry import ModelRegistry

PROJECT_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = PROJECT_ROOT / "00_Main.ipynb"
DEMO_ROWS = 5000
TRAIN_END = "2026-01-05T02:06:00Z"  # ~80 % of 5000 samples at 1.891 s: section 4 scores the rest


def _write_config(tmp_path: Path) -> Path:
    """The repo's config.yaml with every written path moved under ``tmp_path``."""
    raw = yaml.safe_load((PROJECT_ROOT / "config.yaml").read_text(encoding="utf-8"))
    raw["database"]["embedded_path"] = str(tmp_path / "demo.sqlite")
    raw["registry"]["root_dir"] = str(tmp_path / "registry")
    raw["plots"]["dir"] = str(tmp_path / "plots")
    raw["plots"]["max_points"] = 2000
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


def _outputs(nb: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [output for cell in nb.cells if cell.cell_type == "code" for output in cell.outputs]


def _text(output: nbformat.NotebookNode) -> str:
    if output.output_type == "stream":
        return output.text
    return str(output.get("data", {}).get("text/plain", ""))


@pytest.mark.slow
def test_notebook_runs_and_registers_v1_under_tmp_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_path = _write_config(tmp_path)
    build_demo_database(tmp_path / "demo.sqlite", rows=DEMO_ROWS)
    monkeypatch.delenv("DB_URL", raising=False)
    monkeypatch.setenv("MLBOX_NB_CONFIG", str(config_path))
    monkeypatch.setenv(
        "MLBOX_NB_SET",
        f"thresholds.maxc_percentile=99.5; plots.max_points=5000; data.train_end={TRAIN_END}",
    )
    # Older jupyter_core 5.x raise a DeprecationWarning about moving to platformdirs when
    # jupyter_core.paths is first imported (by nbclient, here and in the kernel) unless this
    # opts in; filterwarnings=error would turn it into a failure, hence the late import below.
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")
    from nbclient import NotebookClient

    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not cell.get("outputs") for cell in nb.cells if cell.cell_type == "code"), (
        "save 00_Main.ipynb with its outputs cleared"
    )
    NotebookClient(
        nb,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(PROJECT_ROOT)}},
    ).execute()

    registry = ModelRegistry(tmp_path / "registry")
    assert [summary.version for summary in registry.list_versions()] == ["v1"]
    latest = registry.load("latest")
    assert latest.version == "v1"
    samples = demo_data(DEMO_ROWS).samples
    assert latest.meta["data"]["rows"] == int((samples["ts"] < pd.Timestamp(TRAIN_END)).sum())
    thresholds = json.loads((tmp_path / "registry" / "v1" / "thresholds.json").read_text())
    assert sorted(thresholds) == ["*", *(f"axis{k}" for k in range(1, 9))]
    assert {record["policy"]["maxc_percentile"] for record in thresholds.values()} == {99.5}
    assert latest.meta["config"]["plots"]["max_points"] == 5000  # the second override
    assert len(list((tmp_path / "plots").glob("*.png"))) == 16

    outputs = _outputs(nb)
    text = "\n".join(_text(output) for output in outputs)
    assert "registered version v1" in text
    assert str(tmp_path / "registry" / "v1") in text
    assert "latest -> v1" in text
    # Section 4 scored the held-back 20 % and found every labelled anomaly in it.
    assert re.search(r"labels found: (\d+) of \1 \(event recall 1\.0\)", text), text
    assert "false events: 0 in" in text
    # Section 5: the digest's headline names the worst event; its plots and the heat map show.
    worst = r"WORST: (axis\d|\* machine \(axis\d \d+%.*\)) error \(\w+\) from 2026-01-05 "
    assert re.search(worst, text), text
    assert sum("image/png" in output.get("data", {}) for output in outputs) >= 6
    # Warnings in the kernel do not fail it, but a newcomer would read them as problems.
    assert "Warning:" not in text
