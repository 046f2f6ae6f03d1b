"""Subprocess entry point for the registry's concurrency and crash tests.

Publishes one version into ROOT and prints ``{"version": ..., "path": ...}`` as JSON on stdout.
Its ``_before_commit`` hook runs once the artifacts sit in staging and before the registry lock is
taken; there it can signal readiness, wait for a start signal (so several workers commit at the
same moment) and/or stall (so the test can SIGKILL it while it is in staging).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from ModelRegistry import ModelRegistry

WAIT_LIMIT_SECONDS = 60.0


def main() -> int:
    """Parse arguments, publish, print the result; exit code 3 if the start signal never came."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("root")
    parser.add_argument("run_id")
    parser.add_argument("--ready", type=Path, help="file to create once in staging")
    parser.add_argument("--wait-for", type=Path, help="file whose appearance releases the commit")
    parser.add_argument("--stall", type=float, default=0.0, help="seconds to sleep in staging")
    parser.add_argument("--payload-bytes", type=int, default=1 << 20)
    args = parser.parse_args()

    def before_commit(staging: Path) -> None:
        if args.ready is not None:
            args.ready.write_text(str(staging), encoding="utf-8")
        if args.wait_for is not None:
            deadline = time.monotonic() + WAIT_LIMIT_SECONDS
            while not args.wait_for.exists():
                if time.monotonic() > deadline:
                    sys.exit(3)
                time.sleep(0.01)
        time.sleep(args.stall)

    published = ModelRegistry(args.root).publish(
        {
            "models.json": json.dumps({"run_id": args.run_id}).encode(),
            "models.pkl": bytes(range(256)) * (args.payload_bytes // 256),
        },
        meta={"data": {"rows": 10}, "axes": ["axis1"]},
        run_id=args.run_id,
        _before_commit=before_commit,
    )
    sys.stdout.write(json.dumps({"version": published.version, "path": str(published.path)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
