"""numpy_setup: NumPy's AVX-512 sorts turned off on AMD Zen 4 only, before NumPy loads, and
inherited by the processes the pipeline starts."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from pool_tasks import numpy_dispatch_seen

from Fleet import FleetConfig, Progress
from Fleet.executor import run_tasks
from numpy_setup import (
    AVX512_TARGETS,
    CPUINFO,
    VARIABLE,
    configure_numpy,
    is_zen4,
    numpy_dispatch,
    stock_build,
)

ROOT = Path(__file__).resolve().parents[1]


def _cpuinfo(vendor: str, family: int, model: int, flags: str) -> str:
    """Two processors of ``/proc/cpuinfo`` (only the first one is read)."""
    one = (
        f"processor\t: {{n}}\nvendor_id\t: {vendor}\ncpu family\t: {family}\n"
        f"model\t\t: {model}\nmodel name\t: a CPU\nflags\t\t: {flags}\n"
    )
    return one.format(n=0) + "\n" + one.format(n=1)


ZEN4 = _cpuinfo("AuthenticAMD", 25, 17, "fpu sse2 avx2 avx512f avx512dq avx512vl")
ZEN3 = _cpuinfo("AuthenticAMD", 25, 1, "fpu sse2 avx2 fma")
ZEN5 = _cpuinfo("AuthenticAMD", 26, 2, "fpu sse2 avx2 avx512f avx512vl")
INTEL = _cpuinfo("GenuineIntel", 6, 106, "fpu sse2 avx2 avx512f avx512dq avx512vl")
WHEEL = "Wheel-Version: 1.0\nGenerator: meson\nTag: cp311-cp311-manylinux_2_28_x86_64\n"
LOOKALIKE = _cpuinfo("AuthenticAMD", 25, 17, "fpu sse2 avx2 avx512foo")  # no avx512f itself


@pytest.mark.parametrize(
    ("cpuinfo", "expected"),
    [(ZEN4, True), (ZEN3, False), (ZEN5, False), (INTEL, False), (LOOKALIKE, False), ("", False)],
    ids=["zen4", "zen3", "zen5", "intel", "flag-prefix", "empty"],
)
def test_only_a_zen4_core_is_recognised(cpuinfo: str, expected: bool) -> None:
    assert is_zen4(cpuinfo) is expected


@pytest.mark.parametrize(
    ("cpuinfo", "version", "expected"),
    [
        (ZEN4, "2.4.0", AVX512_TARGETS),
        (ZEN4, "2.10.1", AVX512_TARGETS),  # compared as numbers, not as text
        (ZEN4, "3.0.0.dev0", AVX512_TARGETS),
        (ZEN4, "2.3.5", None),  # its targets have other names
        (ZEN4, "1.26.4", None),
        (ZEN4, "not a version", None),
        (INTEL, "2.4.6", None),
        (ZEN5, "2.4.6", None),
    ],
)
def test_the_value_depends_on_the_cpu_and_the_numpy_release(
    cpuinfo: str, version: str, expected: str | None
) -> None:
    assert numpy_dispatch(cpuinfo, version) == expected


def test_it_sets_the_variable_on_zen4_and_leaves_every_earlier_choice_alone(
    tmp_path: Path,
) -> None:
    zen4, intel = tmp_path / "zen4", tmp_path / "intel"
    zen4.write_text(ZEN4)
    intel.write_text(INTEL)
    settings = {"numpy_loaded": False, "numpy_version": "2.4.6", "numpy_wheel": WHEEL}

    environ: dict[str, str] = {"PATH": "/bin"}
    assert configure_numpy(environ, cpuinfo=zen4, **settings) == AVX512_TARGETS
    assert environ == {"PATH": "/bin", VARIABLE: AVX512_TARGETS}

    environ = {}
    assert configure_numpy(environ, cpuinfo=intel, **settings) is None
    assert environ == {}

    environ = {VARIABLE: ""}  # the user's choice, even an empty one
    assert configure_numpy(environ, cpuinfo=zen4, **settings) is None
    assert environ == {VARIABLE: ""}

    environ = {}  # NumPy loaded already: this process could not follow its workers
    loaded = {**settings, "numpy_loaded": True}
    assert configure_numpy(environ, cpuinfo=zen4, **loaded) is None
    assert environ == {}

    # A NumPy built here (its baseline may hold AVX-512: disabling that fails its import).
    built = {**settings, "numpy_wheel": WHEEL.replace("manylinux_2_28", "linux")}
    assert configure_numpy(environ, cpuinfo=zen4, **built) is None
    assert environ == {}

    assert configure_numpy(environ, cpuinfo=tmp_path / "missing", **settings) is None
    assert environ == {}


def _numpy_at_least_2_4() -> bool:
    major, minor = (int(part) for part in metadata.version("numpy").split(".")[:2])
    return (major, minor) >= (2, 4)


def _child(code: str) -> list[str]:
    """What a new Python process prints, started without the variable."""
    environ = {k: v for k, v in os.environ.items() if k != VARIABLE}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=environ, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split("\n")


@pytest.mark.skipif(not _numpy_at_least_2_4(), reason="NumPy older than 2.4 is left alone")
def test_numpy_loaded_after_it_dispatches_no_avx512(tmp_path: Path) -> None:
    """A real NumPy, imported after configure_numpy on a Zen 4 CPU, runs no AVX-512 kernel."""
    zen4 = tmp_path / "cpuinfo"
    zen4.write_text(ZEN4)
    printed = _child(
        "import os, pathlib\n"
        "from numpy_setup import configure_numpy\n"
        f"configure_numpy(cpuinfo=pathlib.Path({str(zen4)!r}))\n"
        "from numpy._core import _multiarray_umath as m\n"
        f"print(os.environ[{VARIABLE!r}])\n"
        "print(m.__cpu_features__['X86_V4'], m.__cpu_features__['AVX512_ICL'])\n"
    )
    assert printed[:2] == [AVX512_TARGETS, "False False"]


def test_the_entry_points_choose_before_numpy_loads() -> None:
    """``orchestrate.py`` and ``main.py``, imported in a new process, leave the variable as
    this machine's CPU and NumPy call for, and NumPy loaded after it."""
    installed = metadata.distribution("numpy")
    wanted = (
        numpy_dispatch(CPUINFO.read_text(), installed.version)
        if stock_build(installed.read_text("WHEEL") or "")
        else None
    )
    for entry in ("orchestrate.py", "main.py"):
        printed = _child(
            "import os, runpy, sys\n"
            f"runpy.run_path({entry!r}, run_name='imported')\n"
            "assert 'numpy' in sys.modules\n"
            f"print(os.environ.get({VARIABLE!r}))\n"
        )
        assert printed[0] == str(wanted), entry


def test_pool_workers_dispatch_as_the_process_that_starts_them() -> None:
    """The fleet's local pool workers inherit the choice (this test process made it in
    tests/conftest.py, as the entry points do)."""
    from numpy._core import _multiarray_umath

    mine = (os.environ.get(VARIABLE), _multiarray_umath.__cpu_features__.get("X86_V4"))
    with Progress(2, "tasks", stream=io.StringIO()) as progress:
        seen = run_tasks(
            numpy_dispatch_seen,
            None,
            [[1], [2]],
            config=FleetConfig(workers=2),
            progress=progress,
            on_error=lambda batch, exc: pytest.fail(f"the task failed: {exc}"),
        )
    assert seen == [mine, mine]
