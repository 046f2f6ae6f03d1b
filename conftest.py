"""Loaded by pytest before ``tests/conftest.py`` and any test: NumPy's CPU dispatch is chosen
as the entry points choose it, before anything imports NumPy (see ``numpy_setup``)."""

from numpy_setup import configure_numpy

configure_numpy()
