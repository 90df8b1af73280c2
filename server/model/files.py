"""Find the hand model files bundled in the mediapipe wheel, without importing mediapipe.

``importlib.util.find_spec`` on a top-level package locates it without running its
``__init__`` (which would cost ~60 MB in the server process).
"""

from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class ModelFile:
    path: str
    sha256: str
    bytes: int


def mediapipe_dir() -> Path | None:
    """The installed mediapipe package folder, or ``None`` when it is not installed."""
    spec = importlib.util.find_spec("mediapipe")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def hand_model_paths(complexity: str) -> list[Path]:
    """The palm detection and hand landmark models the hand graph uses at ``complexity``.

    Raises:
        FileNotFoundError: mediapipe or one of its bundled model files is missing.
    """
    root = mediapipe_dir()
    if root is None:
        raise FileNotFoundError("the mediapipe package is not installed")
    paths = [
        root / "modules" / "palm_detection" / f"palm_detection_{complexity}.tflite",
        root / "modules" / "hand_landmark" / f"hand_landmark_{complexity}.tflite",
    ]
    for path in paths:
        if not path.is_file():
            raise FileNotFoundError(f"model file missing: {path}")
    return paths


def describe(paths: list[Path]) -> list[ModelFile]:
    """Path, sha256 and size of each file (reads them whole; run it off the event loop)."""
    out = []
    for path in paths:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        out.append(ModelFile(path=str(path), sha256=digest, bytes=path.stat().st_size))
    return out
