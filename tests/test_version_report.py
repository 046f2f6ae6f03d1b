"""``report.html`` of a version: thresholds against the previous version, a self-contained page
that the manifest covers."""

from __future__ import annotations

import base64
import io
import math
import re
from pathlib import Path

import pytest
from clitools import make_project
from PIL import Image

from Database import build_demo_database
from ModelEvaluation import metrics_frame
from ModelRegistry import ChecksumError, ModelRegistry
from Orchestration import load_config, orchestrator, run_training
from Reports import DigestSection, VersionReport, render_version_report, threshold_changes


def test_threshold_changes_against_the_previous_version() -> None:
    current = {
        "a": {"MinC": 1.5, "MaxC": 3.0, "MinC_low": -1.0, "T_long_steps": 3},
        "*": {"MinC": 2.0, "MaxC": 4.0},
    }
    previous = {"a": {"MinC": 1.0, "MaxC": 0.0, "MinC_low": -2.0}}
    assert threshold_changes(current, previous) == [
        {"channel": "a", "threshold": "alert (MinC)", "previous": 1.0, "value": 1.5, "change": 0.5},
        {
            "channel": "a",
            "threshold": "error (MaxC)",
            "previous": 0.0,
            "value": 3.0,
            "change": None,
        },
        {
            "channel": "a",
            "threshold": "alert low (MinC_low)",
            "previous": -2.0,
            "value": -1.0,
            "change": 0.5,
        },
        {
            "channel": "*",
            "threshold": "alert (MinC)",
            "previous": None,
            "value": 2.0,
            "change": None,
        },
        {
            "channel": "*",
            "threshold": "error (MaxC)",
            "previous": None,
            "value": 4.0,
            "change": None,
        },
    ]
    assert [row["previous"] for row in threshold_changes(current, None)] == [None] * 5


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (3, 2), "white").save(buffer, format="PNG")
    return buffer.getvalue()


def test_the_page_escapes_values_and_embeds_plots() -> None:
    page = render_version_report(
        VersionReport(
            title="Model report: <b>t</b>",
            run_id="r1",
            profile={
                "rows": 2,
                "start": "s",
                "end": "e",
                "dt_seconds": 1.0,
                "gaps": 0,
                "gap_factor": 5.0,
                "axes": {"a": {"count": 2, "nan": 0}},
            },
            selection={"criterion": "configured", "table": []},
            metrics=[{"axis": "a", "r2": 0.5}],
            families={"a": "linear"},
            thresholds={"a": {"MinC": 2.0, "MaxC": 3.0}},
            previous=("v1", {"a": {"MinC": 1.0, "MaxC": 3.0}}),
            alarm_budget={"expected_events_per_day": 0.25, "max_events_per_day": 1.0, "met": True},
            plots={"a_fit.png": _png()},
            timings={"extract": 0.5},
            provenance={"database": {"source": "demo"}, "code_revision": None},
            units={"a": "mm"},
            sections=[DigestSection("drift", "Drift baselines", ["axis", "mean"], [["a", 0.5]])],
        )
    )
    assert 'id="section-drift"' in page and "<td>0.5</td>" in page
    assert "<b>t</b>" not in page and "&lt;b&gt;t&lt;/b&gt;" in page
    assert "compared with v1" in page and "+100.0%" in page and "+0.0%" in page
    assert "(budget 1: met)" in page and "a [mm]" in page
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert [Image.open(io.BytesIO(base64.b64decode(i))).size for i in images] == [(3, 2)]
    assert not re.search(r"(src|href)=\"https?:", page)


@pytest.fixture(scope="module")
def demo_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = build_demo_database(tmp_path_factory.mktemp("db") / "robots.sqlite", rows=1500)
    return f"sqlite:///{path}"


def test_each_version_has_a_verified_report(
    tmp_path: Path, demo_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("DB_URL", demo_url)
    loaded = load_config(
        make_project(tmp_path),
        ["plots.max_points=200", "data.axes=[axis1, axis3]", "data.units={axis3: A}"],
    )
    first = run_training(loaded)
    grades = DigestSection("health", "Sensor health", ["axis", "grade"], [["axis1", "high"]])

    def broken(state):
        raise RuntimeError("the health stage failed")

    monkeypatch.setattr(
        orchestrator, "VERSION_REPORT_SECTIONS", [lambda state: None, broken, lambda state: grades]
    )
    second = run_training(loaded)
    registry = ModelRegistry(tmp_path / "registry")
    first_page = registry.load(first.version).read_bytes("report.html").decode()
    page = registry.load(second.version).read_bytes("report.html").decode()

    assert "the first version" in first_page
    assert f"compared with {first.version}, the latest version before it" in page
    assert f"training run {second.run_id}" in page
    assert "axis3 [A]" in page
    assert 'id="section-health"' in page and 'id="section-health"' not in first_page
    assert "report.html section 'broken' left out" in caplog.text
    plots = sorted(p.name for p in (second.artifact_dir / "plots").iterdir())
    assert re.findall(r'<img alt="([^"]+)"', page) == plots and len(plots) == 4
    for data in re.findall(r'src="data:image/png;base64,([^"]+)"', page):
        assert Image.open(io.BytesIO(base64.b64decode(data))).format == "PNG"
    manifest = (second.artifact_dir / "manifest").read_text()
    assert re.search(r"^[0-9a-f]{64}  report\.html$", manifest, re.M)

    (second.artifact_dir / "report.html").write_text(page.replace("axis3", "axis9"))
    with pytest.raises(ChecksumError, match=r"report\.html"):
        registry.load(second.version)


@pytest.mark.parametrize("count", [0, 1, 3])
def test_the_metrics_records_are_those_of_pandas(count: int) -> None:
    """The page's metrics rows, one ``tolist`` per column, hold the very values (and types)
    of ``DataFrame.to_dict(orient="records")``, NaN and a 0-sample axis included."""
    rows = [
        ("axis0", 9489, -2.4e-05, 0.48, 0.61),
        ("axis1", 0, math.nan, math.nan, math.nan),
        ("axis2", 3, 1.0, 0.0, 1e-300),
    ][:count]
    frame = metrics_frame(rows)
    records, expected = orchestrator._records(frame), frame.to_dict(orient="records")
    assert len(records) == len(expected) == count
    for got, want in zip(records, expected, strict=True):
        assert list(got) == list(want) == ["axis", "n", "r2", "mae", "rmse"]
        assert [type(v) for v in got.values()] == [type(v) for v in want.values()]
        assert repr(got) == repr(want)
