"""Nightly training: ``python main.py [--config PATH] [--set KEY=VALUE ...]``."""

import sys

from numpy_setup import configure_numpy

configure_numpy()  # before NumPy loads: see numpy_setup

from Orchestration import main_train  # noqa: E402 - after configure_numpy

if __name__ == "__main__":
    sys.exit(main_train())
