"""Command line: ``python orchestrate.py [train|profile|score|ingest|demo-db|registry] ...``."""

import sys

if __name__ == "__main__":
    # Imported here, not at the top: the plot worker processes import this file too, and
    # need none of the pipeline.
    from Orchestration import main

    sys.exit(main())
