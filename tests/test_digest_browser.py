"""The digest of the demo fleet as a person sees it: rendered by headless Chromium.

The demo fleet (``demo-db``: six robots, ``robot_04`` with axis3 +8 σ for 30 minutes in its
scored part) is trained, scored and digested through the real commands; then Debian's
``chromium`` loads the page from the file, offline. The page must load without errors, every
image must decode (in Python, and in the browser: ``naturalWidth``), and its first screen must
name the faulty robot, axis3, the start of the fault and its ratio.

Skipped when ``chromium`` is not installed, unless ``CI=true`` (then it fails: ``.ci/run``
installs it).
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from clitools import make_project, run_cli
from PIL import Image

from Database import FLEET_FAULTY_ROBOT, FLEET_LABELS_TABLE

FIRST_SCREEN = (1200, 900)

PROBE = """<script>
window.__errors = [];
window.addEventListener("error", e => {
  window.__errors.push(String(e.message || (e.target && e.target.src)));
}, true);
window.addEventListener("load", () => {
  const images = Array.from(document.images).map(
    i => [i.complete, i.naturalWidth, i.naturalHeight]);
  const found = document.getElementById("headline");
  const headline = found ? found.getBoundingClientRect() : {bottom: null};
  const out = document.createElement("pre");
  out.id = "probe";
  out.textContent = JSON.stringify(
    {images: images, errors: window.__errors, headline_bottom: headline.bottom});
  document.body.appendChild(out);
});
</script>"""


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is not installed (apt-get install -y chromium; .ci/run does it)")
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    return found


def _headless(browser: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",  # root in containers
            "--disable-gpu",
            f"--window-size={FIRST_SCREEN[0]},{FIRST_SCREEN[1]}",
            "--virtual-time-budget=10000",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def demo_digest(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, Path]:
    """The demo fleet trained and scored; its digest page, ``--json`` payload and database."""
    folder = tmp_path_factory.mktemp("digest")
    config = make_project(
        folder,
        "data: {table: robot_fleet, asset_col: robot_id, train_end: '2026-01-10T14:00:00Z', "
        "units: {axis3: A, axis4: A, axis6: A}}\n",
    )
    steps = [
        ("demo-db", "--rows", "80000"),
        ("train",),
        ("score",),
    ]
    for step in steps:
        done = run_cli("orchestrate.py", *step, config=config)
        assert done.code in {0, 10}, done.stderr  # 10: the demo's source is stale by now
    page = folder / "out" / "digest.html"
    done = run_cli("orchestrate.py", "report", "--json", "--output", str(page), config=config)
    assert done.code == 0, done.stderr
    return page, done.json(), folder / "demo.sqlite"


def _probe(browser: str, page: Path, folder: Path) -> tuple[dict, str]:
    """Load ``page`` (a copy with the probe script) headless; the probe's record and the DOM."""
    probed = folder / f"probe-{page.name}"
    probed.write_text(
        page.read_text(encoding="utf-8").replace("<head>", "<head>\n" + PROBE, 1),
        encoding="utf-8",
    )
    done = _headless(browser, "--dump-dom", probed.as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    found = re.search(r'<pre id="probe">(.*?)</pre>', done.stdout, re.S)
    assert found, f"the page did not finish loading: {done.stdout[-500:]}"
    return json.loads(found.group(1)), done.stdout


def _label_start(database: Path) -> pd.Timestamp:
    with sqlite3.connect(database) as conn:
        (start,) = conn.execute(
            f"SELECT start_ts FROM {FLEET_LABELS_TABLE} WHERE robot_id = ?", (FLEET_FAULTY_ROBOT,)
        ).fetchone()
    return pd.Timestamp(start, tz="UTC")


def test_the_digest_names_the_faulty_robot_first(demo_digest) -> None:
    _, payload, database = demo_digest
    top = payload["top_events"][0]
    assert top["asset"] == FLEET_FAULTY_ROBOT
    axes = [top["axis"], *(c["axis"] for c in top["contributors"][:1])]
    assert "axis3" in axes
    assert top["severity"] == "error" and top["ratio"] > 1.0
    assert abs(pd.Timestamp(top["start"]) - _label_start(database)) <= pd.Timedelta(minutes=1)
    assert {e["asset"] for e in payload["top_events"]} == {FLEET_FAULTY_ROBOT}
    assert [r["asset"] for r in payload["attention"]] == ["robot_05"]


def test_every_image_of_the_page_decodes(demo_digest) -> None:
    page, _, _ = demo_digest
    html = page.read_text(encoding="utf-8")
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert len(images) >= 2  # the top events drawn, and the fleet overview
    for data in images:
        image = Image.open(io.BytesIO(base64.b64decode(data)))
        image.load()
        assert image.format == "PNG" and min(image.size) > 100
    assert not re.search(r"(src|href)=\"(https?:)?//", html)


def test_chromium_renders_the_page_offline_with_the_fault_on_the_first_screen(
    demo_digest, tmp_path: Path
) -> None:
    browser = _chromium()
    page, payload, _ = demo_digest
    probe, dom = _probe(browser, page, tmp_path)
    assert probe["errors"] == []
    assert len(probe["images"]) == len(re.findall(r"<img ", page.read_text(encoding="utf-8")))
    for complete, width, height in probe["images"]:
        assert complete and width > 100 and height > 100
    assert probe["headline_bottom"] < FIRST_SCREEN[1]

    headline = re.search(r'<p class="headline[^"]*" id="headline">(.*?)</p>', dom, re.S)
    text = re.sub(r"<[^>]+>", "", headline.group(1))
    top = payload["top_events"][0]
    assert FLEET_FAULTY_ROBOT in text and "axis3" in text
    assert pd.Timestamp(top["start"]).strftime("%Y-%m-%d %H:%M:%S") in text
    assert f"ratio {top['ratio']:.2f}" in text

    shot = tmp_path / "digest.png"
    done = _headless(browser, f"--screenshot={shot}", page.as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    with Image.open(shot) as image:
        assert image.size == FIRST_SCREEN


def test_a_version_report_opens_offline(demo_digest, tmp_path: Path) -> None:
    browser = _chromium()
    page, _, _ = demo_digest
    report = page.parent.parent / "registry" / FLEET_FAULTY_ROBOT / "v1" / "report.html"
    probe, dom = _probe(browser, report, tmp_path)
    assert probe["errors"] == []
    assert all(complete and width > 100 for complete, width, _ in probe["images"])
    assert f"Model report: robot_fleet · asset {FLEET_FAULTY_ROBOT}" in dom
    assert "alert (MinC)" in dom and "error (MaxC)" in dom
