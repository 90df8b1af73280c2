"""Export and import taught signs as keypoint CSV: ``python -m server.signs.csvtool``.

``export DB KEYPOINT_CSV LABELS_CSV`` writes every taught example of the SQLite file ``DB``;
``import DB KEYPOINT_CSV LABELS_CSV`` teaches the rows of a keypoint file (ours, or Kazuhito00's
``keypoint.csv`` with ``keypoint_classifier_label.csv``) with the same checks and limits as
``POST /api/signs/{label}/examples``. A running server reads the database at start-up only, so
restart it after an import. Format: see ``store.py``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from server.errors import SignwireError
from server.signs.config import SignsConfig
from server.signs.recognizer import open_recognizer
from server.signs.store import read_keypoint_csv, write_keypoint_csv


def main(argv: list[str] | None = None, out: Callable[[str], object] = print) -> int:
    """Run the command; returns the exit code (0 done, 1 refused)."""
    parser = argparse.ArgumentParser(prog="python -m server.signs.csvtool", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("export", "import"))
    parser.add_argument("db", help="the taught-sign SQLite file ([signs] db_path)")
    parser.add_argument("keypoints", type=Path, help="keypoint CSV: label_index,x0,y0,...,x20,y20")
    parser.add_argument("labels", type=Path, help="label names, one per line")
    args = parser.parse_args(argv)
    recognizer = open_recognizer(SignsConfig(db_path=args.db))
    try:
        if args.command == "export":
            count = write_keypoint_csv(recognizer.taught_examples(), args.keypoints, args.labels)
            out(f"exported {count} examples to {args.keypoints} ({args.labels})")
            return 0
        try:
            examples = read_keypoint_csv(args.keypoints, args.labels)
            for label, rows in sorted(examples.items()):
                total = recognizer.import_keypoints(label, rows)
                out(f"{label}: {len(rows)} imported, {total} held")
        except (ValueError, SignwireError) as exc:
            out(f"import refused: {exc}")
            return 1
        return 0
    finally:
        recognizer.close()


if __name__ == "__main__":
    sys.exit(main())
