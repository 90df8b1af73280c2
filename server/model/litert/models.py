"""The LiteRT engine's reading of the hand graph's label map.

Locating the model files is shared with the MediaPipe engine and lives in
``server/model/files.py``.
"""

from __future__ import annotations

from pathlib import Path


def read_handedness_labels(path: Path) -> tuple[str, str]:
    """The two labels of the binary handedness classifier, in index order.

    Raises:
        ValueError: the file does not hold exactly two non-empty lines.
    """
    labels = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if len(labels) != 2:
        raise ValueError(f"{path}: expected 2 handedness labels, found {labels!r}")
    return labels[0], labels[1]
