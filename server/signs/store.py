"""Taught signs on disk: an SQLite table of keypoint rows, and CSV export/import.

Owns persistence of taught examples and the keypoint CSV format shared with Kazuhito00's
``keypoint.csv``: one example per row, ``label_index,x0,y0,...,x20,y20`` (42 wrist-relative,
max-abs-normalised values of the canonical hand, see ``features.py``), with the label names in
a second file, one per line, line ``i`` naming index ``i``. It does not validate label names
or limits (``recognizer.py`` does) and keeps nothing in memory beyond the open connection.

Uses the stdlib ``sqlite3``; every write is one transaction, so a crash leaves either all of a
request's examples or none. The connection may be used from one thread at a time (the
recognizer serialises writes with a lock).
"""

from __future__ import annotations

import csv
import math
import sqlite3
from pathlib import Path
from typing import Protocol

import numpy as np

from server.signs.features import KEYPOINT_VALUES, FloatArray, keypoints_from_points, points_from_keypoints

_SCHEMA = """
CREATE TABLE IF NOT EXISTS examples (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    label TEXT NOT NULL,
    keypoints BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS examples_label ON examples (label);
"""
#: Keypoints are stored as 42 little-endian float64.
_DTYPE = np.dtype("<f8")


class SignStore(Protocol):
    """What the recognizer needs of storage (tests may pass an in-memory fake)."""

    def load(self) -> dict[str, FloatArray]: ...

    def add(self, label: str, keypoints: FloatArray) -> None: ...

    def delete(self, label: str) -> int: ...

    def close(self) -> None: ...


class SqliteSignStore:
    """Taught examples in one SQLite file.

    Args:
        path: the database file (its folder is created), or ``":memory:"``.

    Raises:
        sqlite3.Error: the file cannot be opened or is not a database.
    """

    def __init__(self, path: str) -> None:
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # check_same_thread=False: teach/forget may run in a worker thread (the event loop must
        # not wait on fsync); the recognizer's lock makes sure only one thread uses it at a time.
        self._db = sqlite3.connect(path, check_same_thread=False)
        with self._db:
            self._db.executescript(_SCHEMA)

    def load(self) -> dict[str, FloatArray]:
        """Every taught example: label -> (n, 42) keypoints, in the order they were taught.

        Raises:
            ValueError: a stored row is not 42 finite values (a damaged file).
        """
        rows: dict[str, list[FloatArray]] = {}
        for label, blob in self._db.execute("SELECT label, keypoints FROM examples ORDER BY id"):
            values = np.frombuffer(blob, dtype=_DTYPE).astype(np.float64)
            if values.shape != (KEYPOINT_VALUES,) or not np.isfinite(values).all():
                raise ValueError(f"taught sign {label!r}: a stored example is not {KEYPOINT_VALUES} finite values")
            rows.setdefault(str(label), []).append(values)
        return {label: np.stack(values) for label, values in rows.items()}

    def add(self, label: str, keypoints: FloatArray) -> None:
        """Append examples of ``label`` in one transaction."""
        with self._db:
            self._db.executemany(
                "INSERT INTO examples (label, keypoints) VALUES (?, ?)",
                [(label, np.ascontiguousarray(row, dtype=_DTYPE).tobytes()) for row in keypoints],
            )

    def delete(self, label: str) -> int:
        """Forget every example of ``label``; returns how many were deleted."""
        with self._db:
            return self._db.execute("DELETE FROM examples WHERE label = ?", (label,)).rowcount

    def close(self) -> None:
        self._db.close()


def write_keypoint_csv(examples: dict[str, FloatArray], csv_path: Path, labels_path: Path) -> int:
    """Export taught examples in the keypoint format.

    Args:
        examples: label -> (n, 42) keypoints.
        csv_path: the rows, ``label_index,x0,y0,...,x20,y20``, no header.
        labels_path: the label names, one per line (UTF-8), in index order.

    Returns:
        The number of rows written.
    """
    labels = sorted(examples)
    count = 0
    with csv_path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        for index, label in enumerate(labels):
            for row in examples[label]:
                writer.writerow([index, *(repr(float(v)) for v in row)])
                count += 1
    labels_path.write_text("".join(label + "\n" for label in labels), encoding="utf-8")
    return count


def read_keypoint_csv(csv_path: Path, labels_path: Path) -> dict[str, FloatArray]:
    """Import a keypoint file (ours or Kazuhito00's ``keypoint.csv`` + ``keypoint_classifier_label.csv``).

    Returns:
        label -> (n, 42) keypoints, each row renormalised (wrist subtracted, max |v| = 1).

    Raises:
        ValueError: a row without 43 values, a non-finite value, an index with no label, or an
            all-zero row; the message names the line.
    """
    labels = [line.strip() for line in labels_path.read_text(encoding="utf-8-sig").splitlines()]
    while labels and not labels[-1]:
        labels.pop()
    rows: dict[str, list[list[float]]] = {}
    with csv_path.open(newline="", encoding="utf-8-sig") as f:
        for number, row in enumerate(csv.reader(f), start=1):
            if not row:
                continue
            if len(row) != KEYPOINT_VALUES + 1:
                raise ValueError(f"{csv_path}:{number}: expected {KEYPOINT_VALUES + 1} values, got {len(row)}")
            try:
                index = int(row[0])
                values = [float(v) for v in row[1:]]
            except ValueError as exc:
                raise ValueError(f"{csv_path}:{number}: {exc}") from None
            if not 0 <= index < len(labels) or not labels[index]:
                raise ValueError(f"{csv_path}:{number}: label index {index} has no name in {labels_path}")
            if not all(math.isfinite(v) for v in values) or not any(values):
                raise ValueError(f"{csv_path}:{number}: expected finite, not all-zero values")
            rows.setdefault(labels[index], []).append(values)
    return {
        label: keypoints_from_points(points_from_keypoints(np.array(values, dtype=np.float64)))
        for label, values in rows.items()
    }
