"""Command line: ``python orchestrate.py [train|profile|score|ingest|demo-db|registry] ...``."""

import sys

from numpy_setup import configure_numpy

configure_numpy()  # before NumPy loads: see numpy_setup

from Orchestration import main  # noqa: E402 - after configure_numpy

if __name__ == "__main__":
    sys.exit(main())
