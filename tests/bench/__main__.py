"""``make bench``: run every benchmark script in turn; each writes its own results/ files.

``python -m tests.bench [NAME ...]`` runs only the named ones (e.g. ``server signs``).
A benchmark that fails is reported and the others still run; the exit code says if any failed.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


def main(argv: list[str]) -> int:
    names = sorted(p.stem.removeprefix("bench_") for p in HERE.glob("bench_*.py"))
    chosen = argv or names
    unknown = set(chosen) - set(names)
    if unknown:
        print(f"unknown benchmark(s): {', '.join(sorted(unknown))}; known: {', '.join(names)}", file=sys.stderr)
        return 2
    failed = []
    for name in chosen:
        print(f"==== bench {name}", flush=True)
        code = subprocess.call([sys.executable, "-m", f"tests.bench.bench_{name}"], cwd=REPO)
        if code != 0:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
