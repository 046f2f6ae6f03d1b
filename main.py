"""Nightly training: ``python main.py [--config PATH] [--set KEY=VALUE ...]``."""

import gc
import sys

from fork_server import warm_fork_server
from numpy_setup import configure_numpy

configure_numpy()  # before NumPy loads: see numpy_setup
if __name__ == "__main__":  # a fleet's pool server loads while this process does
    warm_fork_server(sys.argv[1:], default_command="train")

from Orchestration import main_train  # noqa: E402 - after the two calls above

if __name__ == "__main__":
    code = main_train()
    # The process ends here: what is alive stays out of the interpreter's last garbage
    # collection, which walks pandas', SQLAlchemy's and the pipeline's objects (~0.2 s).
    gc.freeze()
    sys.exit(code)
