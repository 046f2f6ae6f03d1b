"""Command line: ``python orchestrate.py [train|profile|score|ingest|demo-db|registry] ...``."""

import sys

from Orchestration import main

if __name__ == "__main__":
    sys.exit(main())
