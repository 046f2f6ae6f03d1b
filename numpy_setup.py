"""NumPy's CPU dispatch on AMD Zen 4, chosen by the entry points before NumPy loads.

NumPy sorts and selects (``np.sort``, ``np.partition``, hence ``np.median`` and
``np.percentile``) with x86-simd-sort. Its AVX-512 kernels write every partitioned vector with
a compress-store, an instruction that AMD's Zen 4 cores run as microcode (about 140 cycles of
latency), so there they take 4-6x as long as NumPy's AVX2 kernels: on 8,000 doubles,
``np.partition`` 82 µs against 13 µs and ``np.sort`` 197 µs against 52 µs (an AMD EPYC VM, NumPy
2.4). On Intel CPUs, and on Zen 5, AVX-512 is the fast path. Training takes dozens of medians
and percentiles per axis (fold fits, thresholds, drift baselines, the profile), and on a Zen 4
machine these kernels were a sixth of a fleet's training CPU. The issue is known upstream
(numpy/x86-simd-sort#6, numpy/numpy#32690); NumPy's own switch for it is the environment
variable ``NPY_DISABLE_CPU_FEATURES``, read once, when NumPy loads.

:func:`configure_numpy` sets that variable to NumPy's AVX-512 targets on a Zen 4 CPU. It must
run before anything imports NumPy: ``main.py``, ``orchestrate.py``, the notebook and the test
suite call it first, and the processes they start (the fleet's pool workers, a Dask
``LocalCluster``'s workers) inherit the variable. It changes nothing when the variable is set
already (even to an empty value: your choice wins), when NumPy is loaded already (the process
and its workers would then differ), for a NumPy older than 2.4 (whose targets have other
names) or not from a ``manylinux`` wheel (:func:`stock_build`), or off Linux. It runs before
``.env`` is loaded, so a value set there does not count: set it in the environment. Workers
of a Dask cluster started elsewhere (``dask worker``) take the variable from their own
environment.

Sorting gives the same values either way: an order statistic is one value whatever the
algorithm. The AVX2 kernels of ``np.sin``, ``np.cos`` and ``np.log`` may differ from the
AVX-512 ones in the last bit.

This module imports only the standard library.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import MutableMapping
from importlib import metadata
from pathlib import Path

__all__ = [
    "AVX512_TARGETS",
    "VARIABLE",
    "configure_numpy",
    "is_zen4",
    "numpy_dispatch",
    "stock_build",
]

VARIABLE = "NPY_DISABLE_CPU_FEATURES"
AVX512_TARGETS = "X86_V4 AVX512_ICL AVX512_SPR"
"""NumPy's AVX-512 dispatch targets, as NumPy 2.4 and later name them."""

_FIRST_NAMED = (2, 4)
_ZEN_3_AND_4 = "25"
"""``cpu family`` 0x19: Zen 3 (no AVX-512) and Zen 4. Zen 5 is 0x1A, with a fast
compress-store."""
CPUINFO = Path("/proc/cpuinfo")


def is_zen4(cpuinfo: str) -> bool:
    """Whether the first processor of ``/proc/cpuinfo``'s text is an AMD Zen 4 core."""
    fields: dict[str, str] = {}
    for line in cpuinfo.split("\n\n", 1)[0].splitlines():
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()
    return (
        fields.get("vendor_id") == "AuthenticAMD"
        and fields.get("cpu family") == _ZEN_3_AND_4
        and "avx512f" in fields.get("flags", "").split()
    )


def stock_build(wheel: str) -> bool:
    """Whether NumPy's ``WHEEL`` metadata names a ``manylinux``/``musllinux`` wheel: NumPy's
    own builds, whose baseline is far below AVX-512. A build of one's own (e.g. with
    ``-Dcpu-baseline=native``) may have AVX-512 in its baseline, and NumPy refuses to load
    when a baseline feature is disabled: those are left alone."""
    return any(
        line.startswith("Tag:") and ("manylinux" in line or "musllinux" in line)
        for line in wheel.splitlines()
    )


def numpy_dispatch(cpuinfo: str, numpy_version: str) -> str | None:
    """The ``NPY_DISABLE_CPU_FEATURES`` value for this CPU and NumPy release (None: NumPy's
    own choice)."""
    found = re.match(r"(\d+)\.(\d+)", numpy_version)
    if found is None or (int(found[1]), int(found[2])) < _FIRST_NAMED:
        return None
    return AVX512_TARGETS if is_zen4(cpuinfo) else None


def configure_numpy(
    environ: MutableMapping[str, str] = os.environ,
    *,
    cpuinfo: Path = CPUINFO,
    numpy_loaded: bool | None = None,
    numpy_version: str | None = None,
    numpy_wheel: str | None = None,
) -> str | None:
    """Set ``NPY_DISABLE_CPU_FEATURES`` in ``environ`` where :func:`numpy_dispatch` gives a
    value and nothing else decided yet (see the module docstring).

    Args:
        environ: the environment to set it in (this process's).
        cpuinfo: the file describing the CPU.
        numpy_loaded: whether NumPy is imported already (default: look in ``sys.modules``).
        numpy_version: the installed NumPy's version (default: read from its metadata).
        numpy_wheel: its ``WHEEL`` metadata (default: read; see :func:`stock_build`).

    Returns:
        The value set, or None when nothing was set.
    """
    if numpy_loaded is None:
        numpy_loaded = "numpy" in sys.modules
    if VARIABLE in environ or numpy_loaded:
        return None
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
        if numpy_version is None or numpy_wheel is None:
            installed = metadata.distribution("numpy")
            numpy_version = numpy_version or installed.version
            numpy_wheel = installed.read_text("WHEEL") if numpy_wheel is None else numpy_wheel
    except (OSError, metadata.PackageNotFoundError):
        return None
    if not stock_build(numpy_wheel or ""):
        return None
    value = numpy_dispatch(text, numpy_version)
    if value is not None:
        environ[VARIABLE] = value
    return value
