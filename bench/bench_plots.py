"""Training plot benchmark: the 16 fit and residual PNGs of an 8-axis window, drawn in-process.

Builds a synthetic window (``--rows`` rows at 1 s, 8 axes: a trend, noise, a daily wave,
idle stretches and spikes; the model of every other axis follows a 10-minute cycle, so its
fitted line zigzags across the figure, as the demo's do), computes each axis's plot data as
the training's ``evaluate`` step does (``axis_plot_data``, ``--max-points`` per series), then
draws the 16 figures of the ``plot`` step (``write_plots``'s specs: units, thresholds)
``--repeat`` times each after one warm-up round, and prints:

- the time to compute the plot data, per axis (median of ``--repeat``);
- each figure's render time (spec to PNG bytes) as ``write_plots`` draws it, one after
  another (on one reused figure, where ``ModelEvaluation.figures`` has a ``Painter``), wall
  and CPU milliseconds, median of ``--repeat``; then the medians over figures, the same for a
  figure drawn alone (``render_png``: a new figure, as ``plot_fit`` + ``save_figure``), and
  one whole ``write_plots`` call (16 files) as the step runs it.

CPU time is quoted too because the machines these run on are shared: it moves less with load.

    python bench/bench_plots.py                     # 2 M rows, 5 repeats
    python bench/bench_plots.py --rows 10000000     # the 10 M x 8 bench window's size
    python bench/bench_plots.py --save out/bench_plots  # keep the PNGs to look at
    python bench/bench_plots.py --vs /path/to/other/checkout  # paired, figure by figure

Figures are printed; nothing is asserted.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ModelEvaluation import figures  # noqa: E402 - after the path set-up
from ModelEvaluation.plots import _levels, _with_unit, axis_plot_data, write_plots  # noqa: E402

AXES = [f"axis{i}" for i in range(1, 9)]


def synthetic_window(rows: int, seed: int = 7) -> pd.DataFrame:
    """A WIDE window with each axis's residual (value minus a linear model), as training has."""
    rng = np.random.default_rng(seed)
    t = np.arange(rows, dtype=np.float64)
    columns: dict[str, np.ndarray] = {
        "ts": pd.to_datetime(1_767_225_600 + t, unit="s", utc=True),
        "time_s": t,
    }
    for i, axis in enumerate(AXES):
        model = 10.0 + i + 2e-7 * (i + 1) * t
        if i % 2:  # a model following a 10-minute duty cycle: its subsampled line zigzags
            model = model + 1.5 * np.sin(t / 600 * 2 * np.pi)
        value = model + 0.5 * np.sin(t / 86_400 * 2 * np.pi) + rng.normal(0.0, 0.3 + 0.05 * i, rows)
        spikes = rng.integers(0, rows, size=max(1, rows // 200_000))
        value[spikes] += rng.normal(0.0, 4.0, spikes.size)
        idle = (t // 3600) % 24 == (i + 3)  # one idle hour a day
        value[idle] = 0.0
        value[rng.integers(0, rows, size=rows // 1000)] = np.nan
        residual = np.where(np.isnan(value) | (value == 0.0), np.nan, value - model)
        columns[axis] = value
        columns[f"{axis}_res"] = residual
    return pd.DataFrame(columns)


def _series_renderer(module: ModuleType) -> Callable[[object], bytes]:
    """How ``write_plots`` of that checkout draws a series: one reused figure where it has a
    ``Painter``, else a new figure per spec."""
    painter = getattr(module, "Painter", None)
    return painter().render_png if painter is not None else module.render_png


def _other_figures(root: Path) -> ModuleType:
    """``ModelEvaluation.figures`` of another checkout, imported as ``other_ModelEvaluation``."""
    package = root.resolve() / "ModelEvaluation"
    spec = importlib.util.spec_from_file_location(
        "other_ModelEvaluation", package / "__init__.py", submodule_search_locations=[str(package)]
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["other_ModelEvaluation"] = module
    spec.loader.exec_module(module)
    return importlib.import_module("other_ModelEvaluation.figures")


def _cpu_ms(render: Callable[[object], bytes], spec: object) -> float:
    start = time.process_time()
    render(spec)
    return (time.process_time() - start) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--max-points", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--save", type=Path, default=None, help="also write the PNGs here")
    parser.add_argument(
        "--vs",
        type=Path,
        default=None,
        help="another checkout: its figures drawn alternately with this one's, ratio printed",
    )
    args = parser.parse_args()

    frame = synthetic_window(args.rows)
    data_ms: list[float] = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        data = [axis_plot_data(frame, axis, max_points=args.max_points) for axis in AXES]
        data_ms.append((time.perf_counter() - start) * 1000 / len(AXES))
    thresholds = {
        axis: {"MinC": 0.9 + 0.1 * i, "MaxC": 1.6 + 0.1 * i} for i, axis in enumerate(AXES)
    }
    units = dict.fromkeys(AXES, "A")
    specs = []
    names = []
    for item in data:
        specs += [
            _with_unit(item.fit, units[item.axis]),
            _with_unit(_levels(item.residual, thresholds[item.axis]), units[item.axis]),
        ]
        names += [f"{item.axis}_fit", f"{item.axis}_residual"]

    in_series = _series_renderer(figures)
    other = _series_renderer(_other_figures(args.vs)) if args.vs is not None else None
    for spec in specs:  # warm-up: imports matplotlib, loads fonts
        in_series(spec)
        if other is not None:
            other(spec)
    other_cpu: dict[str, list[float]] = {name: [] for name in names}
    times: dict[str, list[float]] = {name: [] for name in names}
    cpu: dict[str, list[float]] = {name: [] for name in names}
    alone: list[float] = []
    alone_cpu: list[float] = []
    sizes: dict[str, int] = {}
    for round_number in range(args.repeat):
        for name, spec in zip(names, specs, strict=True):
            if other is not None and round_number % 2 == 0:  # alternate which goes first
                other_cpu[name].append(_cpu_ms(other, spec))
            start, start_cpu = time.perf_counter(), time.process_time()
            image = in_series(spec)
            times[name].append((time.perf_counter() - start) * 1000)
            cpu[name].append((time.process_time() - start_cpu) * 1000)
            sizes[name] = len(image)
            if other is not None and round_number % 2 == 1:
                other_cpu[name].append(_cpu_ms(other, spec))
        for spec in specs[:4]:
            start, start_cpu = time.perf_counter(), time.process_time()
            figures.render_png(spec)
            alone.append((time.perf_counter() - start) * 1000)
            alone_cpu.append((time.process_time() - start_cpu) * 1000)
    step_ms: list[float] = []
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(args.repeat):
            start = time.perf_counter()
            write_plots(data, thresholds, folder, units)
            step_ms.append((time.perf_counter() - start) * 1000)
    if args.save is not None:
        write_plots(data, thresholds, args.save, units)

    points = [spec.points_y.size for spec in specs]
    print(
        f"window: {args.rows:,} rows x {len(AXES)} axes; max_points {args.max_points:,}; "
        f"points per figure {min(points):,}-{max(points):,}; repeats {args.repeat}"
    )
    print(f"plot data (axis_plot_data): {statistics.median(data_ms):.1f} ms per axis (median)")
    print(f"{'figure':<18} {'wall ms':>8} {'CPU ms':>7} {'PNG kB':>7}")
    for name in names:
        print(
            f"{name:<18} {statistics.median(times[name]):8.1f} "
            f"{statistics.median(cpu[name]):7.1f} {sizes[name] / 1024:7.0f}"
        )
    wall = statistics.median([statistics.median(values) for values in times.values()])
    cpu_ms = statistics.median([statistics.median(values) for values in cpu.values()])
    print(f"median per figure, in a series: {wall:.1f} ms wall, {cpu_ms:.1f} ms CPU")
    print(
        f"median per figure, alone (new figure): {statistics.median(alone):.1f} ms wall, "
        f"{statistics.median(alone_cpu):.1f} ms CPU"
    )
    print(f"write_plots (16 files): {statistics.median(step_ms):.0f} ms (median)")
    if other is not None:
        print(f"vs {args.vs}, drawn alternately (CPU ms, median; ratio this / other per round):")
        ratios_all: list[float] = []
        for name in names:
            ratios = [a / b for a, b in zip(cpu[name], other_cpu[name], strict=True)]
            ratios_all.append(statistics.median(ratios))
            print(
                f"{name:<18} this {statistics.median(cpu[name]):7.1f}  "
                f"other {statistics.median(other_cpu[name]):7.1f}  "
                f"ratio {statistics.median(ratios):.2f}"
            )
        mine = statistics.median([statistics.median(values) for values in cpu.values()])
        theirs = statistics.median([statistics.median(values) for values in other_cpu.values()])
        print(
            f"median per figure: this {mine:.1f} ms, other {theirs:.1f} ms; "
            f"median ratio {statistics.median(ratios_all):.2f}"
        )


if __name__ == "__main__":
    main()
