"""Nightly training: ``python main.py [--config PATH] [--set KEY=VALUE ...]``."""

import sys

if __name__ == "__main__":
    # Imported here, not at the top: the plot worker processes import this file too, and
    # need none of the pipeline.
    from Orchestration import main_train

    sys.exit(main_train())
