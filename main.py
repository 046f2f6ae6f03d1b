"""Nightly training: ``python main.py [--config PATH] [--set KEY=VALUE ...]``."""

import sys

from Orchestration import main_train

if __name__ == "__main__":
    sys.exit(main_train())
